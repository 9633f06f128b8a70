#!/usr/bin/env bash
# Voice-to-voice latency through the WebSocket: real recordings streamed at real-time pace, one session each,
# for both profiles. Starts one server per profile on a free port, runs `parley bench voice`, writes
# voice_latency/{README.md,<profile>.json}. Set LIMIT to measure only the first N utterances, SILENCE_MS for
# the server_vad silence_duration_ms (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."
silence_ms=${SILENCE_MS:-500}
limit_args=()
if [[ -n "${LIMIT:-}" ]]; then limit_args=(--limit "$LIMIT"); fi
out=benchmarks/voice_latency
mkdir -p "$out"
{
  echo "# Voice-to-voice latency"
  echo
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src/)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: SILENCE_MS=$silence_ms${LIMIT:+ LIMIT=$LIMIT} benchmarks/run_voice_latency.sh"
  echo "- date: $(date -u +%Y-%m-%d)"
  echo "- load average before: $(uptime | sed 's/.*load average: //')"
  echo
} > "$out/README.md"
for profile in fast default; do
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PARLEY_PROFILE=$profile .venv/bin/parley serve --port "$port" --log-level info > "$out/server-$profile.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.5; done
  model=$(curl -s "http://127.0.0.1:$port/v1/models" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
  .venv/bin/parley bench voice --url "ws://127.0.0.1:$port/v1/realtime" --silence-duration-ms "$silence_ms" \
    "${limit_args[@]}" --label "$model ($profile)" --json-out "$out/$profile.json" \
    2> "$out/bench-$profile.log" | tee -a "$out/README.md"
  echo >> "$out/README.md"
  echo "- load average after $profile: $(uptime | sed 's/.*load average: //')" >> "$out/README.md"
  echo >> "$out/README.md"
  kill $pid; wait $pid 2>/dev/null || true
done

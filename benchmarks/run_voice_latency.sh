#!/usr/bin/env bash
# Voice-to-voice latency through the WebSocket: real recordings streamed at real-time pace, for both profiles.
# Starts one server per profile on a free port, runs `parley bench voice`, writes voice_latency/README.md and
# voice_latency/<profile>/results.{json,md,png}.
# Env: LIMIT (first N utterances), SILENCE_MS (server_vad silence_duration_ms, default 200), CONCURRENCY
# (sessions at once, default 1), TURN_DETECTION (server_vad or semantic_vad, default server_vad), PROFILES
# (default "fast default"), OUT (default benchmarks/voice_latency), PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
silence_ms=${SILENCE_MS:-200}
concurrency=${CONCURRENCY:-1}
turn_detection=${TURN_DETECTION:-server_vad}
bench_args=(--silence-ms "$silence_ms" --concurrency "$concurrency" --turn-detection "$turn_detection")
if [[ -n "${LIMIT:-}" ]]; then bench_args+=(--limit "$LIMIT"); fi
out=${OUT:-benchmarks/voice_latency}
mkdir -p "$out"
{
  echo "# Voice-to-voice latency"
  echo
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src/)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: SILENCE_MS=$silence_ms CONCURRENCY=$concurrency TURN_DETECTION=$turn_detection PROFILES=\"${PROFILES:-fast default}\"${LIMIT:+ LIMIT=$LIMIT}${OUT:+ OUT=$OUT} benchmarks/run_voice_latency.sh"
  echo "- date: $(date -u +%Y-%m-%d)"
  echo "- load average before: $(uptime | sed 's/.*load average: //')"
  echo "- server settings from the environment: $(env | grep '^PARLEY_' | grep -v -e KEY -e SHARED_DIR | sort | xargs || true)"
  echo
} > "$out/README.md"
pid=
trap '[[ -n $pid ]] && kill $pid 2>/dev/null || true' EXIT
for profile in ${PROFILES:-fast default}; do
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PARLEY_PROFILE=$profile "$python" -m parley.cli serve --port "$port" --log-level info > "$out/server-$profile.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.5; done
  model=$(curl -s "http://127.0.0.1:$port/v1/models" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
  "$python" -m parley.cli bench voice --url "ws://127.0.0.1:$port/v1/realtime" "${bench_args[@]}" \
    --label "$model ($profile)" --out "$out/$profile" 2> "$out/bench-$profile.log" | tee -a "$out/README.md"
  echo "![$profile]($profile/latency.png)" >> "$out/README.md"
  echo >> "$out/README.md"
  echo "- load average after $profile: $(uptime | sed 's/.*load average: //')" >> "$out/README.md"
  echo >> "$out/README.md"
  kill $pid; wait $pid 2>/dev/null || true; pid=
done

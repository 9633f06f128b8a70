#!/usr/bin/env bash
# Time to first text delta through the WebSocket, prompt cache cold and warm, for both local models.
# Starts one server per profile on a free port, runs `parley bench text`, writes text_latency.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-10}
out=benchmarks/text_latency
mkdir -p "$out"
{
  echo "# Time to first text delta"
  echo
  echo "- commit: $(git rev-parse --short HEAD)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: RUNS=$runs benchmarks/run_text_latency.sh"
  echo "- date: $(date -u +%Y-%m-%d)"
  echo
} > "$out/README.md"
for profile in fast default; do
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PARLEY_PROFILE=$profile .venv/bin/parley serve --port "$port" --log-level warning > "$out/server-$profile.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.5; done
  model=$(curl -s "http://127.0.0.1:$port/v1/models" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
  .venv/bin/parley bench text --url "ws://127.0.0.1:$port/v1/realtime" --runs "$runs" --label "$model ($profile)" \
    --json-out "$out/$profile.json" | tee -a "$out/README.md"
  echo >> "$out/README.md"
  kill $pid; wait $pid 2>/dev/null || true
done

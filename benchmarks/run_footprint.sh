#!/usr/bin/env bash
# Start-up time and resident memory of one `parley serve` per profile, models already installed and cached:
# seconds from starting the process to /readyz answering 200 (models loaded and warmed), then resident memory
# after LIMIT (default 8) voice turns of `parley bench voice` (VmRSS now, VmHWM the peak), of the server and its
# language-model worker together (the peak is the sum of each process's own peak). Writes footprint/README.md.
# Env: PROFILES (default "fast default"), LIMIT, PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=benchmarks/footprint
mkdir -p "$out"
{
  echo "# Start-up time and resident memory"
  echo
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src/)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: PROFILES=\"${PROFILES:-fast default}\" LIMIT=${LIMIT:-8} benchmarks/run_footprint.sh"
  echo "- date: $(date -u +%Y-%m-%d), load average before: $(uptime | sed 's/.*load average: //')"
  echo
  echo "| profile | start to ready, s | resident after ${LIMIT:-8} voice turns, MB | peak resident, MB | processes |"
  echo "|---|---|---|---|---|"
} > "$out/README.md"
pid=
trap '[[ -n $pid ]] && kill $pid 2>/dev/null || true' EXIT
for profile in ${PROFILES:-fast default}; do
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  started=$(date +%s.%N)
  PARLEY_PROFILE=$profile "$python" -m parley.cli serve --port "$port" --log-level warning > "$out/server-$profile.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.1; done
  ready_s=$("$python" -c "print(round($(date +%s.%N) - $started, 1))")
  "$python" -m parley.cli bench voice --url "ws://127.0.0.1:$port/v1/realtime" --limit "${LIMIT:-8}" > /dev/null 2>&1
  tree="/proc/$pid/status $(for child in $(ps -o pid= --ppid "$pid"); do echo "/proc/$child/status"; done)"
  # shellcheck disable=SC2086  # one path per process
  rss=$(awk '/VmRSS/{kb += $2} END {print int(kb/1024)}' $tree)
  # shellcheck disable=SC2086
  peak=$(awk '/VmHWM/{kb += $2} END {print int(kb/1024)}' $tree)
  echo "| $profile | $ready_s | $rss | $peak | $(echo $tree | wc -w) |" >> "$out/README.md"
  kill $pid; wait $pid 2>/dev/null || true; pid=
done
cat "$out/README.md"

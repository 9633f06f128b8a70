#!/usr/bin/env bash
# Word error rate, detected language and time per clip of each speech recognizer on every shared speech folder,
# in process (`parley bench recognizers`). Writes recognizers/README.md and recognizers/results.json.
# Env: LIMIT (utterances per folder, default all), RECOGNIZERS (default all), PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=benchmarks/recognizers
mkdir -p "$out"
args=()
for name in ${RECOGNIZERS:-}; do args+=(--recognizer "$name"); done
[[ -n ${LIMIT:-} ]] && args+=(--limit "$LIMIT")
{
  echo "# Speech recognizers on the shared recordings"
  echo
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src/)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: RECOGNIZERS=\"${RECOGNIZERS:-}\" LIMIT=${LIMIT:-} benchmarks/run_recognizers.sh"
  echo "- date: $(date -u +%Y-%m-%d), load average before: $(uptime | sed 's/.*load average: //')"
  echo
} > "$out/README.md"
"$python" -m parley.cli bench recognizers "${args[@]}" --json-out "$out/results.json" 2> "$out/clips.log" >> "$out/README.md"

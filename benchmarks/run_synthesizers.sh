#!/usr/bin/env bash
# Each profile's voices on the shared transcripts, in process (`parley bench synthesizers`): how long an answer's
# first piece takes to synthesize, and the real-time factor of whole texts. Writes synthesizers/README.md and
# synthesizers/results.json.
# Env: LIMIT (transcripts per folder, default all), PROFILES (default "fast default"), VOICE (default alloy),
# PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=benchmarks/synthesizers
mkdir -p "$out"
args=(--voice "${VOICE:-alloy}")
for name in ${PROFILES:-fast default}; do args+=(--profile "$name"); done
[[ -n ${LIMIT:-} ]] && args+=(--limit "$LIMIT")
{
  echo "# Speech synthesizers on the shared transcripts"
  echo
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src/)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: PROFILES=\"${PROFILES:-fast default}\" VOICE=${VOICE:-alloy} LIMIT=${LIMIT:-} benchmarks/run_synthesizers.sh"
  echo "- date: $(date -u +%Y-%m-%d), load average before: $(uptime | sed 's/.*load average: //')"
  echo
} > "$out/README.md"
"$python" -m parley.cli bench synthesizers "${args[@]}" --json-out "$out/results.json" 2> "$out/texts.log" >> "$out/README.md"

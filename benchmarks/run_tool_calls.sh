#!/usr/bin/env bash
# Tool-call quality of both local models (one per profile): whether they call when they should, pick the
# right tool, and write arguments valid against the tool's schema. Writes tool_calls/{README.md,*.json}.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=benchmarks/tool_calls
mkdir -p "$out"
{
  echo "# Tool calls of the local models"
  echo
  echo "- commit: $(git rev-parse --short HEAD)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: benchmarks/run_tool_calls.sh"
  echo "- date: $(date -u +%Y-%m-%d)"
  echo
} > "$out/README.md"
for profile in fast default; do
  case $profile in
    fast) model=smollm2-135m-instruct ;;
    default) model=qwen2.5-coder-0.5b-instruct ;;
  esac
  echo "## $model ($profile profile)" >> "$out/README.md"
  echo >> "$out/README.md"
  "$python" -m parley.bench.tool_calls --model "$model" --json-out "$out/$profile.json" | tee -a "$out/README.md"
  echo >> "$out/README.md"
done

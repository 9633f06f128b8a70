#!/usr/bin/env bash
# Knowledge grounding: retrieval and answer hit rates on benchmarks/grounding/questions.jsonl, per profile,
# with the fact sheet and without (baseline). Starts one server per profile on a free port with
# --knowledge clinic=benchmarks/grounding/clinic_facts.csv, runs `parley bench grounding`, writes
# benchmarks/grounding/README.md and <profile>.json, <profile>-baseline.json.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/grounding
facts=$out/clinic_facts.csv
questions=$out/questions.jsonl
top_k=${PARLEY_KNOWLEDGE_TOP_K:-5}
venv=${VENV:-.venv}
{
  echo "# Knowledge grounding"
  echo
  echo "- commit: $(git rev-parse --short HEAD)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: benchmarks/run_grounding.sh"
  echo "- date: $(date -u +%Y-%m-%d)"
  echo "- fact sheet: $(($(wc -l < "$facts") - 1)) facts ($facts); questions: $(grep -c . "$questions") ($questions); top-k: $top_k"
  echo
} > "$out/README.md"
for profile in ${PROFILES:-fast default}; do
  port=$("$venv"/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PARLEY_PROFILE=$profile PARLEY_KNOWLEDGE_TOP_K=$top_k "$venv"/bin/parley serve --port "$port" --log-level warning \
    --knowledge "clinic=$facts" > "$out/server-$profile.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.5; done
  model=$(curl -s "http://127.0.0.1:$port/v1/models" | "$venv"/bin/python -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
  for mode in grounded baseline; do
    flags=(--url "ws://127.0.0.1:$port/v1/realtime" --facts "$facts" --questions "$questions" --top-k "$top_k")
    suffix=""
    if [ "$mode" = baseline ]; then flags+=(--no-knowledge); suffix="-baseline"; fi
    "$venv"/bin/parley bench grounding "${flags[@]}" --label "$model ($profile, $mode)" \
      --json-out "$out/$profile$suffix.json" 2> "$out/progress-$profile$suffix.log" | tee -a "$out/README.md"
    echo >> "$out/README.md"
  done
  kill $pid; wait $pid 2>/dev/null || true
done

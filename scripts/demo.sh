#!/usr/bin/env bash
# Install tinyrnn into ./.venv (created if missing) and run the main job: `tinyrnn demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/tinyrnn demo "$@"

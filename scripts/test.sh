#!/usr/bin/env bash
# Install tinyrnn with its test extra into ./.venv (created if missing) and run the test suite:
# the whole suite with the Numba kernels, then the kernel tests (element-wise and whole-sequence) again with NUMBA_DISABLE_JIT=1
# so the jitted source also runs as plain Python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Small matrix products run faster on one BLAS thread on a busy 2-core machine.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
.venv/bin/python -m pytest "$@"
NUMBA_DISABLE_JIT=1 .venv/bin/python -m pytest -p no:cacheprovider tests/test_kernels.py tests/test_seq_kernels.py

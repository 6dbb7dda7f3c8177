#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtualenv in .venv with Tuneboard and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of torch first: installing the "worker" extra before it would pull several GB of
# CUDA wheels. On a GPU host, install the CUDA build of the same version first (pip then keeps it).
TORCH=${TORCH:-torch==2.13.0}
.venv/bin/python -m pip install -q "$TORCH"
# Named again beside the project: installed alone first, it was still replaced by a CUDA build
# of a newer release when the project's "torch>=2.4,<3" was resolved here (pip 26).
.venv/bin/python -m pip install -q "$TORCH" -e ".[dev,worker]" -e tests/fixtures/objective_pkg

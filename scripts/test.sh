#!/usr/bin/env bash
# The test suite on SQLite and PostgreSQL (real servers, real Celery workers, torch on CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/bin/activate ] && . .venv/bin/activate
export TUNEBOARD_TEST_BACKENDS=${TUNEBOARD_TEST_BACKENDS:-sqlite,postgresql}
exec python -m pytest -q "$@"

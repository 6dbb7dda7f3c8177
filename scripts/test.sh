#!/usr/bin/env bash
# The test suite on SQLite and PostgreSQL (real servers, real Celery workers, torch on CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/bin/activate ] && . .venv/bin/activate
# Debian packages some tests drive (they skip, saying so, where these are missing): chromium for
# the web UI's browser tests, pgbouncer for the transaction-pooling test.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=""
  command -v chromium >/dev/null || missing="$missing chromium"
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing="$missing pgbouncer"
  # shellcheck disable=SC2086
  [ -z "$missing" ] || apt-get install -y -q $missing >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }
fi
export TUNEBOARD_TEST_BACKENDS=${TUNEBOARD_TEST_BACKENDS:-sqlite,postgresql}
exec python -m pytest -q "$@"

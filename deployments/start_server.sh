#!/usr/bin/env bash
# Start the studio's Prefect server (SQLite in $PREFECT_HOME by default; set PREFECT_API_DATABASE_CONNECTION_URL for
# PostgreSQL). It listens on 127.0.0.1 unless ADOP_SERVER_HOST says otherwise, and it refuses any other address
# without API auth: anyone who reaches an open server can start, cancel and read every studio's runs.
set -euo pipefail
HOST="${ADOP_SERVER_HOST:-127.0.0.1}"
PORT="${ADOP_SERVER_PORT:-4200}"
case "$HOST" in
  127.0.0.1|localhost|::1) ;;
  *)
    if [ -z "${PREFECT_SERVER_API_AUTH_STRING:-}" ]; then
      echo "start_server: refusing to listen on $HOST without API auth; set PREFECT_SERVER_API_AUTH_STRING=user:password (clients and workers set PREFECT_API_AUTH_STRING to the same)" >&2
      exit 2
    fi ;;
esac
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
# How long a database call waits (on SQLite: for the file's write lock) before it fails. Prefect's default of 10 s
# let a loaded two-core server fail state changes with "database is locked" while several runs started at once;
# Prefect's own tests wait 30 s for the same reason.
export PREFECT_SERVER_DATABASE_TIMEOUT="${PREFECT_SERVER_DATABASE_TIMEOUT:-30}"
exec prefect server start --host "$HOST" --port "$PORT" --analytics-off

#!/usr/bin/env bash
# `make airflow`: Airflow standalone (scheduler, dag-processor, triggerer, API server + UI) on the
# project-local AIRFLOW_HOME (.airflow, SQLite) with the example DAGs in dags/ and this provider's
# "AI Security" view. Prints the URL and the admin password, then runs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
export PATH="$VENV/bin:$PATH"  # standalone starts its components as `airflow ...`

export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AISEC_DATA_DIR="${AISEC_DATA_DIR:-$AIRFLOW_HOME/aisec-data}"
export AISEC_REPORT_DIR="${AISEC_REPORT_DIR:-$AIRFLOW_HOME/aisec-reports}"
export AISEC_OSV_DB="${AISEC_OSV_DB:-$ROOT/data/osv/pypa-advisory-db-2024-10-10.zip}"
PORT=${AISEC_AIRFLOW_PORT:-8080}
HOST=${AISEC_AIRFLOW_HOST:-127.0.0.1}
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__API__HOST=$HOST
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://localhost:$PORT}"
mkdir -p "$AIRFLOW_HOME" "$AISEC_DATA_DIR" "$AISEC_REPORT_DIR"

PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

# Own process group, so that Ctrl-C / exit stops standalone and everything it started.
set -m
"$VENV/bin/airflow" standalone &
PID=$!
set +m
stop() {
  trap - INT TERM EXIT
  kill -TERM -- "-$PID" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$PID" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}
trap stop INT TERM EXIT

for _ in $(seq 1 180); do
  if curl -fsS -o /dev/null "http://$HOST:$PORT/api/v2/monitor/health" 2>/dev/null && [ -s "$PASSWORDS" ]; then
    PASSWORD=$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("admin", "?"))' "$PASSWORDS")
    cat <<MSG

================================================================
 Airflow UI:   http://localhost:$PORT   (AI Security: http://localhost:$PORT/plugin/aisec)
 login:        admin / $PASSWORD
 metrics:      http://localhost:$PORT/aisec/metrics  (Bearer token from POST /auth/token)
 AIRFLOW_HOME: $AIRFLOW_HOME     DAGs: $AIRFLOW__CORE__DAGS_FOLDER
 Ctrl-C stops Airflow.
================================================================

MSG
    break
  fi
  kill -0 "$PID" 2>/dev/null || { echo "airflow standalone exited early" >&2; exit 1; }
  sleep 1
done
wait "$PID"

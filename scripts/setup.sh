#!/usr/bin/env bash
# One-time (idempotent) set-up for `make demo` / `make test`: uv, the locked virtualenv, and the
# system packages the browser tests need. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv with pip" >&2
  python3 -m pip install --quiet uv
fi
UV=$(command -v uv || echo "$(python3 -m site --user-base)/bin/uv")

# The virtualenv, exactly as locked (Airflow 3.3.2 and the tested set), with compiled bytecode as a
# real install has it (so first imports, and the timings of benchmarks and tests, are not compile time).
# Compiling covers the whole site-packages, so it only runs when the sync has something to change.
if ! "$UV" sync --frozen --quiet --check --python "${AISEC_PYTHON:-3.11}" >/dev/null 2>&1; then
  "$UV" sync --frozen --quiet --compile-bytecode --python "${AISEC_PYTHON:-3.11}"
fi
# The project itself is installed editable, so the sync above does not compile it; a wheel install
# would. Compile it here (a second or so; up-to-date files are skipped), since Python is often run
# with PYTHONDONTWRITEBYTECODE=1 and would otherwise compile ~40 modules at every `aisec` start.
.venv/bin/python -m compileall -q -j 0 airflow_aisec >/dev/null

# Redis for the local Postgres + Celery stack (`make stack-demo`, tests/integration/stack); Postgres
# itself comes with the machine (Debian's postgresql). Installed only when missing; the Debian service
# is not needed (the stack runs its own loopback instance) and is left stopped.
if [ "${AISEC_SKIP_STACK:-0}" != "1" ] && ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian's redis-server for the Postgres + Celery stack" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "setup: redis-server not found and cannot be installed here; the stack tests will fail" >&2
  fi
fi

# Headless Chromium for the UI browser tests (Debian packages; no browser download at run time).
if [ "${AISEC_SKIP_BROWSER:-0}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian's chromium for the browser tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium not found and cannot be installed here; browser tests will fail" >&2
  fi
fi

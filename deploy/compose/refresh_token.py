"""Keep a fresh Airflow API token for Prometheus (docker-compose.yaml's `prometheus-token` service).

Reads the `prometheus` user's generated password from the simple auth manager's passwords file, asks the
API server for a JWT (POST /auth/token), writes it atomically to TOKEN_FILE, and repeats every
REFRESH_SECONDS (well inside Airflow's [api_auth] jwt_expiration_time). Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request

API = os.environ.get("AIRFLOW_API_URL", "http://airflow-apiserver:8080")
USER = os.environ.get("TOKEN_USER", "prometheus")
PASSWORDS_FILE = os.environ["PASSWORDS_FILE"]
TOKEN_FILE = os.environ.get("TOKEN_FILE", "/tokens/airflow-token")
REFRESH_SECONDS = int(os.environ.get("REFRESH_SECONDS", "1800"))


def fetch_token() -> str:
    with open(PASSWORDS_FILE, encoding="utf-8") as fh:
        password = json.load(fh)[USER]
    body = json.dumps({"username": USER, "password": password}).encode()
    req = urllib.request.Request(
        f"{API}/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(json.load(resp)["access_token"])


def write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".token-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main() -> int:
    while True:
        try:
            write_atomic(TOKEN_FILE, fetch_token())
            print(f"token for {USER!r} refreshed", flush=True)
            delay = REFRESH_SECONDS
        except (OSError, KeyError, ValueError, urllib.error.URLError) as exc:  # API not up yet, file not written yet
            print(f"token refresh failed ({type(exc).__name__}: {exc}); retrying in 15 s", file=sys.stderr, flush=True)
            delay = 15
        time.sleep(delay)


if __name__ == "__main__":
    sys.exit(main())

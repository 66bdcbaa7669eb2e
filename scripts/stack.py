"""`make stack-demo`: the example DAGs on a local Postgres + Redis + CeleryExecutor Airflow.

    scripts/stack.py demo     start the stack, run every example DAG through the REST API v2 with its
                              demo/runs sidecar conf and order, print one line per run, stop the stack
    scripts/stack.py start    start the stack under .stack/demo/ and leave it running (prints URL and login)
    scripts/stack.py status   what runs, on which ports
    scripts/stack.py stop     stop what `start` started (by PID) and its children

Exit code of `demo`: 0 when every run ended as its sidecar expects, 1 otherwise (2: the stack failed).
The pieces live in scripts/aisec_stack.py (the integration tests use them too).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aisec_stack as st


def _terminate_on_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def demo(root: Path) -> int:
    _terminate_on_sigterm()
    stack = st.Stack(root=root)
    t0 = time.monotonic()
    try:
        print(f"airflow-aisec stack demo — starting Postgres, Redis and Airflow (CeleryExecutor) under {root}")
        stack.start()
        print(f"  up in {time.monotonic() - t0:.0f} s: {stack.base_url}  (logs: {stack.logs})", flush=True)
        results = st.run_plan(stack, st.demo_plan(), progress=lambda line: print(line, flush=True))
    except st.StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stack: interrupted", file=sys.stderr)
        return 130
    finally:
        print("  stopping the stack …", flush=True)
        stack.stop()
    print("=" * 100)
    for result in results:
        print(result.line())
    print("=" * 100)
    ok = all(r.ok for r in results)
    verdict = "all as expected" if ok else f"{sum(not r.ok for r in results)} UNEXPECTED"
    print(f"{len(results)} run(s): {verdict} ({time.monotonic() - t0:.0f} s)")
    return 0 if ok else 1


def start(root: Path) -> int:
    stack = st.Stack(root=root)
    try:
        stack.start()
    except st.StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 2
    password = json.loads((stack.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    print(f"Airflow UI: {stack.base_url}  (AI Security: {stack.base_url}/plugin/aisec)")
    print(f"login:      admin / {password}")
    print(f"logs:       {stack.logs}    stop with: scripts/stack.py stop")
    return 0


def status(root: Path) -> int:
    if not (root / "state.json").exists():
        print(f"no stack recorded under {root}")
        return 1
    stack = st.Stack.attach(root)
    up = 0
    for service in stack.services:
        alive = stack.alive(service)
        up += alive
        print(f"{service.name:<14} pid {service.pid:<8} {'running' if alive else 'stopped'}")
    print("ports: " + ", ".join(f"{k} {v}" for k, v in stack.ports.items()))
    return 0 if stack.services and up == len(stack.services) else 1


def stop(root: Path) -> int:
    if not (root / "state.json").exists():
        print(f"no stack recorded under {root}")
        return 0
    st.Stack.attach(root).stop()
    print("stack stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "start", "status", "stop"])
    parser.add_argument("--dir", type=Path, default=st.DEFAULT_DIR, help="stack folder (default: .stack/demo)")
    args = parser.parse_args(argv)
    root = args.dir.resolve()
    return {"demo": demo, "start": start, "status": status, "stop": stop}[args.command](root)


if __name__ == "__main__":
    sys.exit(main())

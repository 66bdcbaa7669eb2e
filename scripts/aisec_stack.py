"""A local Postgres + Redis + CeleryExecutor Airflow, the way teams run it: the reusable pieces.

Used by ``scripts/stack.py`` (``make stack-demo``) and by ``tests/integration/stack``. Everything runs on
loopback ports picked free at start, under one folder (``.stack/demo/`` by default):

    pg/        Postgres data directory (initdb + postgres run as the ``postgres`` user when started by root)
    redis/     Redis working directory and its config (run as the ``redis`` user when started by root)
    airflow/   AIRFLOW_HOME (logs, simple-auth passwords, aisec reports and data)
    logs/      one log file per process
    state.json what was started: PIDs (with their start times, so a reused PID is never signalled) and ports

Airflow: scheduler, dag-processor, triggerer, api-server and two Celery workers (distinct Celery node
names and task-instance hostnames ``w1.<host>``, ``w2.<host>``). Worker and triggerer log servers are not
started (``--skip-serve-logs``: they would bind every interface; the API server reads the local log files).
Nothing here is for production: the databases are throw-away (fsync off) and recreated at each start.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / ".stack" / "demo"  # tests use siblings: .stack/pytest-<pid>
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
OSV_DB = ROOT / "data" / "osv" / "pypa-advisory-db-2024-10-10.zip"
TERMINAL = {"success", "failed"}
WORKER_ENV = "AISEC_STACK_WORKER"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the stack's Celery workers: ``w1.<host>``, ``w2.<host>``."""
    name = socket.gethostname()
    worker = os.environ.get(WORKER_ENV)
    return f"{worker}.{name}" if worker else name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/<pid>/stat), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie has stopped; its parent reaps it
    return fields[19]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _pg_bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise StackError("Postgres not found (expected /usr/lib/postgresql/<version>/bin): run scripts/setup.sh")
    return versions[-1].parent


class StackError(RuntimeError):
    """The stack could not be started or did not behave."""


@dataclass
class Service:
    name: str
    pid: int
    start_time: str | None
    log: str
    # signal asking the process to stop (Postgres: SIGINT = fast shutdown)
    stop_signal: int = signal.SIGTERM


@dataclass
class Stack:
    """One local stack. :meth:`start` it, use :attr:`base_url` / :meth:`api`, then :meth:`stop` it."""

    root: Path = DEFAULT_DIR
    extra_dag_folders: list[Path] = field(default_factory=list)
    workers: int = 2
    worker_concurrency: int = 2
    services: list[Service] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    _children: dict[int, subprocess.Popen] = field(default_factory=dict)
    _token: str | None = None

    # ------------------------------------------------------------------ layout and environment
    @property
    def home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def _secret(self, name: str) -> str:
        path = self.root / "secrets" / name
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text()

    def db_url(self, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://airflow:{self._secret('postgres')}@127.0.0.1:{self.ports['postgres']}/airflow"

    def env(self, worker: str | None = None) -> dict[str, str]:
        """The environment of every Airflow process (the caller's, minus its AIRFLOW_*/AISEC_* settings)."""
        e = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AISEC_"))}
        home = self.home
        bundles = [("dags-folder", ROOT / "dags")] + [
            (f"extra-{i}", Path(p).resolve()) for i, p in enumerate(self.extra_dag_folders, 1)
        ]
        redis_pw = self._secret("redis")
        e.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                    [
                        {
                            "name": name,
                            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                            "kwargs": {"path": str(path), "refresh_interval": 300},
                        }
                        for name, path in bundles
                    ]
                ),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url(),
                "AIRFLOW__CELERY__BROKER_URL": f"redis://:{redis_pw}@127.0.0.1:{self.ports['redis']}/0",
                # SQLAlchemy 2.1 maps plain `db+postgresql://` to psycopg 3: name the driver
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.db_url(),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                # runs come from the REST API (and from DAGs that trigger DAGs), never from schedules:
                # an hourly monitoring run must not consume the retrain cooldown of the demo's runs
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.ports["api"]),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
                "AIRFLOW__API__SECRET_KEY": self._secret("api"),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # parsed once at start; re-parsing every minute only competes with the tasks for CPU
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                # a loaded machine may leave a task queued for minutes: not a reason to fail it
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "3600",
                "AISEC_DATA_DIR": str(home / "aisec-data"),
                "AISEC_REPORT_DIR": str(home / "aisec-reports"),
                "AISEC_OSV_DB": str(OSV_DB),
            }
        )
        if worker:
            # distinct task-instance hostnames for the two workers on this one machine
            e[WORKER_ENV] = worker
            e["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "aisec_stack.worker_hostname"
            e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), e.get("PYTHONPATH")]))
        return e

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, cmd: list[str], *, env: dict[str, str] | None = None, user: str | None = None,
               stop_signal: int = signal.SIGTERM) -> Service:  # fmt: skip
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                env=env if env is not None else self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() signals the group, children too
                user=user,
                group=pwd.getpwnam(user).pw_gid if user else None,
                extra_groups=[] if user else None,
                cwd=str(self.root),
            )
        self._children[proc.pid] = proc
        service = Service(name, proc.pid, _proc_start_time(proc.pid), str(log), int(stop_signal))
        self.services.append(service)
        self._save()
        return service

    def _save(self) -> None:
        state = {"ports": self.ports, "services": [s.__dict__ for s in self.services]}
        tmp = self.root / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.root / "state.json")

    @classmethod
    def attach(cls, root: Path = DEFAULT_DIR) -> Stack:
        """The stack recorded in ``root/state.json`` (started by another process)."""
        state = json.loads((root / "state.json").read_text())
        stack = cls(root=root)
        stack.ports = state["ports"]
        stack.services = [Service(**s) for s in state["services"]]
        return stack

    def alive(self, service: Service) -> bool:
        proc = self._children.get(service.pid)
        if proc is not None and proc.poll() is not None:
            return False
        return _proc_start_time(service.pid) == service.start_time is not None

    def _group_alive(self, service: Service) -> bool:
        return bool(group_members(service.pid))

    def _stop_batch(self, services: list[Service], grace: float) -> None:
        """Ask ``services`` to stop together, wait up to ``grace`` s, kill what is left of their groups, reap."""
        for service in services:
            if self.alive(service):
                try:
                    os.kill(service.pid, service.stop_signal)
                    if service.stop_signal == signal.SIGTERM:
                        os.killpg(service.pid, signal.SIGTERM)  # Airflow: its task processes too
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(self.alive(s) for s in services):
            time.sleep(0.2)
        for service in services:
            # the PID now names another process: its group is not ours to signal
            reused = not self.alive(service) and _proc_start_time(service.pid) is not None
            if not reused and self._group_alive(service):
                try:
                    os.killpg(service.pid, signal.SIGKILL)  # whatever is left of its process group
                except ProcessLookupError:
                    pass
            proc = self._children.pop(service.pid, None)
            if proc is not None:
                try:
                    proc.wait(timeout=30)  # reap our child
                except subprocess.TimeoutExpired:
                    pass

    def stop(self, grace: float = 20.0) -> None:
        """Stop what this stack started, by PID: Airflow first, then Redis and Postgres; idempotent."""
        databases = [s for s in self.services if s.name in ("postgres", "redis")]
        self._stop_batch([s for s in self.services if s not in databases], grace)
        self._stop_batch(databases, grace)
        self.services.clear()
        if (self.root / "state.json").exists():
            self._save()

    # ------------------------------------------------------------------ start
    def _wait(self, what: str, ready: Any, timeout: float, service: Service | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service is not None and not self.alive(service):
                raise StackError(f"{service.name} exited during start-up; see {service.log}")
            try:
                if ready():
                    return
            except Exception:
                pass
            time.sleep(1)
        raise StackError(f"{what} not ready after {timeout:.0f} s; logs in {self.logs}")

    def _fresh_root(self) -> None:
        if (self.root / "state.json").exists():
            old = Stack.attach(self.root)
            if any(old.alive(s) for s in old.services):
                raise StackError(f"a stack is already running from {self.root}: `scripts/stack.py stop` first")
        self.remove()
        self.root.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.root.mkdir()
        self.root.chmod(0o755)  # the postgres / redis users traverse it to their folders

    def remove(self) -> None:
        """Delete ``root`` (databases, logs, reports) once the stack is stopped."""
        if not self.root.exists():
            return
        for link in self.root.iterdir():
            if link.is_symlink():  # a service folder outside root (see _service_dir)
                shutil.rmtree(link.resolve(), ignore_errors=True)
        shutil.rmtree(self.root)

    def _run_as(self) -> tuple[str | None, str | None]:
        """(postgres user, redis user): unprivileged accounts when we are root, else ourselves."""
        if os.geteuid() != 0:
            return None, None

        def account(*names: str) -> str:
            for name in names:
                try:
                    pwd.getpwnam(name)
                    return name
                except KeyError:
                    continue
            raise StackError(f"no unprivileged account among {names} to run the database as")

        return account("postgres", "nobody"), account("redis", "nobody")

    def _service_dir(self, name: str, user: str | None) -> Path:
        """``root/<name>``, owned by ``user``; when ``user`` cannot reach ``root`` (a parent folder is
        private), a private temporary folder instead, linked from ``root/<name>``."""
        path = self.root / name
        if user and subprocess.run(["test", "-x", str(self.root)], user=user, check=False).returncode != 0:
            import tempfile

            path.symlink_to(tempfile.mkdtemp(prefix=f"aisec-stack-{name}-"))
            path = path.resolve()
        self._own(path, user)
        return path

    def _own(self, path: Path, user: str | None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start_postgres(self, user: str | None) -> None:
        bindir = _pg_bindir()
        pgdir = self._service_dir("pg", user)
        pwfile = pgdir / "pwfile"
        pwfile.write_text(self._secret("postgres") + "\n")
        pwfile.chmod(0o600)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        gid = pwd.getpwnam(user).pw_gid if user else None
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(pgdir / "data"),
                "-U",
                "airflow",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],  # fmt: skip
            check=True,
            capture_output=True,
            user=user,
            group=gid,
            extra_groups=[] if user else None,
            cwd=str(pgdir),
        )
        pwfile.unlink()
        service = self._spawn(
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(pgdir / "data"),
                "-p",
                str(self.ports["postgres"]),
                "-h",
                "127.0.0.1",
                "-k",
                str(pgdir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],  # fmt: skip
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            user=user,
            stop_signal=signal.SIGINT,  # fast shutdown
        )
        import psycopg2

        def connect() -> bool:
            conn = psycopg2.connect(
                host="127.0.0.1", port=self.ports["postgres"], user="airflow",
                password=self._secret("postgres"), dbname="postgres", connect_timeout=5,
            )  # fmt: skip
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow'")
                if cur.fetchone() is None:
                    cur.execute("CREATE DATABASE airflow")
            conn.close()
            return True

        self._wait("postgres", connect, 120, service)

    def start_redis(self, user: str | None) -> None:
        redis_bin = shutil.which("redis-server")
        if redis_bin is None:
            raise StackError("redis-server not found: run scripts/setup.sh (installs Debian's redis-server)")
        rdir = self._service_dir("redis", user)
        conf = rdir / "redis.conf"
        conf.write_text(
            f"bind 127.0.0.1\nport {self.ports['redis']}\nprotected-mode yes\ndir {rdir}\n"
            f'save ""\nappendonly no\ndaemonize no\nrequirepass {self._secret("redis")}\n'
        )
        conf.chmod(0o600)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(conf, entry.pw_uid, entry.pw_gid)
        service = self._spawn("redis", [redis_bin, str(conf)], env={"PATH": "/usr/bin:/bin"}, user=user)

        def ping() -> bool:
            with socket.create_connection(("127.0.0.1", self.ports["redis"]), timeout=5) as s:
                s.sendall(f"AUTH {self._secret('redis')}\r\nPING\r\n".encode())
                time.sleep(0.2)
                return b"+PONG" in s.recv(256)

        self._wait("redis", ping, 60, service)

    def migrate(self) -> None:
        done = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=self.env(), capture_output=True, text=True, timeout=1200, check=False
        )
        (self.logs / "db-migrate.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise StackError(f"airflow db migrate failed; see {self.logs / 'db-migrate.log'}")

    def start_airflow(self, timeout: float = 600) -> None:
        api = self._spawn("api-server", [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port",
                                         str(self.ports["api"]), "--workers", "1"])  # fmt: skip
        self._spawn("scheduler", [AIRFLOW, "scheduler"])
        self._spawn("dag-processor", [AIRFLOW, "dag-processor"])
        self._spawn("triggerer", [AIRFLOW, "triggerer", "--skip-serve-logs"])
        for i in range(1, self.workers + 1):
            name = f"w{i}"
            self._spawn(
                f"worker-{name}",
                [
                    AIRFLOW,
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{name}@%h",
                    "--skip-serve-logs",
                    "--concurrency",
                    str(self.worker_concurrency),
                    "--without-gossip",
                    "--without-mingle",
                ],  # fmt: skip
                env=self.env(worker=name),
            )
        self._wait("api-server", lambda: self.get("/api/v2/monitor/health") is not None, timeout, api)

        def healthy() -> bool:
            health = self.get("/api/v2/monitor/health")
            return all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        self._wait("scheduler, triggerer and dag-processor heartbeats", healthy, timeout)

    def start(self, timeout: float = 600) -> Stack:
        """Start everything (a fresh ``root`` each time); on any failure, stop what was started."""
        self._fresh_root()
        self.ports = {name: free_port() for name in ("postgres", "redis", "api")}
        self.home.mkdir(parents=True)
        pg_user, redis_user = self._run_as()
        try:
            self.start_postgres(pg_user)
            self.start_redis(redis_user)
            self.migrate()
            self.start_airflow(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    # ------------------------------------------------------------------ REST API v2
    def token(self) -> str:
        """A JWT for the simple auth manager's ``admin`` (``POST /auth/token``)."""
        if self._token is None:
            passwords = self.home / "simple_auth_manager_passwords.json.generated"
            password = json.loads(passwords.read_text())["admin"]
            self._token = self.request("POST", "/auth/token", {"username": "admin", "password": password},
                                       auth=False)["access_token"]  # fmt: skip
        return self._token

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise StackError(f"{method} {path}: HTTP {exc.code} {detail}") from None

    def get(self, path: str) -> Any:
        return self.request("GET", path, auth=not path.startswith("/api/v2/monitor/"))

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 600) -> None:
        """Wait until the dag-processor has serialised every DAG in ``dag_ids``; fail on an import error."""
        wanted = set(dag_ids)

        def parsed() -> bool:
            errors = self.get("/api/v2/importErrors")
            if errors["total_entries"]:
                raise StackError(f"DAG import errors: {json.dumps(errors['import_errors'])[:2000]}")
            have = {d["dag_id"] for d in self.get("/api/v2/dags?limit=1000")["dags"]}
            return wanted <= have

        deadline = time.monotonic() + timeout
        while True:
            try:
                if parsed():
                    return
            except StackError as exc:
                if "import errors" in str(exc):
                    raise
            if time.monotonic() > deadline:
                raise StackError(f"DAGs {sorted(wanted)} not parsed after {timeout:.0f} s")
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> str:
        """The run's final state (``success``/``failed``), or ``timed out`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL:
                return state
            self.check_alive()
            time.sleep(2)
        return "timed out"

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances?limit=1000")
                    ["task_instances"])  # fmt: skip

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``query`` on the stack's metadata database."""
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.ports["postgres"], user="airflow", password=self._secret("postgres"),
            dbname="airflow", connect_timeout=10,
        )  # fmt: skip
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def check_alive(self) -> None:
        dead = [s.name for s in self.services if not self.alive(s)]
        if dead:
            raise StackError(f"stack process(es) exited: {', '.join(dead)}; logs in {self.logs}")


def _quote(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


# ---------------------------------------------------------------------- the example runs
@dataclass
class RunResult:
    dag_id: str
    name: str
    expect: str
    state: str
    seconds: float
    run_id: str
    workers: list[str]

    @property
    def ok(self) -> bool:
        return self.state == self.expect

    def line(self) -> str:
        workers = ", ".join(self.workers) or "none"
        return (f"{self.dag_id} [{self.name}]: expected {self.expect}, got {self.state} "
                f"({self.seconds:.0f}s, workers: {workers})")  # fmt: skip


def demo_plan() -> list[tuple[str, dict[str, Any]]]:
    """The example runs in order, from the demo's sidecar loader (``plan()`` of ``scripts/demo.py``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("aisec_demo_runner", Path(__file__).with_name("demo.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.plan())


def _order_groups(plan: list[tuple[str, dict[str, Any]]]) -> list[dict[str, list[dict[str, Any]]]]:
    """Consecutive DAGs of the plan as groups: within a group, DAGs run side by side, a DAG's runs in order.

    The plan is sorted by the sidecars' ``order``; a DAG whose runs come after another DAG's in the plan
    and that shares its ``order`` is independent of it, so it may run concurrently. Groups start where the
    order changes (read back from the sidecar) and keep their sequence.
    """
    demo_dir = ROOT / "demo" / "runs"
    groups: list[tuple[int, dict[str, list[dict[str, Any]]]]] = []
    for dag_id, run in plan:
        sidecar = demo_dir / f"{dag_id}.json"
        order = int(json.loads(sidecar.read_text()).get("order", 50)) if sidecar.exists() else 50
        if not groups or groups[-1][0] != order:
            groups.append((order, {}))
        groups[-1][1].setdefault(dag_id, []).append(run)
    return [g for _, g in groups]


def run_plan(stack: Stack, plan: list[tuple[str, dict[str, Any]]], *, timeout: float = 900,
             progress: Any = print) -> list[RunResult]:  # fmt: skip
    """Trigger every run of ``plan`` through the REST API and wait for it; see :func:`_order_groups`."""
    stack.wait_for_dags({dag_id for dag_id, _ in plan})
    results: list[RunResult] = []
    for group in _order_groups(plan):
        # queues of pending runs per DAG; one run per DAG in flight at a time
        pending = {dag_id: list(runs) for dag_id, runs in group.items()}
        in_flight: dict[str, tuple[dict[str, Any], str, float]] = {}
        done: dict[str, list[RunResult]] = {dag_id: [] for dag_id in group}
        while pending or in_flight:
            for dag_id in [d for d in pending if d not in in_flight]:
                run = pending[dag_id].pop(0)
                if not pending[dag_id]:
                    del pending[dag_id]
                progress(f"  triggering {dag_id} [{run.get('name', 'default')}] …")
                in_flight[dag_id] = (run, stack.trigger(dag_id, run.get("conf")), time.monotonic())
            for dag_id, (run, run_id, started) in list(in_flight.items()):
                state = stack.run_state(dag_id, run_id)
                elapsed = time.monotonic() - started
                if state not in TERMINAL and elapsed < timeout:
                    continue
                if state not in TERMINAL:
                    state = "timed out"
                hosts = sorted({ti["hostname"] for ti in stack.task_instances(dag_id, run_id) if ti.get("hostname")})
                result = RunResult(dag_id, run.get("name", "default"), run.get("expect", "success"), state,
                                   elapsed, run_id, hosts)  # fmt: skip
                done[dag_id].append(result)
                progress("  " + result.line())
                del in_flight[dag_id]
            stack.check_alive()
            time.sleep(2)
        for dag_id in group:
            results.extend(done[dag_id])
    return results

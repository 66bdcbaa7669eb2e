"""Throwaway git repositories and fake credentials for secrets-scan tests.

Fake tokens are generated at run time (never written literally in this repository, so scanning the
repository itself stays clean). They have the vendors' formats but are random.
"""

from __future__ import annotations

import random
import string
import subprocess
from pathlib import Path


def fake_tokens(seed: int = 1234) -> dict[str, str]:
    rng = random.Random(seed)
    letters = string.ascii_letters
    alnum = string.ascii_letters + string.digits
    return {
        "hf": "hf_" + "".join(rng.choice(letters) for _ in range(34)),
        "openai": "sk-proj-" + "".join(rng.choice(alnum) for _ in range(64)),
        "openai_legacy": "sk-" + "".join(rng.choice(alnum) for _ in range(48)),
        "aws": "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
    }


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.invalid")
    git(root, "config", "user.name", "Dev")
    git(root, "config", "commit.gpgsign", "false")
    return root


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def repo_with_deleted_secret(root: Path, token: str) -> tuple[Path, str]:
    """A repo where ``token`` was committed in ``config.py`` and deleted by the next commit."""
    repo = make_repo(root)
    (repo / "README.md").write_text("# model training\n")
    (repo / "train.py").write_text("print('training')\n")
    commit_all(repo, "initial")
    (repo / "config.py").write_text(f'MODEL = "bert"\nHF_TOKEN = "{token}"\n')
    leaked = commit_all(repo, "add config")
    (repo / "config.py").write_text('MODEL = "bert"\nHF_TOKEN = os.environ["HF_TOKEN"]\n')
    commit_all(repo, "read the token from the environment")
    return repo, leaked


class TaskLogs:
    """Every log event emitted while active (structlog, all levels), rendered as text lines."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    @property
    def lines(self) -> list[str]:
        out = []
        for e in self.events:
            text = str(e.get("event", ""))
            args = e.get("positional_args")
            if args:
                try:
                    text = text % tuple(args)
                except (TypeError, ValueError):
                    text = f"{text} {args}"
            out.append(f"{text} {e}")
        return out

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def capture_task_logs():
    """Capture task logs of ``dag.test()`` runs: Airflow routes them through structlog, filtered at the
    session's WARNING level (so neither caplog nor stdout sees INFO); lower the filter and capture."""
    import contextlib
    import logging

    import structlog

    @contextlib.contextmanager
    def _capture():
        old = structlog.get_config()
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        logs = TaskLogs()
        try:
            with structlog.testing.capture_logs() as cap:
                yield logs
                logs.events = list(cap)
        finally:
            logs.events = logs.events or []
            structlog.configure(**old)

    return _capture()


# ------------------------------------------------------------------------------- hostile histories
def quote_path(path: bytes) -> bytes:
    """A path in ``git fast-import``'s C-style quoting (any byte except NUL)."""
    out = bytearray(b'"')
    for b in path:
        if b in (0x22, 0x5C):
            out += b"\\" + bytes([b])
        elif 0x20 <= b < 0x7F:
            out.append(b)
        else:
            out += b"\\%03o" % b
    return bytes(out + b'"')


def data_block(content: bytes) -> bytes:
    return b"data %d\n" % len(content) + content + b"\n"


class History:
    """Build a history in one ``git fast-import`` run: commits (with merges), deletions, tags."""

    def __init__(self) -> None:
        self.stream = bytearray()
        self.mark = 0
        self.time = 1_700_000_000

    def commit(
        self,
        ref: bytes,
        message: bytes,
        files: dict[bytes, bytes] | None = None,
        deletes: tuple[bytes, ...] = (),
        parents: tuple[int, ...] = (),
        deleteall: bool = False,
    ) -> int:
        self.mark += 1
        self.time += 60
        s = self.stream
        s += b"commit " + ref + b"\nmark :%d\n" % self.mark
        s += b"committer Dev <dev@example.invalid> %d +0000\n" % self.time
        s += data_block(message)
        if parents:
            s += b"from :%d\n" % parents[0]
            for p in parents[1:]:
                s += b"merge :%d\n" % p
        if deleteall:
            s += b"deleteall\n"
        for path in deletes:
            s += b"D " + quote_path(path) + b"\n"
        for path, content in (files or {}).items():
            s += b"M 100644 inline " + quote_path(path) + b"\n" + data_block(content)
        s += b"\n"
        return self.mark

    def tag(self, name: bytes, target: int, message: bytes) -> None:
        self.time += 60
        self.stream += b"tag " + name + b"\nfrom :%d\n" % target
        self.stream += b"tagger Dev <dev@example.invalid> %d +0000\n" % self.time + data_block(message)

    def write(self, root: Path) -> Path:
        repo = make_repo(root)
        subprocess.run(
            ["git", "-C", str(repo), "fast-import", "--quiet", "--export-marks=" + str(repo / ".git" / "marks")],
            input=bytes(self.stream),
            check=True,
            capture_output=True,
            timeout=60,
        )
        return repo

    @staticmethod
    def marks(repo: Path) -> dict[int, str]:
        out = {}
        for line in (repo / ".git" / "marks").read_text().splitlines():
            mark, sha = line.split()
            out[int(mark[1:])] = sha
        return out

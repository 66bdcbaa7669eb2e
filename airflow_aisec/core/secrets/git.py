"""Read a git repository as DATA for the secrets scan: every object reachable from every ref.

The scanned repository is never configuration. Git runs with a clean environment (no system, global
or XDG configuration, no attributes from outside the repository, no replace objects, no pager, no
prompt, no lazy fetch) and with ``-c`` overrides for every configuration key that names a program,
so nothing the repository's ``.git/config``, ``.gitattributes`` or hooks name is ever executed.
Content is read by object id with ``git cat-file --batch`` (raw bytes: no filters, no textconv, no
diff drivers), trees are parsed from their binary form, and lists come from ``rev-list`` (object ids
only), so no file name, commit message or content line can be mistaken for structure.

No Airflow import here.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

#: ``-c`` overrides: every key that makes git run a program, page, sign, diff externally or fetch.
GIT_OVERRIDES = (
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.hooksPath=/dev/null",
    "core.sshCommand=false",
    "core.askPass=false",
    "core.editor=false",
    "core.gitProxy=false",
    "core.alternateRefsCommand=false",
    "core.attributesFile=/dev/null",
    "core.useReplaceRefs=false",
    "core.commitGraph=false",  # a cache in the repository: a forged parent would skip commits
    "core.untrackedCache=false",
    "core.quotePath=false",
    "sequence.editor=false",
    "credential.helper=",
    "gpg.program=false",
    "gpg.openpgp.program=false",
    "gpg.x509.program=false",
    "gpg.ssh.program=false",
    "gpg.ssh.defaultKeyCommand=false",
    "log.showSignature=false",
    "diff.external=false",
    "protocol.allow=never",
    "uploadpack.packObjectsHook=false",
    "maintenance.auto=false",
    "gc.auto=0",
    "fetch.prune=false",
    "submodule.recurse=false",
)


def git_env() -> dict[str, str]:
    """A clean environment for git: only ``PATH`` from outside, everything else pinned."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(
        {
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": "/nonexistent-aisec-home",
            "XDG_CONFIG_HOME": "/nonexistent-aisec-home/.config",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_SYSTEM": os.devnull,
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PAGER": "cat",
            "PAGER": "cat",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_NO_LAZY_FETCH": "1",
            "GIT_LITERAL_PATHSPECS": "1",
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_ASKPASS": "false",
            "SSH_ASKPASS": "false",
        }
    )
    return env


def _overrides() -> list[str]:
    out: list[str] = []
    for item in GIT_OVERRIDES:
        out += ["-c", item]
    return out


@dataclass
class Repo:
    """A repository opened for reading (``cwd`` is the scanned directory inside it)."""

    cwd: Path
    prefix: str  # path of the scanned directory (or file) relative to the top, "" for the top
    is_file: bool
    hex_len: int = 40
    partial: list[str] = field(default_factory=list)

    def cmd(self, *args: str) -> list[str]:
        return ["git", "--no-pager", *_overrides(), "-C", str(self.cwd), *args]

    def run(self, *args: str, stdin: bytes | None = None, timeout: float = 600) -> bytes:
        try:
            proc = subprocess.run(
                self.cmd(*args),
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                env=git_env(),
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise AisecUndecidableError("history scan needs the `git` executable, which is not installed") from None
        except subprocess.TimeoutExpired:
            raise AisecUndecidableError(f"history scan: `git {args[0]}` timed out after {timeout:.0f} s") from None
        if proc.returncode != 0:
            first = proc.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            why = first[0][:200] if first else f"exit code {proc.returncode}"
            raise AisecUndecidableError(f"history scan: `git {args[0]}` failed: {why}")
        return proc.stdout


def _git_dir_of(where: Path) -> Path | None:
    """The git directory git would discover from ``where`` (a ``.git`` directory or ``gitdir:`` file)."""
    for d in (where, *where.parents):
        dot = d / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            try:
                with open(dot, "rb") as fh:
                    head = fh.read(4096).split(b"\n", 1)[0].strip()
            except OSError:
                return None
            if not head.startswith(b"gitdir:"):
                return None
            return d / os.fsdecode(head[7:].strip())
    return None


def _config_files(git_dir: Path) -> list[Path]:
    files = [git_dir / "config", git_dir / "config.worktree"]
    try:
        with open(git_dir / "commondir", "rb") as fh:
            common = os.fsdecode(fh.read(4096).strip())
        files.append(git_dir / common / "config")
    except OSError:
        pass
    return files


def _includes(config: Path) -> list[Path]:
    """Paths ``config`` includes (``include.path``, ``includeIf.*.path``), read without following them."""
    try:
        proc = subprocess.run(
            [
                "git",
                "config",
                "--no-includes",
                "--file",
                str(config),
                "--null",
                "--get-regexp",
                r"^include(if\..*)?\.path$",
            ],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            cwd="/",
            env=git_env(),
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []  # git itself then fails (or is missing): reported by the first real call
    out = []
    for item in proc.stdout.split(b"\x00"):
        _, _, value = item.partition(b"\n")
        if value and not value.startswith(b"~") and not value.startswith(b"%("):
            out.append(config.parent / os.fsdecode(value))  # an absolute value replaces the parent
    return out


def check_config_files(where: Path) -> None:
    """Refuse a repository whose config (or a file it includes) is not a regular file.

    git opens every included file while setting up, before any ``-c`` override applies: an include of
    a FIFO, a terminal or ``/dev/stdin`` would block every git command (the scan would hang).
    """
    git_dir = _git_dir_of(where)
    if git_dir is None:
        return
    todo, seen = [(f, 0) for f in _config_files(git_dir)], set()
    while todo:
        path, depth = todo.pop()
        if path in seen or depth > 10 or not os.path.lexists(path):
            continue
        seen.add(path)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # a dangling include: git skips it
        if not stat.S_ISREG(mode):
            if depth and os.path.realpath(path) == os.devnull:
                continue
            raise AisecUndecidableError(
                "history scan: the repository's git config is or includes a file that is not a regular file "
                "(FIFO, device, terminal): git would block reading it; refusing to run git on it"
            )
        todo += [(p, depth + 1) for p in _includes(path)]
    common = git_dir
    try:
        with open(git_dir / "commondir", "rb") as fh:
            common = git_dir / os.fsdecode(fh.read(4096).strip())
    except OSError:
        pass
    for top in {git_dir, common}:
        _refuse_special_files(top)


def _refuse_special_files(top: Path) -> None:
    """Every file git may open in its directory (HEAD, refs, packed-refs, alternates, objects …) is regular.

    A FIFO or device there (or a symlink to one) would block git's read of it: the scan would hang.
    Symlinked directories are checked but not descended into (no loop).
    """
    stack = [str(top)]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            continue  # unreadable: git itself fails on it (reported by the first real call)
        for entry in entries:
            try:
                st = os.stat(entry.path)  # follows a symlink: git would open its target
            except OSError:
                continue  # dangling: git treats it as absent
            if stat.S_ISDIR(st.st_mode):
                if not entry.is_symlink():
                    stack.append(entry.path)
            elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                raise AisecUndecidableError(  # a socket (fsmonitor's) cannot be opened: no block
                    "history scan: the repository's git directory holds a FIFO or device "
                    f"({os.path.relpath(entry.path, top)!r}): git would block reading it; refusing to run git on it"
                )


def open_repo(path: Path) -> Repo:
    """Open the repository containing ``path`` and check its history is complete.

    :raises AisecInputError: ``path`` is not inside a git work tree.
    :raises AisecUndecidableError: git missing or failing.
    """
    is_file = path.is_file()
    where = path.parent if is_file else path
    check_config_files(where.absolute())
    probe = Repo(where, "", is_file)
    try:
        inside = probe.run("rev-parse", "--is-inside-work-tree").strip()
    except AisecUndecidableError as exc:
        if "not installed" in str(exc):
            raise
        why = str(exc).partition(" failed: ")[2]
        raise AisecInputError(f"history scan: {str(path)!r} is not inside a git repository ({why})") from None
    if inside != b"true":
        raise AisecInputError(f"history scan: {str(path)!r} is not inside a git work tree")
    # Same decoding as tree entry names (display): a non-UTF-8 directory must still match its entries.
    raw = probe.run("rev-parse", "--show-prefix")
    prefix = display(raw[:-1] if raw.endswith(b"\n") else raw).rstrip("/")
    if _has_config(probe, r"^core\.worktree$"):
        raise AisecUndecidableError(
            f"history scan: the repository of {str(path)!r} sets core.worktree (its history may describe "
            "another directory tree); refusing to guess which history belongs to it"
        )
    # The repository's config can move its work tree (core.worktree): then git's idea of where PATH
    # is would not be the directory we scan, and its history could silently match nothing.
    raw_top = probe.run("rev-parse", "--show-toplevel")
    top = Path(os.fsdecode(raw_top[:-1] if raw_top.endswith(b"\n") else raw_top)).resolve()
    try:
        expected = where.resolve().relative_to(top).as_posix()
    except ValueError:
        expected = None
    if expected is None or display(os.fsencode("" if expected == "." else expected)) != prefix:
        raise AisecUndecidableError(
            f"history scan: git places {str(path)!r} elsewhere in its work tree (core.worktree or a "
            "moved repository); refusing to guess which history belongs to it"
        )
    if is_file:
        name = display(os.fsencode(path.name))
        prefix = f"{prefix}/{name}" if prefix else name
    repo = Repo(where, prefix, is_file)
    fmt = repo.run("rev-parse", "--show-object-format").strip()
    repo.hex_len = {b"sha1": 40, b"sha256": 64}.get(fmt, 0)
    if not repo.hex_len:
        raise AisecUndecidableError(f"history scan: unknown object format {fmt[:20]!r}")
    # Partial history: shallow clone, grafts, replace refs, partial (promisor) clone.
    if repo.run("rev-parse", "--is-shallow-repository").strip() == b"true":
        repo.partial.append("shallow clone (history truncated)")
    raw = repo.run("rev-parse", "--git-path", "info/grafts")
    grafts = where / os.fsdecode(raw[:-1] if raw.endswith(b"\n") else raw)
    if grafts.exists():
        repo.partial.append("info/grafts present (parents rewritten)")
    replace = repo.run("for-each-ref", "--format=%(objectname)", "refs/replace/").split()
    if replace:
        repo.partial.append(f"{len(replace)} replace ref(s) (refs/replace/*) rewrite objects")
    if _has_config(repo):
        repo.partial.append("partial clone (objects may be missing from this repository)")
    return repo


def _has_config(repo: Repo, pattern: str = r"^(extensions\.partialclone|remote\..*\.promisor)$") -> bool:
    """``git config --get-regexp`` exits 1 when nothing matches; tell that apart from a failure."""
    try:
        proc = subprocess.run(
            repo.cmd("config", "--null", "--get-regexp", pattern),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=git_env(),
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AisecUndecidableError(f"history scan: `git config` failed: {type(exc).__name__}") from None
    if proc.returncode not in (0, 1):
        raise AisecUndecidableError(f"history scan: `git config` failed: exit code {proc.returncode}")
    return proc.returncode == 0 and bool(proc.stdout.strip())


class Batch:
    """``git cat-file --batch``, one object at a time (no deadlock, raw bytes)."""

    def __init__(self, repo: Repo) -> None:
        self.proc = subprocess.Popen(
            repo.cmd("cat-file", "--batch"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )

    def get(self, oid: str, max_size: int | None = None) -> tuple[str, bytes | None, int] | None:
        """``(type, content, size)``; ``content`` is ``None`` above ``max_size``; ``None`` if missing."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(oid.encode("ascii") + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline()
        parts = header.split()
        if len(parts) == 2 and parts[1] == b"missing":
            return None
        if len(parts) != 3 or parts[0].decode("ascii", "replace") != oid or not parts[2].isdigit():
            raise AisecUndecidableError(f"history scan: unexpected `git cat-file` output for object {oid[:12]}")
        kind, size = parts[1].decode("ascii", "replace"), int(parts[2])
        data: bytes | None
        if max_size is not None and size > max_size:
            left = size
            while left > 0:
                chunk = self.proc.stdout.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            data, got = None, size - left
        else:
            data = self.proc.stdout.read(size)
            got = len(data)
        if got != size or self.proc.stdout.read(1) != b"\n":
            raise AisecUndecidableError(f"history scan: truncated object {oid[:12]} from `git cat-file`")
        return kind, data, size

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def oid_list(repo: Repo, *args: str) -> list[str]:
    out = repo.run(*args).decode("ascii", "replace").split()
    for oid in out:
        if len(oid) != repo.hex_len or any(c not in "0123456789abcdef" for c in oid):
            raise AisecUndecidableError(f"history scan: unexpected `git {args[0]}` output")
    return out


def refs(repo: Repo) -> list[tuple[str, str, str]]:
    """Every ref ``(oid, type, name)``: branches, tags, remotes, stash, notes … (names are data too)."""
    out = repo.run("for-each-ref", "--format=%(objectname) %(objecttype) %(refname)")
    result = []
    for line in out.splitlines():
        parts = line.split(b" ", 2)
        if len(parts) != 3 or len(parts[0]) != repo.hex_len:
            raise AisecUndecidableError("history scan: unexpected `git for-each-ref` output")
        result.append((parts[0].decode("ascii", "replace"), parts[1].decode("ascii", "replace"), display(parts[2])))
    return result


def display(name: bytes) -> str:
    """A path or ref name as text: UTF-8, other bytes as ``\\xNN`` (never lost, never a surrogate)."""
    return name.decode("utf-8", "backslashreplace")


def tag_target(data: bytes) -> tuple[str, str] | None:
    """``(object, type)`` headers of a raw tag object."""
    obj = kind = None
    for line in data.split(b"\n"):
        if not line:
            break
        if line.startswith(b"object "):
            obj = line[7:].decode("ascii", "replace").strip()
        elif line.startswith(b"type "):
            kind = line[5:].decode("ascii", "replace").strip()
    return (obj, kind) if obj and kind else None


def parse_tree(data: bytes, hex_len: int) -> Iterator[tuple[bytes, bytes, str]]:
    """Entries ``(mode, name, oid)`` of a raw tree object."""
    raw_len = hex_len // 2
    i, n = 0, len(data)
    while i < n:
        sp = data.find(b" ", i)
        nul = data.find(b"\x00", sp + 1) if sp >= 0 else -1
        if sp < 0 or nul < 0 or nul + 1 + raw_len > n:
            raise AisecUndecidableError("history scan: malformed tree object")
        yield data[i:sp], data[sp + 1 : nul], data[nul + 1 : nul + 1 + raw_len].hex()
        i = nul + 1 + raw_len


def _file_type(mode: bytes) -> int:
    """The file-type bits of a tree entry's octal mode, as git reads them (``40755`` is a directory)."""
    if not mode or len(mode) > 7 or any(c not in b"01234567" for c in mode):
        raise AisecUndecidableError("history scan: malformed mode in a tree object")
    return int(mode, 8) & 0o170000


def is_tree(mode: bytes) -> bool:
    """git walks any entry whose mode has the directory type as a tree, not only ``40000``."""
    return _file_type(mode) == stat.S_IFDIR


def is_submodule(mode: bytes) -> bool:
    """Like git (``canon_mode``): an entry neither file, symlink nor directory is a gitlink."""
    return _file_type(mode) not in (stat.S_IFREG, stat.S_IFLNK, stat.S_IFDIR)


def commit_tree(data: bytes) -> str | None:
    """The ``tree`` header of a raw commit object."""
    for line in data.split(b"\n"):
        if not line:
            break
        if line.startswith(b"tree "):
            return line[5:].decode("ascii", "replace").strip()
    return None


def commit_parents(data: bytes) -> list[str]:
    """The ``parent`` headers of a raw commit object."""
    parents = []
    for line in data.split(b"\n"):
        if not line:
            break
        if line.startswith(b"parent "):
            parents.append(line[7:].decode("ascii", "replace").strip())
    return parents


def commit_date(data: bytes) -> str | None:
    """Committer time of a raw commit object as ISO-8601 UTC (None if unparsable)."""
    from datetime import datetime, timezone

    for line in data.split(b"\n"):
        if not line:
            break
        if line.startswith(b"committer "):
            parts = line.rsplit(b" ", 2)
            try:
                return datetime.fromtimestamp(int(parts[-2]), timezone.utc).isoformat().replace("+00:00", "Z")
            except (ValueError, OverflowError, OSError, IndexError):
                return None
    return None

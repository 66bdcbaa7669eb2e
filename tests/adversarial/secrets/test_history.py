"""Git history: machine-readable parsing, everything a clone carries, incomplete history fails closed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from airflow_aisec.core.secrets import scan_secrets
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from tests.adversarial.secrets._common import FIXED, TOKENS, run_cli
from tests.secrets_helpers import History, commit_all, git, make_repo

MAIN = b"refs/heads/main"
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # each example builds a repository
#: Fragments that fool a parser of `git log -p` text: diff headers, quotes, newlines, non-UTF-8 bytes.
TRICKS = [
    b"+++ b/",
    b"--- a/",
    b"diff --git a/x b/x",
    b"\n",
    b'"',
    b"\\",
    b"\t",
    b"\xff",
    b"\xc3(",
    b"@@ -1 +1 @@",
    b" ",
]
NAME_PART = st.one_of(st.sampled_from(TRICKS), st.binary(min_size=1, max_size=6))


def _ok_name(name: bytes) -> bool:
    return b"\x00" not in name and b"/" not in name and name not in (b".", b"..") and name.lower() != b".git"


NAMES = st.lists(NAME_PART, min_size=1, max_size=5).map(b"".join).filter(_ok_name)
HEADER_LINES = st.lists(
    st.sampled_from(
        [b"+++ b/other.py", b"diff --git a/z b/z", b"--- /dev/null", b"@@ -0,0 +1,3 @@", b"+x", b"-y", b"\\ No newline"]
    ),
    max_size=6,
)


def display(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def checkout(repo):
    git(repo, "checkout", "-q", "main")
    return repo


@settings(max_examples=30, phases=NO_SHRINK)
@given(token=TOKENS, name=NAMES, subdir=st.one_of(st.none(), NAMES), headers=HEADER_LINES)
def test_hostile_names_and_diff_lookalike_lines_cannot_hide_a_deleted_token(
    tmp_path_factory, token, name, subdir, headers
):
    path = name if subdir is None else subdir + b"/" + name
    content = b"\n".join([*headers, b'KEY = "' + token.encode() + b'"', *headers]) + b"\n"
    h = History()
    first = h.commit(MAIN, b"init", {b"README": b"hello\n"})
    leak = h.commit(MAIN, b"add config", {path: content}, parents=(first,))
    h.commit(MAIN, b"remove it", deletes=(path,), parents=(leak,))
    repo = checkout(h.write(tmp_path_factory.mktemp("names") / "repo"))
    sha = History.marks(repo)[leak]
    report = scan_secrets(repo, history=True)
    assert report.status == "fail"
    content_hits = [f for f in report.findings if f.details["where"] == "content"]
    assert {f.location for f in content_hits} == {f"{sha[:12]}:{display(path)}:{len(headers) + 1}"}
    assert all(f.details["commit"] == sha and f.details["scope"] == "history" for f in content_hits)


def test_merge_resolution_only_content_is_scanned(tmp_path):
    h = History()
    base = h.commit(MAIN, b"base", {b"app.py": b"x = 1\n"})
    left = h.commit(b"refs/heads/left", b"left", {b"app.py": b"x = 2\n"}, parents=(base,))
    right = h.commit(MAIN, b"right", {b"app.py": b"x = 3\n"}, parents=(base,))
    merge = h.commit(MAIN, b"Merge left", {b"app.py": f'x = "{FIXED["hf"]}"\n'.encode()}, parents=(right, left))
    h.commit(MAIN, b"clean", {b"app.py": b"x = 4\n"}, parents=(merge,))
    repo = checkout(h.write(tmp_path / "repo"))
    git(repo, "branch", "-q", "-D", "left")
    (finding,) = scan_secrets(repo, history=True).findings
    assert finding.details["commit"] == History.marks(repo)[merge]


@pytest.mark.parametrize(
    "where",
    ["commit_message", "tag_message", "note", "stash", "remote_ref", "tagged_blob", "unmerged_branch", "ref_name"],
)
def test_everything_a_clone_carries(tmp_path, where):
    token = FIXED["hf"]
    repo = make_repo(tmp_path / "repo")
    (repo / "README").write_text("hello\n")
    commit_all(repo, "init")
    if where == "commit_message":
        git(repo, "commit", "-q", "--allow-empty", "-m", f"debug: token {token}")
    elif where == "tag_message":
        git(repo, "tag", "-a", "v1", "-m", f"release, HF_TOKEN={token}")
    elif where == "note":
        git(repo, "notes", "add", "-m", f"HF_TOKEN={token}")
    elif where == "stash":
        (repo / "README").write_text(f"HF_TOKEN={token}\n")
        git(repo, "stash", "-q")
    elif where == "remote_ref":
        git(repo, "checkout", "-q", "-b", "tmp")
        (repo / "cfg.py").write_text(f'T = "{token}"\n')
        sha = commit_all(repo, "tmp")
        git(repo, "checkout", "-q", "main")
        git(repo, "branch", "-q", "-D", "tmp")
        git(repo, "update-ref", "refs/remotes/origin/feature", sha)
    elif where == "tagged_blob":
        blob = subprocess.run(
            ["git", "-C", str(repo), "hash-object", "-w", "--stdin"],
            input=f"T={token}\n",
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
        git(repo, "tag", "loose-blob", blob)
    elif where == "unmerged_branch":
        git(repo, "checkout", "-q", "-b", "wip")
        (repo / "cfg.py").write_text(f'T = "{token}"\n')
        commit_all(repo, "wip")
        git(repo, "checkout", "-q", "main")
    elif where == "ref_name":
        git(repo, "branch", f"leak-{token}")
    assert scan_secrets(repo).status == "pass"  # the working tree is clean
    report = scan_secrets(repo, history=True)
    assert report.status == "fail", (where, report.summary)
    assert report.findings and all(f.details["scope"] == "history" for f in report.findings)


@pytest.mark.parametrize("attributes", ["* -diff\n", "* binary\n", "*.py diff=hide\n", "* -text -diff merge=binary\n"])
def test_attributes_cannot_hide_content(tmp_path, attributes):
    repo = make_repo(tmp_path / "repo")
    (repo / ".gitattributes").write_text(attributes)
    (repo / "cfg.py").write_text(f'T = "{FIXED["aws"]}"\n')
    commit_all(repo, "add")
    (repo / "cfg.py").unlink()
    commit_all(repo, "rm")
    report = scan_secrets(repo, history=True)
    assert report.status == "fail" and report.findings[0].details["file"] == "cfg.py"


def _repo_with_history_secret(root):
    repo = make_repo(root)
    (repo / "a.py").write_text(f'T = "{FIXED["hf"]}"\n')
    leaked = commit_all(repo, "leak")
    (repo / "a.py").write_text("T = None\n")
    commit_all(repo, "fix")
    (repo / "b.py").write_text("x = 1\n")
    commit_all(repo, "more")
    return repo, leaked


def test_shallow_clone_fails_closed_unless_accepted(tmp_path, capsys):
    repo, _ = _repo_with_history_secret(tmp_path / "origin")
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True, timeout=60)
    code, data, _ = run_cli(capsys, ["secrets", str(shallow), "--history"])
    assert code == 2 and data["status"] == "error" and "shallow clone" in data["summary"]
    code, data, _ = run_cli(capsys, ["secrets", str(shallow), "--history", "--partial-history"])
    assert code == 0 and data["status"] == "warn"
    assert data["details"]["history_partial"] == ["shallow clone (history truncated)"]
    assert "partial history accepted" in data["summary"]


def test_grafts_fail_closed(tmp_path):
    repo, _ = _repo_with_history_secret(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "grafts").write_text(head + "\n")  # HEAD has no parents any more
    with pytest.raises(AisecUndecidableError, match="info/grafts present"):
        scan_secrets(repo, history=True)


def test_replace_refs_cannot_hide_history(tmp_path):
    repo, leaked = _repo_with_history_secret(tmp_path / "repo")
    clean = git(repo, "commit-tree", "-m", "innocent", git(repo, "rev-parse", "HEAD^{tree}"))
    git(repo, "replace", leaked, clean)  # `git log` now shows the innocent commit instead
    with pytest.raises(AisecUndecidableError, match="replace ref"):
        scan_secrets(repo, history=True)
    report = scan_secrets(repo, history=True, partial_history=True)
    assert report.status == "fail" and report.findings[0].details["commit"] == leaked


def test_partial_clone_fails_closed(tmp_path):
    repo, _ = _repo_with_history_secret(tmp_path / "repo")
    git(repo, "config", "remote.origin.url", "file:///nonexistent")
    git(repo, "config", "remote.origin.promisor", "true")
    with pytest.raises(AisecUndecidableError, match="partial clone"):
        scan_secrets(repo, history=True)


def test_missing_git_and_git_failures_exit_2(tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.mkdir()
    code, data, _ = run_cli(capsys, ["secrets", str(plain), "--history"])
    assert code == 2 and "not inside a git repository" in data["summary"]
    with pytest.raises(AisecInputError, match="not inside a git repository"):
        scan_secrets(plain, history=True)
    repo, leaked = _repo_with_history_secret(tmp_path / "repo")
    obj = repo / ".git" / "objects" / leaked[:2] / leaked[2:]
    os.chmod(obj, 0o644)
    obj.unlink()  # a corrupt repository: a commit is missing
    code, data, _ = run_cli(capsys, ["secrets", str(repo), "--history"])
    assert code == 2 and data["status"] == "error"
    shutil.rmtree(repo / ".git" / "objects")
    code, data, _ = run_cli(capsys, ["secrets", str(repo), "--history"])
    assert code == 2 and data["status"] == "error"


def test_subdirectory_scan_follows_a_directory_moved_into_it(tmp_path):
    h = History()
    a = h.commit(MAIN, b"outside", {b"other/cfg.py": f'T = "{FIXED["aws"]}"\n'.encode()})
    b = h.commit(
        MAIN, b"move", {b"dags/cfg.py": f'T = "{FIXED["aws"]}"\n'.encode()}, deletes=(b"other/cfg.py",), parents=(a,)
    )
    h.commit(MAIN, b"rm", deletes=(b"dags/cfg.py",), files={b"dags/x.py": b"x = 1\n"}, parents=(b,))
    repo = checkout(h.write(tmp_path / "repo"))
    report = scan_secrets(repo / "dags", history=True)
    assert report.status == "fail" and [f.location[13:] for f in report.findings] == ["cfg.py:1"]


def test_submodule_history_is_not_scanned_and_fails_closed(tmp_path, capsys):
    h = History()
    first = h.commit(MAIN, b"init", {b"README": b"hello\n"})
    h.stream += b"commit refs/heads/main\nmark :99\ncommitter Dev <dev@example.invalid> 1700009999 +0000\n"
    h.stream += b"data 3\nsub\nfrom :%d\nM 160000 %s vendored/lib\n\n" % (first, b"1" * 40)
    repo = checkout(h.write(tmp_path / "repo"))
    code, data, _ = run_cli(capsys, ["secrets", str(repo), "--history"])
    assert code == 2 and data["status"] == "error"
    assert [u["reason"] for u in data["details"]["unscanned"]] == ["submodule: its history is another repository"]
    code, data, _ = run_cli(capsys, ["secrets", str(repo), "--history", "--unscanned", "warn"])
    assert code == 0 and data["status"] == "warn" and data["metrics"]["history_unscanned"] == 1


def test_subdirectory_scan_reads_the_messages_of_the_commits_that_changed_it(tmp_path):
    h = History()
    a = h.commit(MAIN, b"init", {b"dags/etl.py": b"x = 1\n", b"other.py": b"y = 1\n"})
    b = h.commit(MAIN, f"tune etl, debug key {FIXED['hf']}".encode(), {b"dags/etl.py": b"x = 2\n"}, parents=(a,))
    h.commit(MAIN, f"other work {FIXED['aws']}".encode(), {b"other.py": b"y = 2\n"}, parents=(b,))
    repo = checkout(h.write(tmp_path / "repo"))
    marks = History.marks(repo)
    sub = scan_secrets(repo / "dags", history=True)
    assert [(f.details["commit"], f.details["where"]) for f in sub.findings] == [(marks[b], "message")]
    whole = scan_secrets(repo, history=True)
    assert sorted(f.details["commit"] for f in whole.findings) == sorted([marks[b], marks[b + 1]])


@pytest.mark.parametrize("depth", [1500])
def test_deep_paths_are_walked_without_a_recursion_limit(tmp_path, depth):
    deep = b"/".join([b"d"] * depth) + b"/cfg.py"
    h = History()
    a = h.commit(MAIN, b"add", {deep: f'T = "{FIXED["hf"]}"\n'.encode()})
    h.commit(MAIN, b"rm", deletes=(deep,), files={b"README": b"x\n"}, parents=(a,))
    repo = checkout(h.write(tmp_path / "repo"))
    report = scan_secrets(repo, history=True)
    assert report.status == "fail" and report.findings[0].details["file"] == deep.decode()


@settings(max_examples=15, phases=NO_SHRINK)
@given(token=TOKENS, subdir=NAMES, as_file=st.booleans())
def test_hostile_subdirectory_names_still_match_their_history(tmp_path_factory, token, subdir, as_file):
    h = History()
    a = h.commit(MAIN, b"add", {subdir + b"/cfg.py": f'T = "{token}"\n'.encode()})
    h.commit(MAIN, b"rm", files={subdir + b"/cfg.py": b"T = None\n"}, parents=(a,))
    repo = checkout(h.write(tmp_path_factory.mktemp("sub") / "repo"))
    target = os.path.join(os.fsencode(repo), subdir) + (b"/cfg.py" if as_file else b"")
    report = scan_secrets(os.fsdecode(target), history=True)
    assert report.status == "fail"
    assert [f.details["commit"] for f in report.findings] == [History.marks(repo)[a]]


@pytest.mark.parametrize("worktree", ["..", "/", "sub"])
def test_core_worktree_in_the_repo_config_cannot_empty_the_history_scan(tmp_path, worktree):
    repo, _ = _repo_with_history_secret(tmp_path / "repo")
    (repo / "sub").mkdir()
    git(repo, "config", "core.worktree", worktree)
    with pytest.raises((AisecUndecidableError, AisecInputError), match="core.worktree|not inside a git repository"):
        scan_secrets(repo, history=True)


def test_oversized_git_objects_are_counted_and_fail_closed(tmp_path, monkeypatch):
    from airflow_aisec.core.secrets import history as core

    repo, _ = _repo_with_history_secret(tmp_path / "repo")
    monkeypatch.setattr(core, "OBJECT_MAX", 64)  # every commit object is "too large" to read
    report = scan_secrets(repo, history=True)
    assert report.status == "error" and report.metrics["history_unscanned"] == 3
    assert {u["reason"] for u in report.details["unscanned"]} == {"commit object larger than 64 bytes"}


@pytest.mark.parametrize("branches", ["deleted", "kept"])
def test_a_detached_head_is_history_even_without_any_ref(tmp_path, branches):
    """A checkout on a detached HEAD (CI checks out a commit, then deletes branches) is history too.

    With no ref at all the history walk used to read zero commits and PASS.
    """
    token = FIXED["hf"]
    repo = make_repo(tmp_path / "repo")
    (repo / "cfg.py").write_text(f'T = "{token}"\n')
    commit_all(repo, "add")
    (repo / "cfg.py").write_text("T = None\n")
    commit_all(repo, "remove")
    git(repo, "checkout", "-q", "--detach")
    if branches == "deleted":
        git(repo, "branch", "-q", "-D", "main")
    report = scan_secrets(repo, history=True)
    assert report.status == "fail", report.summary
    assert report.metrics["commits_scanned"] == 2
    (finding,) = report.findings
    assert finding.details["scope"] == "history"


def _forge_commit_graph(repo, child: str, new_parent: str) -> None:
    """Rewrite ``child``'s first parent in ``.git/objects/info/commit-graph`` (git trusts that cache)."""
    import struct

    git(repo, "commit-graph", "write", "--reachable")
    path = repo / ".git" / "objects" / "info" / "commit-graph"
    data = bytearray(path.read_bytes())
    assert data[:4] == b"CGPH"
    chunks = {}
    for i in range(data[6] + 1):
        off = 8 + 12 * i
        chunks[bytes(data[off : off + 4])] = struct.unpack(">Q", data[off + 4 : off + 12])[0]
    oidl, cdat = chunks[b"OIDL"], chunks[b"CDAT"]
    oids = [data[oidl + 20 * i : oidl + 20 * i + 20].hex() for i in range((cdat - oidl) // 20)]
    struct.pack_into(">I", data, cdat + 36 * oids.index(child) + 20, oids.index(new_parent))
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_a_forged_commit_graph_cannot_hide_a_commit(tmp_path):
    """The commit-graph file is a cache in the repository: a forged parent used to skip a commit."""
    token = FIXED["hf"]
    repo = make_repo(tmp_path / "repo")
    (repo / "README").write_text("hello\n")
    first = commit_all(repo, "init")
    (repo / "cfg.py").write_text(f'T = "{token}"\n')
    commit_all(repo, "add")
    (repo / "cfg.py").unlink()
    last = commit_all(repo, "remove")
    _forge_commit_graph(repo, last, first)
    assert len(git(repo, "rev-list", "--all").split()) == 2  # plain git now skips the middle commit
    report = scan_secrets(repo, history=True)
    assert report.status == "fail", report.summary
    assert report.metrics["commits_scanned"] == 3


@pytest.mark.parametrize("scan_dir", ["", "pkg"])
def test_a_directory_name_is_scanned_when_its_tree_was_already_walked(tmp_path, scan_dir):
    """A copy of a known directory under a token's name reuses its tree: the walk skipped it, name and all."""
    token = FIXED["hf"]
    repo = make_repo(tmp_path / "repo")
    base = repo / scan_dir if scan_dir else repo
    (base / "a").mkdir(parents=True)
    (base / "a" / "x").write_text("hello\n")
    commit_all(repo, "one")
    shutil.copytree(base / "a", base / f"cfg-{token}")
    commit_all(repo, "two")
    shutil.rmtree(base / f"cfg-{token}")
    commit_all(repo, "three")
    assert scan_secrets(base).status == "pass"
    report = scan_secrets(base, history=True)
    assert report.status == "fail", report.summary
    (finding,) = report.findings
    assert finding.details["where"] == "name" and finding.details["scope"] == "history"


@pytest.mark.parametrize("mode", [b"40755", b"40777", b"040644", b"47777"])
def test_a_directory_entry_with_an_unusual_mode_is_still_walked(tmp_path, mode):
    """git reads the type bits of a tree entry's mode: ``40755`` is a directory it checks out and clones.

    Only ``40000`` was walked; any other directory mode hid the whole subtree.
    """
    token = FIXED["hf"]
    repo = make_repo(tmp_path / "repo")
    (repo / "s").mkdir()
    (repo / "s" / "cfg.py").write_text(f'T = "{token}"\n')
    commit_all(repo, "one")
    sub = bytes.fromhex(git(repo, "rev-parse", "HEAD:s"))
    readme = (
        subprocess.run(
            ["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=b"hello\n", capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    raw = b"100644 README\x00" + bytes.fromhex(readme) + mode + b" s\x00" + sub
    tree = (
        subprocess.run(
            ["git", "-C", str(repo), "hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
            input=raw,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    forged = git(repo, "commit-tree", "-m", "forged", tree)
    git(repo, "update-ref", "refs/heads/main", forged)
    assert "s/cfg.py" in git(repo, "ls-tree", "-r", "--name-only", forged)  # git: a directory
    shutil.rmtree(repo / "s")
    git(repo, "reset", "-q", "--soft", forged)
    report = scan_secrets(repo, history=True)
    assert report.status == "fail", report.summary
    assert any(f.details["file"] == "s/cfg.py" for f in report.findings)

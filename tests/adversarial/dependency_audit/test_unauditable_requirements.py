"""Requirement lines the audit cannot vouch for follow one policy: error (exit 2) unless allowed, never a pass.

Kinds: ``editable`` (-e), ``direct-url`` (name @ URL, VCS, paths, archives, wheels by file),
``unpinned`` (ranges, wildcards, bare names, compound specifiers, non-PEP 440 ===), ``option``
(index / find-links / trusted-host options, option lines pip ignores), ``include`` (-r/-c that are
URLs or leave the top-level file's directory). Included files inside it are followed (bounded depth,
cycle-safe). Nothing is executed, fetched, or echoed with its credentials.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli.audit import UNAUDITED_KINDS as CLI_KINDS
from airflow_aisec.core.reqfile import MAX_INCLUDE_DEPTH, UNAUDITED_KINDS
from tests.adversarial.dependency_audit.conftest import run_cli
from tests.osv_helpers import snapshot_path

SECRET = "s3cr3tT0ken"
NAMES = st.from_regex(r"[a-z][a-z0-9]{1,8}(-[a-z0-9]{1,5})?", fullmatch=True)
HOSTS = st.sampled_from(["evil.example", "pypi.internal", "10.0.0.1:8080", "localhost"])


@st.composite
def unauditable(draw: st.DrawFn) -> tuple[str, str]:
    """(kind, requirement line) for one line the audit cannot inspect."""
    name = draw(NAMES)
    host = draw(HOSTS)
    creds = draw(st.sampled_from(["", f"user:{SECRET}@", f"{SECRET}@"]))
    query = draw(st.sampled_from(["", f"?token={SECRET}"]))
    kind = draw(st.sampled_from(["editable", "direct-url", "unpinned", "option", "include"]))
    if kind == "editable":
        target = draw(
            st.sampled_from([".", "./pkg", f"git+https://{creds}{host}/a/{name}.git#egg={name}", f"file:///srv/{name}"])
        )
        line = f"{draw(st.sampled_from(['-e', '--editable']))} {target}"
    elif kind == "direct-url":
        line = draw(
            st.sampled_from(
                [
                    f"{name} @ https://{creds}{host}/{name}-1.0.tar.gz{query}",
                    f"{name}@git+https://{creds}{host}/a/b.git@v1.0",
                    f"git+https://{creds}{host}/a/b.git@main#egg={name}",
                    f"hg+https://{host}/repo#egg={name}",
                    f"./vendor/{name}",
                    f"/opt/wheels/{name.replace('-', '_')}-1.0-py3-none-any.whl",
                    f"{name.replace('-', '_')}-1.0-py3-none-any.whl",
                    f"https://{creds}{host}/{name}-2.0.tar.gz{query}",
                    f"{name} @ file:///opt/{name}",
                ]
            )
        )
    elif kind == "unpinned":
        line = draw(
            st.sampled_from(
                [
                    name,
                    f"{name}>=1.0",
                    f"{name}<=1.0",
                    f"{name}~=1.0",
                    f"{name}!=1.0",
                    f"{name}>1",
                    f"{name}==1.*",
                    f"{name}==1.0,<2",
                    f"{name}>=1,<2",
                    f"{name}===weird-1",
                    f"{name}[extra]",
                    f"{name} ; python_version >= '3'",
                ]
            )
        )
    elif kind == "option":
        line = draw(
            st.sampled_from(
                [
                    f"--index-url https://{creds}{host}/simple",
                    f"-i https://{creds}{host}/simple",
                    f"--extra-index-url=https://{creds}{host}/simple",
                    f"--find-links https://{creds}{host}/wheels",
                    "-f ./wheels",
                    f"--trusted-host {host}",
                    "--hash=sha256:" + "a" * 64,
                ]
            )
        )
    else:
        line = draw(
            st.sampled_from(
                [
                    f"-r https://{creds}{host}/requirements.txt",
                    f"-c https://{creds}{host}/constraints.txt{query}",
                    "-r ../outside.txt",
                    "--requirement ../../outside.txt",
                    "-c /etc/hostname",
                    "-r /etc/passwd",
                ]
            )
        )
    return kind, line


def test_the_cli_offers_exactly_the_core_kinds():
    assert CLI_KINDS == UNAUDITED_KINDS


@settings(max_examples=60)
@given(items=st.lists(unauditable(), min_size=1, max_size=4), vulnerable=st.booleans())
def test_unauditable_lines_are_an_error_unless_allowed(items, vulnerable, tmp_path_factory, capsys):
    root = tmp_path_factory.mktemp("req") / "project"
    root.mkdir()
    (root.parent / "outside.txt").write_text("gratient==0.5\n")  # what an escaping include would find
    lines = ["six==1.16.0", *(line for _, line in items)] + (["gratient==0.5"] if vulnerable else [])
    req = root / "requirements.txt"
    req.write_text("\n".join(lines) + "\n")
    kinds = sorted({kind for kind, _ in items})
    argv = ["audit", "-r", str(req), "--osv-db", str(snapshot_path())]

    code, report = run_cli(capsys, argv)
    assert (code, report["status"]) == (2, "error"), report["summary"]
    for kind in UNAUDITED_KINDS:
        assert report["metrics"][f"unaudited_{kind.replace('-', '_')}"] == sum(1 for k, _ in items if k == kind)
    assert report["metrics"]["unaudited_refused"] == len(items)
    assert all(not i["allowed"] for i in report["details"]["unaudited"])
    assert "sbom" not in report["details"]
    assert SECRET not in json.dumps(report)

    code, report = run_cli(capsys, [*argv, *(a for k in kinds for a in ("--allow-unaudited", k))])
    assert (code, report["status"]) == ((1, "fail") if vulnerable else (0, "warn")), report["summary"]
    assert report["metrics"]["unaudited"] == len(items) and report["metrics"]["unaudited_refused"] == 0
    assert SECRET not in json.dumps(report)

    if len(kinds) > 1:  # allowing some kinds is not allowing all
        code, report = run_cli(capsys, [*argv, "--allow-unaudited", kinds[0]])
        assert (code, report["status"]) == (2, "error")


@settings(max_examples=100)
@given(
    junk=st.lists(
        st.one_of(
            st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=40),
            st.sampled_from(
                ["-e", "-r", "-c", "--", "@", "==", "#", "\\", ";", "[", "${X}", "--hash", "-i", "git+", "http://"]
            ),
            unauditable().map(lambda kl: kl[1]),
        ),
        min_size=1,
        max_size=4,
    ).map(" ".join),
    position=st.sampled_from(["before", "after"]),
)
def test_no_extra_line_turns_a_vulnerable_file_into_a_pass(junk, position, tmp_path_factory, capsys):
    """Whatever one more line says (garbage, continuations, comments, options), gratient 0.5 never passes."""
    root = tmp_path_factory.mktemp("junk")
    lines = [junk, "gratient==0.5"] if position == "before" else ["gratient==0.5", junk]
    req = root / "requirements.txt"
    req.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, report = run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path())])
    assert code in (1, 2), (junk, report["summary"])
    assert report["status"] in ("fail", "error")
    if code == 1:
        assert "PYSEC-2024-1" in {f["id"] for f in report["findings"]}


def test_nothing_is_built_or_executed(tmp_path, capsys):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    marker = tmp_path / "EXECUTED"
    (pkg / "setup.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (pkg / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\n')
    req = tmp_path / "requirements.txt"
    req.write_text("-e ./pkg\n./pkg\npkg @ file://" + str(pkg) + "\n")
    for allow in ([], ["--allow-unaudited", "editable", "--allow-unaudited", "direct-url"]):
        code, report = run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path()), *allow])
        # refused: error; allowed: reported (warn, 3 items), never a pass
        assert (code, report["status"]) == ((0, "warn") if allow else (2, "error"))
        assert report["metrics"]["unaudited"] == 3
        assert not marker.exists()
    req.write_text("-e ./pkg\nsix==1.16.0\n")
    code, report = run_cli(
        capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path()), "--allow-unaudited", "editable"]
    )
    assert (code, report["status"]) == (0, "warn")
    assert not marker.exists()


# -------------------------------------------------------------------------------------- includes
@settings(max_examples=50)
@given(
    n=st.integers(1, 6),
    edges=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.sampled_from(["-r", "-c", "--requirement"]))),
    vulnerable=st.sets(st.integers(0, 5)),
    subdirs=st.booleans(),
)
def test_included_files_are_followed_cycle_safe(n, edges, vulnerable, subdirs, tmp_path_factory, capsys):
    root = tmp_path_factory.mktemp("inc")
    paths = [root / (f"d{i}/f{i}.txt" if subdirs and i else f"f{i}.txt") for i in range(n)]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    body: list[list[str]] = [["six==1.16.0"] for _ in range(n)]
    graph: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b, flag in edges:
        if a < n and b < n:
            body[a].append(f"{flag} {os.path.relpath(paths[b], paths[a].parent)}")
            graph[a].add(b)
    for i in vulnerable:
        if i < n:
            body[i].append("gratient==0.5.0")
    for p, lines in zip(paths, body, strict=True):
        p.write_text("\n".join(lines) + "\n")
    reachable, todo = {0}, [0]
    while todo:
        for b in graph[todo.pop()] - reachable:
            reachable.add(b)
            todo.append(b)
    code, report = run_cli(capsys, ["audit", "-r", str(paths[0]), "--osv-db", str(snapshot_path())])
    expected = 1 if reachable & vulnerable else 0
    assert code == expected, report["summary"]
    assert report["metrics"]["requirement_files"] == len(reachable)


@pytest.mark.parametrize("depth", [MAX_INCLUDE_DEPTH, MAX_INCLUDE_DEPTH + 1])
def test_include_depth_is_bounded(tmp_path, capsys, depth):
    for i in range(depth + 1):
        nxt = f"-r f{i + 1}.txt\n" if i < depth else "gratient==0.5\n"
        (tmp_path / f"f{i}.txt").write_text(nxt)
    code, report = run_cli(capsys, ["audit", "-r", str(tmp_path / "f0.txt"), "--osv-db", str(snapshot_path())])
    if depth <= MAX_INCLUDE_DEPTH:
        assert code == 1
    else:
        assert (code, report["status"]) == (2, "error") and "deeper than" in report["summary"]


def test_special_and_escaping_includes_never_hang_or_leak(tmp_path, capsys):
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("gratient==0.5\n")
    (tmp_path / "link.txt").symlink_to(outside)
    req = tmp_path / "requirements.txt"

    def run(text: str) -> tuple[int, dict]:
        req.write_text(text)
        return run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path())])

    code, report = run("six==1.16.0\n-r fifo.txt\n")
    assert (code, report["status"]) == (2, "error") and "not a regular file" in report["summary"]
    code, report = run("six==1.16.0\n-r link.txt\n")  # a symlink out of the directory is not followed
    assert (code, report["status"]) == (2, "error") and report["metrics"]["unaudited_include"] == 1
    code, report = run("six==1.16.0\n-r missing.txt\n")
    assert (code, report["status"]) == (2, "error") and "missing.txt" in report["summary"]


def test_marker_excluded_lines_are_audited_and_counted(tmp_path, capsys):
    req = tmp_path / "requirements.txt"
    req.write_text(
        'gratient==0.5 ; python_version < "3"\n'
        "six==1.16.0 ; sys_platform == 'nonexistent-os'\n"
        'requests==2.32.3 ; extra == "socks"\n'
    )
    code, report = run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (1, "fail")
    assert report["metrics"]["marker_excluded"] == 3 and report["metrics"]["packages_audited"] == 3
    assert len(report["details"]["requirements"]["marker_excluded"]) == 3


@pytest.mark.parametrize("content", ["", "# only a comment\n", "\n\n", "--pre\n"])
def test_a_source_with_nothing_to_audit_is_an_error(tmp_path, capsys, content):
    req = tmp_path / "requirements.txt"
    req.write_text(content)
    code, report = run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (2, "error") and "nothing to audit" in report["summary"]


def test_harmless_options_are_listed_not_dropped(tmp_path, capsys):
    req = tmp_path / "requirements.txt"
    req.write_text("--require-hashes\n--pre\n--only-binary :all:\nsix==1.16.0 --hash=sha256:" + "a" * 64 + "\n")
    code, report = run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (0, "pass")
    assert report["metrics"]["options_ignored"] == 3
    assert len(report["details"]["requirements"]["options_ignored"]) == 3


def test_lock_entries_without_a_version_are_unversioned(tmp_path, capsys):
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "test"\n\n'
        '[[packages]]\nname = "six"\nversion = "1.16.0"\n\n'
        '[[packages]]\nname = "gratient"\n[packages.directory]\npath = "./gratient"\n'
    )
    code, report = run_cli(capsys, ["audit", "--project", str(tmp_path), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (2, "error") and report["metrics"]["unaudited_unversioned"] == 1
    argv = ["audit", "--project", str(tmp_path), "--osv-db", str(snapshot_path()), "--allow-unaudited", "unversioned"]
    code, report = run_cli(capsys, argv)
    assert (code, report["status"]) == (0, "warn")


@pytest.mark.parametrize("source", ["vcs", "directory", "archive"])
def test_lock_entries_from_direct_references_are_counted(tmp_path, capsys, source):
    table = {
        "vcs": 'type = "git"\nurl = "https://example.com/a.git"\ncommit-id = "' + "a" * 40 + '"',
        "directory": 'path = "./six"',
        "archive": 'url = "https://example.com/six.tar.gz"\nhashes = {sha256 = "' + "b" * 64 + '"}',
    }[source]
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "test"\n\n'
        f'[[packages]]\nname = "six"\nversion = "1.16.0"\n[packages.{source}]\n{table}\n'
    )
    code, report = run_cli(capsys, ["audit", "--project", str(tmp_path), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (2, "error") and report["metrics"]["unaudited_direct_url"] == 1
    argv = ["audit", "--project", str(tmp_path), "--osv-db", str(snapshot_path()), "--allow-unaudited", "direct-url"]
    code, report = run_cli(capsys, argv)
    assert (code, report["status"]) == (0, "warn") and report["metrics"]["packages_audited"] == 1

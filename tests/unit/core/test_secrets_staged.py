"""Secrets in several paths, and in the git index (``aisec secrets --staged``), never the working tree."""

from __future__ import annotations

import json

import pytest

from airflow_aisec.cli import main
from airflow_aisec.core.secrets.staged import scan_secrets_paths, scan_staged
from airflow_aisec.exceptions import AisecInputError
from tests.secrets_helpers import commit_all, fake_tokens, git, make_repo


@pytest.fixture
def repo(tmp_path):
    r = make_repo(tmp_path / "repo")
    (r / "README.md").write_text("# project\n")
    commit_all(r, "initial")
    return r


def _types(report):
    return sorted((f.details["file"], f.details["line"]) for f in report.findings)


def test_several_paths_merge_into_one_report(tmp_path):
    tokens = fake_tokens()
    (tmp_path / "a.py").write_text(f'T = "{tokens["hf"]}"\n')
    (tmp_path / "b.py").write_text("clean = True\n")
    (tmp_path / "c.py").write_text(f'\nK = "{tokens["openai"]}"\n')
    report = scan_secrets_paths([tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"])
    assert report.status == "fail"
    assert _types(report) == [("a.py", 1), ("c.py", 2)]
    assert report.metrics["files_scanned"] == 3
    assert [p["status"] for p in report.details["paths"]] == ["fail", "pass", "fail"]
    clean = scan_secrets_paths([tmp_path / "b.py", tmp_path / "b.py"])
    assert clean.status == "pass"
    with pytest.raises(AisecInputError, match="does not exist"):
        scan_secrets_paths([tmp_path / "b.py", tmp_path / "missing.py"])
    with pytest.raises(AisecInputError, match="at least one path"):
        scan_secrets_paths([])


def test_staged_sees_the_index_not_the_working_tree(repo):
    tokens = fake_tokens()
    # only in the working tree (never staged): not reported
    (repo / "wip.py").write_text(f'T = "{tokens["hf"]}"\n')
    # staged, then removed from the working tree: reported
    (repo / "sub").mkdir()
    (repo / "sub" / "conf.py").write_text(f'\n\nK = "{tokens["openai"]}"\n')
    git(repo, "add", "sub/conf.py")
    (repo / "sub" / "conf.py").write_text("K = os.environ['K']\n")
    report = scan_staged(cwd=repo)
    assert report.status == "fail"
    assert _types(report) == [("sub/conf.py", 3)]
    assert report.subject.endswith("(staged)")
    assert report.details["staged"]["files"] == 1
    text = json.dumps(report.to_dict())
    assert tokens["openai"] not in text and "aisec-staged-" not in text
    # restricted to other paths: nothing staged there
    assert scan_staged(["README.md", "wip.py"], cwd=repo).status == "pass"
    assert scan_staged([str(repo / "sub")], cwd=repo).status == "fail"
    # unstage: clean again
    git(repo, "reset", "-q", "sub/conf.py")
    assert scan_staged(cwd=repo).status == "pass"


def test_staged_oversized_blob_is_listed_not_read(repo):
    tokens = fake_tokens()
    (repo / "big.txt").write_text("x" * 5000 + f'\nT = "{tokens["hf"]}"\n')
    git(repo, "add", "big.txt")
    report = scan_staged(cwd=repo, max_file_bytes=1000, unscanned="warn")
    assert report.status == "warn" and not report.findings
    assert "NOT scanned" in report.summary
    assert scan_staged(cwd=repo, max_file_bytes=1000).status == "error"


def test_staged_errors(tmp_path, repo):
    (tmp_path / "plain").mkdir()
    with pytest.raises(AisecInputError, match="not inside a git work tree"):
        scan_staged(cwd=tmp_path / "plain")
    with pytest.raises(AisecInputError, match="--history"):
        scan_staged(cwd=repo, history=True)
    with pytest.raises(AisecInputError, match="outside the repository"):
        scan_staged([str(tmp_path / "plain")], cwd=repo)


def test_cli_staged_and_many_paths(repo, capsys, monkeypatch):
    tokens = fake_tokens()
    (repo / "a.py").write_text(f'T = "{tokens["aws"]}"\n')
    (repo / "b.py").write_text("ok = 1\n")
    monkeypatch.chdir(repo)
    assert main(["secrets", "a.py", "b.py", "--format", "json"]) == 1
    assert main(["secrets", "--staged", "a.py", "b.py", "--format", "json"]) == 0
    git(repo, "add", "a.py")
    assert main(["secrets", "--staged", "--format", "sarif"]) == 1
    capsys.readouterr()
    assert main(["secrets", "--format", "json"]) == 2
    out = capsys.readouterr()
    assert "at least one PATH" in out.err
    assert tokens["aws"] not in out.out + out.err

"""A scanned repository is data, never configuration: nothing it names is ever executed."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from airflow_aisec.core.secrets import scan_secrets
from tests.adversarial.secrets._common import FIXED, run_cli
from tests.secrets_helpers import commit_all, git, make_repo

#: Every configuration key that names a program git may run (value: the hostile program).
PROGRAM_KEYS = [
    "core.fsmonitor",
    "core.pager",
    "pager.log",
    "pager.cat-file",
    "pager.rev-list",
    "pager.for-each-ref",
    "core.sshCommand",
    "core.askPass",
    "core.editor",
    "core.gitProxy",
    "core.alternateRefsCommand",
    "sequence.editor",
    "credential.helper",
    "gpg.program",
    "gpg.openpgp.program",
    "gpg.x509.program",
    "gpg.ssh.program",
    "gpg.ssh.defaultKeyCommand",
    "diff.external",
    "diff.evil.command",
    "diff.evil.textconv",
    "filter.evil.clean",
    "filter.evil.smudge",
    "filter.evil.process",
    "uploadpack.packObjectsHook",
    "remote.origin.uploadpack",
    "alias.log",
]
HOOKS = [
    "post-checkout",
    "reference-transaction",
    "post-index-change",
    "pre-auto-gc",
    "post-rewrite",
    "fsmonitor-watchman",
]


def _evil_program(tmp_path, marker_dir):
    script = tmp_path / "evil.sh"
    script.write_text(f'#!/bin/sh\ntouch "{marker_dir}/ran-$$"\ncat\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def _hostile_repo(tmp_path, *, via_include: bool):
    markers = tmp_path / "markers"
    markers.mkdir()
    evil = _evil_program(tmp_path, markers)
    repo = make_repo(tmp_path / "repo")
    (repo / ".gitattributes").write_text("* diff=evil filter=evil merge=evil text\n*.py -diff binary\n")
    (repo / "cfg.py").write_text(f'T = "{FIXED["hf"]}"\n')
    commit_all(repo, "leak")
    (repo / "cfg.py").write_text("T = None\n")
    commit_all(repo, "fix")
    # a fake signature header: `git log --show-signature` would run gpg.program on it
    signed = (
        subprocess.run(
            ["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin", "--literally"],
            input=(
                f"tree {git(repo, 'rev-parse', 'HEAD^{tree}')}\nparent {git(repo, 'rev-parse', 'HEAD')}\n"
                "author Dev <dev@example.invalid> 1700000000 +0000\ncommitter Dev <dev@example.invalid> 1700000000 +0000\n"
                "gpgsig -----BEGIN PGP SIGNATURE-----\n \n AAAA\n -----END PGP SIGNATURE-----\n\nsigned\n"
            ).encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    git(repo, "update-ref", "refs/heads/main", signed)
    settings = [f"{key}={evil}" for key in PROGRAM_KEYS] + [
        "log.showSignature=true",
        "core.hooksPath=" + str(tmp_path / "hooks"),
        "diff.evil.binary=false",
        "filter.evil.required=true",
        "core.useReplaceRefs=true",
        "log.diffMerges=off",
    ]
    (tmp_path / "hooks").mkdir()
    for hook in HOOKS:
        os.symlink(evil, tmp_path / "hooks" / hook)
        os.symlink(evil, repo / ".git" / "hooks" / hook)
    target = tmp_path / "included.cfg" if via_include else repo / ".git" / "config"
    lines = []
    for item in settings:
        key, _, value = item.partition("=")
        section, _, name = key.rpartition(".")
        if section.count(".") == 1:
            head, sub = section.split(".")
            lines.append(f'[{head} "{sub}"]\n\t{name} = {value}\n')
        else:
            lines.append(f"[{section}]\n\t{name} = {value}\n")
    with open(target, "a") as fh:
        fh.writelines(lines)
    if via_include:
        git(repo, "config", "include.path", str(target))
    return repo, markers


@pytest.mark.parametrize("via_include", [False, True], ids=["config", "include"])
def test_hostile_repository_config_runs_nothing(tmp_path, capsys, monkeypatch, via_include):
    repo, markers = _hostile_repo(tmp_path, via_include=via_include)
    # the invoking environment is hostile too: none of it may reach git
    evil = str(tmp_path / "evil.sh")
    for var in ("GIT_EXTERNAL_DIFF", "GIT_PAGER", "PAGER", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_EDITOR"):
        monkeypatch.setenv(var, evil)
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.fsmonitor={evil}'")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    code, data, _ = run_cli(capsys, ["secrets", str(repo), "--history"])
    assert sorted(p.name for p in markers.iterdir()) == []  # nothing ran
    assert code == 1 and data["status"] == "fail"
    assert [f["details"]["file"] for f in data["findings"]] == ["cfg.py"]


def test_the_repo_config_is_still_honoured_by_plain_git_here(tmp_path):
    """Control: the hostile repository is really hostile (plain git runs its programs)."""
    repo, markers = _hostile_repo(tmp_path, via_include=False)
    subprocess.run(["git", "-C", str(repo), "log", "-p", "-1"], capture_output=True, timeout=60, check=False)
    assert list(markers.iterdir())


def test_clean_git_environment_ignores_the_users_global_config(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    evil = _evil_program(tmp_path, markers)
    (home / ".gitconfig").write_text(f"[core]\n\tfsmonitor = {evil}\n\tpager = {evil}\n[log]\n\tshowSignature = true\n")
    repo = make_repo(tmp_path / "repo")
    (repo / "a.py").write_text("x = 1\n")
    commit_all(repo, "init")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    assert scan_secrets(repo, history=True).status == "pass"
    assert not list(markers.iterdir())


@pytest.mark.parametrize(
    "how",
    [
        "include",
        "nested_include",
        "symlink_include",
        "includeif",
        "config_itself",
        "objects/info/alternates",
        "packed-refs",
        "refs/heads/zz",
        "HEAD",
    ],
)
def test_a_fifo_git_would_read_fails_closed_without_hanging(tmp_path, how):
    """git reads every included file before any ``-c`` override: a FIFO there blocked every git call."""
    from tests.adversarial.secrets._common import run_cli_subprocess

    repo = make_repo(tmp_path / "repo")
    (repo / "README").write_text("hello\n")
    commit_all(repo, "init")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    config = repo / ".git" / "config"
    if how == "include":
        git(repo, "config", "include.path", str(fifo))
    elif how == "nested_include":
        (tmp_path / "inner.cfg").write_text("[include]\n\tpath = pipe\n")
        git(repo, "config", "include.path", "../../inner.cfg")
    elif how == "symlink_include":
        os.symlink(fifo, repo / ".git" / "extra.cfg")
        git(repo, "config", "include.path", "extra.cfg")
    elif how == "includeif":
        git(repo, "config", f"includeIf.gitdir:{repo}/.path", str(fifo))
    elif how == "config_itself":
        config.rename(tmp_path / "config.real")
        os.mkfifo(config)
    else:  # any file git opens in its directory
        target = repo / ".git" / how
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        os.mkfifo(target)
    proc = run_cli_subprocess(["secrets", str(repo), "--history"], timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "git would block reading it" in proc.stderr

"""Every ``aisec`` subcommand and option is documented in ``--help``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from airflow_aisec import __version__
from airflow_aisec.cli import COMMAND_CHECKS, build_parser, main


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


PARSERS = dict(_walk(build_parser(), ("aisec",)))


def test_every_command_is_walked():
    assert {p.split()[1] for p in PARSERS if " " in p} == set(COMMAND_CHECKS)


@pytest.mark.parametrize("path", sorted(PARSERS))
def test_every_command_has_a_description_with_exit_codes(path):
    description = PARSERS[path].description or ""
    assert len(description) > 30, f"{path}: no description"
    assert re.search(r"\bexit\b", description, re.IGNORECASE), f"{path}: description does not give exit codes"


@pytest.mark.parametrize("path", sorted(PARSERS))
def test_every_option_and_argument_has_help(path):
    for action in PARSERS[path]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help != argparse.SUPPRESS, f"{path} {name}: no help"


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"airflow-aisec {__version__}"


def test_command_modules_name_the_module_that_registers_each_command():
    """A run builds only its command's module parser: the map must name exactly the registering module,
    and that parser must be the one the full build gives (same options)."""
    from airflow_aisec.cli import COMMAND_MODULES

    assert set(COMMAND_MODULES) == set(COMMAND_CHECKS)
    for command, module in COMMAND_MODULES.items():
        lazy = dict(_walk(build_parser(command), ("aisec",)))
        assert f"aisec {command}" in lazy, f"{command} is not registered by cli/{module}.py"
        for path, sub in lazy.items():
            if path == "aisec":
                continue
            assert sorted(map(str, (a.option_strings for a in sub._actions))) == sorted(
                map(str, (a.option_strings for a in PARSERS[path]._actions))
            ), path


def test_a_run_builds_only_its_command_parser(monkeypatch, capsys):
    import importlib

    from airflow_aisec import cli

    imported = []
    real = importlib.import_module
    monkeypatch.setattr(cli.importlib, "import_module", lambda name: imported.append(name) or real(name))
    assert main(["keygen", "--help"]) == 0
    assert imported == ["airflow_aisec.cli.integrity"] and "keygen" in capsys.readouterr().out

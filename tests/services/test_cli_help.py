"""The words of the `theater` command (issue: help text in English while the
output is Korean). One language for a Korean class: every option's help is
Korean (flag names stay English), says its default when it has one, and
names what really runs (Granian, not uvicorn)."""

from __future__ import annotations

import argparse
import importlib
import re

import pytest

from services import cli, local

HANGUL = re.compile(r"[\uac00-\ud7a3]")
# `theater tools` and `theater sim` parse their options in sim/ (another lane): not covered here.
COMMANDS = ["local", "render", "doctor", "verify", "load"]


def parser_of(command: str) -> argparse.ArgumentParser:
    if command == "local":
        return next(a for a in cli.build_parser()._subparsers._group_actions[0].choices.values()
                    if a.prog.endswith(" local"))
    if command == "render":
        return importlib.import_module("infra.render").build_parser()
    return cli.checklist_parser(command)


def options(command: str) -> list[argparse.Action]:
    return [a for a in parser_of(command)._actions if a.option_strings and a.dest != "help"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_korean_help(command: str) -> None:
    for action in options(command):
        assert action.help and HANGUL.search(action.help), f"theater {command} {action.option_strings[0]}: {action.help!r}"
    assert HANGUL.search(parser_of(command).description or ""), f"theater {command}: description"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_default_is_shown(command: str) -> None:
    for action in options(command):
        if action.default in (None, False, [], argparse.SUPPRESS) or isinstance(action, argparse._StoreTrueAction):
            continue
        assert "기본" in action.help, f"theater {command} {action.option_strings[0]} has default {action.default!r}: {action.help!r}"


def test_the_top_level_help_is_korean(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    assert HANGUL.search(parser.description)
    for action in parser._subparsers._group_actions[0]._choices_actions:
        assert HANGUL.search(action.help), action.dest


def test_log_level_names_granian_and_takes_only_its_levels(capsys: pytest.CaptureFixture[str]) -> None:
    level = next(a for a in options("local") if a.dest == "log_level")
    assert "Granian" in level.help and "uvicorn" not in level.help
    assert "warning" in level.choices and "debug" in level.choices
    with pytest.raises(SystemExit) as exit_:
        local.main(["--log-level", "loud"])
    assert exit_.value.code == 2 and "loud" in capsys.readouterr().err


def test_ready_timeout_and_quiet() -> None:
    ready = next(a for a in options("local") if a.dest == "ready_timeout")
    assert "30" in ready.help and "기본" in ready.help
    quiet = next(a for a in options("render") if a.dest == "quiet")
    assert quiet.help and HANGUL.search(quiet.help)

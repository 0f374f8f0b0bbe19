"""Every command's `--help` says what it does and lists the variables it uses; each listed variable is one the
tracker reads, and each one it reads is listed by some command."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping

import pytest

from tracker.cli.commands import COMMAND_VARIABLES
from tracker.cli.parser import build_parser
from tracker.settings import VARIABLES, Settings


class RecordingEnvironment(Mapping[str, str]):
    """An empty environment that remembers every name asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subcommands,) = (action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return dict(subcommands.choices)


def test_every_command_has_its_list_of_variables() -> None:
    assert sorted(commands()) == sorted(COMMAND_VARIABLES)


@pytest.mark.parametrize("name", sorted(COMMAND_VARIABLES))
def test_a_commands_help_describes_it_and_lists_its_variables_with_their_meaning(name: str) -> None:
    command = commands()[name]
    assert command.description is not None
    assert len(command.description.split()) >= 10  # a sentence or more, not a restated name
    shown = command.format_help()
    assert command.description in shown
    environment = shown[shown.index("\nenvironment:\n") :]
    for variable in COMMAND_VARIABLES[name]:
        line = next((line for line in environment.splitlines() if line.split()[:1] == [variable]), None)
        assert line is not None, f"tracker {name} --help does not list {variable}"
        assert VARIABLES[variable].split()[0] in line.split()[1:]  # its meaning beside it


def test_the_variables_named_are_those_the_tracker_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = RecordingEnvironment()
    Settings.from_env(environment)
    monkeypatch.setenv("TRACKER_LOG_FORMAT", "text")
    monkeypatch.setenv("TRACKER_LOG_LEVEL", "debug")
    logging_defaults = commands()["migrate"].parse_args([])
    assert (logging_defaults.log_format, logging_defaults.log_level) == ("text", "debug")

    assert environment.asked >= {"TRACKER_DATABASE_URL", "TRACKER_WEBHOOK_SECRET"}  # the recording works
    assert sorted(VARIABLES) == sorted(environment.asked | {"TRACKER_LOG_FORMAT", "TRACKER_LOG_LEVEL"})


def test_every_variable_is_listed_by_some_command() -> None:
    listed = {variable for variables in COMMAND_VARIABLES.values() for variable in variables}
    assert sorted(listed) == sorted(VARIABLES)

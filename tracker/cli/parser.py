"""The `tracker` command line, built from the commands' declarations (`tracker/cli/commands.py`)."""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import NoReturn

from tracker.cli.commands import COMMANDS, Command
from tracker.log_format import FORMATS, LEVELS, default_format
from tracker.settings import VARIABLES

HELP_WIDTH = 100
"""Columns of a command's description and list of variables in `--help`."""
DESCRIPTION = "The `tracker` command: serve, consume, project, migrate, rebuild, import, status."


class OneLineErrors(argparse.ArgumentParser):
    """A bad flag is one line naming it, like a bad variable, not argparse's usage block first."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def environment_help(command: Command) -> str:
    """The `--help` epilog of `command`: each variable it uses, with what it sets."""
    column = max(map(len, command.variables)) + 2
    lines = ["environment:"]
    for name in command.variables:
        lines += textwrap.wrap(
            VARIABLES[name],
            HELP_WIDTH,
            initial_indent=f"  {name:<{column}}",
            subsequent_indent=" " * (column + 2),
            break_on_hyphens=False,
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="tracker",
        description=DESCRIPTION,
        epilog="Each command's --help lists the environment variables it uses. A malformed TRACKER_ variable"
        " stops every command, also one that does not use it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrors)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=textwrap.fill(command.description, HELP_WIDTH),
            epilog=environment_help(command),
            formatter_class=argparse.RawDescriptionHelpFormatter,  # the list of variables keeps its columns
        )
        command.arguments(sub)
        _log_options(sub)  # every command logs alike
    return parser


def _log_options(command: argparse.ArgumentParser) -> None:
    """--log-format and --log-level; their defaults come from the environment, which `serve` passes on to
    its `tracker project` child, so both processes log alike."""
    command.add_argument(
        "--log-format",
        choices=FORMATS,
        default=os.environ.get("TRACKER_LOG_FORMAT") or default_format(),
        help="one JSON object per line, or text for people (default: $TRACKER_LOG_FORMAT, else text on a"
        " terminal and json otherwise)",
    )
    command.add_argument(
        "--log-level",
        choices=LEVELS,
        default=os.environ.get("TRACKER_LOG_LEVEL") or "info",
        help="the least severe records written (default: $TRACKER_LOG_LEVEL, else info; debug adds a line per"
        " stored notification)",
    )

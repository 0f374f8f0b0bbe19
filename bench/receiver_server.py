"""What the webhook scenario's baseline receivers share: one route, their command line, uvloop and the
collector's thresholds."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import uvloop
from aiohttp import web

from bench.children import LOOPBACK
from tracker.collector import tune_collector

Resources = Callable[[str, int, web.Application], AsyncIterator[None]]
"""Opens what the handler needs (a pool, an application) for the app's life: `(url, pool_size, app)`."""


def serve(
    prog: str,
    description: str | None,
    receive: Callable[[web.Request], Awaitable[web.StreamResponse]],
    resources: Resources | None = None,
    pool_help: str = "",
) -> None:
    """Serve `receive` on `--port`; with `resources`, also take `--database-url` and `--pool-size` for them."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--port", type=int, required=True)
    if resources is not None:
        parser.add_argument("--database-url", required=True)
        parser.add_argument("--pool-size", type=int, default=10, help=pool_help)
    args = parser.parse_args()
    app = web.Application(client_max_size=1024 * 1024)
    if resources is not None:
        app.cleanup_ctx.append(partial(resources, args.database_url, args.pool_size))
    app.router.add_post("/webhooks/ampersand", receive)
    # uvloop and the collector's thresholds, as `tracker serve` has them: the ratios compare handlers.
    tune_collector()
    loop = uvloop.new_event_loop()
    web.run_app(app, host=LOOPBACK, port=args.port, access_log=None, print=None, loop=loop)

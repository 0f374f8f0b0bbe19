"""The HTTP ceiling: an aiohttp handler that reads the body and answers 200, nothing else.

Run like the tracker (the default asyncio loop, no access log), so the gap between the two is the
tracker's own work.

    python -m bench.empty_receiver --port PORT
"""

from __future__ import annotations

import argparse

import uvloop
from aiohttp import web

from bench.children import LOOPBACK
from tracker.collector import tune_collector

_ANSWER = b'{"duplicate":false,"position":0}'


async def receive(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_ANSWER, content_type="application/json")


def create_app() -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/webhooks/ampersand", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.empty_receiver", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # uvloop and the collector's thresholds, as `tracker serve` has them: the ratios compare handlers.
    tune_collector()
    loop = uvloop.new_event_loop()
    web.run_app(create_app(), host=LOOPBACK, port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()

"""The HTTP ceiling: an aiohttp handler that reads the body and answers 200, nothing else.

Run like the tracker (uvloop, its collector's thresholds, no access log), so the gap between the two is
the tracker's own work.

    python -m bench.empty_receiver --port PORT
"""

from __future__ import annotations

from aiohttp import web

from bench.receiver_server import serve

_ANSWER = b'{"duplicate":false,"position":0}'


async def receive(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_ANSWER, content_type="application/json")


def main() -> None:
    serve("python -m bench.empty_receiver", __doc__, receive)


if __name__ == "__main__":
    main()

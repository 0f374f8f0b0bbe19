"""A receiver of alerts on loopback: it records each request and answers as the test scripts it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    def verified(self, secret: str) -> Any:
        """The body, once the Standard Webhooks library has checked its signature (raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """Answers 200 unless `script` holds (status, headers) answers to give first, in order."""

    received: list[Received] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        status, headers = self.script.popleft() if self.script else (200, {})
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no " * 1000)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server(access_log=None)  # its log is not the tracker's

    def url(self, name: str = "alerts") -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/hooks/{name}"

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

"""The alerts drill's receiver: the subscriber's end, refusing, then answering 503, then taking alerts.

It runs in the drill's own process (aiohttp on loopback), checks each request's Standard Webhooks signature
with `standardwebhooks`, notes its `webhook-id`, the transition it tells of and what it answered, and can
hold one answer while the drill kills the delivering process.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.children import LOOPBACK

REFUSING, UNAVAILABLE, UP = "refusing", "unavailable", "up"
Key = tuple[str, str, str, str]
"""(transition, entity, entity id, code): one issue transition, as its row says and as an alert tells it."""


@dataclass(frozen=True, slots=True)
class Heard:
    """One request the receiver took."""

    at: float
    """time.monotonic() when it was read."""
    webhook_id: str
    key: Key | None
    """None: its signature did not verify."""
    body: bytes
    status: int
    """What the receiver answered."""


class Receiver:
    """The subscriber's end, on a loopback port bound from the start: refusing connections until `listen`,
    then answering as `mode` says (503, or 200 to a request whose signature verifies, 400 otherwise)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.secret = ""
        self.mode = REFUSING
        self.heard: list[Heard] = []
        self.taken: set[str] = set()
        """Webhook-ids answered 200."""
        self.hold: Callable[[], Awaitable[None]] | None = None
        """Run once, before answering the request that brings `taken` to `hold_at`."""
        self.hold_at = math.inf
        self.held: Heard | None = None
        self.holding: asyncio.Task[None] | None = None
        self.holds = asyncio.Event()
        """Set once `hold` has started."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((LOOPBACK, port))  # bound, never listening until `listen`: connections are refused
        self._runner: web.AppRunner | None = None

    @property
    def prefix(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def url(self) -> str:
        return f"{self.prefix}hooks/drill"

    async def listen(self, mode: str) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()
        self.mode = mode

    async def close(self) -> None:
        if self.holding is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.holding
        if self._runner is not None:
            await self._runner.cleanup()
        self._socket.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            doc = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            doc = None
        key = None if doc is None else transition_key(doc)
        status = 503 if self.mode == UNAVAILABLE else 200 if key is not None else 400
        heard = Heard(time.monotonic(), request.headers.get("webhook-id", ""), key, body, status)
        self.heard.append(heard)
        if status != 200:
            return web.Response(status=status, headers={"Retry-After": "1"} if status == 503 else None)
        self.taken.add(heard.webhook_id)
        if self.hold is not None and self.held is None and len(self.taken) >= self.hold_at:
            self.held = heard
            self.holding = asyncio.create_task(self.hold())
            self.holds.set()
            with contextlib.suppress(Exception):  # the drill awaits `holding` itself, and fails on its error
                await asyncio.shield(self.holding)
        return web.Response(text="ok")


def transition_key(doc: Any) -> Key:
    """The transition an alert tells of: `issue.opened` about connection X's `connection_error`, say."""
    issue = doc.get("data", {}).get("issue", {}) if isinstance(doc, dict) else {}
    kind = str(doc.get("type", "")) if isinstance(doc, dict) else ""
    return kind.removeprefix("issue."), str(issue.get("entity")), str(issue.get("entityId")), str(issue.get("code"))

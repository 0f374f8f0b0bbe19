"""Posting an alert to its subscriber's URL, guarded like a config fetch: https to public addresses only
(unless a `TRACKER_ALERT_URL_ALLOW` prefix exempts the URL), redirects never followed, a deadline on the
whole request, and at most 1 KB of the answer kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from tracker.alerting.policy import parse_retry_after
from tracker.ingest.url_guard import (
    ConfigFetchError,
    ConfigRefusedError,
    GuardedResolver,
    HostResolver,
    check_url,
    resolve_host,
)

REFUSED = "the URL is refused: only https to public addresses, unless TRACKER_ALERT_URL_ALLOW allows it"
RESPONSE_KEPT = 1024
"""Bytes of an answer kept with its attempt: enough to read an error, never a whole page."""


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    status: int | None
    error: str | None
    retry_after: float | None
    response: str | None
    duration_ms: int

    def record(self) -> dict[str, Any]:
        """The attempt as `GET /v1/alerts/deliveries` lists it."""
        return {"at": self.at.isoformat(), "statusCode": self.status, "error": self.error,
                "durationMs": self.duration_ms, "response": self.response}  # fmt: skip


class Sender:
    def __init__(self, allow: tuple[str, ...], timeout: float, resolve: HostResolver = resolve_host) -> None:
        self.allow = allow
        self._timeout = timeout
        self._resolve = resolve
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        """One session (and its keep-alive connections) for guarded URLs, one for allowed ones."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        at = datetime.now(UTC)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        response: str | None = None
        try:
            target, allowed = check_url(url, self.allow)
        except ConfigRefusedError:  # its message names the URL, whose path may be the credential (Slack's)
            return Attempt(at, None, REFUSED, None, None, 0)
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session(allowed).post(target, data=body, headers=dict(headers), allow_redirects=False) as answer,
            ):
                status = answer.status
                retry_after = parse_retry_after(answer.headers.get("Retry-After"))
                kept = await answer.content.read(RESPONSE_KEPT)
                response = kept.decode("utf-8", "replace") or None
                if 300 <= status < 400:
                    error = "redirects are not followed"
        except TimeoutError:
            error = f"timeout after {self._timeout:g} s"
        except ConfigFetchError as exc:  # refused by the guard, or the name did not resolve
            error = str(exc)
        except aiohttp.ClientConnectorError as exc:
            error = f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or type(exc.os_error).__name__}"
        except aiohttp.ClientError as exc:
            error = f"request failed: {type(exc).__name__}"
        return Attempt(at, status, error, retry_after, response, int((time.monotonic() - started) * 1000))

    def _session(self, allowed: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(allowed)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._resolve, enforce=not allowed),
                                             use_dns_cache=False, limit=100)  # fmt: skip
            session = aiohttp.ClientSession(connector=connector, trust_env=False)  # no proxy from the environment
            self._sessions[allowed] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

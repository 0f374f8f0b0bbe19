"""Checks every route shares: what PostgreSQL cannot take as text, and a database that cannot be reached."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tracker.api.responses import error_response
from tracker.api.routing import Declared, route_of
from tracker.store.errors import UNAVAILABLE_ERRORS, StoreUnavailableError

log = logging.getLogger(__name__)
_UNAVAILABLE: tuple[type[BaseException], ...] = (StoreUnavailableError, *UNAVAILABLE_ERRORS)


@web.middleware
async def refuse_nul(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A NUL in a path segment or a query value would reach SQL as text and fail there, as a 500."""
    values = (*request.match_info.values(), *request.query.values(), *request.query.keys())
    if any("\x00" in value for value in values):
        return error_response(400, "the path or the query contains a NUL character (%00)")
    return await handler(request)


def refuse_nul_in_bodies(declared: Declared) -> Middleware:
    """A NUL in the JSON body of a route that stores what it is given (an operator's note, a subscription)
    would fail in PostgreSQL's jsonb, as a 500. The webhook is not one of them: it keeps what it refuses."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request, declared)
        if route is not None and route.body is not None and route.access.changes and has_nul(await request.read()):
            return error_response(400, "the body contains a NUL character (\\u0000), which cannot be stored")
        return await handler(request)

    return check


def has_nul(body: bytes) -> bool:
    """Whether a JSON body holds a NUL in a string or a key (JSON carries one only as the escape `\\u0000`).
    A body that is not JSON holds none here: its handler says what is wrong with it."""
    if b"\\u0000" not in body:
        return False
    try:
        stack: list[Any] = [orjson.loads(body)]
    except orjson.JSONDecodeError:
        return False
    while stack:  # no recursion: a body may nest as deep as orjson reads
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@web.middleware
async def unavailable_is_503(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A read while the database is down is a 503 to retry, not a 500 that looks like a bug."""
    try:
        return await handler(request)
    except _UNAVAILABLE as exc:
        if isinstance(exc, web.HTTPException):  # aiohttp's own answers are not the database's
            raise
        log.warning("%s %s: database unavailable (%s)", request.method, request.path, type(exc).__name__)
        return error_response(503, "database unavailable, retry later", headers={"Retry-After": "5"})

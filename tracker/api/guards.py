"""Checks every route shares: what PostgreSQL cannot take as text, and a database that cannot be reached."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from tracker.api.responses import error_response
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

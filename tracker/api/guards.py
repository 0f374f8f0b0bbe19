"""Refuse, before any route runs, what PostgreSQL cannot take as text: a NUL character."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from tracker.api.responses import error_response


@web.middleware
async def refuse_nul(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A NUL in a path segment or a query value would reach SQL as text and fail there, as a 500."""
    values = (*request.match_info.values(), *request.query.values(), *request.query.keys())
    if any("\x00" in value for value in values):
        return error_response(400, "the path or the query contains a NUL character (%00)")
    return await handler(request)

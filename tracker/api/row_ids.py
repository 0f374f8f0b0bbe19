"""The id in a route's path of a row the database numbers (a quarantined delivery, a dead letter)."""

from __future__ import annotations

from aiohttp import web

from tracker.api.routing import Param, path
from tracker.store.quarantine import MAX_ID


def row_id_param(description: str) -> Param:
    """The path parameter `id`: a row's id, as the database numbers it."""
    return path("id", description, {"type": "integer", "minimum": 1, "maximum": MAX_ID})


def row_id(request: web.Request, name: str) -> int | None:
    """The path parameter `name` as a row id; None when it cannot name a row (the caller answers 404)."""
    given = request.match_info[name]
    if given.isascii() and given.isdigit() and 0 < int(given) <= MAX_ID:
        return int(given)
    return None

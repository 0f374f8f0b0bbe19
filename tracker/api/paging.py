"""The page size every list route takes, and its one error."""

from __future__ import annotations

import orjson
from aiohttp import web

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def page_limit(given: str | None) -> int:
    """`?limit=`, 100 by default; raises a 400 in the API's error shape."""
    try:
        limit = int(given) if given is not None else DEFAULT_LIMIT
    except ValueError:
        raise bad_request("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def bad_request(error: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=orjson.dumps({"error": error}).decode(), content_type="application/json")

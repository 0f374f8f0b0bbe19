"""The page size every list route takes, and its one error."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from aiohttp import web

from tracker.api.routing import STRING, Param, query

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})
CURSOR = query("cursor", STRING, "the `nextCursor` of the page before")
PAGE: tuple[Param, ...] = (LIMIT, CURSOR)


def page_limit(given: str | None) -> int:
    """`?limit=`, 100 by default; raises a 400 in the API's error shape."""
    try:
        limit = int(given) if given is not None else DEFAULT_LIMIT
    except ValueError:
        raise bad_request("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def page_query(
    request: web.Request, filters: Collection[str], ignored: Collection[str] = ()
) -> tuple[dict[str, str], int, str | None]:
    """A list request's filters, limit and cursor; a 400 naming the filters for a parameter not among them.

    `ignored` parameters are the route's own business (read before or after), not filters.
    """
    query = {name: value for name, value in request.query.items() if name not in ignored}
    cursor = query.pop("cursor", None)
    limit = page_limit(query.pop("limit", None))
    unknown = sorted(set(query) - set(filters))
    if unknown:
        raise bad_request(f"unknown filter(s): {', '.join(unknown)}", filters=sorted(filters))
    return query, limit, cursor


def bad_request(error: str, **detail: Any) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=orjson.dumps({"error": error, **detail}).decode(), content_type="application/json")

"""Bearer-token check for every `/v1/` route when TRACKER_API_TOKEN is set."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from tracker.api.responses import error_response


def bearer_auth(token: str) -> web.middleware:  # type: ignore[valid-type]
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if "/v1/" in request.path:  # also when the API is mounted under a prefix
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):  # constant time: no guessing by timing
                return error_response(401, "missing or wrong bearer token")
        return await handler(request)

    return check

"""Bearer-token check for every route but the signed webhook, when TRACKER_API_TOKEN is set."""

from __future__ import annotations

import hmac
from collections.abc import Collection

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tracker.api.keys import TRACKER
from tracker.api.responses import error_response
from tracker.ingest.signatures import is_loopback


def bearer_auth(token: str, public: Collection[Handler]) -> Middleware:
    """Decide by route, not by path: the API may be mounted under any prefix."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.handler not in public:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):  # constant time: no guessing by timing
                return error_response(401, "missing or wrong bearer token")
        return await handler(request)

    return check


def may_change(request: web.Request) -> bool:
    """Whether a request may change state (operator actions, quarantine review): with a token, the bearer
    check has passed already; without one anybody could, so only loopback clients (the local try-out)."""
    return bool(request.app[TRACKER].settings.api_token) or is_loopback(request.remote)

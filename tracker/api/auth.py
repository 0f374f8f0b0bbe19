"""Bearer-token check for every route but the public ones, when TRACKER_API_TOKEN or TRACKER_API_TOKENS is set."""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tracker.api.keys import services_of
from tracker.api.responses import error_response
from tracker.api.scopes import Scope, set_scope
from tracker.ingest.signatures import is_local_client


def bearer_auth(
    tokens: Mapping[str, Scope], public: Collection[Handler], scope_aware: Collection[Handler]
) -> Middleware:
    """Decide by route, not by path: the API may be mounted under any prefix. A token limited to projects
    reaches only the `scope_aware` routes (which narrow what they serve to its projects): 403 elsewhere."""
    expected = [(f"Bearer {token}".encode(), scope) for token, scope in tokens.items()]

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.handler
        # No such route (404) or method (405): aiohttp's own answer, which /openapi.json tells anyway.
        if route in public or request.match_info.http_exception is not None:
            return await handler(request)
        # As aiohttp decoded it (UTF-8, undecodable bytes escaped), so any header encodes back.
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        scope = None
        for candidate, reach in expected:  # all of them, in constant time: no guessing by timing
            if hmac.compare_digest(given, candidate):
                scope = reach
        if scope is None:
            return error_response(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
        if scope.projects is not None and route not in scope_aware:
            return error_response(403, "this route belongs to no project: it needs TRACKER_API_TOKEN, not a token"
                                       " limited to projects")  # fmt: skip
        set_scope(request, scope)
        return await handler(request)

    return check


def may_change(request: web.Request) -> bool:
    """Whether a request may change state (operator actions, quarantine review): with a token, the bearer
    check has passed already; without one anybody could, so only loopback clients that came through no
    proxy (the local try-out)."""
    settings = services_of(request).settings
    return bool(settings.api_token or settings.scoped_tokens) or is_local_client(request.remote, request.headers)

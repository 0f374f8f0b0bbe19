"""Who may call a route, decided by its declaration (`tracker/api/routing.py`): a bearer token when tokens are
configured (TRACKER_API_TOKEN, TRACKER_API_TOKENS), and a loopback client for a change when none is."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tracker.api.keys import services_of
from tracker.api.responses import error_response
from tracker.api.routing import Access, Declared, route_of
from tracker.api.scopes import Scope, set_scope
from tracker.ingest.signatures import is_local_client


def _access(request: web.Request, declared: Declared) -> Access | None:
    """The access the matched route declares; None for aiohttp's own answers (no such route or method), which
    /openapi.json tells anyway. A route without a declaration is closed as if it needed the all-projects token."""
    if request.match_info.http_exception is not None:
        return None
    route = route_of(request, declared)
    return Access.TOKEN if route is None else route.access


def bearer_auth(tokens: Mapping[str, Scope], declared: Declared) -> Middleware:
    """Decide by route, not by path: the API may be mounted under any prefix. A token limited to projects
    reaches only the routes declared to narrow what they serve to its projects: 403 elsewhere."""
    expected = [(f"Bearer {token}".encode(), scope) for token, scope in tokens.items()]

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        access = _access(request, declared)
        if access is None or not access.token:
            return await handler(request)
        # As aiohttp decoded it (UTF-8, undecodable bytes escaped), so any header encodes back.
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        scope = None
        for candidate, reach in expected:  # all of them, in constant time: no guessing by timing
            if hmac.compare_digest(given, candidate):
                scope = reach
        if scope is None:
            return error_response(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
        if scope.projects is not None and not access.scoped:
            return error_response(403, "this route belongs to no project: it needs TRACKER_API_TOKEN, not a token"
                                       " limited to projects")  # fmt: skip
        set_scope(request, scope)
        return await handler(request)

    return check


def changes_guard(declared: Declared) -> Middleware:
    """A route that changes state refuses a client that may not change it (`may_change`), with the route's own
    refusal; innermost, where the handlers used to check it first."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request, declared)
        if route is not None and route.access.changes and not may_change(request):
            return error_response(403, route.refusal)
        return await handler(request)

    return check


def may_change(request: web.Request) -> bool:
    """Whether a request may change state (operator actions, quarantine review): with a token, the bearer
    check has passed already; without one anybody could, so only loopback clients that came through no
    proxy (the local try-out)."""
    settings = services_of(request).settings
    return bool(settings.api_token or settings.scoped_tokens) or is_local_client(request.remote, request.headers)

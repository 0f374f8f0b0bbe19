"""Which projects a request may see: the bearer token decides, and routes apply it through these helpers.

A token from `TRACKER_API_TOKEN` sees every project; one from `TRACKER_API_TOKENS` sees only its own
projectIds. Routes fall in three kinds, each handled here or in the auth middleware, not route by route:
list and count routes pass `projects_of(request)` to their query (rows of other projects are not
there); entity routes answer 404 when `hidden()` (existence is not revealed); every other route needs
an all-projects token, which the middleware enforces for any route not declared scope-aware, so a new
route is closed to scoped tokens until it applies the scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tracker.api.keys import services_of
from tracker.settings import Settings
from tracker.store.views import ViewTable


@dataclass(frozen=True, slots=True)
class Scope:
    projects: frozenset[str] | None
    """The projectIds the request may see; None: every project, and the routes of none."""


ALL = Scope(None)
_SCOPE: web.RequestKey[Scope] = web.RequestKey("scope", Scope)
"""The request's scope, set by the auth middleware; absent: no token is configured (or a public route)."""


class TokenConflictError(ValueError):
    """The same token is configured with two different reaches."""


def token_scopes(settings: Settings) -> dict[str, Scope]:
    """Every configured token with what it may see; empty when the API needs no token."""
    scopes = {token: Scope(projects) for token, projects in settings.scoped_tokens.items()}
    if settings.api_token is not None:
        if settings.api_token in scopes:
            msg = "a token of TRACKER_API_TOKENS is also TRACKER_API_TOKEN: give each reach its own token"
            raise TokenConflictError(msg)
        scopes[settings.api_token] = ALL
    return scopes


def set_scope(request: web.Request, scope: Scope) -> None:
    request[_SCOPE] = scope


def scope_of(request: web.Request) -> Scope:
    scope: Scope = request.get(_SCOPE, ALL)  # Request.get is not typed by key
    return scope


def projects_of(request: web.Request) -> frozenset[str] | None:
    """The projects a list or count route must narrow to; None: no narrowing."""
    return scope_of(request).projects


async def hidden(request: web.Request, table: ViewTable, key: str) -> bool:
    """Whether the entity must be answered as unknown: the token is scoped and the entity, as the read
    model has it, is not in one of its projects (an entity not folded yet cannot be shown to be)."""
    projects = projects_of(request)
    if projects is None:
        return False
    return await services_of(request).queries.entity(table, key, projects) is None

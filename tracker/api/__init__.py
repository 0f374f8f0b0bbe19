"""The aiohttp API: an application factory, so it can be served alone or mounted in a host app."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from tracker.api import changes, webhook
from tracker.api.auth import bearer_auth, changes_guard
from tracker.api.guards import refuse_nul, refuse_nul_in_bodies, unavailable_is_503
from tracker.api.keys import SERVICES
from tracker.api.openapi import ROUTES
from tracker.api.routing import add_routes
from tracker.api.scopes import token_scopes
from tracker.services import Services
from tracker.settings import Settings


def create_api(services: Callable[[], Services], settings: Settings) -> web.Application:
    """The API over `services`, called per request: the application may be built before the tracker starts.

    Its routes and who may call each are declared beside their handlers (`tracker/api/routing.py`); the
    middlewares find the declaration of the route a request matched.
    """
    api = web.Application(client_max_size=webhook.MAX_BODY)
    api[SERVICES] = services
    declared = add_routes(api.router, ROUTES)
    tokens = token_scopes(settings)
    if tokens:
        api.middlewares.append(bearer_auth(tokens, declared))
    # Innermost, the check a change makes: where the handlers made it, after a NUL or an outage is answered.
    api.middlewares.extend((unavailable_is_503, refuse_nul, changes_guard(declared), refuse_nul_in_bodies(declared)))
    changes.setup(api, settings.max_change_streams)
    return api

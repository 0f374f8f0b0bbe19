"""The aiohttp API: an application factory, so it can be served alone or mounted in a host app."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from tracker.api import (
    admin,
    changes,
    config_versions,
    dashboard,
    entities,
    health,
    issues,
    metrics,
    openapi,
    operator,
    quarantine,
    status,
    webhook,
)
from tracker.api.auth import bearer_auth
from tracker.api.guards import refuse_nul, unavailable_is_503
from tracker.api.keys import SERVICES
from tracker.api.scopes import token_scopes
from tracker.services import Services
from tracker.settings import Settings


def create_api(services: Callable[[], Services], settings: Settings) -> web.Application:
    """The API over `services`, called per request: the application may be built before the tracker starts."""
    tokens = token_scopes(settings)
    # The webhook authenticates by signature (a bearer token there would lock Svix out); /readyz is for
    # probes that carry no token and tells only whether the read models are fresh; the OpenAPI document
    # describes shapes, not data, and tools fetch it without one. /metrics needs the token (Prometheus sends it).
    # The dashboard's page and script hold no data: the script asks for the token and reads /v1 with it.
    public = {webhook.receive, status.readyz, openapi.openapi, dashboard.page, dashboard.asset}
    # A token limited to projects reaches only these: each narrows what it serves (tracker/api/scopes.py).
    scope_aware = {
        entities.installation, entities.installations, entities.installation_events, entities.connection,
        entities.connections, entities.destination, entities.destinations, config_versions.config_versions,
        config_versions.config_diff, operator.resume_read_schedule, operator.enable_destination, issues.issues,
        health.health, health.integrations, health.integration, changes.changes,
    }  # fmt: skip
    middlewares = [bearer_auth(tokens, public=public, scope_aware=scope_aware)] if tokens else []
    middlewares += [unavailable_is_503, refuse_nul]
    api = web.Application(client_max_size=webhook.MAX_BODY, middlewares=middlewares)
    api[SERVICES] = services
    routed = (webhook, entities, config_versions, operator, issues, health, quarantine, status, metrics, openapi, admin,
              changes, dashboard)  # fmt: skip
    for module in routed:
        api.add_routes(module.routes)
    changes.setup(api, settings.max_change_streams)
    return api

"""The aiohttp API: an application factory, so it can be served alone or mounted in a host app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tracker.api import config_versions, entities, health, issues, operator, quarantine, status, webhook
from tracker.api.auth import bearer_auth
from tracker.api.guards import refuse_nul, unavailable_is_503
from tracker.api.keys import TRACKER

if TYPE_CHECKING:
    from tracker.facade import Tracker


def create_api(tracker: Tracker) -> web.Application:
    token = tracker.settings.api_token
    # The webhook authenticates by signature (a bearer token there would lock Svix out); /readyz is for
    # probes that carry no token and tells only whether the read models are fresh.
    middlewares = [bearer_auth(token, public={webhook.receive, status.readyz})] if token else []
    middlewares += [unavailable_is_503, refuse_nul]
    api = web.Application(client_max_size=webhook.MAX_BODY, middlewares=middlewares)
    api[TRACKER] = tracker
    for module in (webhook, entities, config_versions, operator, issues, health, quarantine, status):
        api.add_routes(module.routes)
    return api

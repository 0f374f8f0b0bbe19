"""The aiohttp API: an application factory, so it can be served alone or mounted in a host app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tracker.api import entities, status, webhook
from tracker.api.auth import bearer_auth
from tracker.api.keys import TRACKER

if TYPE_CHECKING:
    from tracker.facade import Tracker

MAX_BODY = 1024 * 1024
"""Ampersand caps payloads at 300 KB; anything over 1 MiB is refused with 413 before it is read."""


def create_api(tracker: Tracker) -> web.Application:
    middlewares = [bearer_auth(tracker.settings.api_token)] if tracker.settings.api_token else []
    api = web.Application(client_max_size=MAX_BODY, middlewares=middlewares)
    api[TRACKER] = tracker
    for module in (webhook, entities, status):
        api.add_routes(module.routes)
    return api

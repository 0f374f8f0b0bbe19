"""What the API keeps on its application, and how a handler reaches the services."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from tracker.services import Services

SERVICES: web.AppKey[Callable[[], Services]] = web.AppKey("services")
"""Returns the started tracker's services: an application may be built, and mounted, before it starts."""


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]()

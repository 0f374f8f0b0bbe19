"""GET /metrics: the tracker's Prometheus metrics, with the database's view read at scrape time."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from tracker.api.keys import services_of
from tracker.api.routing import STRING, Access, Answer, RouteTable, query
from tracker.store.errors import UNAVAILABLE_ERRORS, StoreUnavailableError

routes = RouteTable()
log = logging.getLogger(__name__)
STATE_TIMEOUT = 5.0
"""Seconds a scrape waits for the database's counts; Prometheus gives up on a scrape after 10 by default."""
_UNAVAILABLE: tuple[type[BaseException], ...] = (StoreUnavailableError, *UNAVAILABLE_ERRORS)


@routes.get(
    "/metrics", Access.TOKEN, "Prometheus metrics (the OpenMetrics format by `Accept`)",
    Answer("the metrics; with the database down still 200, with `tracker_database_up 0`",
           media=("text/plain", "application/openmetrics-text")),
    parameters=(query("name[]", {"type": "array", "items": STRING}, "only these series"),), database=False,
)  # fmt: skip
async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text (or OpenMetrics, by Accept); `?name[]=` narrows it, as prometheus-client allows.

    With the database down this still answers 200, with `tracker_database_up 0` and the counters this
    process keeps: an outage is when the counts of 503s matter most.
    """
    services = services_of(request)
    try:
        async with asyncio.timeout(STATE_TIMEOUT):
            status, health = await services.status.status(), await services.queries.health()
    except _UNAVAILABLE as exc:
        log.warning("metrics: the database's counts could not be read (%s)", type(exc).__name__)
        services.metrics.observe_state(None, None)
    else:
        services.metrics.observe_state(status, health)
    # Collected at once, with no await between: a concurrent scrape cannot swap the state in between.
    return await make_aiohttp_handler(services.metrics.registry)(request)

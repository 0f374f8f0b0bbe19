"""Embed the tracker in an existing aiohttp application, and react to its changes.

    TRACKER_DATABASE_URL=postgresql://localhost/tracker python examples/embed_app.py [PORT]

(without TRACKER_DATABASE_URL the tracker starts its embedded PostgreSQL under ./.tracker). The host
answers at http://127.0.0.1:8080/ (or PORT) with the installations it saw turn unhealthy; the tracker is mounted
under /tracker/: its dashboard at /tracker/, its API at /tracker/v1/..., the webhook Ampersand posts to
at /tracker/webhooks/ampersand.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from tracker import Tracker

log = logging.getLogger("embed_app")

TRACKER = web.AppKey("tracker", Tracker)
UNHEALTHY: web.AppKey[dict[str, list[str]]] = web.AppKey("unhealthy")
"""Installations that are unhealthy now, with their reason codes: what the host learnt from the changes."""


async def watch_health(tracker: Tracker, unhealthy: dict[str, list[str]]) -> None:
    """Log each installation that turns unhealthy, and each that recovers, until the tracker closes.

    From 0, the feed first gives every installation's state as it is now, then each change as it
    commits. A connection's error is a change of each installation on it too.
    """
    async for change in tracker.changes(after=0):
        if change.entity != "installation":
            continue
        health = change.document["health"]
        was_unhealthy = change.entity_id in unhealthy
        if health["status"] == "unhealthy":
            unhealthy[change.entity_id] = [reason["code"] for reason in health["reasons"]]
            if not was_unhealthy:
                log.warning("installation %s turned unhealthy: %s", change.entity_id, unhealthy[change.entity_id])
        elif was_unhealthy:
            del unhealthy[change.entity_id]
            log.info("installation %s is %s again", change.entity_id, health["status"])


async def run_tracker(app: web.Application) -> AsyncIterator[None]:
    """Start the tracker with the host, watch its changes, and close it with the host."""
    tracker = app[TRACKER]
    async with tracker:
        watching = asyncio.create_task(watch_health(tracker, app[UNHEALTHY]))
        yield
    await watching  # the tracker closed: its changes end


async def home(request: web.Request) -> web.Response:
    """The host's own route, answering from what it learnt."""
    return web.json_response({"unhealthy": request.app[UNHEALTHY]})


def create_app(tracker: Tracker) -> web.Application:
    app = web.Application()
    app[TRACKER] = tracker
    app[UNHEALTHY] = {}
    app.router.add_get("/", home)
    app.add_subapp("/tracker/", tracker.web_app())  # mounted now, started with the host by run_tracker
    app.cleanup_ctx.append(run_tracker)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    web.run_app(create_app(Tracker()), host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8080)

"""Embedding: the API mounts under a host application (the guide's examples run in test_docs_examples)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker

from .conftest import MakeTracker
from .notifications import installation_event, new_id


async def test_the_api_mounts_under_a_host_application(make_tracker: MakeTracker) -> None:
    tracker: Tracker = make_tracker(follow_projections=True)
    await tracker.start()
    host = web.Application()
    host.add_subapp("/tracker/", tracker.web_app())
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("read.backfill.done", installation_id, objectName="account"))
    await tracker.catch_up()
    async with TestClient(TestServer(host)) as client:
        status = await client.get("/tracker/v1/status")
        view = await client.get(f"/tracker/v1/installations/{installation_id}")
        assert status.status == 200
        assert (await status.json())["events"] == 1
        assert (await view.json())["objects"]["account"]["backfillDone"] is True

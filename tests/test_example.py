"""The embedding example runs: mounted in its host, it sees an installation turn unhealthy and recover."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType

import pytest
from aiohttp.test_utils import TestClient, TestServer

from .conftest import MakeTracker
from .notifications import config, connection_fields, installation_event, new_id, notification
from .waiting import eventually

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "embed_app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embed_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_host_reacts_when_an_installation_turns_unhealthy(
    make_tracker: MakeTracker, caplog: pytest.LogCaptureFixture
) -> None:
    example = load_example()
    tracker = make_tracker(follow_projections=True)  # unsigned webhooks: heard from loopback only
    installation_id, connection_id = new_id("inst"), new_id("conn")
    caplog.set_level(logging.INFO, logger="embed_app")

    async with TestClient(TestServer(example.create_app(tracker))) as client:
        assert await (await client.get("/")).json() == {"unhealthy": {}}  # before

        async def post(payload: dict[str, object]) -> None:
            response = await client.post("/tracker/webhooks/ampersand", json=payload)
            assert response.status == 200, await response.text()

        async def unhealthy() -> dict[str, list[str]]:
            body: dict[str, dict[str, list[str]]] = await (await client.get("/")).json()
            return body["unhealthy"]

        await post(installation_event("installation.created", installation_id, connectionId=connection_id,
                                      config=config()))  # fmt: skip
        await post(notification("connection.error", **connection_fields(connection_id), errors=["invalid_grant"]))
        assert await eventually(unhealthy) == {installation_id: ["connection_error"]}
        assert f"installation {installation_id} turned unhealthy" in caplog.text

        await post(notification("connection.refreshed", **connection_fields(connection_id)))

        async def recovered() -> bool:
            return await unhealthy() == {}

        await eventually(recovered)
        assert f"installation {installation_id} is healthy again" in caplog.text
        dashboard = await client.get("/tracker/")
        assert dashboard.status == 200  # the tracker's own pages, under the host's prefix
    assert tracker.pool.is_closing()  # the host closed the tracker with itself

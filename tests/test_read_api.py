"""The read routes: one entity, filtered pages with cursors, the timeline, status and the bearer token."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker

from .conftest import MakeTracker
from .notifications import config, connection_fields, installation_event, installation_fields, new_id, notification
from .waiting import eventually

Client = TestClient[web.Request, web.Application]


async def test_an_installation_is_served_with_the_contract_fields(client: Client, tracker: Tracker) -> None:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    await tracker.ingest(installation_event("read.schedule.paused", installation_id, config=config(), error="auth"))
    await tracker.catch_up()

    response = await client.get(f"/v1/installations/{installation_id}")

    assert response.status == 200
    body = await response.json()
    assert body["installationId"] == installation_id
    assert body["configVersion"] == 1
    assert body["readSchedule"]["paused"] is True
    assert body["readSchedule"]["error"] == "auth"
    assert body["deleted"] is False


async def test_unknown_entities_are_404(client: Client) -> None:
    for path in ("/v1/installations/nope", "/v1/connections/nope", "/v1/destinations/nope",
                 "/v1/installations/nope/events"):  # fmt: skip
        response = await client.get(path)
        assert response.status == 404, path
        assert "nope" in (await response.json())["error"]


async def test_connections_and_destinations_are_served(client: Client, tracker: Tracker) -> None:
    connection_id = new_id("conn")
    await tracker.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    await tracker.ingest(notification(
        "destination.webhook.disabled", projectId="proj-1", destinationId="dest-9", destinationName="hook", url="https://h",
    ))  # fmt: skip
    await tracker.catch_up()

    connection = await (await client.get(f"/v1/connections/{connection_id}")).json()
    destination = await (await client.get("/v1/destinations/dest-9")).json()

    assert (connection["status"], connection["errors"]) == ("error", ["expired"])
    assert (destination["destinationName"], destination["url"], destination["disabled"]) == ("hook", "https://h", True)
    errored = await (await client.get("/v1/connections?status=error")).json()
    assert [item["connectionId"] for item in errored["items"]] == [connection_id]
    assert (await (await client.get("/v1/connections?status=active")).json())["items"] == []
    disabled = await (await client.get("/v1/destinations?projectId=proj-1")).json()
    assert [item["destinationId"] for item in disabled["items"]] == ["dest-9"]
    # the same through the embedding API
    assert [c["connectionId"] for c in (await tracker.connections(status="error")).items] == [connection_id]
    assert [d["destinationId"] for d in (await tracker.destinations(projectId="proj-1")).items] == ["dest-9"]


async def test_installations_filter_and_page_with_a_cursor(client: Client, tracker: Tracker) -> None:
    for i in range(5):
        data = {**installation_fields(f"inst-{i}", project_id="p-a" if i < 4 else "p-b"), "config": config()}
        await tracker.ingest(notification("installation.created", **data))
    await tracker.catch_up()

    first = await (await client.get("/v1/installations?projectId=p-a&limit=3")).json()
    second = await (await client.get(f"/v1/installations?projectId=p-a&limit=3&cursor={first['nextCursor']}")).json()
    other = await (await client.get("/v1/installations?projectId=p-b&provider=salesforce")).json()

    assert [item["installationId"] for item in first["items"]] == ["inst-0", "inst-1", "inst-2"]
    assert [item["installationId"] for item in second["items"]] == ["inst-3"]
    assert second["nextCursor"] is None
    assert [item["installationId"] for item in other["items"]] == ["inst-4"]


async def test_bad_list_parameters_are_400_with_a_reason(client: Client) -> None:
    for query, reason in (
        ("limit=0", "limit must be between"),
        ("limit=ten", "limit must be an integer"),
        ("colour=blue", "unknown filter(s): colour"),
        ("cursor=%%%", "cursor"),
    ):
        response = await client.get(f"/v1/installations?{query}")
        assert response.status == 400, query
        assert reason in (await response.json())["error"], query


async def test_status_counts_events_quarantine_and_projection_lag(client: Client, tracker: Tracker) -> None:
    await tracker.ingest(installation_event("installation.created", new_id("inst"), config=config()))
    before = await (await client.get("/v1/status")).json()
    await tracker.catch_up()
    after = await (await client.get("/v1/status")).json()

    assert before["events"] == 1
    assert before["quarantined"] == 0
    assert (before["signaturesVerified"], before["warnings"]) == (True, [])
    lags = {p["name"]: p["lag"] for p in before["projections"]}
    assert lags == {"installations": 1, "connections": 1, "destinations": 1, "alert_subscriptions": 1}
    assert {p["name"]: (p["position"], p["lag"]) for p in after["projections"]} == {
        "installations": (1, 0), "connections": (1, 0), "destinations": (1, 0), "alert_subscriptions": (1, 0),
    }  # fmt: skip
    assert after["alerts"] == {
        "subscriptions": {"active": 0, "failing": 0, "disabled": 0}, "failing": [], "outbox": 0,
        "deliveries": {"pending": 0, "delivered": 0, "failed": 0, "suppressed": 0, "cancelled": 0},
        "oldestWaitSeconds": None,
    }  # fmt: skip


async def test_with_an_api_token_every_v1_route_needs_it(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token="s3cret-token")
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as client:
        for path in ("/v1/status", "/v1/installations", "/v1/installations/x", "/v1/connections"):
            assert (await client.get(path)).status == 401, path
            assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401, path
        ok = await client.get("/v1/status", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status == 200


async def test_a_read_with_min_position_waits_for_the_read_models(make_tracker: MakeTracker) -> None:
    following = make_tracker()
    await following.start()
    async with TestClient(TestServer(following.web_app())) as client:
        connection_id = new_id("conn")
        appended = await following.ingest(notification("connection.error", **connection_fields(connection_id)))
        response = await client.get(f"/v1/connections/{connection_id}?minPosition={appended.position}")
        assert response.status == 200  # no catch_up(): the read waited for the runners
        assert (await response.json())["status"] == "error"
        listed = await client.get(f"/v1/connections?status=error&minPosition={appended.position}")
        assert [item["connectionId"] for item in (await listed.json())["items"]] == [connection_id]
        assert (await client.get("/v1/connections?minPosition=soon")).status == 400


async def test_a_read_with_min_position_beyond_the_read_models_is_503_after_a_bounded_wait(
    make_tracker: MakeTracker,
) -> None:
    idle = make_tracker(follow_projections=False)
    idle.settings = replace(idle.settings, min_position_wait=0.2)
    await idle.start()
    async with TestClient(TestServer(idle.web_app())) as client:
        appended = await idle.ingest(notification("connection.error", **connection_fields(new_id("conn"))))
        response = await client.get(f"/v1/connections?minPosition={appended.position}")
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["position"] == 0


async def test_readyz_fails_while_no_runner_beats_or_a_read_model_lags(make_tracker: MakeTracker) -> None:
    idle = make_tracker(follow_projections=False)
    idle.settings = replace(idle.settings, ready_max_lag=0, api_token="t0ken")
    await idle.start()
    async with TestClient(TestServer(idle.web_app())) as client:
        await idle.ingest(notification("connection.error", **connection_fields(new_id("conn"))))
        await idle.catch_up()  # caught up, but no runner follows the log: nothing beats
        response = await client.get("/readyz")  # no token: probes carry none
        assert response.status == 503
        problems = (await response.json())["problems"]
        assert any("installations: its runner was last heard from never" in p for p in problems), problems

        await idle.ingest(notification("connection.error", **connection_fields(new_id("conn"))))
        lagging = await (await client.get("/readyz")).json()
        assert any("1 events behind" in problem for problem in lagging["problems"]), lagging


async def test_readyz_passes_and_status_reports_freshness_with_a_following_runner(make_tracker: MakeTracker) -> None:
    following = make_tracker()
    await following.start()
    async with TestClient(TestServer(following.web_app())) as client:
        await following.ingest(notification("connection.error", **connection_fields(new_id("conn"))))

        async def caught_up_and_beating() -> bool:
            models = (await (await client.get("/v1/status")).json())["projections"]
            return all(m["lag"] == 0 and m["heartbeatAgeSeconds"] is not None for m in models)

        await eventually(caught_up_and_beating)
        status = await (await client.get("/v1/status")).json()
        for model in status["projections"]:
            assert (model["lag"], model["lagSeconds"]) == (0, 0)
            assert 0 <= model["heartbeatAgeSeconds"] < 30
        assert (await client.get("/readyz")).status == 200

"""Health through the API: joined reasons, filters, rollups, issues and operator actions, on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker

from .conftest import MakeTracker, Signer
from .notifications import config, connection_fields, installation_event, installation_fields, new_id, notification

Client = TestClient[web.Request, web.Application]


async def get(client: Client, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json()


async def health_of(client: Client, installation_id: str) -> tuple[str, list[str]]:
    health = (await get(client, f"/v1/installations/{installation_id}"))["health"]
    return health["status"], [reason["code"] for reason in health["reasons"]]


def disabled(destination_id: str, name: str, project_id: str = "proj-1") -> dict[str, Any]:
    return notification(
        "destination.webhook.disabled",
        projectId=project_id,
        destinationId=destination_id,
        destinationName=name,
        url=f"https://{name}.example/hook",
    )


async def test_a_connection_error_that_arrives_first_reaches_the_installation_and_clears(
    client: Client, tracker: Tracker
) -> None:
    connection_id, installation_id = new_id("conn"), new_id("inst")
    await tracker.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    await tracker.catch_up()  # the connection is folded before the installation exists
    fields = installation_fields(installation_id, connection_id=connection_id)
    await tracker.ingest(notification("installation.created", **fields, config=config()))
    await tracker.catch_up()

    status, codes = await health_of(client, installation_id)
    assert (status, codes) == ("unhealthy", ["connection_error"])
    listed = await get(client, "/v1/installations?health=unhealthy")
    assert [item["installationId"] for item in listed["items"]] == [installation_id]

    await tracker.ingest(notification("connection.refreshed", **connection_fields(connection_id)))
    await tracker.catch_up()
    assert await health_of(client, installation_id) == ("healthy", [])
    assert (await get(client, "/v1/installations?health=unhealthy"))["items"] == []
    assert [i["installationId"] for i in (await get(client, "/v1/installations?health=healthy"))["items"]] == [
        installation_id
    ]


async def test_moving_to_another_connection_clears_a_deleted_one(client: Client, tracker: Tracker) -> None:
    installation_id, old, new = new_id("inst"), new_id("conn"), new_id("conn")
    await tracker.ingest(installation_event("installation.created", installation_id, connectionId=old, config=config()))
    await tracker.ingest(notification("connection.deleted", **connection_fields(old)))
    await tracker.catch_up()
    assert await health_of(client, installation_id) == ("unhealthy", ["connection_deleted"])

    await tracker.ingest(
        installation_event(
            "installation.updated", installation_id, connectionId=new, config=config(), lastConfig=config()
        )
    )
    await tracker.catch_up()
    assert await health_of(client, installation_id) == ("healthy", [])


async def test_a_disabled_destination_named_by_the_config_is_unhealthy_until_an_operator_enables_it(
    client: Client, tracker: Tracker
) -> None:
    named, other_project = new_id("inst"), new_id("inst")
    await tracker.ingest(installation_event("installation.created", named, config=config(destination="crm-hook")))
    await tracker.ingest(notification("installation.created", **{
        **installation_fields(other_project, project_id="proj-2"), "config": config(destination="crm-hook"),
    }))  # fmt: skip
    await tracker.ingest(disabled("dest-crm", "crm-hook"))
    await tracker.catch_up()

    assert await health_of(client, named) == ("unhealthy", ["destination_disabled"])
    assert await health_of(client, other_project) == ("healthy", [])  # same name, another project

    response = await client.post("/v1/destinations/dest-crm/enable", json={"by": "ada", "note": "fixed the URL"})
    assert response.status == 201
    assert (await response.json())["streamId"] == "destination:dest-crm"
    await tracker.catch_up()
    assert await health_of(client, named) == ("healthy", [])
    destination = await get(client, "/v1/destinations/dest-crm")
    assert (destination["disabled"], destination["enabledBy"]) == (False, "ada")
    (issue,) = (await get(client, "/v1/issues?code=destination_disabled"))["items"]
    assert (issue["entity"], issue["entityId"], issue["status"]) == ("destination", "dest-crm", "resolved")


async def test_an_operator_resume_is_an_event_in_the_timeline(client: Client, tracker: Tracker) -> None:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("read.schedule.paused", installation_id, config=config(), error="auth"))
    await tracker.catch_up()
    assert await health_of(client, installation_id) == ("unhealthy", ["read_schedule_paused"])

    response = await client.post(f"/v1/installations/{installation_id}/read-schedule/resume", json={"note": "rotated"})
    assert response.status == 201
    await tracker.catch_up()

    assert await health_of(client, installation_id) == ("healthy", [])
    timeline = (await get(client, f"/v1/installations/{installation_id}/events"))["items"]
    assert [event["type"] for event in timeline] == ["read.schedule.paused", "tracker.read_schedule.resumed"]
    assert timeline[1]["data"] == {"installationId": installation_id, "by": "operator", "note": "rotated"}
    assert timeline[1]["metadata"]["source"] == "operator"


async def test_operator_actions_on_unknown_entities_or_with_bad_bodies_are_refused(client: Client) -> None:
    assert (await client.post("/v1/installations/nope/read-schedule/resume")).status == 404
    assert (await client.post("/v1/destinations/nope/enable")).status == 404
    bad = await client.post("/v1/destinations/nope/enable", data=b"not json")
    assert bad.status == 400
    assert "JSON" in (await bad.json())["error"]
    assert (await client.post("/v1/destinations/nope/enable", json={"by": 7})).status == 400


async def test_operator_actions_need_the_api_token_when_one_is_set(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token="t0ken")
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as client:
        assert (await client.post("/v1/destinations/any/enable")).status == 401
        authorized = await client.post("/v1/destinations/any/enable", headers={"Authorization": "Bearer t0ken"})
        assert authorized.status == 404  # past the token: the destination is unknown


async def test_a_notification_cannot_pass_for_an_operator_action(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    installation_id = new_id("inst")
    body, headers = signer.signed(notification("tracker.read_schedule.resumed", installationId=installation_id))
    response = await client.post("/webhooks/ampersand", data=body, headers=headers)
    assert response.status == 400
    assert "operator" in (await response.json())["detail"]
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 0
    assert await tracker.pool.fetchval("SELECT count(*) FROM quarantine") == 1


async def test_issues_are_listed_newest_first_with_filters_and_a_cursor(client: Client, tracker: Tracker) -> None:
    first, second = new_id("inst"), new_id("inst")
    connection_id = new_id("conn")
    await tracker.ingest(installation_event("read.schedule.paused", first, config=config(), error="auth"))
    await tracker.ingest(installation_event("subscribe.create.error", second, connectionId=connection_id, error="x"))
    await tracker.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    await tracker.ingest(installation_event("read.backfill.done", first, objectName="account"))
    await tracker.catch_up()

    everything = await get(client, "/v1/issues")
    assert [(i["code"], i["status"]) for i in everything["items"]] == [
        ("read_schedule_paused", "resolved"),  # resolved last: the newest
        ("connection_error", "open"),
        ("subscribe_failed", "open"),
    ]
    resolved = (await get(client, "/v1/issues?status=resolved"))["items"]
    assert [(i["entityId"], i["occurrences"]) for i in resolved] == [(first, 1)]
    of_second = (await get(client, f"/v1/issues?installationId={second}&status=open"))["items"]
    assert sorted(i["code"] for i in of_second) == ["connection_error", "subscribe_failed"]  # its connection's too
    assert (await get(client, "/v1/issues?projectId=proj-9"))["items"] == []

    pages, cursor = [], None
    while True:
        page = await get(client, "/v1/issues?limit=1" + (f"&cursor={cursor}" if cursor else ""))
        pages.extend(page["items"])
        if (cursor := page["nextCursor"]) is None:
            break
    assert pages == everything["items"]
    assert "status" in (await get(client, "/v1/issues?status=later", 400))["error"]
    assert "code" in (await get(client, "/v1/issues?code=nope", 400))["error"]
    assert "cursor" in (await get(client, "/v1/issues?cursor=bm9wZQ", 400))["error"]


async def test_rollups_count_installations_by_health_per_integration_and_overall(
    client: Client, tracker: Tracker
) -> None:
    broken, slow, fine, gone = (new_id("inst") for _ in range(4))
    await tracker.ingest(installation_event("read.schedule.paused", broken, config=config(), error="auth"))
    await tracker.ingest(installation_event("write.async.done", slow, objectName="account", success=False))
    await tracker.ingest(installation_event("installation.created", fine, config=config()))
    await tracker.ingest(installation_event("installation.deleted", gone, config=config()))
    await tracker.ingest(notification("installation.created", **{
        **installation_fields(new_id("inst")), "integrationId": "integ-2", "integrationName": "HubSpot sync",
        "provider": "hubspot", "config": config(),
    }))  # fmt: skip
    await tracker.catch_up()

    integrations = {i["integrationId"]: i for i in (await get(client, "/v1/integrations"))["items"]}
    assert integrations["integ-1"]["integrationName"] == "Salesforce sync"
    assert integrations["integ-1"]["installations"] == {
        "healthy": 1, "degraded": 1, "unhealthy": 1, "deleted": 1, "total": 4,
    }  # fmt: skip
    assert integrations["integ-2"]["provider"] == "hubspot"
    one = await get(client, "/v1/integrations/integ-2")
    assert one["installations"]["healthy"] == one["installations"]["total"] == 1
    await get(client, "/v1/integrations/nope", 404)

    overall = await get(client, "/v1/health")
    assert overall["installations"] == {"healthy": 2, "degraded": 1, "unhealthy": 1, "deleted": 1, "total": 5}
    assert overall["openIssues"] == {"read_schedule_paused": 1, "write_failed": 1}
    assert (await get(client, "/v1/health?projectId=proj-9"))["installations"]["total"] == 0


async def test_filters_by_health_and_backfill_combine_and_refuse_unknown_values(
    client: Client, tracker: Tracker
) -> None:
    filling, filled = new_id("inst"), new_id("inst")
    await tracker.ingest(installation_event("installation.created", filling, config=config(("account", "lead"))))
    await tracker.ingest(installation_event("installation.created", filled, config=config(("account",))))
    await tracker.ingest(installation_event("read.backfill.done", filled, objectName="account"))
    await tracker.catch_up()

    pending = (await get(client, "/v1/installations?backfill=pending&health=healthy&projectId=proj-1"))["items"]
    assert [item["installationId"] for item in pending] == [filling]
    assert pending[0]["backfill"]["done"] == 0 and pending[0]["backfill"]["total"] == 2
    done = (await get(client, "/v1/installations?backfill=done"))["items"]
    assert [item["installationId"] for item in done] == [filled]
    assert "health must be one of" in (await get(client, "/v1/installations?health=sick", 400))["error"]


async def test_a_connection_error_reaches_every_installation_on_it(client: Client, tracker: Tracker) -> None:
    connection_id, count = new_id("conn"), 300
    for _ in range(count):
        fields = installation_fields(new_id("inst"), connection_id=connection_id)
        await tracker.ingest(notification("installation.created", **fields, config=config()))
    await tracker.catch_up()
    await tracker.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    await tracker.catch_up()

    unhealthy = await tracker.pool.fetchval(
        "SELECT count(*) FROM installation_view WHERE health = 'unhealthy' AND connection_id = $1", connection_id
    )
    assert unhealthy == count
    overall = await get(client, "/v1/health")
    assert overall["installations"]["unhealthy"] == count
    assert overall["openIssues"] == {"connection_error": 1}  # one issue, of the connection


async def test_resuming_a_deleted_installation_is_409_and_appends_nothing(client: Client, tracker: Tracker) -> None:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.deleted", installation_id, config=config()))
    response = await client.post(f"/v1/installations/{installation_id}/read-schedule/resume")
    assert response.status == 409
    assert "deleted" in (await response.json())["error"]
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 1


async def test_a_nul_in_a_path_query_or_cursor_is_400_not_500(client: Client) -> None:
    cursor_with_nul = "YWZ0ZXI6AA"  # base64 of "after:\0"
    issues_cursor = "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAxOjAwIiwiYSIsImIiLCJjIl0"  # year 1, east of UTC
    for path in ("/v1/integrations/%00", "/v1/installations/%00", "/v1/installations/%00/events",
                 "/v1/installations?projectId=%00", "/v1/issues?installationId=%00", "/v1/health?projectId=%00",
                 f"/v1/installations?cursor={cursor_with_nul}", f"/v1/issues?cursor={issues_cursor}"):  # fmt: skip
        response = await client.get(path)
        assert response.status == 400, (path, await response.text())
    assert (await client.post("/v1/destinations/%00/enable")).status == 400


async def test_an_issue_follows_its_entity_into_another_project(client: Client, tracker: Tracker) -> None:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("read.schedule.paused", installation_id, config=config(), error="x"))
    await tracker.catch_up()
    moved = {**installation_fields(installation_id), "projectId": "proj-2", "objectName": "other"}
    await tracker.ingest(notification("read.triggered.done", **moved))  # changes no issue
    await tracker.catch_up()
    (issue,) = (await get(client, "/v1/issues?projectId=proj-2"))["items"]
    assert (issue["entityId"], issue["code"]) == (installation_id, "read_schedule_paused")


async def test_a_destination_write_rewrites_only_the_installations_whose_flag_changes(
    client: Client, tracker: Tracker
) -> None:
    first, second = new_id("inst"), new_id("inst")
    for installation_id, name in ((first, "hook-a"), (second, "hook-b")):
        await tracker.ingest(
            installation_event("installation.created", installation_id, config=config(destination=name))
        )
    await tracker.ingest(disabled("dest-1", "hook-a"))
    await tracker.catch_up()
    assert [(await health_of(client, i))[0] for i in (first, second)] == ["unhealthy", "healthy"]

    async def row_versions() -> list[str]:
        rows = await tracker.pool.fetch(
            "SELECT xmin::text FROM installation_view WHERE installation_id = ANY($1) ORDER BY installation_id",
            sorted([first, second]),
        )
        return [row["xmin"] for row in rows]

    before = await row_versions()
    again = notification("destination.webhook.disabled", projectId="proj-1", destinationId="dest-1",
                         destinationName="hook-a", url="https://moved.example/hook")  # fmt: skip
    await tracker.ingest(again)
    await tracker.catch_up()
    assert await row_versions() == before  # written again, still disabled: no installation's flag changed

    await tracker.ingest(disabled("dest-1", "hook-b"))  # renamed while disabled
    await tracker.catch_up()
    assert [(await health_of(client, i))[0] for i in (first, second)] == ["healthy", "unhealthy"]


async def test_a_destination_write_looks_for_installations_only_when_a_row_is_or_was_disabled(
    tracker: Tracker,
) -> None:
    async def recomputes(statement: str) -> int:
        """How often the statement's triggers called the fan-out, counted within the transaction."""
        before = await conn.fetchval(calls)
        await conn.execute(statement)
        return int(await conn.fetchval(calls)) - int(before)

    calls = (
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
        " WHERE funcname = 'recompute_destination_disabled'"
    )
    async with tracker.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL track_functions = 'all'")
        assert not await recomputes(
            "INSERT INTO destination_view (destination_id, project_id, disabled, destination_name, position, doc)"
            " VALUES ('dest-quiet', 'proj-1', false, 'hook-quiet', 1, '{}')"
        )
        assert not await recomputes("UPDATE destination_view SET position = 2 WHERE destination_id = 'dest-quiet'")
        assert await recomputes("UPDATE destination_view SET disabled = true WHERE destination_id = 'dest-quiet'") == 1
        assert await recomputes("DELETE FROM destination_view WHERE destination_id = 'dest-quiet'") == 1

"""GET /metrics after a story of deliveries: counters by type and outcome, histograms, and the database's view."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tracker import Tracker
from tracker.metrics import state_families

from .conftest import SECRET, MakeTracker
from .notifications import Signer, connection_fields, installation_event, new_id, notification
from .proxy import PostgresProxy

Client = TestClient[web.Request, web.Application]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape(client: Client, headers: dict[str, str] | None = None) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(await response.text())


def delivered(samples: Samples, notification_type: str, outcome: str, source: str = "webhook") -> float | None:
    return value(samples, "tracker_notifications_total", source=source, type=notification_type, outcome=outcome)


async def test_a_story_of_deliveries_is_counted_by_type_and_outcome(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    assert delivered(await scrape(client), "installation.created", "stored") is None  # before: nothing counted
    installation_id, connection_id = new_id("inst"), new_id("conn")
    created = installation_event("installation.created", installation_id, config={"read": {}})
    created["data"]["connectionId"] = connection_id
    body, headers = signer.signed(created)
    bodies = [
        (body, headers),  # stored
        (body, headers),  # the same svix-id again: a duplicate
        signer.signed(notification("connection.error", **connection_fields(connection_id), errors=["invalid_grant"])),
        signer.signed(notification("project.renamed", projectId="p")),  # a type the spec does not list
        signer.signed(notification("read.backfill.done", installationId=installation_id)),  # fails its schema
        signer.signed({"not": "a notification"}),  # not a notification at all
    ]
    statuses = [(await client.post("/webhooks/ampersand", data=b, headers=h)).status for b, h in bodies]
    assert statuses == [200, 200, 200, 200, 422, 400]
    forged = {**headers, "svix-id": new_id("msg"), "svix-signature": "v1,Zm9yZ2Vk"}
    assert (await client.post("/webhooks/ampersand", data=body, headers=forged)).status == 401
    await tracker.catch_up()

    samples = await scrape(client)

    assert delivered(samples, "installation.created", "stored") == 1
    assert delivered(samples, "installation.created", "duplicate") == 1
    assert delivered(samples, "connection.error", "stored") == 1
    assert delivered(samples, "unrecognized", "stored") == 1
    assert delivered(samples, "read.backfill.done", "quarantined") == 1
    assert delivered(samples, "unknown", "quarantined") == 1
    assert delivered(samples, "unknown", "rejected") == 1
    # Every delivery the pipeline saw is timed; a rejected one never reaches it.
    assert value(samples, "tracker_ingest_duration_seconds_count", source="webhook") == 6
    assert value(samples, "tracker_ingest_duration_seconds_bucket", source="webhook", le="+Inf") == 6
    # Four appends reached the group commit (the duplicate too: the log itself tells it apart), one at a time.
    assert value(samples, "tracker_group_commit_batch_size_sum") == 4
    assert value(samples, "tracker_group_commit_batch_size_count") == 4
    # What the database says, read at scrape time.
    assert value(samples, "tracker_database_up") == 1
    assert value(samples, "tracker_log_events") == 3
    assert value(samples, "tracker_log_head_position") == 3
    for model in ("installations", "connections", "destinations"):
        assert value(samples, "tracker_projection_position", model=model) == 3, model
        assert value(samples, "tracker_projection_lag_events", model=model) == 0, model
    assert value(samples, "tracker_quarantine_deliveries", status="pending") == 2
    assert value(samples, "tracker_installations", health="unhealthy") == 1  # its connection is in error
    assert value(samples, "tracker_installations", health="healthy") == 0
    assert value(samples, "tracker_open_issues", code="connection_error") == 1


async def test_each_tracker_counts_on_a_registry_of_its_own(make_tracker: MakeTracker, tracker: Tracker) -> None:
    other = make_tracker(follow_projections=False)
    await other.start()  # a second tracker in the process: no duplicate-metric error

    await tracker.ingest(notification("project.renamed", projectId="p"), delivery_id=new_id("msg"))

    assert other.metrics.registry is not tracker.metrics.registry
    labels = {"source": "api", "type": "unrecognized", "outcome": "stored"}
    assert tracker.metrics.registry.get_sample_value("tracker_notifications_total", labels) == 1
    assert other.metrics.registry.get_sample_value("tracker_notifications_total", labels) is None


async def test_metrics_need_the_api_token_when_one_is_set(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token="metrics-token-123")
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as client:
        assert (await client.get("/metrics")).status == 401
        samples = await scrape(client, {"Authorization": "Bearer metrics-token-123"})
    assert value(samples, "tracker_database_up") == 1


async def test_with_the_database_down_metrics_still_answer_and_count_the_503s(
    make_tracker: MakeTracker, signer: Signer, database_url: str
) -> None:
    async with PostgresProxy(database_url) as proxy:
        tracker = make_tracker(database_url=proxy.url, webhook_secrets=(SECRET,), follow_projections=False)
        await tracker.start()
        async with TestClient(TestServer(tracker.web_app())) as client:
            await proxy.stop()
            body, headers = signer.signed(installation_event("read.backfill.done", new_id("inst"), objectName="a"))
            assert (await client.post("/webhooks/ampersand", data=body, headers=headers)).status == 503

            samples = await scrape(client)

            assert value(samples, "tracker_database_up") == 0
            assert delivered(samples, "read.backfill.done", "unavailable") == 1
            assert value(samples, "tracker_log_events") is None  # nothing invented while it cannot be read
            await proxy.start()
            assert value(await scrape(client), "tracker_database_up") == 1


async def test_openmetrics_is_served_when_asked_for(client: Client) -> None:
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await response.text()).endswith("# EOF\n")


def test_state_gauges_come_from_the_status_and_health_documents() -> None:
    status = {
        "events": 10, "head": 12, "quarantine": {"pending": 1, "replayed": 2, "discarded": 0},
        "projections": [
            {"name": "installations", "position": 9, "lag": 3, "lagSeconds": 1.5, "heartbeatAgeSeconds": None,
             "rebuild": {"eventsDone": 250, "eventsTotal": 1000, "finishedAt": None},
             "deadLetters": {"parked": 2}},
            {"name": "connections", "position": 12, "lag": 0, "lagSeconds": 0.0, "heartbeatAgeSeconds": 0.5,
             "rebuild": None, "deadLetters": {}},
        ],
        "kinesis": [{"stream": "s", "shards": [
            {"shardId": "shard-0", "owner": "host-1", "millisBehindLatest": 1500, "finished": False},
            {"shardId": "shard-1", "owner": None, "millisBehindLatest": 20, "finished": False},
            {"shardId": "shard-2", "owner": None, "millisBehindLatest": 0, "finished": True},
        ]}],
    }  # fmt: skip
    health = {"installations": {"healthy": 4, "degraded": 1, "unhealthy": 0, "deleted": 2, "total": 7},
              "openIssues": {"write_failed": 1}}  # fmt: skip

    samples = parse(_families_text(state_families(status, health)))

    assert value(samples, "tracker_projection_lag_events", model="installations") == 3
    assert value(samples, "tracker_projection_lag_seconds", model="installations") == 1.5
    assert value(samples, "tracker_projection_heartbeat_age_seconds", model="installations") is None  # never beat
    assert value(samples, "tracker_installations", health="deleted") == 2
    assert value(samples, "tracker_installations", health="total") is None  # a sum, not a status
    assert value(samples, "tracker_quarantine_deliveries", status="replayed") == 2
    assert value(samples, "tracker_open_issues", code="write_failed") == 1
    assert value(samples, "tracker_rebuild_events_replayed", model="installations") == 250
    assert value(samples, "tracker_rebuild_events_expected", model="installations") == 1000
    assert value(samples, "tracker_rebuild_running", model="installations") == 1
    assert value(samples, "tracker_rebuild_running", model="connections") is None  # never rebuilt
    assert value(samples, "tracker_dead_letters", model="installations", status="parked") == 2
    assert value(samples, "tracker_kinesis_millis_behind_latest", stream="s", shard="shard-0") == 1500
    assert value(samples, "tracker_kinesis_shard_leased", stream="s", shard="shard-0") == 1
    assert value(samples, "tracker_kinesis_shard_leased", stream="s", shard="shard-1") == 0  # its consumer is gone
    assert value(samples, "tracker_kinesis_millis_behind_latest", stream="s", shard="shard-2") is None  # read out
    assert parse(_families_text(state_families(None, None))) == {("tracker_database_up", frozenset()): 0}


def _families_text(families: list[Metric]) -> str:
    class Fixed:
        def collect(self) -> list[Metric]:
            return families

    registry = CollectorRegistry()
    registry.register(Fixed())
    return generate_latest(registry).decode()

"""Alerts end to end: notifications in, issue transitions out to a real receiver on loopback that checks
signatures with the `standardwebhooks` library; deliveries, retries, flaps, rebuilds and 410s."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker
from tracker.settings import Settings

from .alert_receiver import Receiver
from .conftest import throwaway_database
from .notifications import config, connection_fields, installation_fields, new_id, notification
from .waiting import eventually

FAST_RETRIES = (0.05, 0.05, 0.05)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = Receiver()
    await started.start()
    yield started
    await started.close()


@pytest.fixture
async def alerting(make_tracker: Callable[..., Tracker], receiver: Receiver) -> Tracker:
    """A tracker that posts alerts to the receiver, retries fast, and folds and delivers only when asked."""
    settings = Settings(alert_url_allow=(receiver.url(""),), alert_retry_schedule=FAST_RETRIES, alert_timeout=2.0,
                        alert_failing_after=3600.0)  # fmt: skip
    started = make_tracker(settings=settings, follow_projections=False)
    await started.start()
    return started


@pytest.fixture
async def api(alerting: Tracker) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(alerting.web_app())) as client:
        yield client


async def subscribe(api: TestClient[web.Request, web.Application], **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/alerts/subscriptions", json=body)
    answer: dict[str, Any] = await response.json()
    assert response.status == 201, answer
    return answer


async def deliver(tracker: Tracker) -> None:
    """Fold what the log holds, then fan out and send what is due."""
    await tracker.catch_up()
    await tracker.components.deliverer.run_once()


async def deliveries(api: TestClient[web.Request, web.Application], **filters: str) -> list[dict[str, Any]]:
    response = await api.get("/v1/alerts/deliveries", params=filters)
    assert response.status == 200, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def test_one_connection_error_over_50_installations_is_one_alert_and_its_refresh_one_resolved(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    created = await subscribe(api, url=receiver.url(), by="ops")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    connection_id = new_id("conn")
    for _ in range(50):
        fields = installation_fields(new_id("inst"), connection_id)
        await alerting.ingest(notification("installation.created", **fields, config={}))
    await deliver(alerting)
    assert receiver.received == []

    await alerting.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    await deliver(alerting)
    assert len(receiver.received) == 1, [r.json for r in receiver.received]
    opened = receiver.received[0].verified(secret)
    assert opened["type"] == "issue.opened"
    assert opened["data"]["issue"]["code"] == "connection_error"
    assert opened["data"]["issue"]["entityId"] == connection_id
    assert opened["data"]["affected"]["installations"] == 50
    assert len(opened["data"]["affected"]["sample"]) == 20
    assert opened["data"]["affected"]["sample"][0]["groupName"] == "Acme"

    await alerting.ingest(notification("connection.refreshed", **connection_fields(connection_id)))
    await deliver(alerting)
    assert [r.verified(secret)["type"] for r in receiver.received] == ["issue.opened", "issue.resolved"]
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(ids) == 2
    assert {item["status"] for item in await deliveries(api)} == {"delivered"}


async def test_a_receiver_answering_500_twice_gets_the_same_webhook_id_three_times(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    secret = (await subscribe(api, url=receiver.url()))["secret"]
    receiver.script.extend([(500, {}), (500, {})])
    await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["expired"]))

    async def delivered() -> list[dict[str, Any]]:
        await deliver(alerting)
        return [item for item in await deliveries(api) if item["status"] == "delivered"]

    [delivery] = await eventually(delivered, describe=lambda: _seen(receiver))
    assert len(receiver.received) == 3
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery["id"]}
    assert all(r.verified(secret)["type"] == "issue.opened" for r in receiver.received)
    assert [attempt["statusCode"] for attempt in delivery["attempts"]] == [500, 500, 200]
    assert all(len(attempt["response"] or "") <= 1024 for attempt in delivery["attempts"])


async def test_an_issue_resolved_within_delay_seconds_sends_nothing(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    await subscribe(api, url=receiver.url(), delaySeconds=1)
    connection_id = new_id("conn")
    await alerting.ingest(notification("connection.error", **connection_fields(connection_id), errors=["blip"]))
    await alerting.ingest(notification("connection.refreshed", **connection_fields(connection_id)))
    await deliver(alerting)
    await asyncio.sleep(1.1)
    await deliver(alerting)
    assert receiver.received == []
    settled = await deliveries(api)
    assert sorted(item["type"] for item in settled) == ["issue.opened", "issue.resolved"]
    assert {item["status"] for item in settled} == {"suppressed"}, settled


async def test_an_issue_that_outlasts_delay_seconds_is_told_once_it_has(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    await subscribe(api, url=receiver.url(), delaySeconds=1)
    await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["down"]))
    await deliver(alerting)
    assert receiver.received == []

    async def told() -> int:
        await deliver(alerting)
        return len(receiver.received)

    assert await eventually(told, timeout=5, describe=lambda: _seen(receiver)) == 1


async def test_a_rebuild_sends_nothing(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    await subscribe(api, url=receiver.url())
    await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["expired"]))
    await deliver(alerting)
    assert len(receiver.received) == 1
    await alerting.rebuild()
    await deliver(alerting)
    assert len(receiver.received) == 1
    async with alerting.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM alert_outbox") == 0
        assert await conn.fetchval("SELECT count(*) FROM alert_deliveries") == 1


async def test_a_410_disables_the_subscription_and_opens_its_issue(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    created = await subscribe(api, url=receiver.url())
    receiver.script.append((410, {}))
    for _ in range(2):  # two alerts due in one round: the second is not sent after the first's 410
        await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["x"]))
    await deliver(alerting)
    await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["expired"]))
    await deliver(alerting)
    assert len(receiver.received) == 1
    assert sorted(item["status"] for item in await deliveries(api)) == ["cancelled", "failed"]
    listed = (await (await api.get("/v1/alerts/subscriptions")).json())["items"]
    assert [(item["id"], item["status"]) for item in listed] == [(created["id"], "disabled")]
    issues = (await (await api.get("/v1/issues", params={"code": "alert_subscription_disabled"})).json())["items"]
    assert [issue["entityId"] for issue in issues] == [created["id"]]


async def test_a_429_waits_its_retry_after(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    await subscribe(api, url=receiver.url())
    receiver.script.append((429, {"Retry-After": "30"}))
    await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["expired"]))
    await deliver(alerting)
    [delivery] = await deliveries(api)
    assert delivery["status"] == "pending"
    waited = datetime.fromisoformat(delivery["nextAttemptAt"]) - datetime.fromisoformat(delivery["attempts"][0]["at"])
    assert 29 <= waited.total_seconds() <= 31, delivery


async def test_the_secret_is_shown_once_and_never_listed(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    secret = (await subscribe(api, url=receiver.url() + "?token=hush"))["secret"]
    await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["expired"]))
    await deliver(alerting)
    answers = [await (await api.get(path)).text() for path in ("/v1/alerts/subscriptions", "/v1/alerts/deliveries",
                                                              "/v1/status", "/v1/issues")]  # fmt: skip
    for text in [*answers, caplog.text]:
        assert secret not in text
        assert "hush" not in text
    assert len(receiver.received) == 1


async def test_urls_alerts_could_not_reach_are_refused_at_once(
    api: TestClient[web.Request, web.Application],
) -> None:
    for url in ("https://10.0.0.1/hook", "http://example.com/hook", "https://user:pw@example.com/", "not a url"):
        response = await api.post("/v1/alerts/subscriptions", json={"url": url})
        assert response.status == 422, (url, await response.text())
    response = await api.post("/v1/alerts/subscriptions", json={"url": "https://example.com/", "format": "email"})
    assert response.status == 422
    assert "format" in (await response.text())


async def test_a_deleted_subscription_is_told_nothing_more(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    created = await subscribe(api, url=receiver.url())
    await alerting.catch_up()
    listed = (await (await api.get("/v1/alerts/subscriptions")).json())["items"]
    assert listed == [{key: value for key, value in created.items() if key != "secret"}]  # as the read model has it
    response = await api.delete(f"/v1/alerts/subscriptions/{created['id']}")
    assert response.status == 204
    assert (await api.delete(f"/v1/alerts/subscriptions/{created['id']}")).status == 404
    await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["expired"]))
    await deliver(alerting)
    assert receiver.received == []
    assert (await (await api.get("/v1/alerts/subscriptions")).json())["items"] == []


async def _seen(receiver: Receiver) -> str:
    return f"receiver got {[(r.headers.get('webhook-id'), r.body[:80]) for r in receiver.received]}"


async def test_a_subscription_failing_longer_than_allowed_is_marked_failing_until_a_delivery_succeeds(
    make_tracker: Callable[..., Tracker], receiver: Receiver
) -> None:
    settings = Settings(alert_url_allow=(receiver.url(""),), alert_retry_schedule=(0.05,) * 20,
                        alert_failing_after=0.2)  # fmt: skip
    tracker = make_tracker(settings=settings, follow_projections=False)
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as api:
        created = await subscribe(api, url=receiver.url())
        receiver.script.extend([(503, {})] * 8)
        await tracker.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["x"]))

        async def alerts_status() -> dict[str, Any]:
            await deliver(tracker)
            alerts: dict[str, Any] = (await tracker.status())["alerts"]
            return alerts

        async def failing() -> list[dict[str, Any]]:
            return list((await alerts_status())["failing"])

        [marked] = await eventually(failing, describe=lambda: _seen(receiver))
        assert marked["subscriptionId"] == created["id"]
        assert "HTTP 503" in marked["error"]
        issues = (await (await api.get("/v1/issues", params={"code": "alert_delivery_failing"})).json())["items"]
        assert [(issue["entityId"], issue["status"]) for issue in issues] == [(created["id"], "open")]
        metrics = await (await api.get("/metrics")).text()
        assert 'tracker_alert_subscriptions{state="failing"} 1.0' in metrics

        async def recovered() -> bool:
            return not (await alerts_status())["failing"]

        await eventually(recovered, describe=lambda: _seen(receiver))
        issues = (await (await api.get("/v1/issues", params={"code": "alert_delivery_failing"})).json())["items"]
        assert [issue["status"] for issue in issues] == ["resolved"]


async def test_a_token_limited_to_projects_subscribes_to_its_own_projects_only(
    make_tracker: Callable[..., Tracker], receiver: Receiver
) -> None:
    settings = Settings(alert_url_allow=(receiver.url(""),), api_token="all-7f3a",
                        scoped_tokens={"a-token-1c9e": frozenset({"proj-a"})})  # fmt: skip
    tracker = make_tracker(settings=settings, follow_projections=False)
    await tracker.start()
    scoped = {"Authorization": "Bearer a-token-1c9e"}
    everything = {"Authorization": "Bearer all-7f3a"}
    async with TestClient(TestServer(tracker.web_app())) as api:
        for body in ({"url": receiver.url()}, {"url": receiver.url(), "projectIds": ["proj-a", "proj-b"]}):
            response = await api.post("/v1/alerts/subscriptions", json=body, headers=scoped)
            assert response.status == 403, body
        response = await api.post("/v1/alerts/subscriptions", json={"url": receiver.url(), "projectIds": ["proj-a"]},
                                  headers=scoped)  # fmt: skip
        assert response.status == 201
        own = (await response.json())["id"]
        response = await api.post("/v1/alerts/subscriptions", json={"url": receiver.url()}, headers=everything)
        assert response.status == 201
        other = (await response.json())["id"]
        await tracker.catch_up()
        listed = (await (await api.get("/v1/alerts/subscriptions", headers=scoped)).json())["items"]
        assert [item["id"] for item in listed] == [own]
        assert (await api.delete(f"/v1/alerts/subscriptions/{other}", headers=scoped)).status == 404
        assert (await api.post("/v1/alerts/subscriptions", json={"url": receiver.url()})).status == 401


async def test_the_slack_format_names_the_customers_and_links_to_the_dashboard(
    make_tracker: Callable[..., Tracker], receiver: Receiver
) -> None:
    settings = Settings(alert_url_allow=(receiver.url(""),), public_url="https://tracker.example.com")
    tracker = make_tracker(settings=settings, follow_projections=False)
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as api:
        created = await subscribe(api, url=receiver.url("T000B000XXXX"), format="slack", minSeverity="unhealthy")
        assert "secret" not in created
        assert "XXXX" not in created["url"]
        installation_id = new_id("inst")
        fields = {**installation_fields(installation_id), "groupName": "<!channel> Hooli"}
        await tracker.ingest(notification("installation.created", **fields, config=config()))
        await tracker.ingest(notification("read.schedule.paused", **fields, config=config(), error="auth"))
        await deliver(tracker)
    [message] = [received.json for received in receiver.received]
    assert "webhook-signature" not in receiver.received[0].headers
    assert "&lt;!channel&gt; Hooli" in message["text"]
    assert "<!channel>" not in message["text"]
    assert f"https://tracker.example.com/#/installations/{installation_id}" in message["text"]
    assert message["blocks"][0]["text"]["text"].startswith("*:red_circle: read_schedule_paused opened")


async def test_a_following_tracker_delivers_by_itself(server_url: str, receiver: Receiver, tmp_path: Path) -> None:
    """The delivery loop runs beside the runners, leads, and is woken by the outbox's NOTIFY. On a database of
    its own: a process another test left on the shared one could lead the delivery, with settings of its own."""
    async with throwaway_database(server_url, "alerts_following") as url:
        settings = Settings(database_url=url, alert_url_allow=(receiver.url(""),))
        async with (
            Tracker(settings, data_dir=tmp_path, follow_projections=True) as tracker,
            TestClient(TestServer(tracker.web_app())) as api,
        ):
            await subscribe(api, url=receiver.url())
            await tracker.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["x"]))

            async def received() -> int:
                return len(receiver.received)

            async def seen() -> str:
                return f"{await _seen(receiver)}; deliveries {await deliveries(api)}; status {await tracker.status()}"

            assert await eventually(received, describe=seen) == 1
            assert receiver.received[0].json["type"] == "issue.opened"


async def test_transitions_wait_for_every_read_model_even_one_that_never_folded(
    alerting: Tracker, api: TestClient[web.Request, web.Application], receiver: Receiver
) -> None:
    """A subscription is matched from its read model: a transition taken before that read model has folded the
    subscription would find no one to tell, and be lost."""
    await subscribe(api, url=receiver.url())
    await alerting.ingest(notification("connection.error", **connection_fields(new_id("conn")), errors=["x"]))
    for runner in alerting.runners:
        if runner.model.name != "alert_subscriptions":
            await runner.catch_up()
    await alerting.components.deliverer.run_once()
    async with alerting.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM alert_outbox") == 1
    assert receiver.received == []

    await deliver(alerting)
    assert [received.json["type"] for received in receiver.received] == ["issue.opened"]

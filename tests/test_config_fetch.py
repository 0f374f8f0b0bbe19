"""Configs sent by URL: fetched after the notification is stored, logged as events, guarded, on PostgreSQL.

A local aiohttp server on 127.0.0.1 serves the configs; the tracker is allowed to reach it by the prefix
setting (`TRACKER_CONFIG_URL_ALLOW`), as a self-hosted setup would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from eventsourcing.application import project_aggregate
from yarl import URL

from tracker import Tracker
from tracker.domain.config import ConfigFetched, without_query
from tracker.domain.installation import Installation
from tracker.ingest.config_fetch import CHECKPOINT, FetchReport
from tracker.ingest.url_guard import (
    ConfigFetcher,
    ConfigFetchError,
    ConfigRefusedError,
    GuardedResolver,
    check_url,
    is_allowed,
    is_public_address,
)

from .conftest import SECRET, MakeTracker
from .notifications import Signer, config, installation_event, new_id
from .waiting import eventually

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SIGNED = "?X-Amz-Signature=TOPSECRET&X-Amz-Expires=300"
"""A pre-signed URL's query: sent to the server as is, never written to a log or a message."""


class ConfigServer:
    """Serves configs on 127.0.0.1: per path, a list of handlers used in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self._routes: dict[str, list[Handler]] = {}
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")

    async def start(self) -> None:
        await self._server.start_server()
        self.base = f"http://127.0.0.1:{self._server.port}/"

    async def close(self) -> None:
        await self._server.close()

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, *handlers: Handler) -> str:
        self._routes[f"/{path}"] = list(handlers)
        return self.url(path) + SIGNED

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        handlers = self._routes.get(request.path)
        if not handlers:
            return web.Response(status=404)
        return await (handlers.pop(0) if len(handlers) > 1 else handlers[0])(request)


def content(body: dict[str, Any]) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        return web.json_response(body)

    return handle


def status(code: int) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(status=code, text="no")

    return handle


def html(text: str) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/html")

    return handle


def redirect(location: str) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": location})

    return handle


def streamed(size: int) -> Handler:
    """A body of `size` bytes, chunked: no Content-Length tells the client how large it is."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client hangs up at its cap
            await response.write(b'{"padding": "')
            for _ in range(size // 65536):
                await response.write(b"x" * 65536)
            await response.write(b'"}')
        return response

    return handle


@pytest.fixture
async def server() -> AsyncIterator[ConfigServer]:
    started = ConfigServer()
    await started.start()
    yield started
    await started.close()


async def start_tracker(
    make_tracker: MakeTracker, server: ConfigServer, *, follow: bool = False, **settings: Any
) -> Tracker:
    tracker = make_tracker(follow_projections=follow, webhook_secrets=(SECRET,))
    settings = {"config_url_allow": (server.base,), "config_fetch_first_retry": 60.0, **settings}
    tracker.settings = replace(tracker.settings, **settings)
    await tracker.start()
    return tracker


async def view(tracker: Tracker, installation_id: str) -> dict[str, Any]:
    found = await tracker.installation(installation_id)
    assert found is not None
    return found


def reasons(found: dict[str, Any]) -> list[tuple[str, str]]:
    return [(reason["code"], reason["message"]) for reason in found["health"]["reasons"]]


async def attempted(tracker: Tracker) -> bool:
    """Whether `fetch_configs` attempted anything: false while the only job waits for its retry."""
    report = await tracker.fetch_configs()
    return report.fetched + report.retrying + report.unavailable > 0


async def job(tracker: Tracker, installation_id: str) -> dict[str, Any]:
    row = await tracker.pool.fetchrow("SELECT * FROM config_fetches WHERE installation_id = $1", installation_id)
    assert row is not None
    return dict(row)


async def test_a_config_sent_by_url_is_fetched_after_it_is_stored_and_a_rebuild_needs_no_url(
    make_tracker: MakeTracker, server: ConfigServer
) -> None:
    tracker = await start_tracker(make_tracker, server)
    installation_id = new_id("inst")
    url = server.serve("configs/a", content(config()))
    await tracker.ingest(installation_event("installation.created", installation_id, configURL=url))
    await tracker.catch_up()
    before = await view(tracker, installation_id)
    assert (before["config"], before["configVersion"], before["health"]["status"]) == (None, 0, "degraded")
    assert reasons(before) == [("config_unavailable", "config known only by its URL, not fetched yet")]
    assert server.hits == []  # storing it fetched nothing

    assert await tracker.fetch_configs() == FetchReport(queued=1, fetched=1)
    assert server.hits == ["/configs/a" + SIGNED]  # the pre-signed query, exactly as sent
    await tracker.catch_up()
    after = await view(tracker, installation_id)
    assert (after["config"], after["configUrl"], after["configVersion"]) == (config(), without_query(url), 1)
    assert (after["health"]["status"], after["destinations"]) == ("healthy", ["main-webhook"])
    assert [(i["code"], i["status"]) for i in after["issues"]] == [("config_unavailable", "resolved")]
    timeline = await tracker.events(installation_id)
    assert [event["type"] for event in timeline] == ["installation.created", "tracker.config.fetched"]
    assert timeline[1]["data"] == {"installationId": installation_id, "field": "config", "url": without_query(url),
                                   "config": config()}  # fmt: skip
    assert timeline[0]["data"]["configURL"] == without_query(url) != url  # served without the signature
    logged = await tracker.pool.fetch("SELECT payload->'data' AS data FROM events ORDER BY position")
    assert [row["data"].get("configURL", row["data"].get("url")) for row in logged] == [url, url]  # kept whole
    assert timeline[1]["metadata"]["source"] == "config-fetch"
    stored = await tracker.event_log.domain_events(f"installation:{installation_id}")
    assert isinstance(stored[1], ConfigFetched)  # its topic is registered: the log decodes it

    assert await tracker.fetch_configs() == FetchReport()  # done once: nothing queued or due again
    await server.close()  # the URL is gone: a rebuild must not need it
    await tracker.rebuild()
    assert await view(tracker, installation_id) == after
    assert len(server.hits) == 1
    async with TestClient(TestServer(tracker.web_app())) as client:  # the history knows the fetched content
        history = await (await client.get(f"/v1/installations/{installation_id}/config-versions")).json()
    assert [(item["version"], item["config"]) for item in history["items"]] == [(1, config())]


async def test_only_urls_without_content_beside_them_are_queued_in_log_order(
    make_tracker: MakeTracker, server: ConfigServer
) -> None:
    tracker = await start_tracker(make_tracker, server, projection_batch_size=2)  # the scan goes by pages of 2
    installation_id = new_id("inst")
    u = [f"https://configs.example.com/{n}" for n in range(6)]
    for notification in [
        installation_event("installation.created", installation_id, config=config(), configURL=u[0]),
        installation_event("read.backfill.done", installation_id, objectName="account", configURL=u[5]),
        installation_event("installation.updated", installation_id, config={}, configURL=u[1], lastConfig=config(),
                           lastConfigURL=u[2]),
        installation_event("installation.updated", installation_id, configURL=u[3], lastConfigURL=u[4]),
        installation_event("read.schedule.paused", installation_id, error="auth", configURL=u[3]),  # queued already
    ]:  # fmt: skip
        await tracker.ingest(notification)
    report = await tracker.fetch_configs()
    assert report.queued == 3
    rows = await tracker.pool.fetch("SELECT field, url FROM config_fetches ORDER BY position, field DESC")
    assert [(row["field"], row["url"]) for row in rows] == [
        ("config", u[1]),  # u[0] came with its content, u[2] with its lastConfig, u[5] with a type that has none
        ("lastConfig", u[4]),
        ("config", u[3]),
    ]
    checkpoint = await tracker.pool.fetchval("SELECT position FROM projection_checkpoints WHERE name = $1", CHECKPOINT)
    assert checkpoint == await tracker.event_log.head()


async def test_a_fetched_last_config_records_the_update_that_was_missed(
    make_tracker: MakeTracker, server: ConfigServer
) -> None:
    tracker = await start_tracker(make_tracker, server)
    a, b, c = config(("account",)), config(("lead",)), config(("contact",))
    missed, known = new_id("inst"), new_id("inst")
    for installation_id, last in ((missed, b), (known, a)):
        await tracker.ingest(installation_event("installation.created", installation_id, config=a))
        url = server.serve(f"last/{installation_id}", content(last))
        await tracker.ingest(installation_event("installation.updated", installation_id, config=c, lastConfigURL=url))
    assert await tracker.fetch_configs() == FetchReport(queued=2, fetched=2)
    await tracker.catch_up()

    found = await view(tracker, missed)
    versions = [(v["version"], v["missedUpdate"]) for v in found["configVersions"]]
    assert versions == [(1, False), (2, False), (3, True)]  # b was in force between a and c: an update was missed
    assert (found["config"], found["configVersion"], found["health"]["status"]) == (c, 2, "healthy")
    assert [(v["version"], v["missedUpdate"]) for v in (await view(tracker, known))["configVersions"]] == [
        (1, False),
        (2, False),
    ]  # the last config was the one held: nothing missed


async def test_a_failing_url_is_retried_with_growing_delays_until_it_answers(
    make_tracker: MakeTracker, server: ConfigServer, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = await start_tracker(make_tracker, server, config_fetch_first_retry=0.2)
    installation_id = new_id("inst")
    url = server.serve("configs/flaky", status(500), status(503), content(config()))
    await tracker.ingest(installation_event("installation.created", installation_id, configURL=url))
    caplog.set_level(logging.INFO, logger="tracker.ingest.config_fetch")

    assert await tracker.fetch_configs() == FetchReport(queued=1, retrying=1)
    first = await job(tracker, installation_id)
    assert (first["status"], first["attempts"], first["last_error"]) == ("pending", 1, "HTTP 500")
    assert first["next_attempt_at"] - first["updated_at"] == timedelta(seconds=0.2)
    assert await tracker.fetch_configs() == FetchReport()  # not due yet: it waits
    await eventually(partial(attempted, tracker), timeout=5)
    second = await job(tracker, installation_id)
    assert (second["attempts"], second["last_error"]) == (2, "HTTP 503")
    assert second["next_attempt_at"] - second["updated_at"] == timedelta(seconds=0.4)  # doubled
    await eventually(partial(attempted, tracker), timeout=5)

    done = await job(tracker, installation_id)
    assert (done["status"], done["attempts"], done["last_error"]) == ("fetched", 3, None)
    assert server.hits == ["/configs/flaky" + SIGNED] * 3
    await tracker.catch_up()
    assert (await view(tracker, installation_id))["configVersion"] == 1
    assert "/configs/flaky" in caplog.text
    assert "TOPSECRET" not in caplog.text  # a pre-signed query never reaches a log


async def test_a_url_still_failing_past_the_give_up_age_becomes_unavailable_and_says_why(
    make_tracker: MakeTracker, server: ConfigServer
) -> None:
    tracker = await start_tracker(make_tracker, server, config_fetch_give_up=0.0)
    installation_id = new_id("inst")
    url = server.serve("configs/gone", status(500))
    await tracker.ingest(installation_event("installation.created", installation_id, configURL=url))
    assert await tracker.fetch_configs() == FetchReport(queued=1, unavailable=1)
    assert await tracker.fetch_configs() == FetchReport()  # given up: not tried again
    assert len(server.hits) == 1
    await tracker.catch_up()

    timeline = await tracker.events(installation_id)
    assert timeline[-1]["type"] == "tracker.config.unavailable"
    assert timeline[-1]["data"] == {
        "installationId": installation_id,
        "field": "config",
        "url": server.url("configs/gone"),  # served without its query
        "error": "HTTP 500",
    }
    found = await view(tracker, installation_id)
    assert found["configFetchFailure"]["url"] == server.url("configs/gone")
    message = f"config at {server.url('configs/gone')} could not be fetched: HTTP 500"
    assert reasons(found) == [("config_unavailable", message)]
    assert [(i["code"], i["status"], i["message"], i["occurrences"]) for i in found["issues"]] == [
        ("config_unavailable", "open", message, 2)  # the notification, then the fetch that gave up
    ]
    assert (await job(tracker, installation_id))["status"] == "failed"


async def test_too_large_not_json_nul_and_cross_host_redirects_are_refused_at_once(
    make_tracker: MakeTracker, server: ConfigServer
) -> None:
    other = ConfigServer()
    await other.start()
    try:
        other.serve("configs/a", content(config()))
        # Both servers are allowed: a redirect to another origin is refused all the same.
        tracker = await start_tracker(make_tracker, server, config_url_allow=(server.base, other.base))
        urls = {
            "big": server.serve("big", streamed(6 * 1024 * 1024)),
            "html": server.serve("html", html("<html>sign in</html>")),
            "nul": server.serve("nul", content({"provider": "a\x00b"})),
            "away": server.serve("away", redirect(other.url("configs/a"))),
            "moved": server.serve("moved", redirect("/configs/a")),
            "metadata": "http://169.254.169.254/latest/meta-data",
        }
        server.serve("configs/a", content(config()))
        ids = {name: new_id("inst") for name in urls}
        for name, url in urls.items():
            await tracker.ingest(installation_event("installation.created", ids[name], configURL=url))
        assert await tracker.fetch_configs() == FetchReport(queued=6, fetched=1, unavailable=5)  # no retry waits
        await tracker.catch_up()
    finally:
        await other.close()

    assert other.hits == []
    errors = {name: (await job(tracker, ids[name]))["last_error"] for name in urls}
    assert errors == {
        "big": "the body is larger than 5242880 bytes",
        "html": "the body is not JSON",
        "nul": "the body contains a NUL character (\\u0000), which PostgreSQL's jsonb cannot store",
        "away": f"redirect from {server.url('away')} to another host: {other.url('configs/a')}",
        "moved": None,
        "metadata": "http://169.254.169.254/latest/meta-data: only https URLs are fetched",
    }
    assert (await view(tracker, ids["moved"]))["configVersion"] == 1  # a redirect on the same origin is followed
    assert "/moved" + SIGNED in server.hits


async def test_the_webhook_answers_before_the_config_is_fetched_by_the_following_worker(
    make_tracker: MakeTracker, server: ConfigServer, signer: Signer
) -> None:
    release = asyncio.Event()

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(config())

    tracker = await start_tracker(make_tracker, server, follow=True)
    installation_id = new_id("inst")
    url = server.serve("configs/held", held)
    async with TestClient(TestServer(tracker.web_app())) as client:
        body, headers = signer.signed(installation_event("installation.created", installation_id, configURL=url))
        async with asyncio.timeout(5):  # the fetch is held for as long as the test likes: the webhook is not
            response = await client.post("/webhooks/ampersand", data=body, headers=headers)
        assert response.status == 200
    assert not release.is_set()

    await eventually(lambda: asyncio.sleep(0, server.hits))  # the worker took the URL up, after the answer
    unavailable = await eventually(lambda: tracker.installation(installation_id))
    assert [code for code, _ in reasons(unavailable)] == ["config_unavailable"]
    release.set()

    async def configured() -> bool:
        found = await tracker.installation(installation_id)
        return found is not None and found["configVersion"] == 1 and found["health"]["status"] == "healthy"

    await eventually(configured)


async def test_a_fetch_appended_twice_is_a_duplicate(make_tracker: MakeTracker, server: ConfigServer) -> None:
    tracker = await start_tracker(make_tracker, server)
    installation_id = new_id("inst")
    url = server.serve("configs/a", content(config()))
    await tracker.ingest(installation_event("installation.created", installation_id, configURL=url))
    await tracker.fetch_configs()
    # As if the process stopped between the append and marking the job: it is fetched again.
    await tracker.pool.execute("UPDATE config_fetches SET status = 'pending', next_attempt_at = now()")
    assert (await tracker.fetch_configs()).fetched == 1
    assert len(server.hits) == 2
    types = [event["type"] for event in await tracker.events(installation_id)]
    assert types == ["installation.created", "tracker.config.fetched"]


async def test_fetched_configs_are_counted_as_deliveries_are(make_tracker: MakeTracker, server: ConfigServer) -> None:
    """Events the tracker writes itself take the pipeline too: counted under source config_fetch, by their type."""
    tracker = await start_tracker(make_tracker, server)
    installation_id = new_id("inst")
    url = server.serve("configs/counted", content(config()))
    await tracker.ingest(installation_event("installation.created", installation_id, configURL=url))

    def counted(outcome: str) -> float | None:
        labels = {"source": "config-fetch", "type": "tracker.config.fetched", "outcome": outcome}
        return tracker.metrics.registry.get_sample_value("tracker_notifications_total", labels)

    assert (counted("stored"), counted("duplicate")) == (None, None)
    await tracker.fetch_configs()
    await tracker.pool.execute("UPDATE config_fetches SET status = 'pending', next_attempt_at = now()")
    await tracker.fetch_configs()
    assert (counted("stored"), counted("duplicate")) == (1, 1)


async def test_two_workers_fetch_each_url_once(make_tracker: MakeTracker, server: ConfigServer) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.02)
        return web.json_response(config())

    first = await start_tracker(make_tracker, server)
    second = await start_tracker(make_tracker, server)
    ids = [new_id("inst") for _ in range(20)]
    for installation_id in ids:
        url = server.serve(f"configs/{installation_id}", slow)
        await first.ingest(installation_event("installation.created", installation_id, configURL=url))
    reports = await asyncio.gather(first.fetch_configs(), second.fetch_configs())

    assert sum(report.queued for report in reports) == sum(report.fetched for report in reports) == 20
    assert sorted(server.hits) == sorted(f"/configs/{installation_id}{SIGNED}" for installation_id in ids)
    fetched = await first.pool.fetchval("SELECT count(*) FROM events WHERE type = 'tracker.config.fetched'")
    assert fetched == 20


# The guards, without the tracker.

TABLE = {
    "configs.example.com": ["10.0.0.7"],
    "local.example.com": ["127.0.0.1"],
    "mixed.example.com": ["10.0.0.7", "93.184.216.34", "::1", "2606:4700::1111"],
    "public.example.com": ["93.184.216.34", "2606:4700::1111"],
}


async def table(host: str) -> list[str]:
    """Names resolved from a table: a public name that resolves to a private address, without DNS."""
    return TABLE[host]


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP port on 127.0.0.1 that counts the connections it accepts (and closes them)."""
    accepted: list[int] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    tcp = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    yield port, accepted
    tcp.close()
    await tcp.wait_closed()


async def test_private_loopback_and_metadata_addresses_are_refused_without_connecting(
    listener: tuple[int, list[int]],
) -> None:
    port, accepted = listener
    fetcher = ConfigFetcher(resolve=table)
    refused = {
        "http://169.254.169.254/latest/meta-data": "only https URLs are fetched",
        "https://169.254.169.254/latest/meta-data": "169.254.169.254 is not a public address",
        f"http://127.0.0.1:{port}/x": "only https URLs are fetched",
        f"https://127.0.0.1:{port}/x": "127.0.0.1 is not a public address",
        f"https://[::ffff:127.0.0.1]:{port}/x": "::ffff:127.0.0.1 is not a public address",
        f"https://127.1:{port}/x": "is not a valid URL",  # a legacy numeric form of 127.0.0.1
        "https://configs.example.com/x": "configs.example.com resolves to an address that is not public (10.0.0.7)",
        f"https://local.example.com:{port}/x": "resolves to an address that is not public (127.0.0.1)",
    }
    for url, reason in refused.items():
        with pytest.raises(ConfigRefusedError) as raised:
            await fetcher.fetch(url + "?sig=TOPSECRET")
        assert reason in str(raised.value)
        assert "TOPSECRET" not in str(raised.value)
    assert accepted == []

    allowed = ConfigFetcher((f"http://127.0.0.1:{port}/",), resolve=table)
    with pytest.raises(ConfigFetchError) as failed:  # allowed: it connects, and the listener hangs up
        await allowed.fetch(f"http://127.0.0.1:{port}/x")
    assert not isinstance(failed.value, ConfigRefusedError)
    assert accepted  # it did connect (aiohttp tries an idempotent GET twice when hung up on)


async def test_the_resolver_gives_aiohttp_only_the_addresses_it_checked_and_refuses_any_mix() -> None:
    resolver = GuardedResolver(table)
    assert [r["host"] for r in await resolver.resolve("public.example.com", 443)] == [
        "93.184.216.34",
        "2606:4700::1111",
    ]
    with pytest.raises(ConfigRefusedError, match=r"not public \(10.0.0.7, ::1\)"):
        await resolver.resolve("mixed.example.com", 443)  # a private address among public ones is refused
    only_v4 = await resolver.resolve("public.example.com", 443, socket.AF_INET)
    assert [(r["host"], r["port"], r["family"]) for r in only_v4] == [("93.184.216.34", 443, socket.AF_INET)]
    with pytest.raises(ConfigRefusedError):
        await resolver.resolve("configs.example.com", 443)
    unguarded = GuardedResolver(table, enforce=False)  # for an allowed URL
    assert [r["host"] for r in await unguarded.resolve("configs.example.com", 443)] == ["10.0.0.7"]


async def test_a_fetch_past_its_deadline_is_a_timeout(server: ConfigServer) -> None:
    async def stalled(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response(config())

    url = server.serve("stalled", stalled)
    with pytest.raises(ConfigFetchError) as raised:
        await ConfigFetcher((server.base,), timeout=0.2).fetch(url)
    assert str(raised.value) == "timeout after 0.2 s"
    assert not isinstance(raised.value, ConfigRefusedError)  # it may pass: retried


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.7", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
        "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "ff02::1",
        "::ffff:10.0.0.7", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a00:7::", "not-an-address",
    ],
)  # fmt: skip
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)


def test_an_allow_prefix_is_compared_as_a_url_not_as_text() -> None:
    allow = ("http://127.0.0.1:8080", "http://localhost:9000/configs/")
    assert check_url("http://127.0.0.1:8080/any/path", allow)[1] is True
    assert check_url("http://localhost:9000/configs/a.json", allow)[1] is True
    with pytest.raises(ConfigRefusedError, match="user info"):
        check_url("http://127.0.0.1:8080@evil.example/x", allow)  # starts with the prefix as text
    with pytest.raises(ConfigRefusedError, match="only https"):
        check_url("http://localhost:9000/other", allow)  # another path of an allowed origin
    with pytest.raises(ConfigRefusedError, match="only https"):
        check_url("http://127.0.0.1:8081/x", allow)
    assert check_url("https://configs.example.com/x", allow)[1] is False  # a name: the resolver checks it


def test_urls_are_shown_without_their_query_or_user_info() -> None:
    shown = without_query("https://user:pw@configs.example.com:8443/a/b.json?X-Amz-Signature=s#frag")
    assert shown == "https://configs.example.com:8443/a/b.json"
    assert without_query("https://[2606:4700::1111]/c?token=t") == "https://[2606:4700::1111]/c"


async def test_a_body_or_redirect_nobody_foresaw_is_given_up_without_holding_back_the_others(
    make_tracker: MakeTracker, server: ConfigServer
) -> None:
    tracker = await start_tracker(make_tracker, server)
    deep = {"a": functools.reduce(lambda inner, _: [inner], range(300), [])}  # orjson would not store it
    urls = {
        "deep": server.serve("configs/deep", content(deep)),
        "bad-location": server.serve("configs/bad", redirect("http://[::1")),
        "good": server.serve("configs/good", content(config())),
    }
    for name, url in urls.items():
        await tracker.ingest(installation_event("installation.created", f"inst-{name}", configURL=url))

    assert await tracker.fetch_configs() == FetchReport(queued=3, fetched=1, unavailable=2)
    await tracker.catch_up()
    assert (await view(tracker, "inst-good"))["configVersion"] == 1
    failures = {name: (await job(tracker, f"inst-{name}"))["last_error"] for name in ("deep", "bad-location")}
    assert "nests deeper than 200" in failures["deep"]
    assert "Location that is not a URL" in failures["bad-location"]


def test_an_allow_prefix_covers_whole_path_segments_and_no_dot_segments() -> None:
    allow = ["http://127.0.0.1:8080/configs"]
    assert is_allowed(URL("http://127.0.0.1:8080/configs/a.json"), allow)
    assert is_allowed(URL("http://127.0.0.1:8080/configs"), allow)
    assert not is_allowed(URL("http://127.0.0.1:8080/configs-private/a.json"), allow)
    for climbing in ("/configs/../admin/keys", "/configs/%2e%2e/admin", "/configs/./../admin"):
        assert not is_allowed(URL(f"http://127.0.0.1:8080{climbing}", encoded=True), allow), climbing


async def test_the_library_aggregate_takes_a_fetched_config_only_while_it_is_missing(
    make_tracker: MakeTracker, server: ConfigServer
) -> None:
    tracker = await start_tracker(make_tracker, server)
    installation_id = new_id("inst")
    url = server.serve("configs/late", content(config(("lead",))))
    await tracker.ingest(installation_event("installation.created", installation_id, configURL=url))
    await tracker.fetch_configs()
    fetched = project_aggregate(None, await tracker.event_log.domain_events(f"installation:{installation_id}"))
    assert isinstance(fetched, Installation)
    assert (fetched.config, fetched.config_missing) == (config(("lead",)), False)

    other_id = new_id("inst")
    late = server.serve("configs/stale", content(config(("lead",))))
    await tracker.ingest(installation_event("installation.created", other_id, configURL=late))
    await tracker.ingest(installation_event("installation.updated", other_id, config=config(), lastConfig={}))
    await tracker.fetch_configs()  # the URL's content lands after a newer content: history only
    stale = project_aggregate(None, await tracker.event_log.domain_events(f"installation:{other_id}"))
    assert isinstance(stale, Installation)
    assert stale.config == config()

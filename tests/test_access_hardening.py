"""What a project's token, a proxied client or a reader of the API must not reach beyond its due.

An installation joins only a connection of its own project; the quarantine keeps no header that may carry a
credential; a pre-signed config URL is served without its query (the log keeps it whole); an allow prefix lets
no path climb out of it; a request that came through a proxy is never trusted as a loopback client.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from tracker import Tracker
from tracker.domain.config import strip_config_urls, strip_url_queries
from tracker.ingest.signatures import SignatureError
from tracker.ingest.url_guard import is_allowed
from tracker.store.migrations import migrations_dir
from tracker.store.quarantine import Refused

from .conftest import SECRET, MakeTracker
from .notifications import Signer, config, connection_fields, installation_event, installation_fields, new_id
from .notifications import notification as message

Client = TestClient[web.Request, web.Application]
ALL_TOKEN = "hardening-all-token-27c9d1"
A_TOKEN = "hardening-project-a-token-5e03b8"
SIGNED = "?X-Amz-Signature=TOPSECRET&X-Amz-Credential=AKIAEXAMPLE%2F20260101&X-Amz-Expires=300"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get(client: Client, path: str, token: str) -> Any:
    response = await client.get(path, headers=bearer(token))
    assert response.status == 200, (path, await response.text())
    return await response.json()


async def run_hardening_migration(tracker: Tracker) -> None:
    """Apply the migration again, as on a database whose rows were written before it (its statements repeat)."""
    (path,) = migrations_dir().glob("*_access_hardening.sql")
    async with tracker.pool.acquire() as conn, conn.transaction():
        await conn.execute(path.read_text())


@pytest.fixture
async def scoped(make_tracker: MakeTracker) -> AsyncIterator[tuple[Tracker, Client]]:
    """A tracker with an all-projects token and one limited to proj-a, checking signatures, folding only when asked."""
    tracker = make_tracker(webhook_secrets=(SECRET,), follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token=ALL_TOKEN, scoped_tokens={A_TOKEN: frozenset({"proj-a"})})
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as client:
        yield tracker, client


async def installation_of(tracker: Tracker, project_id: str, connection_id: str) -> str:
    installation_id = new_id("inst")
    fields = installation_fields(installation_id, connection_id, project_id)
    await tracker.ingest(message("installation.created", **fields, config=config()))
    return installation_id


async def connection_in_error(tracker: Tracker, project_id: str, connection_id: str, error: str) -> None:
    await tracker.ingest(message("connection.error", **connection_fields(connection_id, project_id), errors=[error]))


# An installation joins its connection within its project only.


async def test_an_installation_naming_another_projects_connection_shows_nothing_of_it(
    scoped: tuple[Tracker, Client],
) -> None:
    tracker, client = scoped
    foreign, own = new_id("conn"), new_id("conn")
    before_error = await installation_of(tracker, "proj-a", foreign)
    await tracker.catch_up()
    await connection_in_error(tracker, "proj-b", foreign, "b-secret-expired")  # reaches it by the fan-out
    await connection_in_error(tracker, "proj-a", own, "a-revoked")
    await tracker.catch_up()
    after_error = await installation_of(tracker, "proj-a", foreign)  # joins it when written
    mine = await installation_of(tracker, "proj-a", own)
    await tracker.catch_up()

    assert (await get(client, f"/v1/connections/{foreign}", ALL_TOKEN))["status"] == "error"  # it is in error
    for installation_id in (before_error, after_error):
        for token in (A_TOKEN, ALL_TOKEN):
            doc = await get(client, f"/v1/installations/{installation_id}", token)
            assert doc["health"] == {"status": "healthy", "reasons": []}, token
            assert doc["connectionId"] == foreign  # named, but not joined
            assert b"b-secret-expired" not in orjson.dumps(doc)
        issues = await get(client, f"/v1/issues?installationId={installation_id}", ALL_TOKEN)
        assert issues["items"] == []
    # The same project's connection still joins.
    joined = await get(client, f"/v1/installations/{mine}", A_TOKEN)
    assert [(r["code"], r["connectionId"]) for r in joined["health"]["reasons"]] == [("connection_error", own)]
    unhealthy = await get(client, "/v1/installations?health=unhealthy", A_TOKEN)
    assert [item["installationId"] for item in unhealthy["items"]] == [mine]
    mine_issues = await get(client, f"/v1/issues?installationId={mine}", A_TOKEN)
    assert [(i["entity"], i["entityId"]) for i in mine_issues["items"]] == [("connection", own)]
    statuses = await tracker.pool.fetch(
        "SELECT installation_id, connection_status, health FROM installation_view ORDER BY installation_id"
    )
    assert {row["installation_id"]: (row["connection_status"], row["health"]) for row in statuses} == {
        before_error: (None, "healthy"), after_error: (None, "healthy"), mine: ("error", "unhealthy"),
    }  # fmt: skip


async def test_a_connection_moving_to_another_project_leaves_the_old_projects_installations(
    scoped: tuple[Tracker, Client],
) -> None:
    tracker, _ = scoped
    connection_id = new_id("conn")
    await connection_in_error(tracker, "proj-a", connection_id, "expired")
    installation_id = await installation_of(tracker, "proj-a", connection_id)
    await tracker.catch_up()
    status = "SELECT connection_status FROM installation_view WHERE installation_id = $1"
    assert await tracker.pool.fetchval(status, installation_id) == "error"
    await connection_in_error(tracker, "proj-b", connection_id, "expired")
    await tracker.catch_up()
    assert await tracker.pool.fetchval(status, installation_id) is None


async def test_the_migration_recomputes_the_status_rows_joined_across_projects(
    scoped: tuple[Tracker, Client],
) -> None:
    tracker, client = scoped
    foreign, own = new_id("conn"), new_id("conn")
    await connection_in_error(tracker, "proj-b", foreign, "b-secret-expired")
    await connection_in_error(tracker, "proj-a", own, "a-revoked")
    crossed, mine = await installation_of(tracker, "proj-a", foreign), await installation_of(tracker, "proj-a", own)
    await tracker.catch_up()
    # A row holding another project's connection status, as sql/018 finds it: no trigger recomputes a write of
    # the joined column itself.
    await tracker.pool.execute("UPDATE installation_view SET connection_status = 'error' WHERE installation_id = $1",
                               crossed)  # fmt: skip
    health = "SELECT health FROM installation_view WHERE installation_id = $1"
    assert await tracker.pool.fetchval(health, crossed) == "unhealthy"  # before

    await run_hardening_migration(tracker)

    assert (await tracker.pool.fetchval(health, crossed), await tracker.pool.fetchval(health, mine)) == (
        "healthy", "unhealthy",
    )  # fmt: skip
    unhealthy = await get(client, "/v1/installations?health=unhealthy", A_TOKEN)
    assert [item["installationId"] for item in unhealthy["items"]] == [mine]


# The quarantine keeps no header that may carry a credential.

CREDENTIALS = {
    "Authorization": "Bearer t-1", "Proxy-Authorization": "Basic dC0y", "Cookie": "session=t-3",
    "X-Api-Key": "t-4", "X-Forwarded-Authorization": "Bearer t-5", "X-Hub-Signature-256": "sha256=t-6",
    "X-Amz-Security-Token": "t-7", "X-Session-Id": "t-8", "X-Client-Secret": "t-9", "X-Password": "t-10",
    "X-Goog-Credential": "t-11", "X-Auth": "t-12", "Signature": "t-13",
}  # fmt: skip


async def test_the_quarantine_keeps_the_delivery_headers_and_no_credential(
    scoped: tuple[Tracker, Client], signer: Signer
) -> None:
    tracker, client = scoped
    body = b'{"not": "a notification"}'
    delivery = {**signer.headers(body, "msg-headers"), "X-Request-Id": "r-1"}
    response = await client.post("/webhooks/ampersand", data=body, headers={**delivery, **CREDENTIALS})
    assert response.status == 400, await response.text()

    stored = await tracker.pool.fetchval("SELECT headers FROM quarantine WHERE delivery_id = 'msg-headers'")
    assert {"svix-id", "svix-timestamp", "svix-signature", "x-request-id", "content-type"} <= stored.keys()
    assert stored["svix-signature"] == delivery["svix-signature"]
    assert not {name.lower() for name in CREDENTIALS} & stored.keys()
    served = (await get(client, "/v1/quarantine", ALL_TOKEN))["items"][0]
    assert served["headers"] == stored
    for value in CREDENTIALS.values():
        assert value not in orjson.dumps(served).decode()


async def test_standard_webhooks_and_kinesis_names_are_kept_and_other_signatures_are_not(
    scoped: tuple[Tracker, Client],
) -> None:
    tracker, _ = scoped
    headers = {
        "Webhook-Id": "msg-1", "Webhook-Timestamp": "1700000000", "Webhook-Signature": "v1,c2ln",
        "kinesis-partition-key": "inst-1", "kinesis-sequence-number": "42",
        "X-Hub-Signature": "sha1=abc", "Stripe-Signature": "t=1,v1=abc", "Sec-WebSocket-Key": "k",
    }  # fmt: skip
    await tracker.quarantine.keep(Refused("webhook", "test", b"{}", "msg-std", headers=headers))
    stored = await tracker.pool.fetchval("SELECT headers FROM quarantine WHERE delivery_id = 'msg-std'")
    assert stored == {
        "webhook-id": "msg-1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,c2ln",
        "kinesis-partition-key": "inst-1", "kinesis-sequence-number": "42",
    }  # fmt: skip


async def test_the_migration_clears_credentials_from_rows_kept_before(scoped: tuple[Tracker, Client]) -> None:
    tracker, _ = scoped
    kept = {"svix-id": "msg-old", "svix-signature": "v1,c2ln", "x-api-key": "t-4", "x-forwarded-authorization": "t-5",
            "x-hub-signature": "sha1=abc", "user-agent": "Svix-Webhooks/1.0"}  # fmt: skip
    await tracker.pool.execute("INSERT INTO quarantine (source, delivery_id, reason, headers, raw)"
                               " VALUES ('webhook', 'msg-old', 'test', $1, '{}')", kept)  # fmt: skip
    plain = {"svix-id": "msg-plain"}
    await tracker.pool.execute("INSERT INTO quarantine (source, delivery_id, reason, headers, raw)"
                               " VALUES ('webhook', 'msg-plain', 'test', $1, '{}')", plain)  # fmt: skip

    await run_hardening_migration(tracker)

    rows = await tracker.pool.fetch("SELECT delivery_id, headers FROM quarantine ORDER BY delivery_id")
    assert {row["delivery_id"]: row["headers"] for row in rows} == {
        "msg-old": {"svix-id": "msg-old", "svix-signature": "v1,c2ln", "user-agent": "Svix-Webhooks/1.0"},
        "msg-plain": plain,
    }


# A pre-signed config URL is served without its query.

CONFIG_URL = f"https://configs.example.com/i/config.json{SIGNED}"
LAST_CONFIG_URL = f"https://configs.example.com/i/last.json{SIGNED}"


async def test_config_urls_are_served_without_their_query_and_logged_whole(
    scoped: tuple[Tracker, Client],
) -> None:
    tracker, client = scoped
    installation_id = new_id("inst")
    fields = installation_fields(installation_id, new_id("conn"), "proj-a")
    await tracker.ingest(message("installation.created", **fields, config=config(), configURL=CONFIG_URL))
    await tracker.ingest(message("installation.updated", **fields, config=config(("account", "lead")),
                                 lastConfig=config(), configURL=CONFIG_URL, lastConfigURL=LAST_CONFIG_URL))  # fmt: skip
    await tracker.catch_up()

    logged = await tracker.pool.fetch("SELECT raw, payload->'data' AS data FROM events ORDER BY position")
    assert [row["data"].get("configURL") for row in logged] == [CONFIG_URL, CONFIG_URL]  # the log keeps it whole
    assert all(b"TOPSECRET" in row["raw"] for row in logged)
    doc = await get(client, f"/v1/installations/{installation_id}", A_TOKEN)
    assert doc["configUrl"] == "https://configs.example.com/i/config.json"
    listed = (await get(client, "/v1/installations", A_TOKEN))["items"]
    timeline = (await get(client, f"/v1/installations/{installation_id}/events", A_TOKEN))["items"]
    assert [(e["data"]["configURL"], e["data"].get("lastConfigURL")) for e in timeline] == [
        ("https://configs.example.com/i/config.json", None),
        ("https://configs.example.com/i/config.json", "https://configs.example.com/i/last.json"),
    ]
    feed = tracker.changes()
    changed = await asyncio.wait_for(anext(feed), 10)
    await feed.aclose()
    assert changed.entity_id == installation_id
    for served in (doc, listed, timeline, changed.document):
        assert b"TOPSECRET" not in orjson.dumps(served)


async def test_a_quarantined_body_is_served_without_url_queries_and_kept_whole(
    scoped: tuple[Tracker, Client], signer: Signer
) -> None:
    tracker, client = scoped
    installation_id = new_id("inst")
    payload = installation_event("installation.created", installation_id, configURL=CONFIG_URL)
    del payload["data"]["groupRef"]  # a known type failing its schema: kept
    body, headers = signer.signed(payload)
    assert (await client.post("/webhooks/ampersand", data=body, headers=headers)).status == 422
    await tracker.quarantine.keep(Refused("import", "test", b"\xff not UTF-8: " + CONFIG_URL.encode(), "line:1"))

    assert b"TOPSECRET" in await tracker.pool.fetchval("SELECT raw FROM quarantine WHERE delivery_id = $1",
                                                       headers["svix-id"])  # fmt: skip
    items = (await get(client, "/v1/quarantine", ALL_TOKEN))["items"]
    binary, text = items
    assert orjson.loads(text["body"])["data"]["configURL"] == "https://configs.example.com/i/config.json"
    assert base64.b64decode(binary["bodyBase64"]) == b"\xff not UTF-8: https://configs.example.com/i/config.json"
    one = await get(client, f"/v1/quarantine/{text['id']}", ALL_TOKEN)
    assert b"TOPSECRET" not in orjson.dumps([items, one])


@pytest.mark.parametrize(
    ("text", "served"),
    [
        (b'{"u":"https://h.example/p?X-Amz-Signature=s\\u0026b=1","n":1}', b'{"u":"https://h.example/p","n":1}'),
        (b'{"u":"https:\\/\\/h.example\\/p?sig=1&a=2"}', b'{"u":"https:\\/\\/h.example\\/p"}'),
        (b'{"u":"https://h.example/p\\u003fsig=1\\u0026a=2"}', b'{"u":"https://h.example/p"}'),
        (b'{"u":"https://h.example/p\\u003Fsig=1"}', b'{"u":"https://h.example/p"}'),
        (b'"see \\"https://h.example/p?sig=1\\" here"', b'"see \\"https://h.example/p\\" here"'),
        (b"https://user:pw@h.example/it's?sig='x' and", b"https://h.example/it's and"),
        (b"HTTP://H.example/p?q=1#part", b"HTTP://H.example/p#part"),
        (b"http://h.example/p and no query", b"http://h.example/p and no query"),
        (b"\xfe https://h.example/p?q=1", b"\xfe https://h.example/p"),
    ],
)
def test_url_queries_are_cut_from_served_text(text: bytes, served: bytes) -> None:
    assert strip_url_queries(text) == served


def test_only_config_url_fields_are_cut_from_event_data() -> None:
    data = {"configURL": CONFIG_URL, "lastConfigURL": LAST_CONFIG_URL, "url": CONFIG_URL}
    assert strip_config_urls("installation.updated", data) == {
        "configURL": "https://configs.example.com/i/config.json",
        "lastConfigURL": "https://configs.example.com/i/last.json",
        "url": CONFIG_URL,  # a notification's `url` (a destination's) is not a config URL
    }
    fetched = {"url": CONFIG_URL, "configURL": 3}
    assert strip_config_urls("tracker.config.unavailable", fetched) == {
        "url": "https://configs.example.com/i/config.json", "configURL": 3,
    }  # fmt: skip
    assert data["configURL"] == CONFIG_URL  # the given data is not changed
    assert strip_config_urls("installation.created", None) is None


# An allow prefix lets no path climb out of it.


@pytest.mark.parametrize(
    "path",
    [
        "/configs/..\\x", "/configs/..%5Cx", "/configs/..%5cadmin", "/configs/a\\..\\..\\admin", "/configs\\..\\admin",
        "/configs/%2e%2e/admin", "/configs/%2E%2E/admin", "/configs/%252e%252e/admin", "/configs/%25252e./admin",
        "/configs/..;x/admin", "/configs/.;x/../admin", "/configs/.. /admin", "/configs/.../admin",
        "/configs/a/%2e", "/configs/a%00b", "/configs/a%0d%0aX-Injected:%201", "/configs/%5C%5Cevil.example/x",
    ],
)  # fmt: skip
def test_an_allow_prefix_refuses_hostile_paths(path: str) -> None:
    allow = ["http://127.0.0.1:8080/configs"]
    assert not is_allowed(URL(f"http://127.0.0.1:8080{path}", encoded=True), allow)


@pytest.mark.parametrize("path", ["/configs/a.json", "/configs/a..b/c.json", "/configs/.well-known/c", "/configs/%41"])
def test_an_allow_prefix_takes_plain_paths_below_it(path: str) -> None:
    assert is_allowed(URL(f"http://127.0.0.1:8080{path}", encoded=True), ["http://127.0.0.1:8080/configs"])


# A request that came through a proxy is never trusted as a loopback client.

PROXIED = [
    {"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}, {"X-Real-IP": "203.0.113.7"},
    {"X-Forwarded-Host": "tracker.example.com"}, {"x-forwarded-proto": "https"}, {"Via": "1.1 proxy"},
]  # fmt: skip


@pytest.fixture
async def open_tracker(make_tracker: MakeTracker) -> AsyncIterator[tuple[Tracker, Client]]:
    """A tracker with neither a webhook secret nor an API token: the local try-out."""
    tracker = make_tracker(webhook_secrets=(), follow_projections=False)
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as client:
        yield tracker, client


@pytest.mark.parametrize("proxy", PROXIED, ids=lambda headers: next(iter(headers)))
async def test_an_unsigned_delivery_through_a_proxy_is_refused_though_from_loopback(
    open_tracker: tuple[Tracker, Client], proxy: dict[str, str]
) -> None:
    tracker, client = open_tracker
    direct = orjson.dumps(installation_event("installation.created", new_id("inst"), config=config()))
    assert (await client.post("/webhooks/ampersand", data=direct)).status == 200  # loopback, no proxy: heard

    proxied = orjson.dumps(installation_event("installation.created", new_id("inst"), config=config()))
    response = await client.post("/webhooks/ampersand", data=proxied, headers=proxy)
    assert response.status == 401
    assert "through a proxy" in (await response.json())["detail"]
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 1
    assert await tracker.pool.fetchval("SELECT count(*) FROM quarantine") == 0
    with pytest.raises(SignatureError, match="not through a proxy"):
        await tracker.webhook.receive(proxied, {name.upper(): value for name, value in proxy.items()}, "127.0.0.1")


@pytest.mark.parametrize("proxy", PROXIED, ids=lambda headers: next(iter(headers)))
async def test_without_a_token_a_change_through_a_proxy_is_refused_though_from_loopback(
    open_tracker: tuple[Tracker, Client], proxy: dict[str, str]
) -> None:
    _, client = open_tracker
    for method, path in (("DELETE", "/v1/quarantine/987654?note=why"), ("POST", "/v1/admin/projections/nope/rebuild"),
                         ("POST", "/v1/installations/no-such-inst/read-schedule/resume")):  # fmt: skip
        direct = await client.request(method, path)
        assert direct.status == 404, (path, await direct.text())  # loopback, no proxy: let through to the route
        proxied = await client.request(method, path, headers=proxy)
        assert proxied.status == 403, (path, await proxied.text())

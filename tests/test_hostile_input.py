"""Hostile input: traversal and SQL-like ids on every route that takes one, JSON nested past every parser's
limit, and senders that dribble their headers or body a byte at a time.

Requests go over raw sockets, so the bytes on the wire are exactly the ones written here: no client
normalizes `..` or re-encodes a path on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker
from tracker.api.openapi import ROUTES
from tracker.ingest.parsing import MAX_DEPTH, SchemaError, parse_record, parse_webhook_body

from .conftest import SECRET, MakeTracker
from .notifications import Signer, config, installation_event, new_id

Client = TestClient[web.Request, web.Application]
TOKEN = "hostile-token-2b7e151628aed2a6"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"
HOSTILE_IDS = [
    "../", "../../../../etc/passwd", "..\\..\\windows\\win.ini", "%2e%2e", "%2e%2e%2f%2e%2e%2f", "..%00",
    "' OR 1=1 --", "'; DROP TABLE events; --", '" OR ""="', "1) OR (1=1", "$1", "%' AND pg_sleep(5) --",
    "\x00", "a\x00b", "x" * 4_000, "ünïcødé ☃ ünï", "\U0001d518\U0001d52b", "\u202egnp.exe", "😀" * 50, "\ufeff",
    "{key}", "%", "\\", " ", "\r\nX-Injected: yes", "\udcff",
]  # fmt: skip
"""Each is sent percent-encoded as one path segment (an id a client could really send)."""
RAW_PATHS = [
    "/v1/installations/../../openapi.json", "/v1/installations/%2e%2e/%2e%2e/readyz",
    "/v1/installations/..%2f..%2fv1%2fstatus",
    "/static/../../tracker/settings.py", "/static/..%2f..%2fsettings.py", "/static/%2e%2e%2f%2e%2e%2fsettings.py",
    "/static/dashboard.js%00.css", "/static//etc/passwd", "/v1/installations/%ff%fe", "/v1/installations/%",
    "/v1/installations/%zz", "/v1/quarantine/-1", "/v1/quarantine/1e3", "/v1/quarantine/99999999999999999999999",
    "/v1/admin/dead-letters/0x10", "/v1/admin/dead-letters/١٢٣",
]  # fmt: skip
"""Sent as they are: dot segments, broken escapes, ids that only look like numbers."""


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


async def raw_request(port: int, request: bytes, timeout: float = 30) -> bytes:
    """Write `request` as is and read the whole answer (the request asks to close the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    assert answer[:9] in {b"HTTP/1.1 ", b"HTTP/1.0 "}, answer[:200]  # 1.0: aiohttp's parser refused the request
    return int(answer[9:12])


@pytest.fixture
async def served(make_tracker: MakeTracker) -> AsyncIterator[tuple[Tracker, Client]]:
    tracker = make_tracker(webhook_secrets=(SECRET,), follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token=TOKEN, body_read_timeout=1.0, keepalive_timeout=2.0)
    await tracker.start()
    await tracker.ingest(installation_event("installation.created", new_id("inst"), config=config()))
    await tracker.catch_up()
    server = TestServer(tracker.web_app())
    # As `tracker serve` does: it bounds a connection that has not sent a whole request yet (the header test).
    await server.start_server(keepalive_timeout=tracker.settings.keepalive_timeout)
    async with TestClient(server) as client:
        yield tracker, client


def routes_with_ids(tracker: Tracker) -> list[tuple[str, str]]:
    """(method, path template) of every route with a path parameter, read off the live router."""
    return sorted({(route.method, _template(route.resource.canonical)) for route in tracker.web_app().router.routes()
                   if route.resource is not None and "{" in route.resource.canonical})  # fmt: skip


async def test_hostile_ids_on_every_route_that_takes_one_are_a_400_or_404(served: tuple[Tracker, Client]) -> None:
    tracker, client = served
    port = client.server.port
    assert port is not None
    routes = routes_with_ids(tracker)
    assert ("GET", "/v1/installations/{}") in routes and ("DELETE", "/v1/quarantine/{}") in routes
    before = await tracker.pool.fetchval("SELECT count(*) FROM events")
    answers: dict[int, int] = {}
    for method, template in routes:
        for hostile in HOSTILE_IDS:
            segment = quote(hostile.encode("utf-8", "surrogatepass"), safe="")
            path = template.replace("{}", segment)
            request = f"{method} {path} HTTP/1.1\r\nHost: t\r\n{AUTH}Content-Length: 0\r\nConnection: close\r\n\r\n"
            status = status_of(await raw_request(port, request.encode()))
            answers[status] = answers.get(status, 0) + 1
            assert status in {400, 404}, (method, template, hostile[:40], status)
    assert answers.get(404, 0) > answers.get(400, 0)  # most reached the routes, not only aiohttp's parser
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == before  # nothing appended, nothing dropped
    assert (await client.get("/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200


async def test_raw_traversal_paths_never_reach_a_file_or_fail(served: tuple[Tracker, Client]) -> None:
    _, client = served
    assert client.server.port is not None
    for path in RAW_PATHS:
        for auth in ("", AUTH):
            request = f"GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n".encode()
            answer = await raw_request(client.server.port, request)
            status = status_of(answer)
            assert status < 500, (path, answer[:300])
            assert b"Settings" not in answer and b"root:" not in answer, path  # no file but the dashboard's own
            if status == 200:  # a dot segment resolved to a real public route: its own answer, nothing else
                assert b'"ready"' in answer or b'"openapi"' in answer, path


async def test_a_request_line_over_the_limit_is_refused_by_the_parser(served: tuple[Tracker, Client]) -> None:
    _, client = served
    assert client.server.port is not None
    request = f"GET /v1/installations/{'x' * 10_000} HTTP/1.1\r\nHost: t\r\n{AUTH}Connection: close\r\n\r\n"
    assert status_of(await raw_request(client.server.port, request.encode())) in {400, 414}


def _nested(depth: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    return opening * depth + closing * depth


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("100,000 arrays as the data", b'{"notificationType": "installation.created", "data": '
         + _nested(100_000) + b"}"),
        ("100,000 objects as the whole body", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        ("100,000 arrays as the body", _nested(100_000)),
        ("300 arrays inside the data object", b'{"notificationType": "future.type", "data": {"x": '
         + _nested(300) + b"}}"),
        ("1,000 arrays inside a config", orjson.dumps(installation_event("installation.created", "inst-deep",
                                                      config={"read": {}})).replace(b'"read":{}', b'"read":'
                                                                                    + _nested(1_000))),
        ("a NUL at the bottom of 900 levels", b'{"notificationType": "future.type", "data": {"x": '
         + b"[" * 900 + b'"\\u0000"' + b"]" * 900 + b"}}"),
    ],
)  # fmt: skip
async def test_deep_nesting_is_a_clear_4xx_kept_in_quarantine_and_the_server_stays_up(
    served: tuple[Tracker, Client], signer: Signer, name: str, body: bytes
) -> None:
    tracker, client = served
    delivery_id = new_id("msg")
    response = await client.post("/webhooks/ampersand", data=body, headers=signer.headers(body, delivery_id))

    assert response.status in {400, 422}, (name, await response.text())
    answer = await response.json()
    said = " ".join([answer.get("detail", ""), *answer.get("problems", [])])
    assert "depth" in said or "nest" in said, answer  # says what is wrong
    kept = await tracker.pool.fetchrow("SELECT raw, reason FROM quarantine WHERE delivery_id = $1", delivery_id)
    assert kept is not None and kept["raw"] == body  # kept whole, for review
    assert (
        await tracker.pool.fetchval("SELECT count(*) FROM events WHERE metadata->>'deliveryId' = $1", delivery_id) == 0
    )
    assert (await client.get("/readyz")).status in {200, 503}  # still answering
    good, headers = signer.signed(installation_event("installation.created", new_id("inst"), config=config()))
    assert (await client.post("/webhooks/ampersand", data=good, headers=headers)).status == 200


def test_nesting_is_bounded_at_max_depth_by_every_door() -> None:
    """What the log's encoder takes is accepted, one level more is refused, by webhook and by record."""
    for depth, accepted in ((MAX_DEPTH - 1, True), (MAX_DEPTH, False)):
        data = b'{"notificationType": "future.type", "data": {"x": ' + _nested(depth) + b"}}"
        record = b'{"metadata": {"topic": "future.type"}, "data": {"x": ' + _nested(depth) + b"}}"
        deep_metadata = b'{"metadata": {"topic": "future.type", "m": ' + _nested(depth) + b'}, "data": {}}'
        for parse, raw in ((parse_webhook_body, data), (parse_record, data), (parse_record, record),
                           (parse_record, deep_metadata)):  # fmt: skip
            if accepted:
                orjson.dumps(parse(raw).data)  # the log could store it
            else:
                with pytest.raises(SchemaError, match=f"more than {MAX_DEPTH} levels"):
                    parse(raw)


async def _dribble(writer: asyncio.StreamWriter, chunks: list[bytes], every: float) -> None:
    with contextlib.suppress(ConnectionError):
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(every)


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before it closed the connection. A byte that arrives after it closed makes its
    kernel reset the connection, which may drop the answer still on its way: then nothing is read."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(1 << 16):
            received += chunk
    return received


async def test_a_body_sent_byte_by_byte_gets_408_and_its_connection_is_closed(
    served: tuple[Tracker, Client], signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    """body_read_timeout (1 s here) bounds the whole body, however steadily its bytes arrive."""
    tracker, client = served
    assert client.server.port is not None
    body = orjson.dumps(installation_event("installation.created", new_id("inst"), config=config()))
    head = "".join(f"{name}: {value}\r\n" for name, value in signer.headers(body).items())
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(f"POST /webhooks/ampersand HTTP/1.1\r\nHost: t\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode())
    dribbling = asyncio.create_task(_dribble(writer, [body[i : i + 1] for i in range(len(body))], 0.05))
    try:
        answer = await asyncio.wait_for(_read_until_closed(reader), 30)  # the server closed the connection
    finally:
        dribbling.cancel()
        writer.close()
    if answer:  # else reset: the answer was lost on the way, the log below still says what it was
        assert status_of(answer) == 408, answer[:300]
        assert b"Connection: close" in answer
    assert [record.status for record in caplog.records if record.getMessage() == "notification rejected"] == [408]
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 1  # the fixture's only: nothing stored


async def test_a_client_dribbling_its_headers_is_cut_off(served: tuple[Tracker, Client]) -> None:
    """aiohttp (3.14) starts the keep-alive timer when a connection opens and closes it if no whole request
    has arrived when it fires: keepalive_timeout is the header phase's bound too (2 s in this fixture)."""
    _, client = served
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    headers = [b"GET /readyz HTTP/1.1\r\n", *(f"X-Slow-{i}: {'y' * 10}\r\n".encode() for i in range(10_000))]
    dribbling = asyncio.create_task(_dribble(writer, headers, 0.05))
    try:
        answer = await asyncio.wait_for(reader.read(), 30)  # EOF once the server cuts it off
    finally:
        dribbling.cancel()
        writer.close()
    assert not dribbling.done() or dribbling.cancelled()  # it was still sending when cut off
    assert answer == b""  # nothing was answered: the request never ended


async def test_fifty_slow_clients_do_not_keep_a_normal_request_from_being_served(
    served: tuple[Tracker, Client], signer: Signer
) -> None:
    _, client = served
    port = client.server.port
    assert port is not None
    slow: list[tuple[asyncio.StreamWriter, asyncio.Task[None]]] = []
    try:
        for index in range(50):  # half dribble headers, half a body
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            if index % 2:
                chunks = [b"POST /webhooks/ampersand HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", *[b"{"] * 10_000]
            else:
                chunks = [b"GET /v1/status HTTP/1.1\r\n", *[b"X-A: b\r\n"] * 10_000]
            slow.append((writer, asyncio.create_task(_dribble(writer, chunks, 0.1))))
        body, headers = signer.signed(installation_event("installation.created", new_id("inst"), config=config()))
        served_meanwhile = await asyncio.wait_for(client.post("/webhooks/ampersand", data=body, headers=headers), 10)
        assert served_meanwhile.status == 200
        status = await asyncio.wait_for(client.get("/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}), 10)
        assert (await status.json())["events"] == 2
    finally:
        for writer, task in slow:
            task.cancel()
            writer.close()


async def test_a_nul_in_the_body_of_a_route_that_stores_it_is_a_400(served: tuple[Tracker, Client]) -> None:
    """An operator's `by` or note, a subscription's URL or projects: jsonb cannot hold a NUL (a 500 before)."""
    tracker, client = served
    stored = [route for route in ROUTES if route.body is not None and route.access.changes]
    assert {route.path for route in stored} >= {"/v1/alerts/subscriptions", "/v1/quarantine/{id}"}
    before = await tracker.pool.fetchval("SELECT count(*) FROM events")
    body = {"by": "ada\u0000", "note": "why\u0000", "url": "https://example.com/\u0000", "projectIds": ["p\u0000"]}
    for route in stored:
        path = re.sub(r"\{[^}]*\}", "x", route.path)
        response = await client.request(route.method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status == 400, (route.method, route.path, response.status, await response.text())
        assert "NUL" in (await response.json())["error"]
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == before

"""Who gets in: every route of the live route table refuses a missing or wrong bearer token, but for exactly
the intended public ones; tokens are compared in constant time; a token never reaches a log or the quarantine.

The walk reads `tracker.web_app()`'s router, so a route added later is covered without touching this file;
one that should be public has to be added to PUBLIC below, on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker

from .conftest import SECRET, MakeTracker
from .notifications import Signer, config, installation_event, new_id

Client = TestClient[web.Request, web.Application]
TOKEN = "access-token-4f0c9b7e2a61d385"
SCOPED = "access-scoped-token-8e1d27c45b90"
PUBLIC = {
    ("POST", "/webhooks/ampersand"),  # authenticated by its Svix signature
    *((method, path) for method in ("GET", "HEAD") for path in ("/readyz", "/openapi.json", "/", "/static/{}")),
}
"""(method, path template) of the routes that need no token: probes, the document, the dashboard's files."""
WRONG = {
    "no header": {},
    "another token": {"Authorization": "Bearer wrong-token"},
    "the token minus its last character": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "the token plus a character": {"Authorization": f"Bearer {TOKEN}x"},
    "the token without the scheme": {"Authorization": TOKEN},
    "the token as a Basic credential": {"Authorization": f"Basic {base64.b64encode(TOKEN.encode()).decode()}"},
    "an empty bearer": {"Authorization": "Bearer "},
}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _concrete(template: str) -> str:
    """A path to request: the dashboard's real file where the route serves files, else an id nobody has."""
    return template.replace("/static/{}", "/static/dashboard.js").replace("{}", "no-such-id")


def routes_of(tracker: Tracker) -> list[tuple[str, str]]:
    """(method, path template) of every route the API serves, HEAD twins of GETs included."""
    app = tracker.web_app()
    return sorted({(route.method, _template(route.resource.canonical)) for route in app.router.routes()
                   if route.resource is not None})  # fmt: skip


async def status_of(client: Client, method: str, path: str, headers: dict[str, str]) -> tuple[int, bool]:
    """The status, and whether it is the bearer check's refusal (an endless stream is closed after the head)."""
    async with client.request(method, path, headers=headers) as response:
        return response.status, response.headers.get("WWW-Authenticate") == "Bearer"


@pytest.fixture(params=["alone", "mounted"])
async def guarded(
    request: pytest.FixtureRequest, make_tracker: MakeTracker
) -> AsyncIterator[tuple[Tracker, Client, str]]:
    """A tracker with an all-projects token and a scoped one, served alone or in a host under a prefix."""
    tracker = make_tracker(webhook_secrets=(SECRET,), follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token=TOKEN, scoped_tokens={SCOPED: frozenset({"proj-1"})})
    await tracker.start()
    app, prefix = tracker.web_app(), ""
    if request.param == "mounted":
        prefix, host = "/api/v1/tracker", web.Application()  # a prefix that itself contains /v1/
        host.add_subapp(f"{prefix}/", app)
        app = host
    async with TestClient(TestServer(app)) as client:
        yield tracker, client, prefix


async def test_every_route_but_the_public_ones_refuses_a_missing_or_wrong_token(
    guarded: tuple[Tracker, Client, str],
) -> None:
    tracker, client, prefix = guarded
    routes = routes_of(tracker)
    assert ("GET", "/v1/installations/{}") in routes and len(routes) > 30  # the walk sees the routes at all

    open_to_all = set()
    for method, template in routes:
        path = prefix + _concrete(template)
        refused = {name: await status_of(client, method, path, headers) for name, headers in WRONG.items()}
        if not any(by_bearer for _, by_bearer in refused.values()):
            open_to_all.add((method, template))
            continue
        assert refused == dict.fromkeys(WRONG, (401, True)), (method, template, refused)
        assert template.startswith("/v1/") or template == "/metrics", (method, template)
        status, by_bearer = await status_of(client, method, path, {"Authorization": f"Bearer {TOKEN}"})
        assert not by_bearer and status != 401, (method, template, status)

    assert open_to_all == PUBLIC


async def test_a_refusal_is_the_same_whatever_was_wrong(guarded: tuple[Tracker, Client, str]) -> None:
    _, client, prefix = guarded
    bodies = set()
    for headers in WRONG.values():
        response = await client.get(f"{prefix}/v1/installations", headers=headers)
        bodies.add((response.status, await response.text()))
    assert bodies == {(401, '{"error":"missing or wrong bearer token"}')}  # no hint of how close a guess was


async def test_an_authorization_header_that_is_not_utf8_is_a_401_not_a_500(
    guarded: tuple[Tracker, Client, str],
) -> None:
    _, client, prefix = guarded
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(f"GET {prefix}/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
                 + b"Authorization: Bearer \xff\xfe" + TOKEN.encode() + b"\r\n\r\n")  # fmt: skip
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]


async def test_every_configured_token_is_compared_in_constant_time_whichever_matches(
    make_tracker: MakeTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hmac.compare_digest against each configured token, all of them every time: neither a matching prefix
    nor which token matched (nor whether any did) changes the work done."""
    tracker = make_tracker(follow_projections=False)
    scoped = {SCOPED: frozenset({"proj-1"}), "another-scoped-token-11": frozenset({"proj-2"})}
    tracker.settings = replace(tracker.settings, api_token=TOKEN, scoped_tokens=scoped)
    await tracker.start()
    compared: list[tuple[bytes, bytes]] = []
    original: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def recording(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return original(given, expected)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    expected = sorted(f"Bearer {token}".encode() for token in (TOKEN, *scoped))
    async with TestClient(TestServer(tracker.web_app())) as client:
        for header in (f"Bearer {TOKEN}", f"Bearer {SCOPED}", "Bearer another-scoped-token-11", f"Bearer {TOKEN}x",
                       f"Bearer {TOKEN[:5]}", ""):  # fmt: skip
            compared.clear()
            await client.get("/v1/health", headers={"Authorization": header})
            assert sorted(candidate for _, candidate in compared) == expected, header
            assert {given for given, _ in compared} == {header.encode()}


async def test_neither_tokens_nor_secrets_reach_the_logs_or_the_quarantine(
    make_tracker: MakeTracker, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = make_tracker(webhook_secrets=(SECRET,), follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token=TOKEN, scoped_tokens={SCOPED: frozenset({"proj-1"})})
    await tracker.start()
    caplog.set_level(logging.DEBUG)
    wrong = "Bearer wrong-token-5d1c0e77a9"
    async with TestClient(TestServer(tracker.web_app())) as client:
        assert (await client.get("/v1/installations", headers={"Authorization": wrong})).status == 401
        assert (await client.get("/v1/status", headers={"Authorization": f"Bearer {SCOPED}"})).status == 403
        # A signed delivery that is not a notification, sent with the token: quarantined, the token not kept.
        body, delivery_id = b'{"not": "a notification"}', new_id("msg")
        headers = {**signer.headers(body, delivery_id), "Authorization": f"Bearer {TOKEN}", "Cookie": f"t={SCOPED}"}
        assert (await client.post("/webhooks/ampersand", data=body, headers=headers)).status == 400
        # A badly signed one with the token: refused and logged, the token not.
        bad = {**signer.headers(body), "svix-signature": "v1,AAAA", "Authorization": f"Bearer {TOKEN}"}
        assert (await client.post("/webhooks/ampersand", data=body, headers=bad)).status == 401
        good, good_headers = signer.signed(installation_event("installation.created", new_id("inst"), config=config()))
        good_headers["Authorization"] = f"Bearer {TOKEN}"
        assert (await client.post("/webhooks/ampersand", data=good, headers=good_headers)).status == 200

    kept = await tracker.pool.fetchrow("SELECT headers, raw FROM quarantine WHERE delivery_id = $1", delivery_id)
    assert kept is not None and kept["raw"] == body
    assert set(kept["headers"]) >= {"svix-id", "svix-signature"}  # the rest of the headers are kept
    assert not {"authorization", "cookie"} & set(kept["headers"])
    stored = await tracker.pool.fetchval("SELECT string_agg(metadata::text, ' ') FROM events")  # the delivery's
    everything = orjson.dumps([[str(value) for value in vars(record).values()] for record in caplog.records])
    assert len(caplog.records) >= 2  # the refusals were logged
    for secret in (TOKEN, SCOPED, SECRET, SECRET.removeprefix("whsec_"), "wrong-token-5d1c0e77a9"):
        assert secret.encode() not in everything, secret
        assert secret not in stored, secret

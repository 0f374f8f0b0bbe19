"""Tokens limited to projects (TRACKER_API_TOKENS): such a token sees its projects' installations,
connections, destinations, issues, counts and changes, and nothing of any other project; an entity of
another project is answered as unknown (404, not 403: its existence is not revealed); the routes of no
project (status, quarantine, admin, metrics) need the all-projects token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker
from tracker.api.scopes import ALL, Scope, TokenConflictError, token_scopes
from tracker.settings import Settings

from .conftest import MakeTracker
from .notifications import config, connection_fields, installation_fields, new_id, notification
from .test_changes import next_change, sse_events

Client = TestClient[web.Request, web.Application]
ALL_TOKEN = "all-projects-token-6c1e0f"
A_TOKEN = "project-a-token-93b27d"
BC_TOKEN = "projects-b-c-token-41f8aa"
SCOPED = {A_TOKEN: frozenset({"proj-a"}), BC_TOKEN: frozenset({"proj-b", "proj-c"})}
PROJECTLESS = {
    ("GET", "/v1/status"), ("GET", "/metrics"), ("GET", "/v1/quarantine"), ("GET", "/v1/quarantine/{}"),
    ("DELETE", "/v1/quarantine/{}"), ("POST", "/v1/quarantine/{}/replay"),
    ("POST", "/v1/admin/projections/{}/rebuild"), ("GET", "/v1/admin/dead-letters"),
    ("GET", "/v1/admin/dead-letters/{}"), ("POST", "/v1/admin/dead-letters/{}/retry"),
    ("POST", "/v1/admin/dead-letters/{}/skip"),
}  # fmt: skip
"""(method, path template) of the routes that belong to no project: a scoped token gets 403 there."""
PUBLIC = {"/webhooks/ampersand", "/readyz", "/openapi.json", "/", "/static/{}"}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Project:
    project_id: str
    installation_id: str
    connection_id: str
    destination_id: str
    integration_id: str


async def populate(tracker: Tracker, project_id: str) -> Project:
    """An installation with two config versions and a paused read, its connection in error, a disabled
    destination: an entity of each kind, an issue of each, in one project."""
    project = Project(project_id, new_id("inst"), new_id("conn"), new_id("dest"), new_id("integ"))
    fields = {**installation_fields(project.installation_id, project.connection_id, project_id),
              "integrationId": project.integration_id}  # fmt: skip
    await tracker.ingest(notification("connection.error", **connection_fields(project.connection_id, project_id),
                                      errors=["expired"]))  # fmt: skip
    await tracker.ingest(notification("installation.created", **fields, config=config()))
    await tracker.ingest(notification("installation.updated", **fields, config=config(("account", "contact")),
                                      lastConfig=config()))  # fmt: skip
    await tracker.ingest(notification("read.schedule.paused", **fields, config=config(), error="auth"))
    await tracker.ingest(notification("destination.webhook.disabled", projectId=project_id,
                                      destinationId=project.destination_id, destinationName="main-webhook",
                                      url="https://example.com/hook"))  # fmt: skip
    await tracker.catch_up()
    return project


@dataclass(frozen=True)
class World:
    tracker: Tracker
    client: Client
    a: Project
    b: Project


@pytest.fixture
async def world(make_tracker: MakeTracker) -> AsyncIterator[World]:
    tracker = make_tracker(follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token=ALL_TOKEN, scoped_tokens=SCOPED)
    await tracker.start()
    b = await populate(tracker, "proj-b")  # first: every change of proj-b precedes proj-a's in the feed
    a = await populate(tracker, "proj-a")
    async with TestClient(TestServer(tracker.web_app())) as client:
        yield World(tracker, client, a, b)


async def get(client: Client, path: str, token: str, status: int = 200) -> Any:
    response = await client.get(path, headers=bearer(token))
    assert response.status == status, (path, await response.text())
    return await response.json()


async def test_lists_hold_only_the_tokens_projects(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    for kind, key, ids in (("installations", "installationId", lambda p: p.installation_id),
                           ("connections", "connectionId", lambda p: p.connection_id),
                           ("destinations", "destinationId", lambda p: p.destination_id)):  # fmt: skip

        async def listed(token: str, query: str = "", kind: str = kind, key: str = key) -> set[str]:
            return {item[key] for item in (await get(client, f"/v1/{kind}{query}", token))["items"]}

        assert await listed(ALL_TOKEN) == {ids(a), ids(b)}  # before: both are there
        assert await listed(A_TOKEN) == {ids(a)}
        assert await listed(BC_TOKEN) == {ids(b)}
        assert await listed(A_TOKEN, "?projectId=proj-b") == set()  # asking for another project: nothing
        assert await listed(A_TOKEN, "?projectId=proj-a") == {ids(a)}
    page = await get(client, "/v1/installations?limit=1", A_TOKEN)
    assert page["nextCursor"] is None  # the other project's rows do not even make a second page


async def test_an_entity_of_another_project_is_answered_as_an_unknown_one(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    unknown = Project("proj-x", new_id("inst"), new_id("conn"), new_id("dest"), new_id("integ"))
    for template in ("/v1/installations/{i}", "/v1/installations/{i}/events", "/v1/installations/{i}/config-versions",
                     "/v1/installations/{i}/config-versions/diff", "/v1/connections/{c}", "/v1/destinations/{d}",
                     "/v1/integrations/{g}"):  # fmt: skip

        def path(p: Project, template: str = template) -> str:
            ids = {"i": p.installation_id, "c": p.connection_id, "d": p.destination_id, "g": p.integration_id}
            return template.format(**ids)

        assert (await world.client.get(path(a), headers=bearer(A_TOKEN))).status == 200, path(a)
        assert (await world.client.get(path(b), headers=bearer(ALL_TOKEN))).status == 200, path(b)
        hidden = await get(client, path(b), A_TOKEN, 404)
        absent = await get(client, path(unknown), A_TOKEN, 404)
        assert hidden.keys() == absent.keys() == {"error"}, path(b)
        for p, answer in ((b, hidden), (unknown, absent)):  # the same words, but for the id asked about
            for value in vars(p).values():
                answer["error"] = answer["error"].replace(value, "ID")
        assert hidden == absent, path(b)


async def test_an_operator_action_on_another_projects_entity_is_404_and_appends_nothing(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    head = await world.tracker.event_log.head()
    for template, project in (("/v1/installations/{}/read-schedule/resume", b), ("/v1/destinations/{}/enable", b)):
        entity = project.installation_id if "installations" in template else project.destination_id
        response = await client.post(template.format(entity), headers=bearer(A_TOKEN), json={"by": "mallory"})
        assert response.status == 404, await response.text()
    assert await world.tracker.event_log.head() == head  # nothing was appended
    resumed = await client.post(f"/v1/installations/{a.installation_id}/read-schedule/resume", headers=bearer(A_TOKEN))
    enabled = await client.post(f"/v1/destinations/{a.destination_id}/enable", headers=bearer(A_TOKEN))
    assert (resumed.status, enabled.status) == (201, 201)
    assert (await client.post(f"/v1/destinations/{b.destination_id}/enable", headers=bearer(BC_TOKEN))).status == 201


async def test_issues_health_and_integrations_count_only_the_tokens_projects(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    everything = await get(client, "/v1/issues?limit=1000", ALL_TOKEN)
    assert {issue["projectId"] for issue in everything["items"]} == {"proj-a", "proj-b"}  # before
    mine = await get(client, "/v1/issues?limit=1000", A_TOKEN)
    assert mine["items"] and {issue["projectId"] for issue in mine["items"]} == {"proj-a"}
    assert len(mine["items"]) * 2 == len(everything["items"])
    assert (await get(client, f"/v1/issues?installationId={b.installation_id}", A_TOKEN))["items"] == []
    assert (await get(client, "/v1/issues?projectId=proj-b", A_TOKEN))["items"] == []

    overall, own = await get(client, "/v1/health", ALL_TOKEN), await get(client, "/v1/health", A_TOKEN)
    assert overall["installations"]["total"] == 2
    assert own["installations"]["total"] == 1
    assert {code: count * 2 for code, count in own["openIssues"].items()} == overall["openIssues"]
    other = await get(client, "/v1/health?projectId=proj-b", A_TOKEN)
    assert other["installations"]["total"] == 0 and other["openIssues"] == {}

    integrations = await get(client, "/v1/integrations", A_TOKEN)
    assert [item["integrationId"] for item in integrations["items"]] == [a.integration_id]
    assert {item["integrationId"] for item in (await get(client, "/v1/integrations", ALL_TOKEN))["items"]} == {
        a.integration_id, b.integration_id,
    }  # fmt: skip
    assert (await get(client, "/v1/integrations?projectId=proj-b", A_TOKEN))["items"] == []


async def test_the_change_feed_sends_only_the_tokens_projects(world: World) -> None:
    a, b = world.a, world.b
    mine = {("installation", a.installation_id), ("connection", a.connection_id), ("destination", a.destination_id)}
    seen: set[tuple[str, str]] = set()
    async with world.client.get("/v1/changes?after=0", headers=bearer(A_TOKEN)) as response:
        assert response.status == 200
        events = sse_events(response)
        while not mine <= seen:  # proj-b's changes all came before these: had any been sent, it is seen here
            change = orjson.loads((await next_change(events))["data"])
            assert change["document"]["projectId"] == "proj-a", change
            seen.add((change["entity"], change["entityId"]))
    assert seen == mine
    assert b.installation_id not in {entity_id for _, entity_id in seen}


async def test_the_routes_of_no_project_need_the_all_projects_token(world: World) -> None:
    """Walks the live route table: a route that does not apply the scope refuses scoped tokens, so a new
    route is closed to them until its declaration makes it scope-aware (`Access.SCOPED`, tracker/api/routing.py)
    and it is listed here."""
    client = world.client
    document = await (await client.get("/openapi.json")).json()
    documented = {(m.upper(), _template(p)): o for p, ops in document["paths"].items() for m, o in ops.items()}
    refused = set()
    for route in world.tracker.web_app().router.routes():
        method, template = route.method, _template(route.resource.canonical) if route.resource else ""
        if template in PUBLIC or method == "HEAD":
            continue
        path = template.replace("{}", "no-such-id")
        async with client.request(method, path, headers=bearer(A_TOKEN)) as response:
            if response.status == 403:
                refused.add((method, template))
                assert "TRACKER_API_TOKEN" in (await response.json())["error"]
        described = documented[(method, template)]["responses"].get("403", {}).get("description", "")
        assert ("TRACKER_API_TOKENS" in described) == ((method, template) in PROJECTLESS), (method, template)
    assert refused == PROJECTLESS
    for path in ("/v1/status", "/v1/quarantine", "/v1/admin/dead-letters", "/metrics"):
        assert (await client.get(path, headers=bearer(ALL_TOKEN))).status == 200, path


def test_scoped_tokens_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"TRACKER_API_TOKENS": " t0ken-a=proj-a\n t0ken-bc=proj-b,proj-c,  abc===p "})
    assert settings.scoped_tokens == {
        "t0ken-a": frozenset({"proj-a"}), "t0ken-bc": frozenset({"proj-b", "proj-c"}), "abc==": frozenset({"p"}),
    }  # fmt: skip
    assert "t0ken" not in repr(settings)
    assert Settings.from_env({}).scoped_tokens == {}


@pytest.mark.parametrize(
    "text", ["secret-token", "secret-token=", "=proj-a", "secret-token=,", "secret-token=p secret-token=q"]
)
def test_a_malformed_entry_is_refused_without_quoting_the_token(text: str) -> None:
    with pytest.raises(ValueError, match="TRACKER_API_TOKENS: entry") as refused:
        Settings.from_env({"TRACKER_API_TOKENS": text})
    assert "secret-token" not in str(refused.value)


def test_a_token_is_all_projects_or_scoped_never_both() -> None:
    assert token_scopes(Settings()) == {}
    settings = Settings(api_token="t-all", scoped_tokens={"t-a": frozenset({"proj-a"})})
    assert token_scopes(settings) == {"t-all": ALL, "t-a": Scope(frozenset({"proj-a"}))}
    with pytest.raises(TokenConflictError):
        token_scopes(replace(settings, api_token="t-a"))

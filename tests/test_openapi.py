"""GET /openapi.json: it names exactly the routes the router has, it is a valid OpenAPI document, and real
answers (successes and errors) match the schemas it gives for them, with no key the schema does not name."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tracker import Tracker
from tracker.api import schemas
from tracker.api.openapi import document

from .conftest import MakeTracker
from .notifications import Signer, config, connection_fields, installation_event, new_id, notification
from .test_dead_letters import POISONED, poisoned_story

Client = TestClient[web.Request, web.Application]


def _template(path: str) -> str:
    """`/v1/installations/{key}` and `/v1/installations/{installationId}` are one route."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route; HEAD is aiohttp's automatic twin of each GET, not a route of ours."""
    return {
        (route.method, _template(route.resource.canonical))
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), _template(path)) for path, operations in doc["paths"].items() for method in operations}


async def test_every_route_is_documented_and_every_documented_route_exists(tracker: Tracker) -> None:
    served, documented = served_routes(tracker.web_app()), documented_routes(document())

    assert served - documented == set(), "routes missing from tracker/api/openapi.py"
    assert documented - served == set(), "documented routes the router does not have"
    assert ("POST", "/webhooks/ampersand") in served  # the walk sees the routes at all


def test_the_document_is_valid_openapi() -> None:
    validate(document())  # raises on any violation of the OpenAPI 3.1 schema


def test_every_list_filter_and_its_values_are_documented() -> None:
    parameters = {p["name"]: p["schema"] for p in document()["paths"]["/v1/installations"]["get"]["parameters"]}

    assert parameters["health"]["enum"] == ["healthy", "degraded", "unhealthy", "deleted"]
    assert parameters["backfill"]["enum"] == ["pending", "done"]
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    assert {"projectId", "provider", "integrationId", "groupRef", "connectionId", "cursor", "minPosition"} <= set(
        parameters
    )


def closed(schema: Any) -> Any:
    """The schema with every object that names its properties closed to any other key. The answers the API
    assembles are closed in the document already; the read models' views are left open there (a rebuild serves
    the documents it has not rewritten yet), but here, on fresh documents, a key no model names fails too."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    shut = {key: closed(value) for key, value in schema.items()}
    if isinstance(schema.get("properties"), dict) and "additionalProperties" not in schema:
        shut["additionalProperties"] = False
    return shut


class Answers:
    """Checks each answer against the schema the document gives for its route and status."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.doc = document()
        self.components = closed(self.doc["components"])
        self.checked: set[tuple[str, str, int]] = set()

    async def check(
        self,
        method: str,
        template: str,
        path: str,
        status: int,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        data = body if isinstance(body, bytes) else None if body is None else orjson.dumps(body)
        response = await self.client.request(method, path, data=data, headers=headers)
        text = await response.text()
        assert response.status == status, (method, path, text)
        documented = self.doc["paths"][template][method.lower()]["responses"]
        assert str(status) in documented, f"{method} {template} answers {status}, which is not documented"
        content = documented[str(status)]["content"]
        media = response.content_type
        assert media in content, (method, path, media)
        if media == "application/json":
            schema = {**content[media]["schema"], "components": self.components}
            errors = sorted(Draft202012Validator(schema).iter_errors(orjson.loads(text)), key=str)
            assert not errors, (method, path, status, [f"{list(e.absolute_path)}: {e.message}" for e in errors])
        self.checked.add((method, template, status))
        return orjson.loads(text) if media == "application/json" else text


async def test_real_answers_match_their_documented_schemas(client: Client, tracker: Tracker, signer: Signer) -> None:
    answers = Answers(client)
    check = answers.check
    installation_id, connection_id = new_id("inst"), new_id("conn")
    created = installation_event("installation.created", installation_id, config=config(destination="hook"))
    created["data"]["connectionId"] = connection_id
    hook = "/webhooks/ampersand"
    for status, payload in ((200, created), (400, {"no": "type"}), (422, notification("read.backfill.done"))):
        body, headers = signer.signed(payload)
        await check("POST", hook, hook, status, body=body, headers=headers)
    await check("POST", hook, hook, 401, body=body, headers={**headers, "svix-signature": "v1,Zm9v"})
    updated = installation_event("installation.updated", installation_id, config=config(("account", "contact")),
                                 lastConfig=config(destination="hook"))  # fmt: skip
    updated["data"]["connectionId"] = connection_id
    await tracker.ingest(updated)
    await tracker.ingest(installation_event("read.schedule.paused", installation_id, config=config(), error="auth"))
    await tracker.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    await tracker.ingest(notification("destination.webhook.disabled", projectId="proj-1", destinationId="dest-1",
                                      destinationName="hook", url="https://hook.example"))  # fmt: skip
    await tracker.catch_up()

    one, events = "/v1/installations/{installationId}", "/v1/installations/{installationId}/events"
    versions = "/v1/installations/{installationId}/config-versions"
    page = await check("GET", "/v1/installations", "/v1/installations?limit=1", 200)
    assert page["items"][0]["installationId"] == installation_id
    await check("GET", "/v1/installations", "/v1/installations?health=sick", 400)
    await check("GET", "/v1/installations", "/v1/installations?colour=red", 400)
    installation = await check("GET", one, f"/v1/installations/{installation_id}?minPosition=1", 200)
    assert installation["health"]["status"] == "unhealthy"
    await check("GET", one, "/v1/installations/nope", 404)
    await check("GET", one, f"/v1/installations/{installation_id}?minPosition=999999", 503)
    await check("GET", events, f"/v1/installations/{installation_id}/events?limit=2", 200)
    await check("GET", events, "/v1/installations/nope/events", 404)
    await check("GET", versions, f"/v1/installations/{installation_id}/config-versions", 200)
    diff = await check("GET", f"{versions}/diff", f"/v1/installations/{installation_id}/config-versions/diff", 200)
    assert diff["changes"]
    await check("GET", f"{versions}/diff", f"/v1/installations/{installation_id}/config-versions/diff?from=x", 400)
    await check("GET", "/v1/connections", "/v1/connections?status=error", 200)
    await check("GET", "/v1/connections/{connectionId}", f"/v1/connections/{connection_id}", 200)
    await check("GET", "/v1/destinations", "/v1/destinations?disabled=true", 200)
    await check("GET", "/v1/destinations/{destinationId}", "/v1/destinations/dest-1", 200)
    await check("GET", "/v1/issues", "/v1/issues?status=open", 200)
    await check("GET", "/v1/issues", "/v1/issues?code=nope", 400)
    await check("GET", "/v1/health", "/v1/health", 200)
    await check("GET", "/v1/integrations", "/v1/integrations", 200)
    await check("GET", "/v1/integrations/{integrationId}", "/v1/integrations/integ-1", 200)
    await check("GET", "/v1/integrations/{integrationId}", "/v1/integrations/nope", 404)
    resume = "/v1/installations/{installationId}/read-schedule/resume"
    await check("POST", resume, f"/v1/installations/{installation_id}/read-schedule/resume", 201, body={"by": "ada"})
    await check("POST", resume, "/v1/installations/nope/read-schedule/resume", 404)
    await check("POST", "/v1/destinations/{destinationId}/enable", "/v1/destinations/dest-1/enable", 201)
    kept = await check("GET", "/v1/quarantine", "/v1/quarantine", 200)
    first = kept["items"][0]["id"]
    await check("GET", "/v1/quarantine/{id}", f"/v1/quarantine/{first}", 200)
    await check("GET", "/v1/quarantine/{id}", "/v1/quarantine/0", 404)
    await check("POST", "/v1/quarantine/{id}/replay", f"/v1/quarantine/{first}/replay", 422)
    await check("DELETE", "/v1/quarantine/{id}", f"/v1/quarantine/{first}", 400)
    await check("DELETE", "/v1/quarantine/{id}", f"/v1/quarantine/{first}", 200, body={"note": "a test"})
    await check("DELETE", "/v1/quarantine/{id}", f"/v1/quarantine/{first}", 409, body={"note": "again"})
    await check("GET", "/v1/status", "/v1/status", 200)
    await check("GET", "/readyz", "/readyz", 503)  # no runner has beaten: not ready, and it says why
    await check("GET", "/metrics", "/metrics", 200)
    await check("GET", "/openapi.json", "/openapi.json", 200)
    await check("GET", "/v1/changes", "/v1/changes?after=x", 400)  # a 200 is an endless stream: not read here
    await check("GET", "/", "/", 200)
    await check("GET", "/static/{name}", "/static/dashboard.js", 200)
    await check("GET", "/static/{name}", "/static/nope.js", 404)

    assert len(answers.checked) == 42  # each call above checked a distinct (method, route, status)


def test_the_answers_the_api_assembles_are_closed_in_the_document() -> None:
    components = document()["components"]["schemas"]
    assembled = {
        name
        for name, model in vars(schemas).items()
        if isinstance(model, type) and issubclass(model, schemas.Closed) and model is not schemas.Closed
    }
    assembled |= {"ConfigVersionContent", "ListedIssue"}  # a view's fields and more: pydantic dataclasses
    assert {"Status", "Freshness", "Rebuild", "KinesisStream", "Problem"} <= assembled  # the walk sees them
    for name in assembled:
        assert components[name]["additionalProperties"] is False, name
    assert "additionalProperties" not in components["InstallationView"]  # a view: open in the document


async def test_the_status_matches_its_schema_with_every_part_present(make_tracker: MakeTracker) -> None:
    """A dead letter, a rebuild and a Kinesis shard, so that each part of `/v1/status` is there to be checked."""
    tracker = make_tracker(follow_projections=False, read_models=POISONED)
    tracker.settings = replace(tracker.settings, api_token="status-token-7d2e")
    await tracker.start()
    await poisoned_story(tracker)
    await tracker.rebuild(["connections"])
    await tracker.pool.execute(
        "INSERT INTO kinesis_shards (stream, shard_id, parent_ids, checkpoint, checkpointed_at, owner, lease_expires,"
        " millis_behind) VALUES ('orders', 'shard-1', '{shard-0}', 42, now(), 'me', now() + interval '1 minute', 7)"
    )
    async with TestClient(TestServer(tracker.web_app())) as client:
        answers = Answers(client)
        status = await answers.check("GET", "/v1/status", "/v1/status", 200,
                                     headers={"Authorization": "Bearer status-token-7d2e"})  # fmt: skip

    by_name = {projection["name"]: projection for projection in status["projections"]}
    assert by_name["installations"]["deadLetters"] == {"retrying": 1}
    assert by_name["connections"]["rebuild"]["phase"] == "done"
    assert [(stream["stream"], [shard["shardId"] for shard in stream["shards"]]) for stream in status["kinesis"]] == [
        ("orders", ["shard-1"])
    ]


async def test_with_a_token_v1_needs_it_but_the_document_is_public(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False)
    tracker.settings = replace(tracker.settings, api_token="openapi-token-123")
    await tracker.start()
    async with TestClient(TestServer(tracker.web_app())) as client:
        answers = Answers(client)
        await answers.check("GET", "/v1/status", "/v1/status", 401)
        doc = await answers.check("GET", "/openapi.json", "/openapi.json", 200)
    assert doc["servers"] == [{"url": "/"}]
    assert doc["paths"]["/openapi.json"]["get"]["security"] == []
    assert doc["security"] == [{"bearerAuth": []}]


async def test_mounted_under_a_prefix_the_document_names_it(tracker: Tracker) -> None:
    host = web.Application()
    host.add_subapp("/tracker/", tracker.web_app())
    async with TestClient(TestServer(host)) as client:
        response = await client.get("/tracker/openapi.json")
        assert response.status == 200
        assert (await response.json())["servers"] == [{"url": "/tracker"}]


NO_DATABASE = ("/metrics", "/openapi.json", "/", "/static/{name}")


def test_errors_every_route_can_give_are_documented() -> None:
    for path, operations in document()["paths"].items():
        for method, operation in operations.items():
            responses, public = operation["responses"], operation.get("security") == []
            # The token guards every route but the public ones; the webhook's 401 is its signature check.
            assert ("401" in responses) == (not public or path == "/webhooks/ampersand"), (method, path)
            # The middleware answers 503 while the database is down; some routes need none.
            assert ("503" in responses) == (path not in NO_DATABASE), (method, path)
            assert all(code.isdigit() for code in responses)

"""Health as properties, against the real database: hypothesis draws the life of one installation, its
connections and the destination its config names, and delivers it as Ampersand and an operator would.

- redeliveries, and where the runners happen to catch up, change nothing;
- an installation's health depends on its own, its connection's and its destinations' events alone;
- a rebuild gives the live state, the columns the triggers keep and the issues table included.

Every example tells its story with fresh ids, so examples share the database but never an entity. Two
trackers on one database play two processes: either may ingest, either may fold.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from projections.connections import CONNECTIONS
from projections.destinations import DESTINATIONS
from projections.health import served_health
from projections.installations import INSTALLATIONS
from projections.issues import Issue
from projections.read_model import ReadModel
from tracker import Tracker
from tracker.domain.recorded import Recorded
from tracker.ingest.operator import OperatorAction
from tracker.store.issues import IssueFilters

from .conftest import MakeTracker
from .notifications import config, connection_fields, installation_fields, new_id, notification

EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    # The trackers are made once per test and shared by its examples; fresh ids keep the examples apart.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
OPERATOR_KINDS = frozenset({"resume", "enable"})
OPERATOR = OperatorAction(by="ops@example.com")


# The cast and the story -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cast:
    """The ids a story is told with: the same story told with another cast touches other entities."""

    project: str
    installation: str
    connection: str
    spare_connection: str
    """Where an `installation.created` or `installation.updated` may put the installation instead."""
    destination: str
    destination_name: str

    def connection_id(self, role: str) -> str:
        return self.connection if role == "main" else self.spare_connection

    def streams(self) -> tuple[str, ...]:
        return (
            f"installation:{self.installation}",
            f"connection:{self.connection}",
            f"connection:{self.spare_connection}",
            f"destination:{self.destination}",
        )


def new_cast(project: str | None = None, destination_name: str | None = None) -> Cast:
    return Cast(
        project=project or new_id("proj"),
        installation=new_id("inst"),
        connection=new_id("conn"),
        spare_connection=new_id("conn"),
        destination=new_id("dest"),
        destination_name=destination_name or new_id("hook"),
    )


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happens in a story: a notification, or an operator action (`resume`, `enable`)."""

    kind: str
    connection: str = "main"
    """main | spare: the connection an installation notification names, or the one a connection.* is about."""
    names_destination: bool = True
    """Whether a config sends to the cast's destination (else to a name no destination has); for a
    `destination.webhook.disabled`, whether the destination still has its name (else it was renamed)."""
    object_name: str = "account"
    success: bool = True
    day: int = 1
    """Triggered reads: the window is that day of November 2026."""
    by_url: bool = False
    """An `installation.updated` that gives only a configURL."""


def payload(step: Step, cast: Cast) -> dict[str, Any]:
    """The notification `step` is when told with `cast`."""
    if step.kind.startswith("connection."):
        errors = {"errors": ["invalid_grant"]} if step.kind == "connection.error" else {}
        return notification(step.kind, **connection_fields(cast.connection_id(step.connection), cast.project), **errors)
    if step.kind == "destination.webhook.disabled":
        return notification(
            step.kind,
            projectId=cast.project,
            destinationId=cast.destination,
            destinationName=cast.destination_name if step.names_destination else f"renamed-{cast.destination}",
            url=f"https://hooks.example/{cast.destination}",
        )
    fields = installation_fields(cast.installation, cast.connection_id(step.connection), cast.project)
    return notification(step.kind, **fields, **_installation_data(step, cast))


PREVIOUS = "https://configs.example/previous"
"""An update names the config it replaced; by URL, so that the tracker records no missed update."""


def _installation_data(step: Step, cast: Cast) -> dict[str, Any]:
    destination = cast.destination_name if step.names_destination else f"unused-{cast.installation}"
    match step.kind:
        case "installation.created" | "installation.deleted":
            return {"config": config((step.object_name,), destination=destination)}
        case "read.schedule.paused":
            return {"config": config((step.object_name,), destination=destination), "error": "Authentication failed"}
        case "installation.updated" if step.by_url:
            return {"configURL": f"https://configs.example/{cast.installation}", "lastConfigURL": PREVIOUS}
        case "installation.updated":
            return {"config": config((step.object_name,), destination=destination), "lastConfigURL": PREVIOUS}
        case "read.triggered.done" | "read.triggered.error":
            window = {
                "fromTimestamp": f"2026-11-0{step.day}T00:00:00Z",
                "untilTimestamp": f"2026-11-0{step.day + 1}T00:00:00Z",
            }
            return {"objectName": step.object_name, **window, **({"error": "timeout"} if "error" in step.kind else {})}
        case "write.async.done":
            outcome = {"successfulRecordIds": ["r1"]} if step.success else {"errors": ["INVALID_FIELD"]}
            return {"objectName": step.object_name, "success": step.success, **outcome}
        case "subscribe.create.error":
            return {"error": "no such field"}
    return {"objectName": step.object_name}  # read.backfill.done


OBJECTS = st.sampled_from(["account", "contact"])
ROLES = st.sampled_from(["main", "main", "spare"])
CONFIGURES = {"names_destination": st.booleans(), "object_name": OBJECTS, "connection": ROLES}
CONNECTION_KINDS = ("connection.error", "connection.refreshed", "connection.deleted")
NOTIFICATION_STEPS = st.one_of(
    st.builds(Step, st.just("installation.created"), **CONFIGURES),
    st.builds(Step, st.just("installation.updated"), **CONFIGURES, by_url=st.booleans()),
    st.builds(Step, st.just("installation.deleted")),
    st.builds(Step, st.just("read.schedule.paused")),
    st.builds(Step, st.just("read.backfill.done"), object_name=OBJECTS),
    st.builds(
        Step,
        st.sampled_from(["read.triggered.error", "read.triggered.done"]),
        object_name=OBJECTS,
        day=st.integers(1, 3),
    ),
    st.builds(Step, st.just("write.async.done"), object_name=OBJECTS, success=st.booleans()),
    st.builds(Step, st.just("subscribe.create.error")),
    *(st.builds(Step, st.just(kind), connection=ROLES) for kind in CONNECTION_KINDS),
    st.builds(Step, st.just("destination.webhook.disabled"), names_destination=st.sampled_from([True, True, False])),
)
OPERATOR_STEPS = st.builds(Step, st.sampled_from(sorted(OPERATOR_KINDS)))


def is_installation_step(step: Step) -> bool:
    return not step.kind.startswith(("connection.", "destination.")) and step.kind != "enable"


def playable(steps: list[Step]) -> list[Step]:
    """The steps as they can happen: an installation notification names the connection the installation is
    on, a paused schedule or a deletion carries the config in force (created and updated set both), and an
    operator acts only on an entity the tracker has heard of (and resumes no deleted installation)."""
    played: list[Step] = []
    held, heard = Step("installation.created"), set()
    for drawn in steps:
        step = drawn
        if step.kind == "installation.created" or (step.kind == "installation.updated" and not step.by_url):
            held = step
        elif step.kind == "installation.updated":  # by URL: the config stays what it was
            held = replace(held, connection=step.connection)
        elif step.kind in {"read.schedule.paused", "installation.deleted"}:
            step = replace(step, connection=held.connection, names_destination=held.names_destination,
                           object_name=held.object_name)  # fmt: skip
        elif is_installation_step(step):
            step = replace(step, connection=held.connection)
        needs = {"resume": "installation", "enable": "destination"}.get(step.kind)
        if needs is not None and needs not in heard:
            continue
        if step.kind == "resume" and "deleted" in heard:  # the API refuses to act on a deleted installation
            continue
        heard.add("installation" if is_installation_step(step) else step.kind.split(".")[0])
        if step.kind == "installation.deleted":
            heard.add("deleted")
        played.append(step)
    return played


def stories(min_size: int = 3, max_size: int = 12) -> st.SearchStrategy[list[Step]]:
    """Stories with at least one installation event, so that there is an installation to look at."""
    return (
        st.lists(st.one_of(NOTIFICATION_STEPS, OPERATOR_STEPS), min_size=min_size, max_size=max_size)
        .map(playable)
        .filter(lambda story: any(is_installation_step(step) for step in story))
    )


# Delivery plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver step `index` of story `story` through tracker `by`; a second time is a redelivery."""

    story: int
    index: int
    by: int = 0
    copies: int = 0
    """Redeliveries sent at the same time as this one: one group commit may hold them all."""


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Fold every read model up to the head, in tracker `by`."""

    by: int


Action = Send | CatchUp
BY = st.integers(0, 1)


def in_order(stories: list[list[Step]]) -> list[Action]:
    """Each story in turn, each step once (`play` catches up at the end): the plain way to tell them."""
    return [Send(n, index) for n, story in enumerate(stories) for index in range(len(story))]


@st.composite
def with_redeliveries(draw: st.DrawFn, story: list[Step]) -> list[Action]:
    """The story in order, with redeliveries of steps already sent and catch-ups at random places."""
    plan: list[Action] = []
    for index, step in enumerate(story):
        operator = step.kind in OPERATOR_KINDS  # an operator action is no delivery: twice is two actions
        plan.append(Send(0, index, by=draw(BY), copies=0 if operator else draw(st.integers(0, 1))))
        sent = [i for i in range(index + 1) if story[i].kind not in OPERATOR_KINDS]
        for _ in range(draw(st.integers(0, 2))):
            if sent and draw(st.booleans()):
                plan.append(Send(0, draw(st.sampled_from(sent)), by=draw(BY)))
            else:
                plan.append(CatchUp(draw(BY)))
    return plan


@st.composite
def interleaved(draw: st.DrawFn, stories: list[list[Step]]) -> list[Action]:
    """The stories merged in a random order (each keeps its own), with catch-ups at random places."""
    turns = draw(st.permutations([n for n, story in enumerate(stories) for _ in story]))
    told = [0] * len(stories)
    plan: list[Action] = []
    for n in turns:
        plan.append(Send(n, told[n], by=draw(BY)))
        told[n] += 1
        if draw(st.booleans()):
            plan.append(CatchUp(draw(BY)))
    return plan


async def play(
    trackers: tuple[Tracker, Tracker],
    casts: list[Cast],
    stories: list[list[Step]],
    plan: list[Action],
    check: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Carry out the plan, then catch up, so that the read models show every step.

    `check` runs after each catch-up: every state the read models pass through must hold, not only the last.
    """
    for action in [*plan, CatchUp(0)]:
        match action:
            case CatchUp(by):
                await trackers[by].catch_up()
                if check is not None:
                    await check()
            case Send(n, index, by, copies):
                sends = [perform(trackers[by], stories[n][index], casts[n], index) for _ in range(1 + copies)]
                await asyncio.gather(*sends)


async def perform(tracker: Tracker, step: Step, cast: Cast, index: int) -> None:
    if step.kind == "resume":
        await tracker.resume_read_schedule(cast.installation, OPERATOR)
    elif step.kind == "enable":
        await tracker.enable_destination(cast.destination, OPERATOR)
    else:  # the delivery id names the step: sending it again is a redelivery
        await tracker.ingest(payload(step, cast), delivery_id=f"{cast.installation}/{index}")


# What the tracker serves, and what it should serve -----------------------------------------------------


async def served(tracker: Tracker, cast: Cast) -> dict[str, Any]:
    """The installation's served health, the `health` column its list filters on, and its issue history."""
    installation = await tracker.installation(cast.installation)
    column = await tracker.pool.fetchval(
        "SELECT health FROM installation_view WHERE installation_id = $1", cast.installation
    )
    issues = await tracker.issue_history(IssueFilters(installation_id=cast.installation), limit=1000)
    return {
        "health": installation["health"] if installation else None,
        "column": column,
        "issues": sorted(issues.items, key=lambda item: (item["entity"], item["entityId"], item["code"])),
    }


async def assert_columns_agree(tracker: Tracker, casts: list[Cast]) -> None:
    """The `health` column the list filters on (kept by triggers) says what the served document says."""
    for cast in casts:
        now = await served(tracker, cast)
        if now["health"] is not None:
            assert now["column"] == now["health"]["status"]


async def assert_as_folded(tracker: Tracker, cast: Cast) -> None:
    """The served health, the `health` column and the issue history are those of the cast's streams alone."""
    actual, pure = await served(tracker, cast), await expected(tracker, cast)
    assert actual["health"] == pure["health"]
    assert actual["column"] == pure["column"]
    assert actual["issues"] == pure["issues"]


def outline(now: dict[str, Any]) -> dict[str, Any]:
    """What of `served` does not depend on when the notifications arrived (the ids and times do)."""
    health = now["health"]
    return {
        "status": health and health["status"],
        "reasons": health and [reason["code"] for reason in health["reasons"]],
        "column": now["column"],
        "issues": [
            (item["entity"], item["code"], item["status"], item["occurrences"], item["reopened"])
            for item in now["issues"]
        ],
    }


ISSUE = TypeAdapter(Issue)


async def expected(tracker: Tracker, cast: Cast) -> dict[str, Any]:
    """What `served` should give, computed purely: fold the cast's streams, read back from the log, with
    the read models' `evolve` and join them with `served_health`. No other stream is read."""
    rows = await tracker.pool.fetch(
        "SELECT position, stream_id, version, type, payload->'data' AS data, received_at FROM events"
        " WHERE stream_id = ANY($1) ORDER BY position",
        list(cast.streams()),
    )
    events = [Recorded(*row) for row in rows]

    def fold(model: ReadModel[Any], stream_id: str) -> Any:
        return functools.reduce(model.evolve, [e for e in events if e.stream_id == stream_id], None)

    installation = fold(INSTALLATIONS, f"installation:{cast.installation}")
    if installation is None:
        return {"health": None, "column": None, "issues": []}
    connection = fold(CONNECTIONS, f"connection:{installation.connection_id}")
    destination = fold(DESTINATIONS, f"destination:{cast.destination}")
    named = (
        destination is not None
        and destination.project_id == installation.project_id
        and destination.destination_name in installation.destinations
    )
    joined = [(INSTALLATIONS, installation), (CONNECTIONS, connection), (DESTINATIONS, destination if named else None)]
    health = served_health(
        document(INSTALLATIONS, installation)["health"],
        installation.deleted,
        document(CONNECTIONS, connection),
        [document(DESTINATIONS, destination)] if named and destination.disabled else [],
    )
    issues = [issue_item(model, view, issue) for model, view in joined if view is not None for issue in view.issues]
    return {
        "health": health,
        "column": health["status"],
        "issues": sorted(issues, key=lambda item: (item["entity"], item["entityId"], item["code"])),
    }


def document(model: ReadModel[Any], view: Any) -> dict[str, Any] | None:
    """The view as stored and served."""
    return None if view is None else orjson.loads(model.to_json(view))


def issue_item(model: ReadModel[Any], view: Any, issue: Issue) -> dict[str, Any]:
    """An issue as the issue history lists it."""
    project_id, integration_id = model.issue_scope(view)
    entity_id = model.row_of(view)[0]
    return {
        "entity": model.entity,
        "entityId": entity_id,
        "projectId": project_id,
        "integrationId": integration_id,
        **ISSUE.dump_python(issue, mode="json", by_alias=True, exclude={"position"}),
    }


async def dump(tracker: Tracker) -> dict[str, list[dict[str, Any]]]:
    """Every row of the read models and of the issues, ordered by key."""
    queries = {
        "installation_view": "SELECT * FROM installation_view ORDER BY installation_id",
        "connection_view": "SELECT * FROM connection_view ORDER BY connection_id",
        "destination_view": "SELECT * FROM destination_view ORDER BY destination_id",
        "issues": "SELECT * FROM issues ORDER BY entity, entity_id, code",
    }
    return {table: [dict(row) for row in await tracker.pool.fetch(sql)] for table, sql in queries.items()}


def with_decoys(cast: Cast) -> list[Cast]:
    """The cast and two others unrelated to it: one in another project whose destination has the same name,
    one in the same project whose destination has another name. Each has its own connections."""
    return [cast, new_cast(destination_name=cast.destination_name), new_cast(project=cast.project)]


DECOY_NOISE = [Step("connection.error"), Step("destination.webhook.disabled")]
"""Always part of a decoy's story: a connection in error and a disabled destination that must not count."""


# The properties ---------------------------------------------------------------------------------------


@pytest.fixture
async def trackers(make_tracker: MakeTracker) -> tuple[Tracker, Tracker]:
    """Two trackers on one database, as two processes: one folds two events a batch, the other 500."""
    started = []
    for batch_size in (2, 500):
        tracker = make_tracker(follow_projections=False)
        tracker.settings = replace(tracker.settings, projection_batch_size=batch_size)
        await tracker.start()
        started.append(tracker)
    return started[0], started[1]


@EXAMPLES
@given(story=stories(), data=st.data())
async def test_redeliveries_and_catch_up_points_do_not_change_health_or_issues(
    trackers: tuple[Tracker, Tracker], story: list[Step], data: st.DataObject
) -> None:
    """Svix redelivers, two processes fold whenever: one telling of the story must look like any other."""
    plain, redelivered = new_cast(), new_cast()
    await play(trackers, [plain], [story], in_order([story]))
    plan = data.draw(with_redeliveries(story))
    await play(trackers, [redelivered], [story], plan, check=lambda: assert_columns_agree(trackers[1], [redelivered]))

    stored = await trackers[0].pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = ANY($1)", list(redelivered.streams())
    )
    assert stored == len(story), "a redelivery appended an event"
    once, again = await served(trackers[0], plain), await served(trackers[1], redelivered)
    assert once["health"] is not None
    assert outline(again) == outline(once)


@EXAMPLES
@given(story=stories(), decoys=st.lists(stories(1, 6), min_size=2, max_size=2), data=st.data())
async def test_health_depends_only_on_the_installation_its_connection_and_its_destinations(
    trackers: tuple[Tracker, Tracker], story: list[Step], decoys: list[list[Step]], data: st.DataObject
) -> None:
    """Unrelated installations, connections and destinations (even one of the same name in another project,
    or of another name in the same project) may come and go: the health is that of the cast's streams."""
    casts = with_decoys(new_cast())
    told = [story, *(decoy + DECOY_NOISE for decoy in decoys)]

    async def check() -> None:
        for cast in casts:
            await assert_as_folded(trackers[0], cast)

    await play(trackers, casts, told, data.draw(interleaved(told)), check)

    for reason in (await served(trackers[0], casts[0]))["health"]["reasons"]:
        event(f"reason: {reason['code']}")  # see --hypothesis-show-statistics: each rule is met
    decoy_destinations = [await trackers[0].destination(cast.destination) for cast in casts[1:]]
    assert all(destination and destination["disabled"] for destination in decoy_destinations)


@EXAMPLES
@given(story=stories(), decoy=stories(1, 6), data=st.data())
async def test_a_rebuild_gives_the_live_state(
    trackers: tuple[Tracker, Tracker], story: list[Step], decoy: list[Step], data: st.DataObject
) -> None:
    """The live runners fold in batches as things arrive and the triggers join the health columns row by row;
    a rebuild replays each stream at once. Both must come to the same rows."""
    casts = with_decoys(new_cast())[:2]
    told = [story, decoy + DECOY_NOISE]
    await play(trackers, casts, told, data.draw(interleaved(told)), lambda: assert_columns_agree(trackers[0], casts))
    live = await dump(trackers[0])
    assert casts[0].installation in {row["installation_id"] for row in live["installation_view"]}

    await trackers[data.draw(BY, label="rebuilt by")].rebuild()

    assert await dump(trackers[0]) == live


async def test_the_failed_objects_of_a_reason_do_not_depend_on_which_process_folded(
    trackers: tuple[Tracker, Tracker],
) -> None:
    """The example hypothesis found, kept: a view read back from its jsonb document has its `objects` in jsonb's
    key order (shorter keys first, then bytewise), a view folded in memory in arrival order. A reason that
    lists objects in dict order then reads differently after another process folds, and after a rebuild."""
    cast, first, second = new_cast(), *trackers
    for object_name in ("contact", "account"):  # arrival order is not jsonb's order
        failed = payload(Step("read.triggered.error", object_name=object_name), cast)
        await first.ingest(failed, delivery_id=new_id("delivery"))
    await first.catch_up()
    await second.ingest(payload(Step("subscribe.create.error"), cast), delivery_id=new_id("delivery"))
    await second.catch_up()  # another process: it reads the view back from its document

    pure = await expected(first, cast)
    assert [reason["code"] for reason in pure["health"]["reasons"]] == ["triggered_read_failed", "subscribe_failed"]
    listed = {reason["code"]: (reason["message"], reason["objects"]) for reason in pure["health"]["reasons"]}
    live = (await served(first, cast))["health"]
    assert {reason["code"]: (reason["message"], reason["objects"]) for reason in live["reasons"]} == listed

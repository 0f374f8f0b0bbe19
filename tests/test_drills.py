"""The reliability drills, each at a small size, and the audit they end with.

Each drill runs `tracker serve` as real processes on loopback and injects its fault for real (SIGKILL,
a PostgreSQL cluster of its own stopped and started, a second process, a flood); `python -m tests.drills`
runs the same code at full size. No timing is asserted beyond the bounds a drill itself states. The audit
is tested on its own too: a lost, an unsent or a drifted row must each fail it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tracker import Tracker
from tracker.projecting.following import follow_while_leading
from tracker.settings import Settings

from .conftest import SECRET
from .drills import alert_audit, alerts, crash, database_loss, flood, two_processes
from .drills.alert_receiver import Heard
from .drills.audit import audit_log, audit_read_models
from .drills.deliveries import Delivery, Record, Sender, plan, session
from .drills.harness import setup
from .drills.report import DrillResult, render
from .drills.trackers import Ports

PORTS = Ports()


def passed(result: DrillResult) -> DrillResult:
    """The drill's verdict, with its table and notes as the message if it failed."""
    assert result.passed, render([result])
    assert (result.audit.lost, result.audit.duplicates) == (0, 0)
    return result


def test_a_plan_repeats_a_tenth_of_its_ids_in_a_shuffled_order() -> None:
    deliveries = plan(1_000, 0.10, installations=50, seed=3)

    ids = [d.msg_id for d in deliveries]
    assert len(deliveries) == 1_000
    assert len(set(ids)) == 900
    assert sum(d.redelivery for d in deliveries) == 100
    bodies = {d.msg_id: d.body for d in deliveries if not d.redelivery}
    assert all(bodies[d.msg_id] == d.body for d in deliveries if d.redelivery)  # same id, same body
    assert ids != sorted(ids)
    assert not set(ids) & {d.msg_id for d in plan(1_000, 0.10, installations=50, seed=3)}  # a run tag per plan


def test_the_record_keeps_positions_double_stores_and_missing_retry_after() -> None:
    record = Record()
    delivery = Delivery("msg_1", b"{}")

    settled = [
        record.answered(delivery, 200, {}, orjson.dumps({"duplicate": False, "position": 7})),
        record.answered(delivery, 200, {}, orjson.dumps({"duplicate": False, "position": 8})),
        record.answered(delivery, 503, {}, b"{}"),
        record.answered(delivery, 503, {"retry-after": "5"}, b"{}"),
        record.answered(Delivery("msg_2", b"{}"), 401, {}, b"{}"),
    ]

    assert settled == [True, True, False, False, True]
    assert record.acknowledged == {"msg_1": 7}
    assert record.position_conflicts == {"msg_1"}
    assert record.double_stores == 1
    assert record.shed_without_retry_after == 1
    assert record.refused == {"msg_2"}


@pytest.fixture
async def sent(client: TestClient[web.Request, web.Application]) -> AsyncIterator[Record]:
    """Forty deliveries (four of them redeliveries) sent to the test tracker, every one acknowledged."""
    record = Record()
    url = str(client.make_url("/webhooks/ampersand"))
    async with session(8) as http:
        sender = Sender(http, SECRET, lambda _: url, record=record)
        await sender.send_all(plan(40, 0.1, installations=10, seed=5), workers=8, deadline=time.monotonic() + 60)
    assert len(record.acknowledged) == 36
    yield record


async def test_the_audit_passes_a_log_that_holds_what_was_acknowledged(
    sent: Record, tracker: Tracker, database_url: str
) -> None:
    await tracker.catch_up()
    result = await audit_log(database_url, sent)
    await audit_read_models(database_url, result)

    assert result.passed, result.problems
    assert (result.acknowledged, result.stored) == (36, 36)


async def test_the_audit_fails_a_lost_delivery_and_one_never_sent(
    sent: Record, tracker: Tracker, database_url: str
) -> None:
    lost = next(iter(sent.acknowledged))
    await tracker.pool.execute("DELETE FROM events WHERE metadata->>'deliveryId' = $1", lost)
    sent.sent.discard(next(m for m in sent.acknowledged if m != lost))  # stored, yet the sender never sent it

    result = await audit_log(database_url, sent)

    assert result.lost == 1
    assert not result.passed
    assert any("never sent" in problem for problem in result.problems)


async def test_the_audit_fails_a_read_model_that_a_rebuild_would_change(
    sent: Record, tracker: Tracker, database_url: str
) -> None:
    await tracker.catch_up()
    await tracker.pool.execute(
        "UPDATE installation_view SET provider = 'drifted'"
        " WHERE installation_id = (SELECT min(installation_id) FROM installation_view)"
    )
    result = await audit_log(database_url, sent)
    assert result.passed

    await audit_read_models(database_url, result)

    assert [problem.split(":")[0] for problem in result.problems] == [
        "rebuilt installations differs from the live rows"
    ]


async def test_the_crash_drill_loses_nothing_acknowledged_over_three_kills(server_url: str, tmp_path: Path) -> None:
    result = passed(await crash.run(setup(server_url, tmp_path, PORTS), crash.CrashPlan(600, installations=60)))

    assert result.audit.acknowledged == result.audit.stored == 540
    assert sum(note.startswith("SIGKILL at") for note in result.notes) == 3


async def test_the_database_loss_drill_answers_503_and_recovers_in_the_same_process(tmp_path: Path) -> None:
    outage = database_loss.OutagePlan(600, outage=2.0, installations=60)

    result = passed(await database_loss.run(setup("unused", tmp_path, PORTS), outage))

    assert result.audit.acknowledged == result.audit.stored == 540
    assert "deliveries meanwhile: 503:" in result.notes[0]
    assert result.details["recovery_s"] is not None


async def test_the_two_processes_drill_stores_each_delivery_once(server_url: str, tmp_path: Path) -> None:
    two = two_processes.TwoPlan(600, installations=60)

    result = passed(await two_processes.run(setup(server_url, tmp_path, PORTS), two))

    assert result.audit.acknowledged == result.audit.stored == 540


async def test_the_flood_drill_sheds_with_retry_after_and_serves_again(server_url: str, tmp_path: Path) -> None:
    small = flood.FloodPlan(
        seconds=2.0, probe_seconds=1.0, max_in_flight=1_000, max_pending=200, installations=60, recovery_bound=60.0
    )

    result = passed(await flood.run(setup(server_url, tmp_path, PORTS), small))

    assert result.details["flood_statuses"].get("503", 0) > 0
    assert result.details["recovery_s"] is not None
    assert result.audit.stored == result.audit.acknowledged > 0


async def test_the_alerts_drill_delivers_every_transition_through_an_outage_and_a_kill(
    server_url: str, tmp_path: Path
) -> None:
    plan = alerts.AlertPlan(60, refused=1.0, unavailable=1.0)

    result = passed(await alerts.run(setup(server_url, tmp_path, PORTS), plan))

    told = result.details["alerts"]
    assert (told["expected"], told["rows"], told["delivered"], told["received"], told["lost"]) == (
        120,
        120,
        120,
        120,
        0,
    )
    assert told["duplicates"] >= 1  # the request whose answer the SIGKILL cut off, sent again
    assert told["refused_attempts"] > 0
    assert told["unavailable_attempts"] > 0
    assert result.audit.acknowledged == result.audit.stored == 120
    assert sum(note.startswith("SIGKILL of the delivering process") for note in result.notes) == 1


def _heard(webhook_id: str, transition: str, connection_id: str, status: int = 200, body: bytes = b"{}") -> Heard:
    return Heard(0.0, webhook_id, (transition, "connection", connection_id, alert_audit.CODE), body, status)


def test_the_alert_audit_passes_at_least_once_and_fails_a_loss_a_second_id_and_a_resolved_sent_early() -> None:
    expected = {(kind, "connection", c, alert_audit.CODE) for c in ("c1", "c2") for kind in ("opened", "resolved")}
    rows = {key: f"msg_{key[0]}_{key[2]}" for key in expected}
    held = _heard("msg_opened_c1", "opened", "c1")
    fine = [
        _heard("msg_opened_c1", "opened", "c1", status=503),
        held,
        _heard("msg_opened_c1", "opened", "c1"),  # sent again after the kill: a duplicate, not a failure
        _heard("msg_resolved_c1", "resolved", "c1"),
        _heard("msg_opened_c2", "opened", "c2"),
        _heard("msg_resolved_c2", "resolved", "c2"),
    ]
    passing = alert_audit.AlertAudit(4, refused_attempts=1, unavailable_attempts=1)
    alert_audit.audit_heard(passing, expected, rows, fine, held)
    assert passing.problems == []
    assert (passing.received, passing.lost, passing.duplicates) == (4, 0, 1)

    wrong = [
        _heard("msg_resolved_c1", "resolved", "c1"),  # before its opened one was taken
        held,
        _heard("msg_other", "opened", "c1"),  # the same transition under a second webhook-id
        _heard("msg_opened_c2", "opened", "c2", body=b"{}"),
        _heard("msg_opened_c2", "opened", "c2", body=b"{ }"),  # another body under the same id
    ]
    failing = alert_audit.AlertAudit(4)
    alert_audit.audit_heard(failing, expected, rows, wrong, held)
    assert failing.lost == 1  # c2's resolved
    found = [problem.split(", e.g.")[0] for problem in failing.problems]
    assert found == [
        "1 transitions never taken by the receiver",
        "1 transitions received under two webhook-ids or more",
        "1 transitions received under another webhook-id than their row's",
        "1 webhook-ids sent with different bodies",
        "1 resolved alerts sent before their opened one was taken",
        "msg_opened_c1, whose answer the SIGKILL cut off, was not sent again",
        "the outage was not seen: 0 attempts refused, 0 answered 503",
    ]


class _SlowToStop:
    """A runner that takes a while to wind down once cancelled (a query on a lost connection, say)."""

    model = SimpleNamespace(name="installations")

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.winding_down = asyncio.Event()

    async def run_forever(self, wake: asyncio.Event, poll_interval: float, min_interval: float) -> None:
        self.running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.winding_down.set()
            await asyncio.sleep(0.5)
            raise


class _LostOnce:
    """A leadership that is won at once, and lost as soon as the runner runs, the first time."""

    def __init__(self, runner: _SlowToStop) -> None:
        self.acquired = 0
        self._runner = runner

    async def acquire(self, retry_interval: float) -> None:
        self.acquired += 1

    async def lost(self) -> None:
        await self._runner.running.wait()
        if self.acquired > 1:
            await asyncio.Event().wait()


async def test_a_follower_cancelled_while_its_runner_winds_down_stops() -> None:
    """Found by the database-loss drill: a `tracker project` whose lead was lost with its connection, stopped
    while its runner wound down, swallowed the cancellation, hung in `close` and stood for the lead forever."""
    runner = _SlowToStop()
    leadership = _LostOnce(runner)
    settings = Settings()
    interval, min_interval = settings.projection_poll_interval, settings.projection_min_interval
    follow = follow_while_leading(runner, leadership, asyncio.Event(), interval, min_interval)  # type: ignore[arg-type]
    following = asyncio.create_task(follow)
    await asyncio.wait_for(runner.winding_down.wait(), 5)  # the lead is lost; the runner is being stopped

    following.cancel()
    done, _ = await asyncio.wait({following}, timeout=5)

    assert following in done
    assert following.cancelled()
    assert leadership.acquired == 1

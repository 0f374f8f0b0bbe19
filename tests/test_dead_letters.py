"""Poison events: the event a read model fails on is retried with back-off, then parked; its installation's
later events wait behind it while other installations go on; an operator retries it after a fix, or skips it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from projections import CONNECTIONS, DESTINATIONS, INSTALLATIONS
from projections.installations import InstallationView
from tracker import Tracker
from tracker.domain.recorded import Recorded
from tracker.projecting.dead_letters import MAX_ATTEMPTS

from .conftest import MakeTracker
from .notifications import config, installation_event, new_id


def _fails_on_poison(view: InstallationView | None, event: Recorded) -> InstallationView | None:
    if event.data.get("poison"):
        msg = "cannot fold this one"
        raise ValueError(msg)
    return INSTALLATIONS.evolve(view, event)


POISONED = (replace(INSTALLATIONS, evolve=_fails_on_poison), CONNECTIONS, DESTINATIONS)


def write(installation_id: str, n: int, **extra: Any) -> dict[str, Any]:
    return installation_event("write.async.done", installation_id, objectName="o", success=True, n=n, **extra)


async def writes(tracker: Tracker, installation_id: str) -> int | None:
    view = await tracker.installation(installation_id)
    assert view is not None
    objects = view["objects"]
    return objects["o"]["writes"]["operations"] if "o" in objects else None


async def poisoned_story(tracker: Tracker) -> tuple[str, str, int]:
    """Two installations; the first meets a poison event and two writes after it. Returns their ids and
    the poison event's position."""
    sick, well = new_id("inst"), new_id("inst")
    for installation_id in (sick, well):
        await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    poison = await tracker.ingest(write(sick, 1, poison=True))
    await tracker.ingest(write(sick, 2))
    await tracker.ingest(write(well, 1))
    await tracker.catch_up()
    return sick, well, poison.position


async def make_due(tracker: Tracker) -> None:
    """Bring every retry's time forward, rather than sleep through the back-off."""
    await tracker.pool.execute("UPDATE dead_letters SET next_attempt_at = now() WHERE status = 'retrying'")


async def test_a_poison_event_is_parked_and_only_its_installation_waits(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False, read_models=POISONED)
    await tracker.start()
    sick, well, position = await poisoned_story(tracker)

    assert await writes(tracker, well) == 1  # the others go on
    assert await writes(tracker, sick) is None  # the poison event and the write behind it wait
    page = await tracker.dead_letters.page(None, None, 10, None)
    (letter,) = page.items
    assert letter["entityId"] == sick
    assert letter["position"] == position
    assert letter["eventType"] == "write.async.done"
    assert letter["error"] == "ValueError: cannot fold this one"
    assert letter["status"] == "retrying"
    assert letter["attempts"] == 1
    assert letter["nextAttemptAt"] is not None
    checkpoint = await tracker.pool.fetchval("SELECT position FROM projection_checkpoints WHERE name = 'installations'")
    assert checkpoint == await tracker.event_log.head()  # the log goes on past it
    status = await tracker.status()
    installations = next(p for p in status["projections"] if p["name"] == "installations")
    assert installations["deadLetters"] == {"retrying": 1}

    await tracker.ingest(write(sick, 3))  # arriving later, it waits too
    await tracker.catch_up()
    assert await writes(tracker, sick) is None


async def test_retries_back_off_then_park_the_event(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False, read_models=POISONED)
    await tracker.start()
    await poisoned_story(tracker)
    delays = []
    for attempt in range(2, MAX_ATTEMPTS + 1):
        await make_due(tracker)
        await tracker.catch_up()
        letter = (await tracker.dead_letters.page(None, None, 10, None)).items[0]
        assert letter["attempts"] == attempt
        delays.append(
            await tracker.pool.fetchval("SELECT extract(epoch FROM next_attempt_at - last_failed_at) FROM dead_letters")
        )
    assert letter["status"] == "parked"
    assert delays[-1] is None  # parked: no automatic retry
    assert [round(float(d)) for d in delays[:-1]] == [2, 4, 8]  # doubling


async def test_a_retry_after_a_fix_folds_the_event_and_those_behind_it(make_tracker: MakeTracker) -> None:
    broken = make_tracker(follow_projections=False, read_models=POISONED)
    await broken.start()
    sick, _, _ = await poisoned_story(broken)
    letter_id = (await broken.dead_letters.page(None, None, 10, None)).items[0]["id"]
    fixed = make_tracker(follow_projections=False)  # the next deploy: a read model that copes
    await fixed.start()

    requested = await fixed.retry_dead_letter(letter_id)
    assert requested.status == "retrying"
    await fixed.catch_up()

    assert await writes(fixed, sick) == 2
    letter = await fixed.dead_letter(letter_id)
    assert letter is not None
    assert letter.status == "resolved"
    assert letter.resolved_at is not None
    await fixed.ingest(write(sick, 3))  # and the installation follows the log again
    await fixed.catch_up()
    assert await writes(fixed, sick) == 3


async def test_a_skip_goes_on_past_the_event(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False, read_models=POISONED)
    await tracker.start()
    sick, _, _ = await poisoned_story(tracker)
    letter_id = (await tracker.dead_letters.page(None, None, 10, None)).items[0]["id"]

    await tracker.skip_dead_letter(letter_id)
    await tracker.catch_up()

    assert await writes(tracker, sick) == 1  # the write after the poison event, not the poison one
    letter = await tracker.dead_letter(letter_id)
    assert letter is not None
    assert letter.status == "skipped"


async def test_a_rebuild_parks_the_event_too_and_a_fixed_rebuild_settles_it(make_tracker: MakeTracker) -> None:
    broken = make_tracker(follow_projections=False, read_models=POISONED)
    await broken.start()
    sick, well, position = await poisoned_story(broken)

    await broken.rebuild(["installations"])
    (letter,) = (await broken.dead_letters.page("retrying", None, 10, None)).items  # the rebuild's own
    assert (letter["entityId"], letter["position"], letter["status"]) == (sick, position, "retrying")
    assert await writes(broken, sick) is None
    assert await writes(broken, well) == 1

    fixed = make_tracker(follow_projections=False)
    await fixed.start()
    await fixed.rebuild(["installations"])
    assert await writes(fixed, sick) == 2
    assert (await fixed.dead_letters.page("resolved", None, 10, None)).items[0]["id"] == letter["id"]
    assert (await fixed.status())["projections"][0]["deadLetters"] == {}


async def test_the_dead_letter_routes(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(follow_projections=False, read_models=POISONED)
    tracker.settings = replace(tracker.settings, api_token="t0ken")
    await tracker.start()
    sick, _, _ = await poisoned_story(tracker)
    auth = {"Authorization": "Bearer t0ken"}
    async with TestClient(TestServer(tracker.web_app())) as client:
        assert (await client.get("/v1/admin/dead-letters")).status == 401
        assert (await client.post("/v1/admin/dead-letters/1/skip")).status == 401

        listed = await (await client.get("/v1/admin/dead-letters?status=retrying", headers=auth)).json()
        (letter,) = listed["items"]
        assert letter["entityId"] == sick
        assert listed["nextCursor"] is None
        one = await client.get(f"/v1/admin/dead-letters/{letter['id']}", headers=auth)
        assert (await one.json())["position"] == letter["position"]
        assert (await client.get("/v1/admin/dead-letters?status=lost", headers=auth)).status == 400
        assert (await client.get("/v1/admin/dead-letters?colour=red", headers=auth)).status == 400
        assert (await client.get("/v1/admin/dead-letters?cursor=nonsense", headers=auth)).status == 400
        assert (await client.get("/v1/admin/dead-letters/999999", headers=auth)).status == 404
        assert (await client.post("/v1/admin/dead-letters/x/retry", headers=auth)).status == 404

        skipped = await client.post(f"/v1/admin/dead-letters/{letter['id']}/skip", headers=auth)
        assert skipped.status == 202
        assert (await skipped.json())["status"] == "skipping"
        await tracker.catch_up()
        again = await client.post(f"/v1/admin/dead-letters/{letter['id']}/retry", headers=auth)
        assert again.status == 409
        assert (await again.json())["deadLetterStatus"] == "skipped"

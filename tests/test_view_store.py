"""Loading and writing views: what the live runner and a rebuild's catch-up rely on, on a real database."""

from __future__ import annotations

from typing import Any

from projections.installations import INSTALLATIONS, InstallationView, evolve
from tracker.facade import Tracker
from tracker.projecting.view_store import ViewStore

from .notifications import connection_fields, notification
from .recorded import InstallationStream


def opened(stream: InstallationStream) -> InstallationView:
    view = evolve(None, stream.event("read.backfill.done", objectName="account"))
    assert view is not None
    return view


def written_again(view: InstallationView, stream: InstallationStream) -> InstallationView:
    after = evolve(view, stream.event("read.backfill.done", objectName="contact"))
    assert after is not None and after.position > view.position
    return after


async def rows(tracker: Tracker) -> dict[str, Any]:
    found = await tracker.pool.fetch("SELECT installation_id, position, connection_status FROM installation_view")
    return {row["installation_id"]: (row["position"], row["connection_status"]) for row in found}


async def test_write_updates_the_views_the_table_holds_and_inserts_the_others_with_their_joined_health(
    tracker: Tracker,
) -> None:
    await tracker.ingest(notification("connection.error", **connection_fields("conn-1"), errors=["invalid_grant"]))
    await tracker.catch_up()
    store = ViewStore(INSTALLATIONS, "installation_view", "issues")
    first, second = InstallationStream("inst-1"), InstallationStream("inst-2", start_position=100)
    a = opened(first)
    async with tracker.pool.acquire() as conn:
        await store.write(conn, [a])
        a_again, b = written_again(a, first), opened(second)
        await store.write(conn, [a_again, b])  # one held, one new: the new one is inserted
        assert await rows(tracker) == {"inst-1": (a_again.position, "error"), "inst-2": (b.position, "error")}
        # A row gone between loading and writing (a rebuild's switch deletes rows) is written anyway.
        await conn.execute("DELETE FROM installation_view WHERE installation_id = 'inst-1'")
        a_third = written_again(a_again, first)
        await store.write(conn, [a_third])
    assert (await rows(tracker))["inst-1"] == (a_third.position, "error")
    assert await tracker.installation("inst-1") is not None


async def test_load_keeps_a_cached_view_at_the_tables_position_and_decodes_the_others(tracker: Tracker) -> None:
    store = ViewStore(INSTALLATIONS, "installation_view", "issues")
    first, second = InstallationStream("inst-1"), InstallationStream("inst-2", start_position=100)
    a, b_stale = opened(first), opened(second)
    b = written_again(b_stale, second)
    gone = opened(InstallationStream("inst-3", start_position=200))
    async with tracker.pool.acquire() as conn:
        await store.write(conn, [a, b])
        cache: dict[str, InstallationView] = {"inst-1": a, "inst-2": b_stale, "inst-3": gone}
        await store.load(conn, ["inst-1", "inst-2", "inst-3"], cache)
    assert cache["inst-1"] is a  # the table holds its position: not sent, not decoded
    assert cache["inst-2"] is not b_stale and cache["inst-2"] == b  # another position: read from the table
    assert "inst-3" not in cache  # not in the table: forgotten

"""One active runner per read model across trackers: three trackers on one database play three processes."""

from __future__ import annotations

from tracker import Tracker
from tracker.store.leadership import leadership_key

from .conftest import MakeTracker
from .notifications import connection_fields, new_id, notification
from .waiting import eventually

MODELS = ("installations", "connections", "destinations")


async def leaders(tracker: Tracker) -> dict[str, list[int]]:
    """Per read model, the backends holding its leadership lock (a bigint key: classid high, objid low)."""
    rows = await tracker.pool.fetch(
        "SELECT ((classid::bigint << 32) | objid::bigint) AS key, pid FROM pg_locks"
        " WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    held: dict[int, list[int]] = {}
    for row in rows:
        held.setdefault(row["key"], []).append(row["pid"])
    return {name: held.get(leadership_key(name) & 0xFFFF_FFFF_FFFF_FFFF, []) for name in MODELS}


async def test_three_trackers_fold_with_one_leader_per_read_model_and_a_standby_takes_over(
    make_tracker: MakeTracker,
) -> None:
    trackers = [make_tracker() for _ in range(3)]
    for tracker in trackers:
        await tracker.start()
    probe = trackers[0]

    async def one_leader_each() -> dict[str, list[int]] | None:
        found = await leaders(probe)
        return found if all(len(pids) == 1 for pids in found.values()) else None

    first = await eventually(one_leader_each)
    connection_id = new_id("conn")
    await probe.ingest(notification("connection.error", **connection_fields(connection_id)))
    await eventually(lambda: probe.connection(connection_id))

    # The leaders' process dies: its sessions end, and with them the locks.
    for pids in first.values():
        await probe.pool.execute("SELECT pg_terminate_backend($1)", pids[0])

    async def new_leaders() -> dict[str, list[int]] | None:
        found = await one_leader_each()
        return found if found and all(found[name] != first[name] for name in MODELS) else None

    await eventually(new_leaders, timeout=15)
    later = new_id("conn")
    await probe.ingest(notification("connection.refreshed", **connection_fields(later)))
    await eventually(lambda: probe.connection(later))

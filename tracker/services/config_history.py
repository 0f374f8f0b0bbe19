"""An installation's config versions, folded from its stream on request: the log holds every content."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.config_versions import CARRIES_CONFIG, Versions, record_update
from tracker.domain.config import ConfigFetched
from tracker.store.event_log import EventLog

PAGE_SIZE = 1000
"""Events read from the stream per query: a long history is folded without holding it all at once."""


@dataclass(frozen=True, slots=True)
class ConfigHistory:
    versions: Versions
    contents: dict[str, dict[str, Any]]
    """Each version's config, by sha256."""


async def config_history(event_log: EventLog, installation_id: str) -> ConfigHistory | None:
    """Fold the stream with `record_update`; None when the stream has no events at all.

    Every content seen is recorded, a late `installation.created` too (the read model keeps the config a
    later update set, but a history of distinct contents has a place for it either way).
    """
    versions: Versions = ()
    contents: dict[str, dict[str, Any]] = {}
    held: dict[str, Any] | None = None
    after, seen = 0, False
    while True:
        rows = await event_log.stream(f"installation:{installation_id}", after, PAGE_SIZE)
        seen = seen or bool(rows)
        for row in rows:
            data = row["data"]
            if row["type"] == ConfigFetched.NOTIFICATION_TYPE and isinstance(data, dict):
                data = {data.get("field"): data.get("config")}  # as if the notification had carried it
            elif row["type"] not in CARRIES_CONFIG or not isinstance(data, dict):
                continue
            before = len(versions)
            versions, number = record_update(versions, held, data, row["received_at"])
            for added in versions[before:]:  # record_update adds the lastConfig as missed, else the config
                contents[added.sha256] = data["lastConfig" if added.missed_update else "config"]
            if number is not None:
                held = data["config"]
        if len(rows) < PAGE_SIZE:
            return ConfigHistory(versions, contents) if seen else None
        after = rows[-1]["version"]

"""Deliveries that could not become events, kept with their reason so nothing is lost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tracker.store.database import Pool
from tracker.store.errors import UnavailableGuard

_NOT_KEPT_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Credentials are never written to the database."""


@dataclass(frozen=True, slots=True)
class Refused:
    source: str
    reason: str
    raw: bytes
    delivery_id: str | None = None
    problems: list[str] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)


class Quarantine:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def keep(self, refused: Refused) -> None:
        """Store a refused delivery once per delivery id."""
        headers = {k.lower(): v for k, v in refused.headers.items() if k.lower() not in _NOT_KEPT_HEADERS}
        with UnavailableGuard("quarantine"):
            await self._pool.execute(
                "INSERT INTO quarantine (source, delivery_id, reason, problems, headers, raw)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id) DO NOTHING",
                refused.source,
                refused.delivery_id,
                refused.reason,
                refused.problems,
                headers,
                refused.raw,
            )

    async def count(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM quarantine"))

"""Queries over the read-model tables: plain SQL, one filter column per query parameter."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import asyncpg

from tracker.store.database import Pool


class BadCursorError(ValueError):
    """The cursor was not one this API handed out."""


@dataclass(frozen=True, slots=True)
class ViewTable:
    table: str
    key_column: str
    filters: dict[str, str]
    """Query parameter (camelCase, as in the API) to column."""


INSTALLATIONS = ViewTable(
    "installation_view",
    "installation_id",
    {
        "projectId": "project_id",
        "provider": "provider",
        "integrationId": "integration_id",
        "groupRef": "group_ref",
        "connectionId": "connection_id",
    },
)
CONNECTIONS = ViewTable(
    "connection_view",
    "connection_id",
    {"projectId": "project_id", "provider": "provider", "groupRef": "group_ref", "status": "status"},
)
DESTINATIONS = ViewTable("destination_view", "destination_id", {"projectId": "project_id"})


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


_CURSOR_PREFIX = "after:"


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    if not decoded.startswith(_CURSOR_PREFIX):
        msg = "cursor is not one this API returned"
        raise BadCursorError(msg)
    return decoded.removeprefix(_CURSOR_PREFIX)


class Views:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def get(self, view: ViewTable, key: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self._pool.fetchval(
            f"SELECT doc FROM {view.table} WHERE {view.key_column} = $1", key
        )
        return doc

    async def list(self, view: ViewTable, filters: dict[str, str], limit: int, cursor: str | None) -> Page:
        """A page in key order; `filters` keys must be among `view.filters` (the API checks)."""
        conditions, args = [], []
        for name, value in filters.items():
            args.append(value)
            conditions.append(f"{view.filters[name]} = ${len(args)}")
        if cursor is not None:
            args.append(decode_cursor(cursor))
            conditions.append(f"{view.key_column} > ${len(args)}")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows: list[asyncpg.Record] = await self._pool.fetch(
            f"SELECT {view.key_column} AS key, doc FROM {view.table} {where}"
            f" ORDER BY {view.key_column} LIMIT {int(limit) + 1}",
            *args,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([row["doc"] for row in rows], encode_cursor(rows[-1]["key"]) if more else None)

    async def checkpoints(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT name, position FROM projection_checkpoints")
        return {row["name"]: row["position"] for row in rows}

"""Queries over the read-model tables: plain SQL, one filter column per query parameter."""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from projections.health import STATUSES, served_health
from tracker.domain.config import without_query
from tracker.store.database import Pool


class BadCursorError(ValueError):
    """The cursor was not one this API handed out."""


class BadFilterError(ValueError):
    """A filter value outside the values the filter takes."""


@dataclass(frozen=True, slots=True)
class Filter:
    column: str
    values: Mapping[str, Any] | None = None
    """The values the filter takes, as SQL values; None: any string, compared as is."""

    def sql_value(self, name: str, given: str) -> Any:
        if self.values is None:
            return given
        if given not in self.values:
            msg = f"{name} must be one of {', '.join(self.values)}"
            raise BadFilterError(msg)
        return self.values[given]


@dataclass(frozen=True, slots=True)
class ViewTable:
    table: str
    key_column: str
    filters: dict[str, Filter]
    """Query parameter (camelCase, as in the API) to column, read off the table aliased `v`."""
    joins: str = ""
    """Further columns and joins a document needs to be served, after `SELECT v.doc`."""
    serve: Callable[[asyncpg.Record], dict[str, Any]] = field(default=lambda row: dict(row["doc"]))
    """The served document, from a row of `SELECT v.doc {joins}`."""


def _installation(row: asyncpg.Record) -> dict[str, Any]:
    """An installation with its whole health: its own reasons and those of its connection and destinations.

    Its config URLs are served without their query: a pre-signed URL's query is a credential.
    """
    doc: dict[str, Any] = row["doc"]
    doc["health"] = served_health(doc["health"], doc["deleted"], row["connection"], row["destinations"])
    if isinstance(url := doc.get("configUrl"), str):
        doc["configUrl"] = without_query(url)
    if isinstance(failure := doc.get("configFetchFailure"), dict) and isinstance(url := failure.get("url"), str):
        failure["url"] = without_query(url)
    return doc


INSTALLATIONS = ViewTable(
    "installation_view",
    "installation_id",
    {
        "projectId": Filter("project_id"),
        "provider": Filter("provider"),
        "integrationId": Filter("integration_id"),
        "groupRef": Filter("group_ref"),
        "connectionId": Filter("connection_id"),
        "health": Filter("health", {status: status for status in STATUSES}),
        "backfill": Filter("backfill_pending", {"pending": True, "done": False}),
    },
    joins=(
        ", c.doc AS connection, (SELECT coalesce(jsonb_agg(d.doc ORDER BY d.destination_id), '[]')"
        " FROM destination_view d WHERE d.project_id = v.project_id AND d.disabled"
        " AND v.destinations ? d.destination_name) AS destinations"
        " FROM installation_view v LEFT JOIN connection_view c"
        " ON c.connection_id = v.connection_id AND c.project_id = v.project_id"  # another project's: not its
    ),
    serve=_installation,
)
CONNECTIONS = ViewTable(
    "connection_view",
    "connection_id",
    {
        "projectId": Filter("project_id"),
        "provider": Filter("provider"),
        "groupRef": Filter("group_ref"),
        "status": Filter("status", {status: status for status in ("active", "error", "deleted")}),
    },
)
DESTINATIONS = ViewTable(
    "destination_view",
    "destination_id",
    {
        "projectId": Filter("project_id"),
        "destinationName": Filter("destination_name"),
        "disabled": Filter("disabled", {"true": True, "false": False}),
    },
)


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
    if not decoded.startswith(_CURSOR_PREFIX) or "\x00" in decoded:
        msg = "cursor is not one this API returned"
        raise BadCursorError(msg)
    return decoded.removeprefix(_CURSOR_PREFIX)


def encode_keyset(at: datetime, *parts: str) -> str:
    """The cursor after the row `(at, *parts)` of a list kept in that order (newest first)."""
    return base64.urlsafe_b64encode(orjson.dumps([at.isoformat(), *parts])).decode().rstrip("=")


def decode_keyset(cursor: str, parts: int) -> tuple[datetime, tuple[str, ...]]:
    """The instant (in UTC) and the `parts` strings of a cursor `encode_keyset` made; BadCursorError otherwise."""
    try:
        at, *strings = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if len(strings) != parts or not all(isinstance(part, str) and "\x00" not in part for part in strings):
            raise ValueError(cursor)
        instant = datetime.fromisoformat(at)
        if instant.tzinfo is None:
            raise ValueError(cursor)
        return instant.astimezone(UTC), tuple(strings)  # out of range (year 1 east of UTC): OverflowError
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
        msg = "cursor is not one this API returned"
        raise BadCursorError(msg) from None


class Views:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def _select(self, view: ViewTable) -> str:
        return f"SELECT v.{view.key_column} AS key, v.doc {view.joins or f'FROM {view.table} v'}"

    async def get(self, view: ViewTable, key: str, projects: Collection[str] | None = None) -> dict[str, Any] | None:
        """The entity's document; None when unknown or, given `projects`, of no project among them."""
        args: list[Any] = [key]
        where = f"WHERE v.{view.key_column} = $1"
        if projects is not None:
            where += " AND v.project_id = ANY($2::text[])"
            args.append(list(projects))
        row = await self._pool.fetchrow(f"{self._select(view)} {where}", *args)
        return None if row is None else view.serve(row)

    async def list(
        self,
        view: ViewTable,
        filters: dict[str, str],
        limit: int,
        cursor: str | None,
        projects: Collection[str] | None = None,
    ) -> Page:
        """A page in key order; `filters` keys must be among `view.filters` (the API checks); given
        `projects`, only entities of those projects.

        Raises BadFilterError for a value a filter does not take, BadCursorError for a foreign cursor.
        """
        conditions: list[str] = []
        args: list[Any] = []
        if projects is not None:
            args.append(list(projects))
            conditions.append("v.project_id = ANY($1::text[])")
        for name, given in filters.items():
            spec = view.filters[name]
            args.append(spec.sql_value(name, given))
            conditions.append(f"v.{spec.column} = ${len(args)}")
        if cursor is not None:
            args.append(decode_cursor(cursor))
            conditions.append(f"v.{view.key_column} > ${len(args)}")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows: list[asyncpg.Record] = await self._pool.fetch(
            f"{self._select(view)} {where} ORDER BY v.{view.key_column} LIMIT {int(limit) + 1}", *args
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([view.serve(row) for row in rows], encode_cursor(rows[-1]["key"]) if more else None)

    async def checkpoints(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT name, position FROM projection_checkpoints")
        return {row["name"]: row["position"] for row in rows}

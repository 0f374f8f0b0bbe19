"""Where a read model's views and issues are written: its live table, or a rebuild's shadow beside it.

Both have the same columns (the key, the read model's filter columns, `position`, `doc`), so the live
runner and a rebuild share one way of loading and writing views.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic

from pydantic import TypeAdapter

from projections.issues import Issue
from projections.read_model import ReadModel, View
from tracker.projecting.folding import Told
from tracker.store.alert_outbox import record_transitions
from tracker.store.database import Connection
from tracker.store.issues import served
from tracker.turns import give_way

YIELD_EVERY = 200
"""Views encoded between two yields to the event loop, so a big batch does not stall the webhook."""
ISSUE_COLUMNS = ("entity", "entity_id", "code", "project_id", "integration_id", "status", "changed_at", "doc")
_ISSUE_TYPES = ("text", "text", "text", "text", "text", "text", "timestamptz", "jsonb")
_issue_adapter: TypeAdapter[Issue] = TypeAdapter(Issue)


class ViewStore(Generic[View]):
    def __init__(self, model: ReadModel[View], table: str, issues_table: str) -> None:
        self.model, self.table, self.issues_table = model, table, issues_table
        self.columns = (model.key_column, *(name for name, _ in model.columns), "position", "doc")
        kinds = ("text", *(kind for _, kind in model.columns), "bigint", "jsonb")
        self._update_sql = _update(table, self.columns, kinds, model.key_column)
        self._upsert_sql = _upsert(table, self.columns, kinds, (model.key_column,))
        self._issues_upsert_sql = _upsert(issues_table, ISSUE_COLUMNS, _ISSUE_TYPES, ("entity", "entity_id", "code"))
        key = model.key_column
        self._load_sql = (
            f"SELECT t.{key} AS key, t.position, CASE WHEN t.position IS DISTINCT FROM k.known THEN t.doc::text END"
            f" AS doc FROM unnest($1::text[], $2::bigint[]) AS k(key, known) JOIN {table} t ON t.{key} = k.key"
        )

    async def load(self, conn: Connection, keys: list[str], views: dict[str, View]) -> None:
        """Bring `views` up to date with the table for `keys`.

        A view kept from an earlier batch is reused when the table holds the same position, and its
        document is not even sent (PostgreSQL's text of a 5 KB document and its decoding here are the
        costly part); another process, or a rolled-back batch, shows as another position.
        """
        known = [getattr(views.get(key), "position", None) for key in keys]
        rows = await conn.fetch(self._load_sql, keys, known)
        for row in rows:
            if row["doc"] is not None:
                views[row["key"]] = self.model.from_json(row["doc"])
        for key in set(keys) - {row["key"] for row in rows}:
            views.pop(key, None)

    async def write(self, conn: Connection, views: list[View]) -> None:
        """Write the views and upsert their issues (all of them: an entity's project may have changed).

        The views are updated first, and only those the table lacks are upserted: an upsert runs the
        row triggers for an insert on every row, conflicting or not (`installation_joined_health`
        of `sql/006_health.sql`, a fifth of PostgreSQL's time for a batch of installations).
        """
        rows, issue_rows = await self._rows(views)
        if rows:
            updated = {row["key"] for row in await conn.fetch(self._update_sql, *_columns(rows))}
            new = [row for row in rows if row[0] not in updated]
            if new:
                await conn.execute(self._upsert_sql, *_columns(new))
        if issue_rows:
            await conn.execute(self._issues_upsert_sql, *_columns(issue_rows))

    async def tell(self, conn: Connection, told: list[Told[View]]) -> None:
        """Write the issue transitions to the alert outbox, in the transaction that writes the views: only the
        live runner does, so a rebuild sends nothing."""
        if not told:
            return
        rows = []
        for item in told:
            issue = item.transition.issue
            project_id, integration_id = self.model.issue_scope(item.view)
            doc = _issue_adapter.dump_python(issue, by_alias=True, mode="json", exclude={"position"})
            shown = served(self.model.entity, item.key, project_id, integration_id, doc)
            rows.append((issue.position, self.model.entity, item.key, issue.code, item.transition.kind, project_id,
                         integration_id, issue.changed_at, shown))  # fmt: skip
        await record_transitions(conn, rows)

    async def copy(self, conn: Connection, views: list[View]) -> None:
        """Insert views that the table does not hold yet, with COPY: a rebuild's replay into its empty shadow."""
        rows, issue_rows = await self._rows(views)
        if rows:
            await conn.copy_records_to_table(self.table, records=rows, columns=self.columns)
        if issue_rows:
            await conn.copy_records_to_table(self.issues_table, records=issue_rows, columns=ISSUE_COLUMNS)

    async def _rows(self, views: list[View]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        model = self.model
        rows: list[tuple[Any, ...]] = []
        issue_rows: list[tuple[Any, ...]] = []
        for count, view in enumerate(views, start=1):
            row = model.row_of(view)
            rows.append((*row, view.position, model.to_json(view)))  # type: ignore[attr-defined]
            issues: tuple[Issue, ...] = view.issues  # type: ignore[attr-defined]
            if issues:
                scope = model.issue_scope(view)
                issue_rows.extend(
                    (model.entity, row[0], issue.code, *scope, issue.status, issue.changed_at, _issue_json(issue))
                    for issue in issues
                )
            await give_way(count, YIELD_EVERY)
        return rows, issue_rows


def _issue_json(issue: Issue) -> bytes:
    return _issue_adapter.dump_json(issue, by_alias=True, exclude={"position"})


def _update(table: str, columns: tuple[str, ...], kinds: tuple[str, ...], key: str) -> str:
    updates = ", ".join(f"{name} = s.{name}" for name in columns if name != key)
    return (
        f"UPDATE {table} t SET {updates} FROM unnest({_arrays(kinds)}) AS s({', '.join(columns)})"
        f" WHERE t.{key} = s.{key} RETURNING t.{key} AS key"
    )


def _upsert(table: str, columns: tuple[str, ...], kinds: tuple[str, ...], key: tuple[str, ...]) -> str:
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns if name not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({_arrays(kinds)})"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def _arrays(kinds: tuple[str, ...]) -> str:
    """One array parameter per column: a batch of rows is one statement, whatever its size."""
    return ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(kinds, start=1))


def _columns(rows: Iterable[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]

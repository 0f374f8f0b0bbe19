"""The library baseline of scenario `rebuild`: eventsourcing's `ProjectionRunner` replaying a slice of the log.

The slice (the log's first events, as the tracker stored them) is copied into the events table of the
library application `bench.library_receiver.Library`, so the library reads it with its own recorder
and mapper. The projection folds each event with the tracker's own read models (`evolve`) into a view
table per read model, writing the view row and the tracking position in one transaction, as the
library's projection documentation does: only the runner differs from `Tracker.rebuild()`.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from psycopg.sql import SQL, Identifier

from bench.library_receiver import TABLE, Library, library_env
from projections import READ_MODELS
from projections.read_model import ReadModel
from tracker.domain.base import TrackerEvent
from tracker.domain.recorded import Recorded

NAME = "LibraryRebuild"
"""The projection's name: its tracking table is `libraryrebuild_tracking`."""
_MODELS: dict[str, ReadModel[Any]] = {model.stream_prefix: model for model in READ_MODELS}
_POLL = 0.02


def _view_table(model: ReadModel[Any]) -> Identifier:
    return Identifier(f"library_{model.name}")


class LibraryViews(PostgresTrackingRecorder):
    """A view table per read model, `(key, doc)`, beside the library's tracking table."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        for model in READ_MODELS:
            create = SQL("CREATE TABLE IF NOT EXISTS {0} (key text PRIMARY KEY, doc jsonb NOT NULL)")
            self.sql_create_statements.append(create.format(_view_table(model)))

    def fold(self, model: ReadModel[Any], event: Recorded, tracking: Tracking) -> None:
        """Read the entity's view, evolve it, write it back, and track the position: one transaction."""
        key = model.key_of(event)
        table = _view_table(model)
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("SELECT doc::text AS doc FROM {0} WHERE key = %s").format(table), (key,))
            row = curs.fetchone()
            view = model.from_json(row["doc"]) if row else None
            evolved = model.evolve(view, event)
            if evolved is not None and evolved is not view:
                curs.execute(
                    SQL(
                        "INSERT INTO {0} (key, doc) VALUES (%s, %s::jsonb)"
                        " ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc"
                    ).format(table),
                    (key, model.to_json(evolved).decode()),
                )
            self._insert_tracking(curs, tracking)


class LibraryRebuild(Projection[LibraryViews]):
    name = NAME

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        event: TrackerEvent = domain_event
        kind = getattr(event, "notification_type", None) or type(event).NOTIFICATION_TYPE
        recorded = Recorded(
            tracking.notification_id, event.originator_id, event.originator_version, kind, event.data, event.timestamp
        )
        model = _MODELS.get(event.originator_id.split(":", 1)[0])
        if model is not None and kind in model.types:
            self.view.fold(model, recorded, tracking)
        else:
            self.view.insert_tracking(tracking)  # an event the views skip still moves the position


def prepare(url: str, events: int) -> int:
    """Copy the log's first `events` events into the library's table (once) and empty the views.

    Returns the last notification id of the slice.
    """
    env = library_env(url, pool_size=1)
    Library(env).close()  # creates the library's tables
    views = [_view_table(model) for model in READ_MODELS]
    with psycopg.connect(_conninfo(env), autocommit=True) as conn:
        if not conn.execute(SQL("SELECT EXISTS (SELECT 1 FROM {0})").format(Identifier(TABLE))).fetchone()[0]:  # type: ignore[index]
            conn.execute(
                SQL(
                    "INSERT INTO {0} (originator_id, originator_version, topic, state)"
                    " SELECT stream_id, version, topic, convert_to(payload::text, 'UTF8') FROM events"
                    " ORDER BY position LIMIT %s"
                ).format(Identifier(TABLE)),
                (events,),
            )
        for table in views:
            conn.execute(SQL("DROP TABLE IF EXISTS {0}").format(table))
        conn.execute(SQL("DROP TABLE IF EXISTS {0}").format(Identifier(f"{NAME.lower()}_tracking")))
        last = conn.execute(SQL("SELECT max(notification_id) FROM {0}").format(Identifier(TABLE))).fetchone()
    return int(last[0]) if last and last[0] is not None else 0


def _conninfo(env: dict[str, str]) -> str:
    keys = {"dbname": "POSTGRES_DBNAME", "host": "POSTGRES_HOST", "port": "POSTGRES_PORT", "user": "POSTGRES_USER"}
    info = {key: env[name] for key, name in keys.items()}
    if env["POSTGRES_PASSWORD"]:
        info["password"] = env["POSTGRES_PASSWORD"]
    return psycopg.conninfo.make_conninfo(**info)


def replay(url: str, events: int, timeout: float) -> dict[str, Any]:
    """Time the library's runner from its construction until its view has tracked the whole slice."""
    last = prepare(url, events)
    env = library_env(url, pool_size=2)
    started = time.perf_counter()
    with ProjectionRunner(
        application_class=Library, projection_class=LibraryRebuild, view_class=LibraryViews, env=env
    ) as runner:
        deadline = started + timeout
        while (runner.view.max_tracking_id(runner.app_name) or 0) < last:
            runner.run_forever(timeout=_POLL)  # re-raises an error of the runner's thread
            if time.perf_counter() > deadline:
                msg = f"the library's runner did not reach notification {last} within {timeout:.0f} s"
                raise TimeoutError(msg)
        seconds = time.perf_counter() - started
    return {"read": events, "last": last, "seconds": seconds}

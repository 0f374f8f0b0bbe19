"""Folding a page of events into views, entity by entity, where one entity's bad event stops only that entity.

No I/O: the live runner and a rebuild load and write the views around it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Generic

from projections.issues import Issue, Transition, transitions
from projections.read_model import ReadModel, View
from tracker.domain.recorded import Recorded
from tracker.turns import give_way

log = logging.getLogger(__name__)

_YIELD_EVERY = 200
"""Entities folded between two yields to the event loop, so a big page does not stall the webhook."""
_ERROR_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class Failure:
    """An event a read model's evolve() raised on: its entity's later events wait behind it."""

    key: str
    event: Recorded
    error: str


@dataclass(frozen=True, slots=True)
class Told(Generic[View]):
    """An issue transition, with the entity's view right after the event that made it."""

    key: str
    view: View
    transition: Transition


@dataclass(slots=True)
class Folded(Generic[View]):
    changed: list[View]
    failures: list[Failure]
    told: list[Told[View]]
    """The issue transitions, in log order per entity: the live runner writes them to the alert outbox."""


async def fold(
    model: ReadModel[View], events: list[Recorded], views: dict[str, View], blocked: set[str]
) -> Folded[View]:
    """Fold `events` into `views` in order per entity, skipping the entities in `blocked`.

    An entity whose evolve() raises keeps the view it had before that event and joins `blocked`, so its
    later events (in this page and after) wait until the failure is settled.
    """
    by_key: defaultdict[str, list[Recorded]] = defaultdict(list)
    for event in events:
        by_key[model.key_of(event)].append(event)
    folded: Folded[View] = Folded([], [], [])
    for count, (key, stream) in enumerate(by_key.items(), start=1):
        if key in blocked:
            continue
        before = view = views.get(key)
        for event in stream:
            try:
                after = model.evolve(view, event)
            except Exception as exc:  # a bug or an event the logic never met: park it, go on with the others
                log.exception("%s failed on event %d (%s)", model.name, event.position, event.type)
                folded.failures.append(Failure(key, event, f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH]))
                blocked.add(key)
                break
            if after is not view and after is not None:
                was: tuple[Issue, ...] = view.issues if view is not None else ()  # type: ignore[attr-defined]
                folded.told.extend(Told(key, after, told) for told in transitions(was, after.issues))  # type: ignore[attr-defined]
            view = after
        if view is not None and view is not before:
            views[key] = view
            folded.changed.append(view)
        await give_way(count, _YIELD_EVERY)
    return folded

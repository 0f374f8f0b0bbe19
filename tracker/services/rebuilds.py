"""Rebuilding read models from the log, blue/green: on demand, in the background, or because the code's
version of a read model is newer than its stored rows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from projections.read_model import ReadModel
from tracker.projecting.rebuild import Progress, Rebuild, RebuildReport, RebuildRunningError
from tracker.store.database import Pool

log = logging.getLogger(__name__)
Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class Rebuilds:
    def __init__(
        self,
        pool: Pool,
        database_url: str,
        read_models: Sequence[ReadModel[Any]],
        *,
        batch_size: int,
        workers: int,
        spawn: Spawn,
    ) -> None:
        self._pool = pool
        self._database_url = database_url
        self.read_models = tuple(read_models)
        self._batch_size = batch_size
        self._workers = workers
        self._spawn = spawn
        """Starts a background rebuild as a task the supervisor cancels when the tracker closes."""

    async def rebuild(
        self, names: list[str] | None = None, on_progress: Callable[[Progress], object] = lambda _: None
    ) -> dict[str, int]:
        """Rebuild the named read models (all by default) one after the other; readers see the old state
        until each switches over. Returns the events each folded."""
        reports = [await self._rebuild(model, on_progress).run() for model in self._models(names)]
        return {report.name: report.events for report in reports}

    async def start(self, name: str) -> Progress:
        """Start a rebuild in the background and return its progress once it holds the read model's lock.

        Raises ValueError for an unknown read model, RebuildRunningError when one runs already (anywhere).
        """
        (model,) = self._models([name])
        rebuild = self._rebuild(model)
        task: asyncio.Task[RebuildReport] = self._spawn(rebuild.run(), f"rebuild-{name}")
        claimed = asyncio.create_task(rebuild.claimed.wait())
        await asyncio.wait({task, claimed}, return_when=asyncio.FIRST_COMPLETED)
        claimed.cancel()
        if task.done():
            task.result()  # raises why it did not start, or it was over at once
        task.add_done_callback(_log_failure)
        return rebuild.progress

    async def rebuild_outdated(self) -> None:
        """Rebuild, one after the other, the read models whose stored rows an older version of their logic
        wrote; a rebuild another process runs already is left to it."""
        rows = await self._pool.fetch("SELECT name, version FROM projection_checkpoints")
        stored = {row["name"]: row["version"] for row in rows}
        for model in self.read_models:
            version = stored.get(model.name, model.version)
            if version > model.version:
                log.warning("%s rows are version %d, newer than this code's %d", model.name, version, model.version)
            elif version < model.version:
                log.info("rebuilding %s: version %d replaces %d", model.name, model.version, version)
                try:
                    await self._rebuild(model).run()
                except RebuildRunningError:
                    log.info("%s is being rebuilt by another process", model.name)
                except Exception:  # the live runner goes on; a restart, or `tracker rebuild`, tries again
                    log.exception("rebuilding %s for version %d failed", model.name, model.version)

    def _rebuild(
        self, model: ReadModel[Any], on_progress: Callable[[Progress], object] = lambda _: None
    ) -> Rebuild[Any]:
        return Rebuild(
            self._pool, model, self._batch_size, on_progress, database_url=self._database_url, workers=self._workers
        )

    def _models(self, names: list[str] | None) -> list[ReadModel[Any]]:
        chosen = [model for model in self.read_models if names is None or model.name in names]
        unknown = set(names or ()) - {model.name for model in chosen}
        if unknown:
            known = ", ".join(model.name for model in self.read_models)
            msg = f"unknown read model(s): {', '.join(sorted(unknown))}; known: {known}"
            raise ValueError(msg)
        return chosen


def _log_failure(task: asyncio.Task[RebuildReport]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background rebuild failed", exc_info=task.exception())

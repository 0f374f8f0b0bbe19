"""Progress of the long commands (`tracker rebuild`, `tracker import`): a bar on a terminal, otherwise log
lines that a log collector keeps, where a bar's carriage returns would garble."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from tracker.projecting.rebuild import Progress

log = logging.getLogger("tracker.rebuild")
LINE_EVERY = 5.0
"""Seconds between two progress log lines (and, for a rebuild, one at every change of phase)."""


class RebuildProgress:
    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._terminal = stream.isatty()
        self._bars: dict[str, tqdm[Any]] = {}
        self._last: dict[str, tuple[str, float]] = {}

    def __call__(self, progress: Progress) -> None:
        if self._terminal:
            self._draw(progress)
        else:
            self._line(progress)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()

    def _draw(self, progress: Progress) -> None:
        if progress.name not in self._bars:
            self._bars[progress.name] = tqdm(desc=progress.name, unit="ev", unit_scale=True, file=self._stream)
        bar = self._bars[progress.name]
        bar.total = progress.events_total
        bar.n = progress.events_done
        bar.set_postfix_str(progress.phase, refresh=False)
        bar.refresh()

    def _line(self, progress: Progress) -> None:
        now = time.monotonic()
        phase, at = self._last.get(progress.name, ("", 0.0))
        if phase == progress.phase and now - at < LINE_EVERY:
            return
        self._last[progress.name] = (progress.phase, now)
        eta = progress.eta()
        log.info(
            "%s: %s, %s/%s events, %s/s%s",
            progress.name,
            progress.phase,
            f"{progress.events_done:,}",
            f"{progress.events_total:,}",
            f"{progress.rate():,.0f}",
            f", about {eta:.0f} s left" if eta is not None else "",
            extra={"model": progress.name, "phase": progress.phase, "events_done": progress.events_done,
                   "events_total": progress.events_total},
        )  # fmt: skip


class ImportProgress:
    """A bar on a terminal; otherwise a log line every few seconds and one at the end, which a log
    collector keeps and a bar's carriage returns would garble."""

    def __init__(self, name: str, total: int, stream: TextIO = sys.stderr) -> None:
        self._bar = tqdm(total=total, unit="B", unit_scale=True, desc=name, file=stream) if stream.isatty() else None
        self._name, self._total, self._done, self._said = name, total, 0, time.monotonic()

    def __call__(self, done: int) -> None:
        self._done += done
        if self._bar is not None:
            self._bar.update(done)
        elif time.monotonic() - self._said >= LINE_EVERY:
            self._said = time.monotonic()
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._line()

    def _line(self) -> None:
        percent = 100.0 * self._done / self._total if self._total else 100.0
        extra = {"file": self._name, "bytes_done": self._done, "bytes_total": self._total, "percent": round(percent, 1)}
        logging.getLogger("tracker").info("import progress", extra=extra)

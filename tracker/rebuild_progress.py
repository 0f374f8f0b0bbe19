"""A rebuild's progress for the `tracker rebuild` command: a bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from tracker.projecting.rebuild import Progress

log = logging.getLogger("tracker.rebuild")
_LINE_EVERY = 5.0
"""Seconds between two progress log lines (and one at every change of phase)."""


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
        if phase == progress.phase and now - at < _LINE_EVERY:
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

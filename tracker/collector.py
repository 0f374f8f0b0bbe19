"""The garbage collector's thresholds for the tracker's own processes (the `tracker` command, rebuild workers)."""

from __future__ import annotations

import gc

COLLECTOR_THRESHOLDS = (100_000, 50, 100)
"""Allocations between two young collections, and collections between two older ones. CPython's
(700, 10, 10) suits short scripts: folding allocates a few hundred objects an event, so the collector ran
every few events and walked the page of rows and views in hand; a rebuild of 874,000 installation events
replayed in 38 s instead of 48 (garbage without cycles is freed at once whatever the thresholds)."""


def tune_collector() -> None:
    gc.set_threshold(*COLLECTOR_THRESHOLDS)

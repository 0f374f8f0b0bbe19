"""Summaries of repeated measurements: the median with its range, and latency percentiles."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of repetitions, with min and max so noise on a shared machine shows."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            msg = "no measurements to summarise"
            raise ValueError(msg)
        return cls(statistics.median(values), min(values), max(values), len(values))


def spread(values: Iterable[float | None]) -> Spread | None:
    """The Spread of the figures there are (a run may lack one: no PostgreSQL CPU on a remote server), None
    if there are none."""
    present = [value for value in values if value is not None]
    return Spread.of(present) if present else None


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (p99 of 2,000 is the 1,980th)."""
    if not sorted_values:
        msg = "no values"
        raise ValueError(msg)
    rank = max(1, round(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def percentile_ms(seconds: Sequence[float], fraction: float) -> float | None:
    """The `fraction` percentile of durations in seconds, in milliseconds; None if there are none."""
    return percentile(sorted(seconds), fraction) * 1e3 if seconds else None

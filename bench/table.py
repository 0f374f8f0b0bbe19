"""The one table the benchmark prints: each measure of the tracker beside a baseline from the same run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.stats import Spread

HEADERS = ("scenario", "measure", "tracker", "baseline", "baseline figure", "ratio", "goal", "met")


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    measure: str
    ours: Spread | None
    baseline: str
    theirs: Spread | None
    goal: str = ""
    met: bool | None = None
    """None: no goal for this row (shown for context)."""
    digits: int = 0

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.theirs is None or self.theirs.median == 0:
            return None
        return self.ours.median / self.theirs.median

    def cells(self) -> tuple[str, ...]:
        ratio = self.ratio
        return (
            self.scenario,
            self.measure,
            _figure(self.ours, self.digits),
            self.baseline,
            _figure(self.theirs, self.digits),
            "" if ratio is None else f"{ratio:.2f}x",
            self.goal,
            {None: "", True: "yes", False: "NO"}[self.met],
        )


def _figure(spread: Spread | None, digits: int) -> str:
    """`median (min-max)`, or the median alone for a single repetition."""
    if spread is None:
        return "n/a"
    if spread.count == 1:
        return f"{spread.median:,.{digits}f}"
    return f"{spread.median:,.{digits}f} ({spread.low:,.{digits}f}-{spread.high:,.{digits}f})"


def render(rows: Sequence[Row]) -> str:
    return "\n".join(aligned([HEADERS, *(row.cells() for row in rows)]))


def aligned(lines: Sequence[Sequence[str]]) -> list[str]:
    """The lines in columns, the first one (the headers) ruled off: the bench's and the drills' tables."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for index, line in enumerate(lines):
        out.append(" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            out.append("-+-".join("-" * width for width in widths))
    return out

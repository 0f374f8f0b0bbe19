"""What a drill found, and the one table `python -m tests.drills` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.table import aligned

from .audit import Audit
from .deliveries import Record

HEADERS = ("drill", "load held", "faults injected", "acknowledged", "stored", "lost", "duplicates", "checks")


@dataclass(slots=True)
class DrillResult:
    drill: str
    requests: int
    """HTTP requests made, retries included."""
    seconds: float
    """How long the load ran."""
    faults: str
    audit: Audit
    notes: list[str] = field(default_factory=list)
    """Figures worth a line under the table (statuses seen, recovery times, peak RSS)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Everything else, for `--json`."""

    @property
    def passed(self) -> bool:
        return self.audit.passed

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def cells(self) -> tuple[str, ...]:
        audit = self.audit
        checks = "ok" if self.passed else f"FAILED ({len(audit.problems)})"
        return (
            self.drill,
            f"{self.requests:,} requests, {self.rate:,.0f}/s over {self.seconds:,.0f} s",
            self.faults,
            f"{audit.acknowledged:,}",
            f"{audit.stored:,}",
            f"{audit.lost:,}",
            f"{audit.duplicates:,}",
            checks,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "drill": self.drill,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "faults": self.faults,
            "acknowledged": self.audit.acknowledged,
            "stored": self.audit.stored,
            "lost": self.audit.lost,
            "duplicates": self.audit.duplicates,
            "passed": self.passed,
            "problems": self.audit.problems,
            "notes": self.notes,
            **self.details,
        }


def answers(record: Record) -> str:
    """`200: 9,876, 503: 12, no answer: 40 (ClientOSError)`: what the sender heard, in one line."""
    parts = [f"{status}: {count:,}" for status, count in sorted(record.statuses.items())]
    if record.errors:
        kinds = ", ".join(sorted(record.errors))
        parts.append(f"no answer: {sum(record.errors.values()):,} ({kinds})")
    return ", ".join(parts) or "none"


def render(results: Sequence[DrillResult]) -> str:
    out = aligned([HEADERS, *(result.cells() for result in results)])
    for result in results:
        out.extend(f"{result.drill}: {note}" for note in result.notes)
        out.extend(f"{result.drill}: FAILED: {problem}" for problem in result.audit.problems)
    return "\n".join(out)

"""What an attempt's outcome means for its delivery: delivered, try again (when), failed for good, or gone.

Pure. A timeout, a connection error or a 5xx is retried on the schedule, a 429 or 503 after its
`Retry-After` when it gives one; 410 Gone disables the subscription; any other answer is final, since the
same body would get the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 86_400.0
"""A `Retry-After` further off than a day is taken as a day."""

DELIVERED, RETRY, FAILED, GONE = "delivered", "retry", "failed", "gone"


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str
    delay: float = 0.0
    """Seconds until the next attempt (RETRY only)."""
    reason: str = ""


def judge(
    status: int | None, error: str | None, attempts_before: int, schedule: tuple[float, ...], retry_after: float | None
) -> Verdict:
    """The verdict on an attempt that got `status` (None: no answer, `error` says why), the delivery having
    been tried `attempts_before` times already."""
    if status is not None and 200 <= status < 300:
        return Verdict(DELIVERED, reason=f"HTTP {status}")
    if status == 410:
        return Verdict(GONE, reason="HTTP 410: the receiver wants no more alerts; subscription disabled")
    said = f"HTTP {status}" if status is not None else (error or "no answer")
    retried = status is None or status >= 500 or status == 429
    if not retried:
        return Verdict(FAILED, reason=f"{said}: not retried (only timeouts, connection errors, 429 and 5xx are)")
    if attempts_before >= len(schedule):
        return Verdict(FAILED, reason=f"{said}: gave up after {attempts_before + 1} attempts")
    delay = schedule[attempts_before]
    if status in (429, 503) and retry_after is not None:
        delay = retry_after
    return Verdict(RETRY, delay, said)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date), within [0, a day]."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not `²`, which isdigit() takes and float() refuses
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)

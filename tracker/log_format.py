"""How the `tracker` command logs: one line per record on stderr, JSON for machines or text for people.

Each JSON line has `level`, `logger`, `event` (the message) and `time`, then whatever the record carries
in `extra=` (`delivery_id`, `notification_type`, `position`, `latency_ms`, ...). Lines are written by a
thread, so a slow stderr (a full pipe, a stalled collector) never blocks the event loop, and every line
passes a last filter that masks the secrets the tracker knows, should one ever reach a message. The queue
before that thread is bounded: while it is full, records are dropped and counted (`records_dropped`, the
`tracker_log_records_dropped_total` metric), and once it has drained, one line says how many were lost.
"""

from __future__ import annotations

import copy
import logging
import logging.handlers
import queue
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from tracker.settings import Settings

FORMATS = ("json", "text")
LEVELS = ("debug", "info", "warning", "error")
MASK = "[redacted]"
MIN_SECRET_LENGTH = 8
"""Shorter values are not masked: masking every "abc" in every line would garble the log, not protect it."""
QUEUE_BOUND = 10_000
"""Records that may wait for the writing thread: with stderr stalled, memory stays bounded instead of growing
by a record per request, while a burst the writer will catch up with still loses nothing."""
_NOT_EXTRA = frozenset(RESERVED_ATTRS) | {"message", "asctime", "taskName"}
"""Record attributes that are logging's own, not fields a caller passed in `extra=`."""


def default_format(stream: Any = sys.stderr) -> str:
    """Text for a person at a terminal, JSON for everything else (a pipe, a file, a log collector)."""
    return "text" if stream.isatty() else "json"


def json_formatter() -> logging.Formatter:
    return OrjsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "message": "event"},
        reserved_attrs=_NOT_EXTRA,
        timestamp="time",
    )


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: event key=value ...`: the same fields as the JSON lines, for reading."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{key}={_text(value)}" for key, value in vars(record).items() if key not in _NOT_EXTRA)
        line = super().formatMessage(record)
        return f"{line} {extras}" if extras else line


def _text(value: object) -> str:
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text


class Redacting(logging.Formatter):
    """Formats with another formatter, then masks each secret wherever it appears in the line."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self._inner = inner
        # Longest first: a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = self._inner.format(record)
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, MASK)
        return line


def secrets_of(settings: Settings) -> list[str]:
    """What must never be written to a log: the API token, each webhook secret (also its base64 key alone),
    and the database password (in the URL's user info or its `password` parameter)."""
    secrets = [settings.api_token or "", *settings.scoped_tokens]
    for secret in settings.webhook_secrets:
        secrets += [secret, secret.removeprefix("whsec_")]
    if settings.database_url:
        url = urlsplit(settings.database_url)
        secrets += [url.password or "", *parse_qs(url.query).get("password", [])]
    return [secret for secret in secrets if secret]


class _Enqueue(logging.handlers.QueueHandler):
    """Hand records to the writing thread with their message already built (the arguments may change
    later) and their traceback as text (it keeps the frames alive), but the record's fields intact; drop
    a record the full queue has no room for rather than wait (the caller may be the event loop)."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord], bound: int) -> None:
        super().__init__(records)
        self._records, self._bound = records, bound
        self.dropped = 0
        """Records dropped since the start because the queue was full."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        # `handle` holds the handler's lock around this, so no other thread adds between the check and the
        # put. A SimpleQueue, not a bounded Queue: its put takes no lock, so a record logged by a finalizer
        # that runs in the middle of a put cannot deadlock.
        if self._records.qsize() >= self._bound:
            self.dropped += 1
        else:
            self._records.put(record)


class _Writer(logging.handlers.QueueListener):
    """The writing thread: writes each queued record and, each time the queue is empty again, says in one
    line how many records were dropped since it last said so."""

    def __init__(
        self, records: queue.SimpleQueue[logging.LogRecord], enqueue: _Enqueue, writer: logging.Handler
    ) -> None:
        super().__init__(records, writer)
        self._records, self._enqueue = records, enqueue
        self._said = 0
        """Drops already reported in a line."""

    def handle(self, record: logging.LogRecord) -> None:
        super().handle(record)
        if self._records.empty():
            self._say_dropped()

    def stop(self) -> None:
        super().stop()
        self._say_dropped()  # drops since the queue last emptied, which no later record would report

    def _say_dropped(self) -> None:
        dropped = self._enqueue.dropped - self._said
        if dropped:
            self._said += dropped
            line = logging.LogRecord(
                "tracker.logs", logging.WARNING, __file__, 0,
                "%d log records dropped: the log output did not keep up", (dropped,), None,
            )  # fmt: skip
            line.records_dropped = dropped
            super().handle(line)


def records_dropped() -> int:
    """Log records this process dropped because the queue before the writing thread was full (none unless
    `log_to_stderr` set logging up)."""
    return sum(handler.dropped for handler in logging.getLogger().handlers if isinstance(handler, _Enqueue))


def log_to_stderr(
    log_format: str, level: str, secrets: Iterable[str], stream: Any = sys.stderr, bound: int = QUEUE_BOUND
) -> Callable[[], None]:
    """Send every record of `level` and above to `stream`, one line each, through a queue of `bound`
    records; return the function that writes what is still queued and stops (call it before the process
    exits)."""
    formatter = json_formatter() if log_format == "json" else TextFormatter()
    writer = logging.StreamHandler(stream)
    writer.setFormatter(Redacting(formatter, secrets))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = _Enqueue(records, bound)
    listener = _Writer(records, enqueue, writer)
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    root.addHandler(enqueue)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python's warnings too, as lines like the others rather than bare text
    listener.start()
    return listener.stop

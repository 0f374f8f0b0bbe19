"""Logs: one JSON object per line with the delivery's fields, text on request, and no secret in any line."""

from __future__ import annotations

import asyncio
import io
import logging
import logging.handlers
import queue
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import orjson
import pytest

from tracker.log_format import (
    MASK,
    Redacting,
    TextFormatter,
    json_formatter,
    log_to_stderr,
    records_dropped,
    secrets_of,
)
from tracker.metrics import Metrics
from tracker.settings import Settings

from .conftest import SECRET, throwaway_database
from .notifications import Signer, config, installation_event, new_id, notification
from .test_cli import environment, free_port


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("tracker.test", logging.INFO, __file__, 1, message, None, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_level_event_time_and_the_fields_passed_in_extra() -> None:
    line = json_formatter().format(record("notification stored", delivery_id="msg-1", position=7, latency_ms=1.5))

    parsed = orjson.loads(line)
    assert "\n" not in line
    assert parsed["level"] == "INFO"
    assert parsed["event"] == "notification stored"
    assert parsed["logger"] == "tracker.test"
    assert (parsed["delivery_id"], parsed["position"], parsed["latency_ms"]) == ("msg-1", 7, 1.5)
    assert parsed["time"].endswith("+00:00")


def test_a_text_line_carries_the_same_fields() -> None:
    line = TextFormatter().format(record("notification stored", delivery_id="msg 1", position=7))

    assert line.endswith(" INFO tracker.test: notification stored delivery_id='msg 1' position=7")


def test_every_secret_the_settings_hold_is_masked_in_a_line() -> None:
    settings = Settings(
        api_token="api-token-0123456789",
        scoped_tokens={"scoped-token-0123456789": frozenset({"proj-1"})},
        webhook_secrets=(SECRET, "whsec_c2Vjb25kLXNlY3JldC1rZXk="),
        database_url="postgresql://tracker:db-password-42@db:5432/tracker?sslmode=require",
    )
    masked = Redacting(json_formatter(), secrets_of(settings))

    leaky = (f"tokens api-token-0123456789 scoped-token-0123456789, {SECRET}, key c2Vjb25kLXNlY3JldC1rZXk="
             " and db-password-42")  # fmt: skip
    line = masked.format(record(leaky))

    for secret in ("api-token-0123456789", "scoped-token-0123456789", SECRET.removeprefix("whsec_"),
                   "c2Vjb25kLXNlY3JldC1rZXk=", "db-password-42"):  # fmt: skip
        assert secret not in line
    assert line.count(MASK) == 5


@pytest.fixture
async def own_database(server_url: str) -> AsyncIterator[str]:
    """A database of the test's own: in the session's, heartbeats of earlier tests' runners make `/readyz` pass
    before this server's child has led anything (and so logged it)."""
    async with throwaway_database(server_url, "tracker_logs") as url:
        yield url


async def test_a_served_story_logs_json_lines_with_no_token_or_secret_in_any(own_database: str) -> None:
    token, port = f"token-{secrets.token_hex(12)}", free_port()
    env = environment(TRACKER_DATABASE_URL=own_database, TRACKER_API_TOKEN=token, TRACKER_WEBHOOK_SECRET=SECRET)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tracker", "serve", "--port", str(port), "--log-level", "debug", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base, signer = f"http://127.0.0.1:{port}", Signer(SECRET)
    stored_id, bad_id = new_id("msg"), new_id("msg")
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):  # until the child's runners beat: then it has logged as well
                try:
                    async with session.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            created = installation_event("installation.created", new_id("inst"), config=config())
            body, headers = signer.signed(created, msg_id=stored_id)
            story = [
                (f"{base}/webhooks/ampersand", body, headers, 200),
                (f"{base}/webhooks/ampersand", body, {**headers, "svix-id": bad_id,
                                                      "svix-signature": "v1,Zm9yZ2Vk"}, 401),
                (f"{base}/webhooks/ampersand", *signer.signed(notification("read.backfill.done")), 422),
            ]  # fmt: skip
            answers = []
            for url, data, sent_headers, status in story:
                async with session.post(url, data=data, headers=sent_headers) as response:
                    assert response.status == status, await response.text()
                    answers.append(await response.json())
            for authorization, status in ((f"Bearer {token}x", 401), (f"Bearer {token}", 200)):
                async with session.get(f"{base}/v1/status", headers={"Authorization": authorization}) as response:
                    assert response.status == status
    finally:
        process.terminate()
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()

    output = out.decode() + err.decode()
    for secret in (token, SECRET, SECRET.removeprefix("whsec_")):
        assert secret not in output
    records = [orjson.loads(line) for line in err.decode().splitlines()]  # raises unless every line is JSON
    assert all({"level", "logger", "event", "time"} <= set(r) for r in records)
    by_event = {(r["event"], r.get("delivery_id")): r for r in records}
    stored = by_event[("notification stored", stored_id)]
    assert stored["level"] == "DEBUG"
    assert stored["notification_type"] == "installation.created"
    assert stored["position"] == answers[0]["position"]  # the database is shared: not always the first
    assert stored["latency_ms"] >= 0
    rejected = by_event[("notification rejected", bad_id)]
    assert (rejected["level"], rejected["status"]) == ("WARNING", 401)
    quarantined = next(r for r in records if r["event"] == "notification quarantined")
    assert quarantined["notification_type"] == "read.backfill.done"
    assert "does not match its schema" in quarantined["reason"]
    assert any(r["logger"].startswith("tracker.store.leadership") for r in records)  # the child's lines too


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, with pytest's own handlers and level put back after the test replaced them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_log_lines_are_written_by_a_thread_and_flushed_by_the_stop(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    stop = log_to_stderr("json", "info", ["a-secret-value"], stream=stream)
    logging.getLogger("tracker.test").info("hello %s", "a-secret-value", extra={"position": 3})
    logging.getLogger("tracker.test").debug("below the level")
    stop()
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line)["event"] for line in lines] == [f"hello {MASK}"]
    assert orjson.loads(lines[0])["position"] == 3


class StalledStream(io.StringIO):
    """Output that takes nothing until released, like a pipe nobody reads; says when a write has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.writing, self.released = threading.Event(), threading.Event()

    def write(self, text: str) -> int:
        self.writing.set()
        self.released.wait()
        return super().write(text)


def events_written(stream: io.StringIO) -> list[str]:
    return [orjson.loads(line)["event"] for line in stream.getvalue().splitlines()]


def test_a_stalled_output_bounds_the_queue_counts_every_dropped_record_and_says_so_once_it_drains(
    root_logger: logging.Logger,
) -> None:
    bound, logged = 50, 1_000
    stream = StalledStream()
    stop = log_to_stderr("json", "info", [], stream=stream, bound=bound)
    log = logging.getLogger("tracker.test")
    metrics = Metrics()
    try:
        log.info("record 0")
        assert stream.writing.wait(10), "the writing thread never began to write the first record"
        assert records_dropped() == 0  # before: the writer holds one record, the queue is empty

        for number in range(1, logged):  # each call returns at once: a full queue drops, it never waits
            log.info("record %d", number)

        (enqueue,) = root_logger.handlers
        assert isinstance(enqueue, logging.handlers.QueueHandler) and isinstance(enqueue.queue, queue.SimpleQueue)
        assert enqueue.queue.qsize() == bound
        dropped = logged - 1 - bound  # all but the one being written and the ones the queue holds
        assert records_dropped() == dropped
        assert metrics.registry.get_sample_value("tracker_log_records_dropped_total") == dropped
        assert stream.getvalue() == ""

        stream.released.set()
        said = f"{dropped} log records dropped: the log output did not keep up"
        deadline = time.monotonic() + 10
        while said not in (events := events_written(stream)):
            assert time.monotonic() < deadline, f"no line said the drops once the output resumed; written: {events}"
            time.sleep(0.01)
    finally:
        stream.released.set()
        stop()

    kept = [f"record {number}" for number in range(bound + 1)]  # the oldest: a full queue refuses the newest
    assert events_written(stream) == [*kept, said]  # said once, after what was queued, and not again at the stop
    summary = orjson.loads(stream.getvalue().splitlines()[-1])
    assert (summary["level"], summary["logger"], summary["records_dropped"]) == ("WARNING", "tracker.logs", dropped)

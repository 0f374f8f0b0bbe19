"""The rebuild's worker process: what it reports travels whole, and a worker that fails says why."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from projections.folding import Failure
from projections.replay import StreamRange
from projections.replay_worker import ReplayWorkerError, decode_failure, encode_failure, run_worker
from tracker.store.event_log import Recorded


def test_a_failure_comes_back_from_a_worker_as_it_left() -> None:
    event = Recorded(
        12, "installation:i-1", 3, "write.async.done", {"objectName": "o", "errors": ["é", None, {"a": [1.5]}]},
        datetime(2026, 11, 27, 9, 30, 1, 123456, tzinfo=UTC),
    )  # fmt: skip
    failure = Failure("i-1", event, "KeyError: 'success'")

    assert decode_failure(orjson.loads(orjson.dumps(encode_failure(failure)))) == failure  # as on the pipe


async def test_a_worker_that_cannot_replay_fails_with_what_it_said() -> None:
    pages: list[int] = []

    async def on_page(events: int, failures: list[Failure]) -> None:
        pages.append(events)

    nowhere = "postgresql://tracker@127.0.0.1:1/none"  # nothing listens on port 1
    with pytest.raises(ReplayWorkerError, match=r"(?s)exited with 1:.*Connection refused"):
        await run_worker(nowhere, "installations", StreamRange("installation:", "installation;"), 10, on_page)
    assert pages == []

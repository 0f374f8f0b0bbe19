"""A rebuild's worker process: one range of a read model's streams replayed into the rebuild's shadow.

    TRACKER_DATABASE_URL=... python -m tracker.projecting.replay_worker NAME START STOP HEAD

Folding holds one core per process, so a rebuild of a big log starts one worker per core, each on its own
range of streams (`Rebuild`). A worker reports each page on stdout as a JSON line: its events, and the
failures that will become dead letters. The URL comes by the environment, not the command line, which
any local user can read.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import suppress
from datetime import datetime
from typing import Any

import orjson
import uvloop

from projections import READ_MODELS
from tracker.collector import tune_collector
from tracker.domain.recorded import Recorded
from tracker.projecting.folding import Failure
from tracker.projecting.replay import OnPage, StreamRange, replay
from tracker.store.database import connect

_STDERR_KEPT = 2000
"""Characters of a failed worker's standard error that its exception quotes."""


class ReplayWorkerError(RuntimeError):
    """A worker process ended without replaying its whole range."""


def encode_failure(failure: Failure) -> dict[str, Any]:
    event = failure.event
    return {
        "key": failure.key,
        "error": failure.error,
        "event": [event.position, event.stream_id, event.version, event.type, event.data, event.received_at],
    }


def decode_failure(document: dict[str, Any]) -> Failure:
    position, stream_id, version, event_type, data, received_at = document["event"]
    event = Recorded(position, stream_id, version, event_type, data, datetime.fromisoformat(received_at))
    return Failure(document["key"], event, document["error"])


async def run_worker(database_url: str, name: str, streams: StreamRange, head: int, on_page: OnPage) -> None:
    """Replay `streams` of read model `name` in a worker process, handing its pages to `on_page`; a worker
    still running when this is cancelled is killed."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tracker.projecting.replay_worker", name, streams.start, streams.stop, str(head),
        env={**os.environ, "TRACKER_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=1 << 26,
    )  # fmt: skip
    assert worker.stdout is not None and worker.stderr is not None
    errors = asyncio.ensure_future(worker.stderr.read())
    try:
        while line := await worker.stdout.readline():
            page = orjson.loads(line)
            await on_page(page["events"], [decode_failure(failure) for failure in page["failures"]])
        code = await worker.wait()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        if not errors.done():
            errors.cancel()
        with suppress(BaseException):
            await errors
    if code != 0:
        said = errors.result().decode(errors="replace")[-_STDERR_KEPT:] if not errors.cancelled() else ""
        msg = f"the replay worker of {name} for {streams.start!r}..{streams.stop!r} exited with {code}: {said}"
        raise ReplayWorkerError(msg)


async def _replay(name: str, streams: StreamRange, head: int) -> None:
    (model,) = (model for model in READ_MODELS if model.name == name)
    database_url = os.environ["TRACKER_DATABASE_URL"]
    reader, writer = await connect(database_url), await connect(database_url)

    async def report(events: int, failures: list[Failure]) -> None:
        line = orjson.dumps({"events": events, "failures": [encode_failure(f) for f in failures]}) + b"\n"
        await asyncio.to_thread(_write, line)

    try:
        await replay(reader, writer, model, streams, head=head, blocked=set(), on_page=report)
    finally:
        await reader.close()
        await writer.close()


def _write(line: bytes) -> None:
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


def main() -> None:
    name, start, stop, head = sys.argv[1:]
    tune_collector()
    uvloop.run(_replay(name, StreamRange(start, stop), int(head)))


if __name__ == "__main__":
    main()

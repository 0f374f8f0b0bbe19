"""Where an NDJSON file enters (`tracker import`): one notification per line, either shape."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracker.ingest.parsing import parse_record
from tracker.ingest.pipeline import REFUSED, Delivery, Pipeline

_CHUNK_BYTES = 1 << 20
"""Read in a thread a chunk at a time; the group commit batches the chunk's lines."""


@dataclass(slots=True)
class ImportReport:
    lines: int = 0
    appended: int = 0
    duplicates: int = 0
    quarantined: int = 0


class FileImporter:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def run(self, path: Path, progress: Callable[[int], object] = lambda _: None) -> ImportReport:
        """Import every line; `progress` hears the bytes done after each chunk.

        Two chunks are in flight: one is parsed while the one before it commits. Memory holds those two
        and a digest per distinct line (for the occurrence count), not the lines read before.
        """
        report = ImportReport()
        seen: Counter[bytes] = Counter()
        committing: asyncio.Future[list[None]] | None = None
        with path.open("rb") as file:  # opening is instant; the reads run in a thread
            while lines := await asyncio.to_thread(file.readlines, _CHUNK_BYTES):
                work = [self._one(line.rstrip(b"\r\n"), seen, report) for line in lines if line.strip()]
                chunk = asyncio.gather(*work)
                if committing is not None:
                    await committing
                committing = chunk
                progress(sum(len(line) for line in lines))
        if committing is not None:
            await committing
        return report

    async def _one(self, raw: bytes, seen: Counter[bytes], report: ImportReport) -> None:
        report.lines += 1
        digest = hashlib.sha256(raw).digest()
        occurrence = seen[digest]
        seen[digest] += 1
        # Importing a file again appends nothing; equal lines inside one file are distinct notifications.
        delivery = Delivery(source="import", raw=raw, delivery_id=f"line:{digest.hex()}:{occurrence}")
        try:
            appended = await self._pipeline.ingest(parse_record, delivery, wait_for_room=True)
        except REFUSED:
            report.quarantined += 1
        else:
            report.duplicates += appended.duplicate
            report.appended += not appended.duplicate

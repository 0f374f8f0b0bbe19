"""Where an NDJSON file enters (`tracker import`): one notification per line, either shape, a chunk of lines
per transaction of the pipeline (`Pipeline.convert_batch`, `Pipeline.append_batch`)."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracker.ingest.parsing import parse_record
from tracker.ingest.pipeline import Delivery, Pipeline

_CHUNK_BYTES = 1 << 20
"""Read in a thread a chunk at a time; each chunk's lines are appended by one COPY."""


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
        """Import every line, a chunk per COPY; `progress` hears the bytes done after each chunk.

        Two chunks are in flight: one is parsed while the one before it commits. Memory holds those two
        and a digest per distinct line (for the occurrence count), not the lines read before.
        """
        report = ImportReport()
        seen: Counter[bytes] = Counter()
        read = 0  # lines read so far, blank ones too: a refusal names the line as an editor numbers it
        chunks: list[asyncio.Future[None]] = []  # the one being appended, and the next one, parsing
        try:
            with path.open("rb") as file:  # opening is instant; the reads run in a thread
                while lines := await asyncio.to_thread(file.readlines, _CHUNK_BYTES):
                    deliveries = [
                        _delivery(line.rstrip(b"\r\n"), seen, number)
                        for number, line in enumerate(lines, start=read + 1)
                        if line.strip()
                    ]
                    read += len(lines)
                    before = chunks[-1] if chunks else None
                    chunks.append(asyncio.ensure_future(self._import(deliveries, report, before)))
                    if len(chunks) == 2:
                        await chunks.pop(0)
                    progress(sum(len(line) for line in lines))
            while chunks:
                await chunks.pop(0)
        finally:  # a chunk failed, or the import was cancelled: so is the one after it
            for chunk in chunks:
                chunk.cancel()
            await asyncio.gather(*chunks, return_exceptions=True)
        return report

    async def _import(
        self, deliveries: list[Delivery], report: ImportReport, before: asyncio.Future[None] | None
    ) -> None:
        """Convert the chunk, then append it once the chunk `before` it has been: positions and stream versions
        follow the file's order, and of equal event ids the first line is the one kept."""
        batch = await self._pipeline.convert_batch(parse_record, deliveries)
        if before is not None:
            await before
        outcomes = await self._pipeline.append_batch(batch)
        report.lines += len(outcomes)
        report.appended += outcomes.count(True)
        report.duplicates += outcomes.count(False)
        report.quarantined += outcomes.count(None)


def _delivery(raw: bytes, seen: Counter[bytes], line: int) -> Delivery:
    digest = hashlib.sha256(raw).digest()
    occurrence = seen[digest]
    seen[digest] += 1
    # Importing a file again appends nothing; equal lines inside one file are distinct notifications.
    return Delivery(source="import", raw=raw, delivery_id=f"line:{digest.hex()}:{occurrence}", line=line)

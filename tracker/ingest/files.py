"""Where an NDJSON file enters (`tracker import`): one notification per line, either shape."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from tracker.ingest.parsing import NotJSONObjectError, SchemaError, parse_object
from tracker.ingest.pipeline import Delivery, Pipeline
from tracker.store.event_log import Appended
from tracker.store.quarantine import Quarantine, Refused

_CHUNK_LINES = 2000
"""Lines read (in a thread) and submitted together; the group commit batches them further."""


@dataclass(slots=True)
class ImportReport:
    lines: int = 0
    appended: int = 0
    duplicates: int = 0
    quarantined: int = 0


class FileImporter:
    def __init__(self, pipeline: Pipeline, quarantine: Quarantine) -> None:
        self._pipeline = pipeline
        self._quarantine = quarantine

    async def run(self, path: Path, progress: Callable[[int], object] = lambda _: None) -> ImportReport:
        """Import every line; `progress` hears the bytes done after each chunk."""
        report = ImportReport()
        seen: Counter[bytes] = Counter()
        with path.open("rb") as file:  # opening is instant; the reads below run in a thread
            while lines := await asyncio.to_thread(file.readlines, _CHUNK_LINES * 512):
                work = [self._one(line, seen, report) for line in lines if line.strip()]
                for outcome in await asyncio.gather(*work):
                    if outcome is not None:
                        report.appended += not outcome.duplicate
                        report.duplicates += outcome.duplicate
                progress(sum(len(line) for line in lines))
        return report

    async def _one(self, line: bytes, seen: Counter[bytes], report: ImportReport) -> Appended | None:
        report.lines += 1
        raw = line.rstrip(b"\r\n")
        digest = hashlib.sha256(raw).digest()
        occurrence = seen[digest]
        seen[digest] += 1
        try:
            notification = parse_object(orjson.loads(raw))
        except (orjson.JSONDecodeError, NotJSONObjectError, SchemaError) as exc:
            problems = exc.problems if isinstance(exc, SchemaError) else []
            delivery_id = f"import:{digest.hex()}:{occurrence}"
            await self._quarantine.keep(Refused("import", str(exc), raw, delivery_id, problems))
            report.quarantined += 1
            return None
        event_id = notification.metadata.get("event-id")
        # Re-importing a file appends nothing; identical lines inside one file are distinct notifications.
        dedupe_key = f"outpost:{event_id}" if isinstance(event_id, str) else f"line:{digest.hex()}:{occurrence}"
        delivery = Delivery(source="import", raw=raw, dedupe_key=dedupe_key, delivery_id=event_id)
        return await self._pipeline.accept(notification, delivery)

"""Reviewing the quarantine: list and read kept deliveries, ingest one again, or discard it with a reason."""

from __future__ import annotations

from tracker.ingest.parsing import parse_record, parse_webhook_body
from tracker.ingest.pipeline import REFUSED, Delivery, Pipeline
from tracker.store.event_log import Appended
from tracker.store.quarantine import Quarantine, Quarantined, QuarantinePage, QuarantineResolvedError


class QuarantineReview:
    def __init__(self, quarantine: Quarantine, pipeline: Pipeline) -> None:
        self._quarantine = quarantine
        self._pipeline = pipeline

    async def list(
        self, status: str | None = None, source: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> QuarantinePage:
        """Kept deliveries newest first; `status` is pending, replayed or discarded (BadFilterError else)."""
        return await self._quarantine.list(status, source, limit, cursor)

    async def get(self, quarantine_id: int) -> Quarantined | None:
        return await self._quarantine.get(quarantine_id)

    async def replay(self, quarantine_id: int) -> Appended:
        """Ingest a kept delivery again, as it first came (delivery id, received-at), and mark it replayed.

        LookupError for an unknown id, QuarantineResolvedError unless pending. A refusal raises one of
        REFUSED and is recorded on the row, which stays pending: no second row is kept.
        """
        kept = await self._quarantine.get(quarantine_id)
        if kept is None:
            msg = f"no quarantined delivery {quarantine_id}"
            raise LookupError(msg)
        if kept.status != "pending":
            raise QuarantineResolvedError(kept)
        parse = parse_webhook_body if kept.source == "webhook" else parse_record
        delivery = Delivery(
            kept.source,
            kept.raw,
            kept.original_delivery_id,  # so a delivery that meanwhile arrived again is a duplicate, not a second one
            signature_verified=bool(kept.signature_verified),
            received_at=kept.received_at,
            headers=kept.headers,
            replayed_from=kept.id,
        )
        try:
            appended = await self._pipeline.ingest(parse, delivery, wait_for_room=True, quarantine=False)
        except REFUSED as exc:
            await self._quarantine.record_replay_error(kept.id, str(exc))
            raise
        # Not in one transaction with the append: should this fail, a second replay is a duplicate and marks it.
        await self._quarantine.mark_replayed(kept.id, appended.position)
        return appended

    async def discard(self, quarantine_id: int, note: str) -> Quarantined:
        """Mark a kept delivery as never to be replayed, saying why; the row and its body stay."""
        return await self._quarantine.discard(quarantine_id, note)

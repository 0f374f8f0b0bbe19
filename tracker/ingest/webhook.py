"""Where a webhook delivery enters: check the signature, then the one ingestion path."""

from __future__ import annotations

from collections.abc import Mapping

from tracker.ingest.parsing import parse_webhook_body
from tracker.ingest.pipeline import Delivery, Pipeline
from tracker.ingest.signatures import SignatureVerifier, delivery_headers
from tracker.store.event_log import Appended


class WebhookReceiver:
    def __init__(self, pipeline: Pipeline, verifier: SignatureVerifier | None) -> None:
        self._pipeline = pipeline
        self._verifier = verifier

    async def receive(self, body: bytes, headers: Mapping[str, str]) -> Appended:
        """Store one delivery; a bad signature raises SignatureError and keeps nothing."""
        if self._verifier is not None:
            self._verifier.verify(body, headers)
        delivery = Delivery(
            source="webhook",
            raw=body,
            delivery_id=delivery_headers(headers).get("webhook-id"),
            signature_verified=self._verifier is not None,
            headers=headers,
        )
        return await self._pipeline.ingest(parse_webhook_body, delivery)

"""Where a webhook delivery enters: check the signature, parse, keep what is refused, append the rest."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from tracker.ingest.parsing import NotJSONObjectError, SchemaError, parse_webhook_body
from tracker.ingest.pipeline import Delivery, Pipeline
from tracker.ingest.signatures import SignatureVerifier, delivery_headers
from tracker.store.event_log import Appended
from tracker.store.quarantine import Quarantine, Refused


class WebhookReceiver:
    def __init__(self, pipeline: Pipeline, quarantine: Quarantine, verifier: SignatureVerifier | None) -> None:
        self._pipeline = pipeline
        self._quarantine = quarantine
        self._verifier = verifier

    async def receive(self, body: bytes, headers: Mapping[str, str]) -> Appended:
        """Store one delivery; raises SignatureError (nothing kept), or NotJSONObjectError/SchemaError
        once the body is in quarantine."""
        if self._verifier is not None:
            self._verifier.verify(body, headers)
        delivery_id = delivery_headers(headers).get("webhook-id")
        try:
            notification = parse_webhook_body(body)
        except (NotJSONObjectError, SchemaError) as exc:
            problems = exc.problems if isinstance(exc, SchemaError) else []
            await self._quarantine.keep(Refused("webhook", str(exc), body, delivery_id, problems, headers))
            raise
        # Svix resends a message with the same id; without one (unsigned try-out), equal bodies are one delivery.
        dedupe_key = f"svix:{delivery_id}" if delivery_id else f"sha256:{hashlib.sha256(body).hexdigest()}"
        delivery = Delivery(
            source="webhook",
            raw=body,
            dedupe_key=dedupe_key,
            delivery_id=delivery_id,
            signature_verified=self._verifier is not None,
        )
        return await self._pipeline.accept(notification, delivery)

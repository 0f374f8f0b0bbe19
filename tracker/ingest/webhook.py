"""Where a webhook delivery enters: check the signature, then the one ingestion path."""

from __future__ import annotations

from collections.abc import Mapping

from tracker.ingest.parsing import parse_webhook_body
from tracker.ingest.pipeline import Delivery, Pipeline
from tracker.ingest.signatures import SignatureError, SignatureVerifier, delivery_headers, is_local_client
from tracker.store.event_log import Appended


class WebhookReceiver:
    def __init__(self, pipeline: Pipeline, verifier: SignatureVerifier | None, unsigned_from_anywhere: bool) -> None:
        self._pipeline = pipeline
        self._verifier = verifier
        self._unsigned_from_anywhere = unsigned_from_anywhere

    @property
    def overloaded(self) -> bool:
        return self._pipeline.overloaded

    async def receive(self, body: bytes, headers: Mapping[str, str], remote: str | None) -> Appended:
        """Store one delivery; a bad signature raises SignatureError and keeps nothing.

        Without a secret, only loopback clients that came through no proxy are heard (the local try-out),
        also when the API is mounted in a host that listens publicly, unless that was asked for
        (`--insecure-no-verify`).
        """
        if self._verifier is not None:
            self._verifier.verify(body, headers)
        elif not self._unsigned_from_anywhere and not is_local_client(remote, headers):
            msg = (
                "unsigned deliveries are accepted from loopback clients only, not through a proxy:"
                " set TRACKER_WEBHOOK_SECRET"
            )
            raise SignatureError(msg)
        delivery = Delivery(
            source="webhook",
            raw=body,
            delivery_id=delivery_headers(headers).get("webhook-id"),
            signature_verified=self._verifier is not None,
            headers=headers,
        )
        return await self._pipeline.ingest(parse_webhook_body, delivery)

"""The delivering process: fans the outbox out, then sends each due delivery, at least once, with retries.

One process delivers at a time (a leadership, as for the runners): a delivery is sent by whoever leads, and
one that a killed leader had in flight is sent again by the next (same `webhook-id`: receivers dedupe).
Deliveries to one subscription go out in order; subscriptions are served side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

from projections.alert_subscriptions import SUBSCRIPTIONS, WEBHOOK, SubscriptionView
from projections.issues import RESOLVED
from tracker.alerting import policy
from tracker.alerting.fan_out import FanOut
from tracker.alerting.sender import Attempt, Sender
from tracker.domain.alerts import DeliveryFailing, DeliveryRecovered, SubscriptionDisabled
from tracker.ingest import subscriptions as subscription_events
from tracker.store import alert_deliveries, alert_subscriptions
from tracker.store.alert_deliveries import CANCELLED, DELIVERED, FAILED, PENDING, SUPPRESSED, Delivery
from tracker.store.database import Pool
from tracker.store.event_log import EventLog
from tracker.wake import woken

log = logging.getLogger(__name__)

DUE_BATCH = 500
"""Due deliveries read at a time."""
CONCURRENCY = 32
"""Subscriptions served at once; each sends its own deliveries one after the other, in order."""
HELD_BACK_RECHECK = 0.05
"""Seconds before looking again at transitions a read model has not folded past yet."""
_NUDGE = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    schedule: tuple[float, ...]
    """Seconds before each retry; past the last, a delivery has failed."""
    failing_after: float
    """Seconds of failures without a success after which a subscription is marked failing."""


class AlertDeliverer:
    def __init__(
        self,
        pool: Pool,
        event_log: EventLog,
        fan_out: FanOut,
        sender: Sender,
        delivery_policy: DeliveryPolicy,
    ) -> None:
        self._pool = pool
        self._event_log = event_log
        self._fan_out = fan_out
        self._sender = sender
        self._policy = delivery_policy
        self._secrets: dict[str, str | None] = {}
        self._gone: set[str] = set()
        """Subscriptions whose receiver answered 410 in this process: what a round still holds for them is not sent."""

    async def run_once(self) -> int:
        """Fan out what the outbox holds and send what is due; return how many deliveries were handled."""
        await self._fan_out.run()
        docs = await alert_subscriptions.documents(self._pool, active_only=True)
        active = {view.subscription_id: view for view in (SUBSCRIPTIONS.adapter.validate_python(d) for d in docs)}
        handled = 0
        gate = asyncio.Semaphore(CONCURRENCY)
        while due := await alert_deliveries.due(self._pool, DUE_BATCH):
            by_subscription: defaultdict[str, list[Delivery]] = defaultdict(list)
            for delivery in due:
                by_subscription[delivery.subscription_id].append(delivery)

            async def serve(subscription_id: str, deliveries: Sequence[Delivery]) -> None:
                async with gate:
                    for delivery in deliveries:
                        await self._handle_safely(delivery, active.get(subscription_id))

            async with asyncio.TaskGroup() as group:
                for subscription_id, deliveries in by_subscription.items():
                    group.create_task(serve(subscription_id, deliveries))
            handled += len(due)
            if len(due) < DUE_BATCH:
                break
        return handled

    async def run_forever(self, wake: asyncio.Event, poll_interval: float, min_interval: float) -> None:
        """Deliver, then sleep until new transitions wake it, the next delivery is due, or the next poll; rounds
        start at least `min_interval` apart, so a burst of transitions is fanned out together."""
        loop = asyncio.get_running_loop()
        backoff = poll_interval
        while True:
            started = loop.time()
            wake.clear()
            try:
                await self.run_once()
                backoff = poll_interval
                next_due = await alert_deliveries.next_due(self._pool)
                held_back = await self._fan_out.held_back()
            except Exception:  # the loop must outlive a failure: log it, back off, try again
                log.exception("alert delivery failed; retrying in %.0f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            wait = HELD_BACK_RECHECK if held_back else poll_interval
            if next_due is not None:
                wait = min(wait, max((next_due - datetime.now(UTC)).total_seconds(), 0.01))
            await woken(wake, wait)
            await asyncio.sleep(max(0.0, started + min_interval - loop.time()))

    async def close(self) -> None:
        await self._sender.close()

    async def _handle_safely(self, delivery: Delivery, subscription: SubscriptionView | None) -> None:
        """Handle one delivery; a failure of our own (a bug) counts as a failed attempt, retried on the schedule
        like any other, and stops neither this subscription's other deliveries nor the other subscriptions'."""
        try:
            await self._handle(delivery, subscription)
        except Exception as exc:
            log.exception("alert delivery %s failed inside the tracker", delivery.id)
            error = f"internal error: {type(exc).__name__}"
            attempt = Attempt(datetime.now(UTC), None, error, None, None, 0)
            verdict = policy.judge(None, error, delivery.attempt_count, self._policy.schedule, None)
            with contextlib.suppress(Exception):  # the database itself may be what failed: then it stays pending
                if verdict.kind == policy.RETRY:
                    when = attempt.at + timedelta(seconds=verdict.delay)
                    await alert_deliveries.retry_at(self._pool, delivery.id, when, attempt.record())
                else:
                    await self._settle(delivery, FAILED, verdict.reason, attempt)

    async def _handle(self, delivery: Delivery, subscription: SubscriptionView | None) -> None:
        if subscription is None or subscription.subscription_id in self._gone:
            await self._settle(delivery, CANCELLED, "the subscription was deleted or disabled", None)
            return
        if delivery.transition == RESOLVED:
            opener = await alert_deliveries.opener(self._pool, delivery)
            if opener is not None and opener.status == PENDING:  # tell them in order: opened first
                await alert_deliveries.retry_at(self._pool, delivery.id, opener.next_attempt_at + _NUDGE, None)
                return
            if opener is None or opener.status != DELIVERED:
                await self._settle(delivery, SUPPRESSED, "its opened alert was not sent to this subscription", None)
                return
        elif subscription.delay_seconds and delivery.attempt_count == 0:
            until = delivery.occurred_at + timedelta(seconds=subscription.delay_seconds)
            if await alert_deliveries.resolved_by(self._pool, delivery, until):
                reason = f"resolved within {subscription.delay_seconds} s (delaySeconds): a flap"
                await self._settle(delivery, SUPPRESSED, reason, None)
                return
        attempt = await self._sender.post(subscription.url, delivery.body, await self._headers(delivery, subscription))
        verdict = policy.judge(attempt.status, attempt.error, delivery.attempt_count, self._policy.schedule,
                               attempt.retry_after)  # fmt: skip
        if verdict.kind == policy.DELIVERED:
            await self._settle(delivery, DELIVERED, verdict.reason, attempt)
            await alert_deliveries.delivered(self._pool, subscription.subscription_id)
            if subscription.failing:
                await subscription_events.mark(self._event_log, subscription.subscription_id, DeliveryRecovered, {})
            return
        if verdict.kind == policy.RETRY:
            when = attempt.at + timedelta(seconds=verdict.delay)
            await alert_deliveries.retry_at(self._pool, delivery.id, when, attempt.record())
        elif verdict.kind == policy.GONE:
            await self._settle(delivery, FAILED, verdict.reason, attempt)
            sid = subscription.subscription_id
            self._gone.add(sid)
            await subscription_events.mark(self._event_log, sid, SubscriptionDisabled, {"error": verdict.reason})
            await alert_deliveries.cancel_pending(self._pool, sid, "the receiver answered 410 Gone")
            return
        else:
            await self._settle(delivery, FAILED, verdict.reason, attempt)
        await self._failed(subscription, verdict.reason, attempt)

    async def _failed(self, subscription: SubscriptionView, reason: str, attempt: Attempt) -> None:
        """Note the failure; mark the subscription failing once its failures have lasted `failing_after`."""
        since = await alert_deliveries.failed_attempt(self._pool, subscription.subscription_id, reason)
        if subscription.failing or (attempt.at - since).total_seconds() < self._policy.failing_after:
            return
        data = {"since": since.isoformat(), "error": reason}
        if await subscription_events.mark(self._event_log, subscription.subscription_id, DeliveryFailing, data):
            log.warning("alert subscription %s marked failing: %s", subscription.subscription_id, reason)

    async def _settle(self, delivery: Delivery, status: str, outcome: str, attempt: Attempt | None) -> None:
        await alert_deliveries.settle(self._pool, delivery.id, status, outcome, attempt.record() if attempt else None)

    async def _headers(self, delivery: Delivery, subscription: SubscriptionView) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "ampersand-tracker"}
        if subscription.format != WEBHOOK:
            return headers
        sid = subscription.subscription_id
        if sid not in self._secrets:
            self._secrets[sid] = await subscription_events.secret_of(self._event_log, sid)
        secret = self._secrets[sid]
        now = datetime.now(UTC)
        headers["webhook-id"] = delivery.id
        headers["webhook-timestamp"] = str(int(now.timestamp()))
        if secret:
            headers["webhook-signature"] = Webhook(secret).sign(delivery.id, now, delivery.body)
        return headers

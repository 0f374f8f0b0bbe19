"""From the outbox to deliveries: each transition becomes one delivery per matching subscription, with its
body built once, in the transaction that deletes the transition from the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from projections.alert_subscriptions import SLACK, SUBSCRIPTIONS, SubscriptionView
from projections.issues import RESOLVED
from tracker.alerting.matching import delivery_id, matches
from tracker.alerting.messages import slack_body, webhook_body
from tracker.store import alert_deliveries, alert_outbox, alert_subscriptions
from tracker.store.alert_outbox import Transition
from tracker.store.database import Pool

BATCH = 500
"""Transitions taken in one transaction."""


class FanOut:
    def __init__(self, pool: Pool, read_models: Sequence[str], public_url: str | None) -> None:
        self._pool = pool
        self._read_models = tuple(read_models)
        self._public_url = public_url

    async def run(self) -> int:
        """Fan out the outbox until it is empty (of what every read model has folded); return the transitions
        taken."""
        total = 0
        while taken := await self._batch():
            total += taken
            if taken < BATCH:
                break
        return total

    async def held_back(self) -> bool:
        """Whether transitions are left that wait for a read model to fold past them: their runner's commit
        sends no NOTIFY of its own, so the deliverer looks again soon instead of at its next poll."""
        return await alert_outbox.any_left(self._pool)

    async def _batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            transitions = await alert_outbox.take(conn, self._read_models, BATCH)
            if not transitions:
                return 0
            docs = await alert_subscriptions.documents(conn, active_only=True)
            subscriptions = [SUBSCRIPTIONS.adapter.validate_python(doc) for doc in docs]
            rows: list[tuple[Any, ...]] = []
            for transition in transitions:
                matching = [s for s in subscriptions if matches(s, transition)]
                if matching:
                    count, sample = await alert_outbox.affected(
                        conn, transition.entity, transition.entity_id, transition.project_id
                    )
                    rows += [self._delivery(s, transition, count, sample) for s in matching]
            if rows:
                await alert_deliveries.add(conn, rows)
            await alert_outbox.forget(conn, [transition.id for transition in transitions])
            return len(transitions)

    def _delivery(
        self, subscription: SubscriptionView, transition: Transition, count: int, sample: list[dict[str, Any]]
    ) -> tuple[Any, ...]:
        if subscription.format == SLACK:
            body = slack_body(transition, count, sample, self._public_url)
        else:
            body = webhook_body(transition, count, sample)
        due = transition.occurred_at
        if transition.transition != RESOLVED:  # a resolved alert waits for its opened one instead
            due += timedelta(seconds=subscription.delay_seconds)
        return (
            delivery_id(subscription.subscription_id, transition), subscription.subscription_id, transition.position,
            transition.entity, transition.entity_id, transition.code, transition.transition, transition.occurred_at,
            body, due,
        )  # fmt: skip

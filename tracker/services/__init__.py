"""The services the API routes, the CLI and `Tracker` call: each a narrow set of use cases over the store."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.ingest.webhook import WebhookReceiver
from tracker.metrics import Metrics
from tracker.services.alerts import Alerts
from tracker.services.dead_letter_review import DeadLetterReview
from tracker.services.operator_actions import OperatorActions
from tracker.services.quarantine_review import QuarantineReview
from tracker.services.queries import Queries
from tracker.services.rebuilds import Rebuilds
from tracker.services.status import Status
from tracker.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    webhook: WebhookReceiver
    queries: Queries
    operator_actions: OperatorActions
    quarantine_review: QuarantineReview
    dead_letter_review: DeadLetterReview
    rebuilds: Rebuilds
    status: Status
    alerts: Alerts

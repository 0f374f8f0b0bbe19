"""The composition root: builds the store, the ingest doors, the projection runners and the services from
`Settings`, and hands every background task to the supervisor. It wires only; the parts hold the logic."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from projections.read_model import ReadModel
from tracker.alerting.deliverer import AlertDeliverer, DeliveryPolicy
from tracker.alerting.fan_out import FanOut
from tracker.alerting.sender import Sender
from tracker.ingest.config_fetch import ConfigFetchWorker
from tracker.ingest.kinesis import KinesisConsumers
from tracker.ingest.pipeline import Pipeline
from tracker.ingest.signatures import SignatureVerifier
from tracker.ingest.url_guard import ConfigFetcher
from tracker.ingest.webhook import WebhookReceiver
from tracker.metrics import Metrics
from tracker.projecting.dead_letters import DeadLetters
from tracker.projecting.following import follow_while_leading, while_leading
from tracker.projecting.runner import ProjectionRunner
from tracker.services import Services
from tracker.services.alerts import Alerts
from tracker.services.dead_letter_review import DeadLetterReview
from tracker.services.operator_actions import OperatorActions
from tracker.services.quarantine_review import QuarantineReview
from tracker.services.queries import Queries
from tracker.services.rebuilds import Rebuilds
from tracker.services.status import Status
from tracker.settings import Settings
from tracker.store.alert_outbox import NOTIFY_CHANNEL as ALERTS_CHANNEL
from tracker.store.changes import ChangeFeed
from tracker.store.database import Pool, create_pool
from tracker.store.embedded import keep_embedded_postgres_running, start_embedded_postgres
from tracker.store.event_log import EventLog
from tracker.store.group_commit import GroupCommit
from tracker.store.issues import Issues
from tracker.store.leadership import Leadership
from tracker.store.listener import listen_for_appends
from tracker.store.mapper import create_mapper
from tracker.store.migrations import migrate
from tracker.store.quarantine import Quarantine
from tracker.store.rollups import Rollups
from tracker.store.shard_leases import ShardLeases
from tracker.store.views import Views
from tracker.supervisor import Supervisor

ALERTS_LEADERSHIP = "alerts"
"""The leadership of delivering alerts: one process sends them."""


@dataclass(frozen=True, slots=True)
class Components:
    """What a started tracker is made of: the services, and the parts tests and `Tracker` reach directly."""

    database_url: str
    pool: Pool
    event_log: EventLog
    quarantine: Quarantine
    dead_letters: DeadLetters
    pipeline: Pipeline
    runners: tuple[ProjectionRunner[Any], ...]
    config_fetches: ConfigFetchWorker
    change_feed: ChangeFeed
    kinesis: KinesisConsumers | None
    deliverer: AlertDeliverer
    services: Services
    supervisor: Supervisor


async def bootstrap(
    settings: Settings, read_models: Sequence[ReadModel[Any]], metrics: Metrics, *, follow: bool
) -> Components:
    """Connect (starting the embedded PostgreSQL if no URL is set), migrate, build, and start the workers
    (the runners only when `follow`). On failure, what was started is closed again."""
    supervisor = Supervisor()
    try:
        return await _build(settings, read_models, metrics, supervisor, follow=follow)
    except BaseException:
        await supervisor.close()
        raise


async def _build(
    settings: Settings, read_models: Sequence[ReadModel[Any]], metrics: Metrics, supervisor: Supervisor, *, follow: bool
) -> Components:
    database_url = settings.database_url or await start_embedded_postgres(settings.data_dir)
    pool = await create_pool(database_url, settings.pool_size)
    supervisor.on_close(pool.close)
    async with pool.acquire() as conn:
        await migrate(conn)
    event_log = EventLog(pool, create_mapper())
    quarantine = Quarantine(pool)
    views = Views(pool)
    dead_letters = DeadLetters(pool)
    shard_leases = ShardLeases(pool)
    change_feed = ChangeFeed(pool, database_url, settings.projection_poll_interval)
    leaderships = [Leadership(database_url, model.name) for model in read_models]
    leaderships.append(alerts_leadership := Leadership(database_url, ALERTS_LEADERSHIP))
    for leadership in leaderships:
        supervisor.on_close(leadership.close)
    deliverer = _deliverer(settings, pool, event_log, read_models)
    supervisor.on_close(deliverer.close)  # after its loop is cancelled: closes run in reverse
    supervisor.on_close(supervisor.cancel_spawned)
    commit = GroupCommit(event_log, settings.batch_size, settings.max_pending, on_batch=metrics.batch_size.observe)
    commit.start()
    supervisor.on_close(commit.stop)
    pipeline = Pipeline(pool, commit, event_log, quarantine, metrics)
    turn = asyncio.Lock()
    runners = tuple(ProjectionRunner(pool, model, settings.projection_batch_size, turn) for model in read_models)
    config_fetches = ConfigFetchWorker(
        pool,
        pipeline,
        ConfigFetcher(settings.config_url_allow),
        give_up_after=settings.config_fetch_give_up,
        first_retry=settings.config_fetch_first_retry,
        batch_size=settings.projection_batch_size,
    )
    wakes = [asyncio.Event() for _ in (*runners, config_fetches)]

    def wake_all() -> None:
        for wake in wakes:
            wake.set()

    rebuilds = Rebuilds(
        pool,
        database_url,
        read_models,
        batch_size=settings.projection_batch_size,
        workers=settings.rebuild_workers,
        spawn=supervisor.spawn,
    )
    if follow:
        interval = settings.projection_poll_interval
        listener = listen_for_appends(database_url, wake_all, retry_interval=interval)
        supervisor.spawn(listener, "log-listener")
        for runner, leadership, wake in zip(runners, leaderships, wakes, strict=False):
            following = follow_while_leading(runner, leadership, wake, interval, settings.projection_min_interval)
            supervisor.spawn(following, f"projection-{runner.model.name}")
        # Configs sent by URL are fetched where the projections run: never in the webhook's request.
        fetching = config_fetches.run_forever(
            wakes[-1], settings.config_fetch_poll_interval, settings.config_fetch_min_interval
        )
        supervisor.own(fetching, "config-fetches")
        _deliver_alerts(settings, database_url, deliverer, alerts_leadership, supervisor)
        supervisor.spawn(rebuilds.rebuild_outdated(), "rebuild-outdated")
    supervisor.on_close(change_feed.close)
    kinesis = None
    if settings.kinesis_streams:
        kinesis = KinesisConsumers(settings, shard_leases, pipeline)
        supervisor.on_close(kinesis.stop)
        await kinesis.start()
    if not settings.database_url:  # every process on the embedded server runs one; a lock lets one act at a time
        keeping = keep_embedded_postgres_running(
            settings.data_dir, metrics.embedded_postgres_deaths.inc, metrics.embedded_postgres_restarts.inc
        )
        supervisor.own(keeping, "embedded-postgres")
    verifier = SignatureVerifier(settings.webhook_secrets) if settings.webhook_secrets else None
    services = Services(
        settings=settings,
        metrics=metrics,
        webhook=WebhookReceiver(pipeline, verifier, unsigned_from_anywhere=settings.insecure_no_verify),
        queries=Queries(views, Issues(pool), Rollups(pool), event_log, change_feed),
        operator_actions=OperatorActions(event_log, pipeline),
        quarantine_review=QuarantineReview(quarantine, pipeline),
        dead_letter_review=DeadLetterReview(dead_letters, wake_all),
        rebuilds=rebuilds,
        status=Status(
            settings,
            pool,
            {model.name: model.version for model in read_models},
            event_log=event_log,
            quarantine=quarantine,
            dead_letters=dead_letters,
            shard_leases=shard_leases,
            views=views,
        ),
        alerts=Alerts(pool, event_log, settings.alert_url_allow),
    )
    return Components(
        database_url, pool, event_log, quarantine, dead_letters, pipeline, runners, config_fetches, change_feed,
        kinesis, deliverer, services, supervisor,
    )  # fmt: skip


def _deliverer(
    settings: Settings, pool: Pool, event_log: EventLog, read_models: Sequence[ReadModel[Any]]
) -> AlertDeliverer:
    return AlertDeliverer(
        pool,
        event_log,
        FanOut(pool, [model.name for model in read_models], settings.public_url),
        Sender(settings.alert_url_allow, settings.alert_timeout),
        DeliveryPolicy(settings.alert_retry_schedule, settings.alert_failing_after),
    )


def _deliver_alerts(
    settings: Settings, database_url: str, deliverer: AlertDeliverer, leadership: Leadership, supervisor: Supervisor
) -> None:
    """Deliver while this process leads, woken by transitions written to the outbox (not by every append:
    the deliverer has nothing to do before the read models have folded an event)."""
    wake = asyncio.Event()
    interval = settings.projection_poll_interval
    supervisor.spawn(listen_for_appends(database_url, wake.set, interval, channel=ALERTS_CHANNEL), "alerts-listener")
    delivering = while_leading(
        leadership,
        lambda: deliverer.run_forever(wake, settings.alert_poll_interval, settings.projection_min_interval),
        interval,
    )
    supervisor.spawn(delivering, "alert-delivery")

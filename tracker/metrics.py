"""The tracker's Prometheus instruments, on a registry of each Tracker's own.

A registry per Tracker, not prometheus-client's global one: several trackers in one process (tests,
a host embedding two) would otherwise collide on metric names, and a host decides what it exposes.
What the database knows is read when `/metrics` is scraped and handed to `observe_state`: the log,
the read models' lag, rebuilds, dead letters, Kinesis shards and health, whichever process did the work
(`tracker rebuild`, `tracker consume` and `tracker project` serve no metrics of their own). What only this
process sees (deliveries, latency, batch sizes) is counted as it happens; the log lines it dropped are read
from its logging at scrape time (logging is the process's, not a Tracker's).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tracker.domain.catalog import KNOWN_TYPES
from tracker.log_format import records_dropped

OUTCOMES = ("stored", "duplicate", "quarantined", "rejected", "unavailable")
"""What became of a delivery: appended, already in the log, kept in quarantine (bad input), refused before
it was read (signature, size, time), or not stored because the database could not take it (retry)."""
UNKNOWN_TYPE = "unknown"
"""The type label of a delivery whose type is not known: not a notification, or refused unread."""
UNRECOGNIZED_TYPE = "unrecognized"
"""The type label of a well-formed notification of a type the spec does not list: the label stays bounded."""


def type_label(notification_type: str | None) -> str:
    """The bounded `type` label of a delivery: a type the spec lists, else UNRECOGNIZED_TYPE or UNKNOWN_TYPE."""
    if notification_type is None:
        return UNKNOWN_TYPE
    return notification_type if notification_type in KNOWN_TYPES else UNRECOGNIZED_TYPE


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class Metrics:
    """Every instrument of one Tracker; `registry` is what `GET /metrics` serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.notifications = Counter(
            "tracker_notifications",
            "Deliveries by source (webhook, kinesis, import, api; config_fetch for the configs the tracker fetched),"
            " notification type and outcome.",
            ("source", "type", "outcome"),
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "tracker_ingest_duration_seconds",
            "From parsing a delivery to the commit of its event (or its quarantine), by source.",
            ("source",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "tracker_group_commit_batch_size",
            "Events written per group-commit transaction.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.embedded_postgres_deaths = Counter(
            "tracker_embedded_postgres_deaths",
            "Times this process found the embedded PostgreSQL it started dead (0 on an external database).",
            registry=self.registry,
        )
        self.embedded_postgres_restarts = Counter(
            "tracker_embedded_postgres_restarts",
            "Times this process started its dead embedded PostgreSQL again.",
            registry=self.registry,
        )
        self._counters: dict[tuple[str, str, str], Counter] = {}
        self._histograms: dict[str, Histogram] = {}
        self._state = _State()
        self.registry.register(self._state)
        self.registry.register(_DroppedLogRecords())

    def delivered(self, source: str, notification_type: str, outcome: str, seconds: float | None = None) -> None:
        """Count one delivery; `notification_type` must be bounded (a known type, UNRECOGNIZED_TYPE or
        UNKNOWN_TYPE): a label per unknown type a sender makes up would grow without end."""
        key = (source, notification_type, outcome)
        if (counter := self._counters.get(key)) is None:  # labels() costs as much as the count: once per key
            counter = self._counters[key] = self.notifications.labels(*key)
        counter.inc()
        if seconds is not None:
            if (histogram := self._histograms.get(source)) is None:
                histogram = self._histograms[source] = self.ingest_seconds.labels(source)
            histogram.observe(seconds)

    def observe_state(self, status: Mapping[str, Any] | None, health: Mapping[str, Any] | None) -> None:
        """What the next collection reports from the database: `Tracker.status()` and `Tracker.health()`,
        or None for both when they could not be read (then only `tracker_database_up 0`)."""
        self._state.status, self._state.health = status, health


class _State:
    """A collector of the last state read from the database (a scrape reads it just before collecting)."""

    def __init__(self) -> None:
        self.status: Mapping[str, Any] | None = None
        self.health: Mapping[str, Any] | None = None

    def collect(self) -> Iterator[Metric]:
        return iter(state_families(self.status, self.health))


class _DroppedLogRecords:
    """A collector of the log records this process dropped because its log output did not keep up."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "tracker_log_records_dropped",
            "Log records this process dropped, not written, because its log output (stderr) did not keep up.",
            value=records_dropped(),
        )


_PER_MODEL = {
    "position": ("tracker_projection_position", "The log position a read model has folded up to."),
    "lag": ("tracker_projection_lag_events", "Events in the log after a read model's position."),
    "lagSeconds": (
        "tracker_projection_lag_seconds",
        "How long the oldest event a read model has not folded yet has waited.",
    ),
    "heartbeatAgeSeconds": (
        "tracker_projection_heartbeat_age_seconds",
        "Seconds since a read model's runner last finished a fold, in any process.",
    ),
}
"""The gauges per read model, by the `/v1/status` field each reports."""


def state_families(status: Mapping[str, Any] | None, health: Mapping[str, Any] | None) -> list[Metric]:
    """The gauges read from the database, from the documents `/v1/status` and `/v1/health` serve."""
    up = status is not None and health is not None
    families: list[Metric] = [
        GaugeMetricFamily(
            "tracker_database_up",
            "1 when this scrape read the log, read models and health from PostgreSQL; 0 when it could not.",
            value=int(up),
        )
    ]
    if status is None or health is None:
        return families
    families.append(GaugeMetricFamily("tracker_log_events", "Events in the log.", value=status["events"]))
    families.append(GaugeMetricFamily("tracker_log_head_position", "The log's last position.", value=status["head"]))
    for key, (name, documentation) in _PER_MODEL.items():
        family = GaugeMetricFamily(name, documentation, labels=("model",))
        for projection in status["projections"]:
            if projection[key] is not None:  # a runner that never beat has no heartbeat age
                family.add_metric((projection["name"],), projection[key])
        families.append(family)
    families += _rebuilds_and_dead_letters(status["projections"])
    families += _kinesis(status.get("kinesis") or [])
    families += _alerts(status.get("alerts"))
    quarantine = GaugeMetricFamily(
        "tracker_quarantine_deliveries", "Kept deliveries by review status.", labels=("status",)
    )
    for review, count in status["quarantine"].items():
        quarantine.add_metric((review,), count)
    installations = GaugeMetricFamily("tracker_installations", "Installations by health status.", labels=("health",))
    for health_status, count in health["installations"].items():
        if health_status != "total":
            installations.add_metric((health_status,), count)
    issues = GaugeMetricFamily("tracker_open_issues", "Open issues by reason code.", labels=("code",))
    for code, count in health["openIssues"].items():
        issues.add_metric((code,), count)
    return [*families, quarantine, installations, issues]


def _rebuilds_and_dead_letters(projections: list[Mapping[str, Any]]) -> list[Metric]:
    """The last rebuild of each read model (from the table every rebuild records its progress in), and its
    open dead letters by status."""
    replayed = GaugeMetricFamily(
        "tracker_rebuild_events_replayed", "Events the last rebuild of a read model has replayed.", labels=("model",)
    )
    expected = GaugeMetricFamily(
        "tracker_rebuild_events_expected",
        "Events the last rebuild of a read model is to replay in all.",
        labels=("model",),
    )
    running = GaugeMetricFamily(
        "tracker_rebuild_running", "1 while a rebuild of the read model runs, else 0.", labels=("model",)
    )
    letters = GaugeMetricFamily(
        "tracker_dead_letters",
        "Events a read model failed to fold and has not settled, by status.",
        labels=("model", "status"),
    )
    for projection in projections:
        name = (projection["name"],)
        if rebuild := projection.get("rebuild"):
            replayed.add_metric(name, rebuild["eventsDone"])
            expected.add_metric(name, rebuild["eventsTotal"])
            running.add_metric(name, int(rebuild["finishedAt"] is None))
        for status, count in (projection.get("deadLetters") or {}).items():
            letters.add_metric((projection["name"], status), count)
    return [replayed, expected, running, letters]


def _alerts(alerts: Mapping[str, Any] | None) -> list[Metric]:
    """Alert subscriptions by state, and how far delivery is behind (what waits in the outbox, and the
    delivery that has been due longest)."""
    if not alerts:
        return []
    subscriptions = GaugeMetricFamily(
        "tracker_alert_subscriptions", "Alert subscriptions by state (active, failing, disabled).", labels=("state",)
    )
    for state in ("active", "failing", "disabled"):
        subscriptions.add_metric((state,), alerts["subscriptions"][state])
    age = GaugeMetricFamily(
        "tracker_alert_outbox_age_seconds",
        "How long the oldest issue transition not yet delivered (or settled) has waited: in the outbox, or due.",
        value=alerts["oldestWaitSeconds"] or 0,
    )
    deliveries = GaugeMetricFamily(
        "tracker_alert_deliveries",
        "Alert deliveries by status: pending (due, or waiting to retry), delivered, failed, suppressed, cancelled.",
        labels=("status",),
    )
    for status, count in alerts["deliveries"].items():
        deliveries.add_metric((status,), count)
    return [subscriptions, age, deliveries]


def _kinesis(streams: list[Mapping[str, Any]]) -> list[Metric]:
    """Each shard not read to its end: MillisBehindLatest as its consumer, in whichever process, last recorded
    it on the lease, and whether a live consumer holds that lease (else the lag is frozen, not small)."""
    lag = GaugeMetricFamily(
        "tracker_kinesis_millis_behind_latest",
        "How far the consumer of a shard is behind its tip (GetRecords MillisBehindLatest, as last recorded).",
        labels=("stream", "shard"),
    )
    leased = GaugeMetricFamily(
        "tracker_kinesis_shard_leased",
        "1 while a live consumer holds the shard's lease, else 0.",
        labels=("stream", "shard"),
    )
    for stream in streams:
        for shard in stream["shards"]:
            if shard.get("finished"):
                continue
            labels = (stream["stream"], shard["shardId"])
            leased.add_metric(labels, int(shard.get("owner") is not None))
            if shard.get("millisBehindLatest") is not None:
                lag.add_metric(labels, shard["millisBehindLatest"])
    return [lag, leased]

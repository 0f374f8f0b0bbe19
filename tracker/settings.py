"""Configuration from the environment (the public contract's TRACKER_* variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_CORES_UP_TO_FOUR = min(os.cpu_count() or 1, 4)
"""The default of `rebuild_workers`."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    """PostgreSQL URL; None starts the embedded server under `data_dir`."""
    data_dir: Path = Path(".tracker")
    webhook_secrets: tuple[str, ...] = ()
    """Svix signing secrets (`whsec_...`); several during a rotation. Empty: signatures are not checked."""
    api_token: str | None = field(default=None, repr=False)
    """The token that sees every project (and the routes that belong to none: status, quarantine, admin)."""
    scoped_tokens: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    """Token to the projectIds it may see (TRACKER_API_TOKENS): it sees nothing of any other project."""
    kinesis_streams: tuple[str, ...] = ()
    kinesis_lease_seconds: float = 10.0
    """A shard lease lasts this long unrenewed (renewed every third of it): a dead process's shards are
    taken over within about this time; a clean stop releases them at once."""
    kinesis_poll_interval: float = 1.0
    """A caught-up shard is asked for new records this often (never more than five times a second)."""
    kinesis_max_records: int = 10_000
    """GetRecords' Limit: the most records one page, and so one transaction, holds."""
    aws_region: str | None = None
    """AWS_REGION, else botocore's own lookup (AWS_DEFAULT_REGION, the profile)."""
    kinesis_endpoint_url: str | None = None
    """An explicit Kinesis endpoint; None: botocore's AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL or AWS."""
    host: str = "127.0.0.1"
    port: int = 8080
    insecure_no_verify: bool = False
    """Accept unsigned deliveries on a non-loopback address (never the default)."""
    body_read_timeout: float = 10.0
    """Seconds a sender has to send a whole webhook body (Svix itself gives up after 15)."""
    keepalive_timeout: float = 75.0
    """Seconds an idle connection is kept; also the most a new connection has to send its first request's
    headers (aiohttp starts the timer on connect), which bounds slowloris senders (aiohttp's own is 3630)."""
    pool_size: int = 10
    batch_size: int = 1000
    """Most notifications one group commit writes in one transaction."""
    max_pending: int = 2_000
    """Notifications that may wait for a commit; past it the webhook answers 503 (bounded memory). Two
    writers' full batches: enough to keep both busy, and about a second's wait at the sustainable rate."""
    projection_batch_size: int = 1000
    projection_poll_interval: float = 1.0
    """Runners poll this often besides being woken by NOTIFY (a lost NOTIFY costs at most this)."""
    min_position_wait: float = 5.0
    """Longest a read with `?minPosition=` waits for the read models before answering 503."""
    ready_max_lag: int = 10_000
    """`/readyz` fails past this many unfolded events in any read model..."""
    ready_max_lag_seconds: float = 60.0
    """...or when an unfolded event has waited longer than this..."""
    ready_max_silence: float = 30.0
    """...or when a read model's runner has not beaten for this long (or never)."""
    projection_min_interval: float = 0.025
    """Runners fold at most this often: under load, one transaction takes many commits' events. At 50 ms a
    notification waited 57 ms to show at the median (bench latency, 1,000/s); at 25 ms, 37 ms, and the p99
    fell from 113 to 96 ms for the same CPU per notification."""
    config_url_allow: tuple[str, ...] = ()
    """URL prefixes fetched without the https and public-address checks (tests, self-hosted setups)."""
    config_fetch_give_up: float = 3600.0
    """Seconds after a notification's arrival past which a config URL that still fails is given up."""
    config_fetch_first_retry: float = 1.0
    """Seconds before the first retry of a failed config fetch; each next one waits twice as long (to 5 min)."""
    rebuild_workers: int = _CORES_UP_TO_FOUR
    """Processes a rebuild of a big log replays in, a range of streams each (folding holds one core per
    process); 1 replays in the rebuilding process itself."""
    config_fetch_poll_interval: float = 1.0
    """The config fetcher looks for new URLs and due retries this often, besides being woken by NOTIFY."""
    config_fetch_min_interval: float = 0.25
    """...and, woken by NOTIFY, at most this often: a config sent by URL is fetched within about this."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            database_url=env.get("TRACKER_DATABASE_URL") or None,
            data_dir=Path(env.get("TRACKER_DATA_DIR") or ".tracker"),
            webhook_secrets=tuple(env.get("TRACKER_WEBHOOK_SECRET", "").split()),
            api_token=env.get("TRACKER_API_TOKEN") or None,
            scoped_tokens=parse_scoped_tokens(env.get("TRACKER_API_TOKENS", "")),
            kinesis_streams=tuple(s.strip() for s in env.get("TRACKER_KINESIS_STREAMS", "").split(",") if s.strip()),
            kinesis_lease_seconds=float(env.get("TRACKER_KINESIS_LEASE_SECONDS") or 10.0),
            kinesis_poll_interval=float(env.get("TRACKER_KINESIS_POLL_INTERVAL") or 1.0),
            aws_region=env.get("AWS_REGION") or None,
            config_url_allow=tuple(s.strip() for s in env.get("TRACKER_CONFIG_URL_ALLOW", "").split(",") if s.strip()),
            config_fetch_give_up=float(env.get("TRACKER_CONFIG_FETCH_GIVE_UP") or 3600.0),
            max_pending=int(env.get("TRACKER_MAX_PENDING") or 2_000),
            rebuild_workers=int(env.get("TRACKER_REBUILD_WORKERS") or _CORES_UP_TO_FOUR),
        )


def parse_scoped_tokens(text: str) -> dict[str, frozenset[str]]:
    """`token=proj-a,proj-b other=proj-c`: whitespace between entries, the last `=` ends the token (so a
    base64 token's padding may stay). Errors name the entry by number: the text holds secrets."""
    scoped: dict[str, frozenset[str]] = {}
    for number, entry in enumerate(text.split(), start=1):
        token, _, projects = entry.rpartition("=")
        chosen = frozenset(project for project in projects.split(",") if project)
        if not token or not chosen:
            msg = f"TRACKER_API_TOKENS: entry {number} is not token=projectId[,projectId...]"
            raise ValueError(msg)
        if token in scoped:
            msg = f"TRACKER_API_TOKENS: entry {number} repeats the token of an earlier entry"
            raise ValueError(msg)
        scoped[token] = chosen
    return scoped

"""Configuration from the environment (the public contract's TRACKER_* variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    """PostgreSQL URL; None starts the embedded server under `data_dir`."""
    data_dir: Path = Path(".tracker")
    webhook_secrets: tuple[str, ...] = ()
    """Svix signing secrets (`whsec_...`); several during a rotation. Empty: signatures are not checked."""
    api_token: str | None = field(default=None, repr=False)
    kinesis_streams: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8080
    insecure_no_verify: bool = False
    """Accept unsigned deliveries on a non-loopback address (never the default)."""
    body_read_timeout: float = 10.0
    """Seconds a sender has to send a whole webhook body (Svix itself gives up after 15)."""
    pool_size: int = 10
    batch_size: int = 1000
    """Most notifications one group commit writes in one transaction."""
    max_pending: int = 10_000
    """Notifications that may wait for a commit; past it the webhook answers 503 (bounded memory)."""
    projection_batch_size: int = 1000
    projection_poll_interval: float = 1.0
    """Runners poll this often besides being woken by NOTIFY (a lost NOTIFY costs at most this)."""
    min_position_wait: float = 5.0
    ready_max_lag: int = 10_000
    """`/readyz` fails past this many unfolded events in any read model..."""
    ready_max_lag_seconds: float = 60.0
    """...or when an unfolded event has waited longer than this..."""
    ready_max_silence: float = 30.0
    """...or when a read model's runner has not beaten for this long (or never)."""
    """Longest a read with `?minPosition=` waits for the read models before answering 503."""
    projection_min_interval: float = 0.05
    """Runners fold at most this often: under load, one transaction takes many commits' events."""
    config_url_allow: tuple[str, ...] = ()
    """URL prefixes fetched without the https and public-address checks (tests, self-hosted setups)."""
    config_fetch_give_up: float = 3600.0
    """Seconds after a notification's arrival past which a config URL that still fails is given up."""
    config_fetch_first_retry: float = 1.0
    """Seconds before the first retry of a failed config fetch; each next one waits twice as long (to 5 min)."""
    config_fetch_poll_interval: float = 1.0
    """The config fetcher looks for new URLs and due retries this often, besides being woken by NOTIFY."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            database_url=env.get("TRACKER_DATABASE_URL") or None,
            data_dir=Path(env.get("TRACKER_DATA_DIR") or ".tracker"),
            webhook_secrets=tuple(env.get("TRACKER_WEBHOOK_SECRET", "").split()),
            api_token=env.get("TRACKER_API_TOKEN") or None,
            kinesis_streams=tuple(s.strip() for s in env.get("TRACKER_KINESIS_STREAMS", "").split(",") if s.strip()),
            config_url_allow=tuple(s.strip() for s in env.get("TRACKER_CONFIG_URL_ALLOW", "").split(",") if s.strip()),
            config_fetch_give_up=float(env.get("TRACKER_CONFIG_FETCH_GIVE_UP") or 3600.0),
        )

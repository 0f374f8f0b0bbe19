"""Configuration from the environment (the public contract's TRACKER_* variables)."""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
N = TypeVar("N", int, float)

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
    max_change_streams: int = 500
    """`GET /v1/changes` streams one process holds open; past it, 503. An idle stream costs little CPU but a file
    descriptor each: under the common soft limit of 1,024, half is left for webhooks, the pool and the listeners."""
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
    alert_retry_schedule: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)
    """Seconds before each retry of an alert delivery (over a day in all); past the last, it has failed."""
    alert_url_allow: tuple[str, ...] = ()
    """URL prefixes alerts are posted to without the https and public-address checks."""
    alert_timeout: float = 15.0
    """Seconds an alert delivery's request may take, answer included."""
    alert_failing_after: float = 86_400.0
    """Seconds of failed deliveries, without a success, after which a subscription is marked failing."""
    alert_poll_interval: float = 1.0
    """The delivering process looks for new transitions this often, besides being woken by NOTIFY."""
    public_url: str | None = None
    """Where people reach this tracker's dashboard: alerts link to it."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Settings from the variables of ENVIRONMENT; an unset or empty one keeps the field's default."""
        values = {read.field: variable(env, read.name, _UNSET, read.parse) for read in ENVIRONMENT if read.field}
        return cls(**{name: value for name, value in values.items() if value is not _UNSET})


_UNSET: Any = object()


def parse_scoped_tokens(text: str) -> dict[str, frozenset[str]]:
    """`token=proj-a,proj-b other=proj-c`: whitespace between entries, the last `=` ends the token (so a
    base64 token's padding may stay). Errors name the entry by number: the text holds secrets."""
    scoped: dict[str, frozenset[str]] = {}
    for number, entry in enumerate(text.split(), start=1):
        token, _, projects = entry.rpartition("=")
        chosen = frozenset(project for project in projects.split(",") if project)
        if not token or not chosen:
            msg = f"entry {number} is not token=projectId[,projectId...]"
            raise ValueError(msg)
        if token in scoped:
            msg = f"entry {number} repeats the token of an earlier entry"
            raise ValueError(msg)
        scoped[token] = chosen
    return scoped


def variable(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T]) -> T:
    """Read `name` with `parse`, or give `default` when it is unset or empty. A value `parse` refuses raises
    a ValueError that starts with the variable's name, so a bad setting stops the start in one line."""
    text = env.get(name)
    if not text:
        return default
    try:
        return parse(text)
    except ValueError as exc:
        msg = f"{name}: {exc}"
        raise ValueError(msg) from None


def numeric(convert: Callable[[str], N], fits: Callable[[N], bool], wanted: str) -> Callable[[str], N]:
    """A parser of numbers for `variable` (and flags): `convert`, then refuse what does not `fit`, saying
    that `wanted` was expected and what was given."""

    def parse(text: str) -> N:
        msg = f"must be {wanted}, not {text!r}"
        try:
            number = convert(text)
        except ValueError:
            raise ValueError(msg) from None
        if not fits(number):
            raise ValueError(msg)
        return number

    return parse


positive_count = numeric(int, lambda count: count >= 1, "a whole number, 1 or more")
"""A size, a limit, a number of processes: none of them works at zero."""
positive_seconds = numeric(float, lambda seconds: 0 < seconds < math.inf, "a number of seconds above 0")
"""A timeout or an interval: zero would spin a loop and a negative one fail at its first use, long after the
start; infinity and NaN are no durations either."""
tcp_port = numeric(int, lambda port: 1 <= port <= 65_535, "a port from 1 to 65535")
"""A port to listen on. Not 0 (any free port): the start-up line could not name it, and extra HTTP processes
would each get another one instead of sharing it."""


def signing_secrets(text: str) -> tuple[str, ...]:
    """Space-separated Svix secrets, each `whsec_` and a base64 key. The Standard Webhooks library takes any
    text (a bare key, or `garbage` decoded leniently into a key no sender signs with, so every delivery gets
    a 401), hence the check here. Errors name the entry by number: the text is secret."""
    secrets = tuple(text.split())
    for number, secret in enumerate(secrets, start=1):
        key = secret.removeprefix("whsec_")
        if key == secret or not _is_base64(key):
            msg = f"entry {number} is not whsec_ followed by a base64 key (the secret as Svix shows it)"
            raise ValueError(msg)
    return secrets


def _is_base64(key: str) -> bool:
    """Standard base64 of at least one byte, its padding optional (the library adds it too)."""
    try:
        return bool(base64.b64decode(key + "=" * (-len(key) % 4), validate=True))
    except binascii.Error:
        return False


def _text(text: str) -> str:
    return text


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def retry_schedule(text: str) -> tuple[float, ...]:
    """Comma-separated seconds, each above 0: `5,30,120`."""
    return tuple(positive_seconds(item) for item in _comma_list(text))


def http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        msg = f"must be an http(s) URL, not {text!r}"
        raise ValueError(msg)
    return text.rstrip("/")


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: the Settings field it sets, how its text is read, and what it means."""

    name: str
    field: str | None
    """None: read outside Settings (the defaults of the log options)."""
    parse: Callable[[str], Any] = _text
    meaning: str = ""
    default: str | None = None
    """How the default reads in `--help`, where the field's own value would not say it well."""

    def describe(self) -> str:
        """The meaning, with the default that applies when the variable is unset."""
        default = self.default
        if default is None and self.field is not None:
            value = {field.name: field.default for field in fields(Settings)}[self.field]
            if value not in (None, (), MISSING) and not isinstance(value, Mapping):
                default = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{self.meaning} (default {default})" if default else self.meaning


ENVIRONMENT = (
    Variable("TRACKER_DATABASE_URL", "database_url", meaning="PostgreSQL URL; unset: an embedded server under"
             " TRACKER_DATA_DIR"),
    Variable("TRACKER_DATA_DIR", "data_dir", Path, "where the embedded PostgreSQL keeps its data", "./.tracker"),
    Variable("TRACKER_WEBHOOK_SECRET", "webhook_secrets", signing_secrets, "Svix signing secrets (whsec_...),"
             " space-separated; unset: signatures are not checked"),
    Variable("TRACKER_API_TOKEN", "api_token", meaning="the bearer token the API and /metrics then require; it"
             " sees every project"),
    Variable("TRACKER_API_TOKENS", "scoped_tokens", parse_scoped_tokens, "tokens that see only some projects:"
             " whitespace-separated token=projectId[,projectId...]"),
    Variable("TRACKER_KINESIS_STREAMS", "kinesis_streams", _comma_list, "Kinesis streams to consume, comma-separated"),
    Variable("TRACKER_KINESIS_LEASE_SECONDS", "kinesis_lease_seconds", positive_seconds, "seconds a shard lease"
             " lasts unrenewed"),
    Variable("TRACKER_KINESIS_POLL_INTERVAL", "kinesis_poll_interval", positive_seconds, "seconds between two reads"
             " of a caught-up shard"),
    Variable("AWS_REGION", "aws_region", meaning="the streams' region (else AWS_DEFAULT_REGION or the profile's);"
             " credentials as botocore finds them"),
    Variable("TRACKER_CONFIG_URL_ALLOW", "config_url_allow", _comma_list, "URL prefixes config fetches reach"
             " without the https and public-address checks"),
    Variable("TRACKER_CONFIG_FETCH_GIVE_UP", "config_fetch_give_up", positive_seconds, "seconds after a"
             " notification's arrival when a failing config URL is given up"),
    Variable("TRACKER_MAX_PENDING", "max_pending", positive_count, "notifications that may wait for a commit; past"
             " it the webhook answers 503"),
    Variable("TRACKER_MAX_CHANGE_STREAMS", "max_change_streams", positive_count, "GET /v1/changes streams one"
             " process holds open; past it 503"),
    Variable("TRACKER_REBUILD_WORKERS", "rebuild_workers", positive_count, "processes a rebuild of 100,000 events"
             " or more replays in", "the cores, at most 4"),
    Variable("TRACKER_ALERT_RETRY_SCHEDULE", "alert_retry_schedule", retry_schedule, "seconds before each retry of"
             " an alert delivery, comma-separated", "5,30,120,600,1800,3600,7200,14400,28800,43200"),
    Variable("TRACKER_ALERT_URL_ALLOW", "alert_url_allow", _comma_list, "URL prefixes alerts are posted to without"
             " the https and public-address checks"),
    Variable("TRACKER_ALERT_TIMEOUT", "alert_timeout", positive_seconds, "seconds an alert delivery's request may"
             " take"),
    Variable("TRACKER_ALERT_FAILING_AFTER", "alert_failing_after", positive_seconds, "seconds of failed deliveries"
             " after which an alert subscription is marked failing"),
    Variable("TRACKER_PUBLIC_URL", "public_url", http_url, "the dashboard's address as people reach it; Slack"
             " alerts link to it"),
    Variable("TRACKER_LOG_FORMAT", None, meaning="the default of --log-format (json, text)"),
    Variable("TRACKER_LOG_LEVEL", None, meaning="the default of --log-level (debug, info, warning, error)"),
)  # fmt: skip
"""Every variable the tracker reads, declared once: `Settings.from_env` and each command's `--help` derive
from it (and tests/test_docs_configuration.py checks that docs/configuration.md lists each)."""
VARIABLES = {variable.name: variable.describe() for variable in ENVIRONMENT}
"""Each variable's name and what it sets, as `--help` shows them."""

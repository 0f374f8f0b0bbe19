"""A real PostgreSQL for the whole run: TRACKER_DATABASE_URL's server, else the embedded one.

Each run creates a throwaway database, migrated once; each test starts from empty tables.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker
from tracker.store.embedded import start_embedded_postgres

from .kinesis_server import CREDENTIALS, MotoKinesis
from .notifications import Signer

MakeTracker = Callable[..., Tracker]
TABLES = (
    "events, quarantine, installation_view, connection_view, destination_view, issues, projection_checkpoints,"
    " config_fetches, projection_heartbeats, view_changes, kinesis_shards, dead_letters, projection_rebuilds,"
    " alert_subscription_view, alert_outbox, alert_deliveries, alert_subscription_state"
)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("TRACKER_DATABASE_URL")
    if configured:
        return configured
    return await start_embedded_postgres(tmp_path_factory.mktemp("embedded-postgres"))


@contextlib.asynccontextmanager
async def throwaway_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A new database on the server, dropped after the block (its sessions too)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(server_url, name)
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    async with throwaway_database(server_url, "tracker_test") as url:
        yield url


async def empty_tables(database_url: str) -> None:
    """Truncate what tests write, once the migrations have made the tables."""
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT to_regclass('events') IS NOT NULL")
        if exists:
            await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
    finally:
        await conn.close()


@pytest.fixture
async def make_tracker(database_url: str) -> AsyncIterator[Callable[..., Tracker]]:
    """Build trackers on the test database, emptied first; closes them after the test."""
    await empty_tables(database_url)
    opened: list[Tracker] = []

    def build(**kwargs: Any) -> Tracker:
        kwargs.setdefault("database_url", database_url)
        tracker = Tracker(data_dir=Path("unused"), **kwargs)
        opened.append(tracker)
        return tracker

    yield build
    for tracker in opened:
        await tracker.close()  # does nothing for one never started or closed already


SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def tracker(make_tracker: Callable[..., Tracker]) -> Tracker:
    """A started tracker that verifies signatures with SECRET and folds read models only when asked."""
    started = make_tracker(webhook_secrets=(SECRET,), follow_projections=False)
    await started.start()
    return started


@pytest.fixture
async def client(tracker: Tracker) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(tracker.web_app())) as test_client:
        yield test_client


@pytest.fixture
def signer() -> Signer:
    return Signer(SECRET)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoKinesis]:
    server = MotoKinesis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials for this test only: botocore reads them from the environment."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def kinesis(moto: MotoKinesis, aws: None) -> AsyncIterator[Any]:
    async with moto.client() as client:
        yield client

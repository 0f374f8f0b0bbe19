"""schemathesis against the OpenAPI document the tracker serves, with the token and without it.

The tracker listens on a real loopback port; schemathesis's command line loads `GET /openapi.json` from it
and runs its checks on every operation: no 5xx, and status codes, content types, headers and bodies as
the document declares them. CI runs a few examples per operation; a longer run, by hand:

    TRACKER_SCHEMATHESIS_EXAMPLES=200 .venv/bin/pytest tests/test_schemathesis.py

`GET /v1/changes` is left out: it is an endless stream (tests/test_changes.py covers it).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from tracker import Tracker

from .conftest import SECRET, MakeTracker
from .notifications import config, connection_fields, installation_event, new_id, notification
from .ports import free_port
from .waiting import eventually

TOKEN = "schemathesis-token-0123456789"
SCOPED_TOKEN = "schemathesis-scoped-token-0123"
"""Sees proj-1 only (the project of the state below): 403 on the routes of no project."""
EXAMPLES = int(os.environ.get("TRACKER_SCHEMATHESIS_EXAMPLES", "5"))
PORTS = range(18600, 18700)
"""This suite's loopback ports (the machine is shared): the first free one is used."""
EXCLUDED_CHECKS = "positive_data_acceptance"
"""Every check but this one, which expects any schema-valid request to succeed: a cursor the API did not
hand out, a diff from version 1, a replay still refused or a discard without a note are valid by schema
and still a documented 4xx."""
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SERVER_ERRORS = """
[checks.not_a_server_error]
# 503 is an answer the document declares (a `minPosition` not reached in time, with Retry-After): not a crash.
expected-statuses = ["1XX", "2XX", "3XX", "4XX", "503"]
"""


@pytest.fixture
async def served(make_tracker: MakeTracker) -> AsyncIterator[str]:
    """A tracker with a token and some state (so that some reads find something), on a real port."""
    tracker: Tracker = make_tracker(webhook_secrets=(SECRET,))  # following: /readyz is 200
    tracker.settings = replace(
        tracker.settings, api_token=TOKEN, scoped_tokens={SCOPED_TOKEN: frozenset({"proj-1"})}, min_position_wait=0.2
    )
    await tracker.start()
    installation_id, connection_id = new_id("inst"), new_id("conn")
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    await tracker.ingest(notification("connection.error", **connection_fields(connection_id), errors=["expired"]))
    with pytest.raises(ValueError, match="neither notificationType nor metadata"):
        await tracker.ingest(b'{"not": "a notification"}')  # one row in quarantine
    await eventually(lambda: _ready(tracker))
    runner = web.AppRunner(tracker.web_app(), access_log=None)
    await runner.setup()
    port = free_port(PORTS)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _ready(tracker: Tracker) -> bool:
    return bool((await tracker.readiness())["ready"])


async def schemathesis(base: str, tmp_path: Path, *options: str) -> tuple[int, str]:
    """Run schemathesis's command line (as a child: this loop keeps serving meanwhile)."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(SERVER_ERRORS)
    seed = os.environ.get("TRACKER_SCHEMATHESIS_SEED", "1")
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "--config-file", str(config), "run", f"{base}/openapi.json",
        "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS, "--max-examples", str(EXAMPLES), "--workers", "1",
        "--exclude-path", "/v1/changes", "--request-timeout", "30", "--no-color", "--generation-database", "none",
        "--seed", seed, *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


@pytest.mark.parametrize("token", [TOKEN, SCOPED_TOKEN, None], ids=["all-projects-token", "scoped-token", "no-token"])
async def test_every_operation_answers_as_documented(served: str, tmp_path: Path, token: str | None) -> None:
    options = ("--header", f"Authorization: Bearer {token}") if token else ()
    status, output = await schemathesis(served, tmp_path, *options)
    assert status == 0, output
    assert "Test cases:" in output, output  # it ran

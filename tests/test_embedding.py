"""Embedding: the README's example runs as written, and the API mounts under a host application."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker

from .conftest import MakeTracker
from .notifications import installation_event, new_id

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## Embedding", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Embedding section has no python example"
    return match.group(1)


async def test_the_readme_example_runs(database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    env = {**os.environ, "TRACKER_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    position, status = out.decode().split()
    assert int(position) > 0
    assert status == "error"


async def test_the_api_mounts_under_a_host_application(make_tracker: MakeTracker) -> None:
    tracker: Tracker = make_tracker(follow_projections=True)
    await tracker.start()
    host = web.Application()
    host.add_subapp("/tracker/", tracker.web_app())
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("read.backfill.done", installation_id, objectName="account"))
    await tracker.catch_up()
    async with TestClient(TestServer(host)) as client:
        status = await client.get("/tracker/v1/status")
        view = await client.get(f"/tracker/v1/installations/{installation_id}")
        assert status.status == 200
        assert (await status.json())["events"] == 1
        assert (await view.json())["objects"]["account"]["backfillDone"] is True

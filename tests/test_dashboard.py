"""The dashboard: its page and assets without the token, the routes it reads, and a walk in Chromium."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import async_playwright, expect

from tracker import Tracker

from .conftest import MakeTracker
from .notifications import config, connection_fields, installation_event, installation_fields, new_id, notification

Client = TestClient[web.Request, web.Application]
TOKEN = "dashboard-t0ken"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
"""Debian's package: `.ci/run` installs it; Playwright never downloads a browser here."""
PORTS = range(18300, 18400)


@pytest.fixture
async def guarded(make_tracker: MakeTracker) -> Tracker:
    """A following tracker that wants TOKEN."""
    tracker = make_tracker(follow_projections=True)
    tracker.settings = replace(tracker.settings, api_token=TOKEN)
    await tracker.start()
    return tracker


async def test_the_page_and_its_assets_need_no_token_and_the_data_does(guarded: Tracker) -> None:
    async with TestClient(TestServer(guarded.web_app())) as client:
        page = await client.get("/")
        assert page.status == 200
        assert page.content_type == "text/html"
        html = await page.text()
        assert 'data-token="required"' in html
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        script = await client.get("/static/dashboard.js")
        assert script.status == 200
        assert "v1/changes" in await script.text()
        assert (await client.get("/static/dashboard.css")).status == 200
        assert (await client.get("/static/..%2Fdashboard.py")).status == 404
        assert (await client.get("/static/other.js")).status == 404
        assert (await client.get("/v1/health")).status == 401
        assert (await client.get("/v1/changes")).status == 401


async def test_the_page_works_under_a_host_applications_prefix(tracker: Tracker) -> None:
    host = web.Application()
    host.add_subapp("/tracker/", tracker.web_app())
    async with TestClient(TestServer(host)) as client:
        html = await (await client.get("/tracker/")).text()
        assert 'data-token="none"' in html
        assert 'src="static/dashboard.js"' in html  # relative: resolves under the prefix
        assert (await client.get("/tracker/static/dashboard.js")).status == 200


async def test_the_counts_narrow_by_provider_and_group_and_destinations_by_name(
    client: Client, tracker: Tracker
) -> None:
    in_group, other_group = new_id("inst"), new_id("inst")
    await tracker.ingest(installation_event("read.schedule.paused", in_group, config=config(), error="auth"))
    await tracker.ingest(notification("installation.created", **{
        **installation_fields(other_group), "groupRef": "group-2", "config": config(),
    }))  # fmt: skip
    destination_id = new_id("dest")
    await tracker.ingest(
        notification(
            "destination.webhook.disabled", projectId="proj-1", destinationId=destination_id,
            destinationName="main-webhook", url="https://x.example/h",
        )
    )  # fmt: skip
    await tracker.catch_up()

    async def counts(query: str) -> dict[str, int]:
        (item,) = (await (await client.get(f"/v1/integrations?{query}")).json())["items"]
        return {status: n for status, n in item["installations"].items() if n}

    assert await counts("groupRef=group-1") == {"unhealthy": 1, "total": 1}
    assert await counts("groupRef=group-2&provider=salesforce") == {"unhealthy": 1, "total": 1}  # the destination
    assert (await (await client.get("/v1/integrations?provider=hubspot")).json())["items"] == []
    named = await (await client.get("/v1/destinations?projectId=proj-1&destinationName=main-webhook")).json()
    assert [d["destinationId"] for d in named["items"]] == [destination_id]
    assert (await (await client.get("/v1/destinations?destinationName=other")).json())["items"] == []


# ---- in the browser ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on the first free port of PORTS, on loopback; yield its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        for port in PORTS:
            try:
                await web.TCPSite(runner, "127.0.0.1", port).start()
            except OSError:
                continue
            yield f"http://127.0.0.1:{port}/"
            return
        pytest.fail(f"no free port in {PORTS}")
    finally:
        await runner.cleanup()


async def tell_a_story(tracker: Tracker) -> dict[str, str]:
    """An unhealthy installation with a history, a degraded one, a healthy one on another integration."""
    broken, slow, fine = new_id("inst-broken"), new_id("inst-slow"), new_id("inst-fine")
    connection_id = new_id("conn")
    fields = installation_fields(broken, connection_id=connection_id)
    await tracker.ingest(notification("installation.created", **fields, config=config(("account",))))
    await tracker.ingest(
        notification(
            "installation.updated", **fields, config=config(("account", "contact")), lastConfig=config(("account",))
        )
    )
    await tracker.ingest(
        installation_event("read.backfill.done", broken, connectionId=connection_id, objectName="account")
    )
    await tracker.ingest(
        installation_event(
            "read.triggered.error", broken, connectionId=connection_id, objectName="contact",
            error="rate limited", fromTimestamp="2025-01-01T00:00:00Z", untilTimestamp="2025-01-02T00:00:00Z",
        )
    )  # fmt: skip
    await tracker.ingest(
        notification("connection.error", **connection_fields(connection_id), errors=["invalid_grant: token expired"])
    )
    await tracker.ingest(installation_event("installation.created", slow, config=config()))
    await tracker.ingest(
        installation_event("write.async.done", slow, objectName="account", success=False, errors=["quota exceeded"])
    )
    await tracker.ingest(notification("installation.created", **{
        **installation_fields(fine), "integrationId": "integ-2", "integrationName": "HubSpot sync",
        "provider": "hubspot", "config": config(),
    }))  # fmt: skip
    await tracker.catch_up()
    return {"broken": broken, "slow": slow, "fine": fine, "connection": connection_id}


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
async def test_an_operator_finds_the_unhealthy_installation_and_why(guarded: Tracker, tmp_path: Path) -> None:
    story = await tell_a_story(guarded)
    async with serve(guarded.web_app()) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(base)

            # Asked once for the token, which stays in the tab's session.
            await page.fill("#token", TOKEN)
            await page.click("#token-form button[type=submit]")
            totals = page.locator("#totals")
            await expect(totals.locator("[data-status=total] .count")).to_have_text("3")
            await expect(totals.locator("[data-status=unhealthy] .count")).to_have_text("1")
            await expect(totals.locator("[data-status=degraded] .count")).to_have_text("1")
            await expect(totals.locator("[data-status=healthy] .count")).to_have_text("1")
            await expect(page.locator("#live")).to_have_text("live")
            unhealthy = page.locator("#unhealthy")
            await expect(unhealthy).to_contain_text("connection_error")
            await expect(unhealthy).to_contain_text("since")
            await expect(page.locator("#degraded")).to_contain_text("write_failed")
            await page.screenshot(path=tmp_path / "overview.png", full_page=True)

            # Filters: the other integration's provider narrows the counts.
            await page.fill("#filters input[name=provider]", "hubspot")
            await page.click("#filters button[type=submit]")
            await expect(totals.locator("[data-status=total] .count")).to_have_text("1")
            await expect(totals.locator("[data-status=unhealthy] .count")).to_have_text("0")
            await page.click("#filters .clear")
            await expect(totals.locator("[data-status=total] .count")).to_have_text("3")

            # Into the unhealthy installation: its state, objects, config diff, connection, timeline.
            await unhealthy.get_by_role("link", name=story["broken"]).click()
            await expect(page.locator("h1.title")).to_contain_text("unhealthy")
            await expect(page.locator("#state")).to_contain_text(story["connection"])
            await expect(page.locator("#health")).to_contain_text("connection_error")
            objects = page.locator("#objects")
            await expect(objects.locator("tr", has_text="account")).to_contain_text("done")
            await expect(objects.locator("tr", has_text="contact")).to_contain_text("rate limited")
            await expect(page.locator("#connection")).to_contain_text("invalid_grant: token expired")
            timeline = page.locator("#timeline")
            for event_type in ("installation.created", "installation.updated", "read.triggered.error"):
                await expect(timeline).to_contain_text(event_type)
            await page.get_by_role("button", name="diff with 1").click()
            await expect(page.locator("#config-diff")).to_contain_text("read.objects.contact")
            await page.screenshot(path=tmp_path / "installation.png", full_page=True)

            # Live: the installation's schedule pauses; the page shows it without a reload.
            await guarded.ingest(
                installation_event("read.schedule.paused", story["broken"], connectionId=story["connection"],
                                   config=config(("account", "contact")), error="auth revoked")
            )  # fmt: skip
            await expect(page.locator("#state")).to_contain_text("paused: auth revoked", timeout=15_000)

            # The token is kept for the session: a reload does not ask again.
            await page.reload()
            await expect(page.locator("h1.title")).to_contain_text(story["broken"])
            assert await page.locator("#token-form").is_hidden()
            assert errors == []
        finally:
            await browser.close()
    assert (tmp_path / "installation.png").stat().st_size > 0

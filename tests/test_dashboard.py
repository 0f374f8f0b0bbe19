"""The dashboard: its page and assets without the token, the routes it reads, and walks in Chromium."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import async_playwright, expect

from tracker import Tracker
from tracker.settings import Settings

from .alert_receiver import Receiver
from .conftest import MakeTracker
from .notifications import config, connection_fields, installation_event, installation_fields, new_id, notification
from .waiting import eventually

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
        assert '<a href="#/alerts">Alerts</a>' in html  # the header's way to the alerts page
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        script = await client.get("/static/dashboard.js")
        assert script.status == 200
        code = await script.text()
        for route in ("v1/changes", '"v1/alerts/subscriptions"', "`v1/alerts/deliveries${"):
            assert route in code, route
        assert re.search(r"/\^\\/alerts", code), "the script no longer routes #/alerts"
        assert (await client.get("/static/dashboard.css")).status == 200
        assert (await client.get("/static/..%2Fdashboard.py")).status == 404
        assert (await client.get("/static/other.js")).status == 404
        for route in ("/v1/health", "/v1/changes", "/v1/alerts/subscriptions", "/v1/alerts/deliveries"):
            assert (await client.get(route)).status == 401, route


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


@contextlib.asynccontextmanager
async def receivers(count: int) -> AsyncIterator[list[Receiver]]:
    """`count` alert receivers on loopback, each on its own port, so each can be scripted alone."""
    started: list[Receiver] = []
    try:
        for _ in range(count):
            started.append(Receiver())
            await started[-1].start()
        yield started
    finally:
        for receiver in started:
            await receiver.close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
async def test_an_operator_sees_which_alerts_went_out_and_which_subscriptions_fail(
    make_tracker: MakeTracker, tmp_path: Path
) -> None:
    async with receivers(3) as (told, gone, down):
        gone.script.append((410, {}))
        down.script.extend([(500, {})] * 3)  # then it waits 10 minutes: pending, and failing by then
        settings = Settings(api_token=TOKEN, alert_url_allow=(told.url(""), gone.url(""), down.url("")),
                            alert_retry_schedule=(0.05, 0.05, 600.0), alert_failing_after=0.05)  # fmt: skip
        tracker = make_tracker(settings=settings, follow_projections=True)
        await tracker.start()
        installation_id = new_id("inst-alerted")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with serve(tracker.web_app()) as base, aiohttp.ClientSession(base, headers=headers) as api:

            async def subscribe(**body: Any) -> str:
                async with api.post("/v1/alerts/subscriptions", json=body) as response:
                    assert response.status == 201, await response.text()
                    subscription_id: str = (await response.json())["id"]
                    return subscription_id

            async def folded() -> bool:
                """Whether the three subscriptions are listed, so the page's first look finds them."""
                async with api.get("/v1/alerts/subscriptions") as response:
                    return len((await response.json())["items"]) == 3

            await subscribe(url=told.url("told"), by="ops")
            gone_id = await subscribe(url=gone.url("gone"))
            await subscribe(url=down.url("down"), minSeverity="unhealthy", projectIds=["proj-1"],
                            codes=["read_schedule_paused"])  # fmt: skip
            await eventually(folded)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 900})
                    errors: list[str] = []
                    page.on("pageerror", lambda error: errors.append(str(error)))
                    await page.goto(base)
                    await page.fill("#token", TOKEN)
                    await page.click("#token-form button[type=submit]")
                    await expect(page.locator("#totals")).to_be_visible()
                    assert await page.locator("#alerts-notice").count() == 0  # nothing wrong with alerts yet

                    # From the header, by keyboard.
                    header_link = page.locator("header nav a", has_text="Alerts")
                    await header_link.focus()
                    await page.keyboard.press("Enter")
                    await expect(page.locator("h1.title")).to_have_text("Alerts")
                    await expect(header_link).to_have_attribute("aria-current", "page")
                    listed = page.locator("#alert-subscriptions tbody tr")
                    await expect(listed).to_have_count(3)
                    for shown in ("webhook", "degraded and worse", "every project", "every code", "by ops"):
                        await expect(listed.filter(has_text=told.url("told"))).to_contain_text(shown)
                    filtered = listed.filter(has_text=down.url("down"))
                    for shown in ("unhealthy and worse", "projects proj-1", "codes read_schedule_paused"):
                        await expect(filtered).to_contain_text(shown)
                    for row in (told.url("told"), gone.url("gone"), down.url("down")):
                        await expect(listed.filter(has_text=row)).to_contain_text("active")
                    deliveries = page.locator("#alert-deliveries")
                    await expect(deliveries).to_contain_text("No deliveries yet.")

                    # An installation's schedule pauses: each subscription is told, as its receiver answers.
                    fields = installation_fields(installation_id)
                    await tracker.ingest(notification("installation.created", **fields, config=config()))
                    await tracker.ingest(notification("read.schedule.paused", **fields, config=config(), error="auth"))
                    about = deliveries.locator("tbody tr", has_text=installation_id)
                    delivered = about.filter(has_text=told.url("told"))
                    for shown in ("issue.opened", "installation", "read_schedule_paused", "delivered", "HTTP 200"):
                        await expect(delivered).to_contain_text(shown, timeout=15_000)
                    await expect(delivered.locator("td.num")).to_have_text("1")
                    refused = about.filter(has_text=gone.url("gone"))
                    await expect(refused).to_contain_text("failed", timeout=15_000)
                    await expect(refused).to_contain_text("HTTP 410")
                    retried = about.filter(has_text=down.url("down"))
                    await expect(retried).to_contain_text("pending", timeout=15_000)
                    await expect(retried).to_contain_text("next try in")
                    await expect(retried.locator("td.num")).to_have_text("3")
                    await expect(retried).to_contain_text("HTTP 500")

                    # The subscriptions say so too, once their state is folded (the page asks again by itself).
                    await expect(listed.filter(has_text=gone.url("gone"))).to_contain_text(
                        "disabled: nothing more is sent; HTTP 410", timeout=15_000
                    )
                    failing = listed.filter(has_text=down.url("down"))
                    await expect(failing).to_contain_text(re.compile(r"failing since .+: HTTP 500"), timeout=15_000)
                    await expect(listed.filter(has_text=told.url("told"))).not_to_contain_text("failing")
                    await page.screenshot(path=tmp_path / "alerts.png", full_page=True)

                    # The overview points at them.
                    await page.locator("header nav a", has_text="Overview").click()
                    await expect(page.locator("#alerts-notice")).to_contain_text("1 failing, 1 disabled")
                    await page.locator("#alerts-notice a").click()
                    await expect(listed).to_have_count(3)

                    # The change feed says nothing of subscriptions: the page asks again by itself.
                    async with api.delete(f"/v1/alerts/subscriptions/{gone_id}") as response:
                        assert response.status == 204
                    await expect(listed).to_have_count(2, timeout=15_000)
                    await expect(listed.filter(has_text=gone.url("gone"))).to_have_count(0)

                    # A delivery leads to its installation.
                    await delivered.get_by_role("link", name=installation_id).click()
                    await expect(page.locator("h1.title")).to_contain_text(installation_id)

                    # An error from the API is shown as the page shows any other.
                    await page.route("**/v1/alerts/deliveries*", lambda route: route.fulfill(
                        status=503, content_type="application/json", body='{"error": "the database is unreachable"}'
                    ))  # fmt: skip
                    await page.goto(f"{base}#/alerts")
                    await expect(page.locator("#main .error")).to_have_text(
                        "Could not load: the database is unreachable"
                    )
                    assert errors == []
                finally:
                    await browser.close()
    assert (tmp_path / "alerts.png").stat().st_size > 0

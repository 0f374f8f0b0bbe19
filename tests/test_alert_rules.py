"""The alerting rules (deploy/prometheus/alerts.yml) use only metrics the tracker serves.

promtool checks the rules' syntax and their unit tests (`.ci/run`); this checks their names against a real
`/metrics`, so renaming a metric cannot silence an alert.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\btracker_[a-z_]+\b")


def metrics_in_rules() -> set[str]:
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    return {name for rule in rules for name in METRIC.findall(rule["expr"])}


async def test_every_metric_an_alert_reads_is_served(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/metrics")
    assert response.status == 200
    served = set(re.findall(r"^# TYPE (\S+) ", await response.text(), re.MULTILINE))
    wanted = metrics_in_rules()
    assert {"tracker_database_up", "tracker_projection_lag_events", "tracker_notifications_total"} <= wanted
    assert sorted(wanted - served) == []

"""Config versions: numbering distinct contents, missed updates, the structural diff, and their routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from projections.config_versions import Change, ConfigVersion, config_hash, diff, record, record_update
from tracker import Tracker
from tracker.services import config_history

from .notifications import config, installation_event, new_id

Client = TestClient[web.Request, web.Application]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
T1, T2, T3 = (T0 + timedelta(minutes=n) for n in (1, 2, 3))
A, B, C = config(("account",)), config(("contact",)), config(("account",), destination="other-webhook")


def test_a_content_seen_again_keeps_its_number() -> None:
    versions, first = record((), A, T0)
    versions, second = record(versions, B, T1)
    versions, again = record(versions, A, T2)

    assert (first, second, again) == (1, 2, 1)
    assert versions == (ConfigVersion(1, config_hash(A), T0), ConfigVersion(2, config_hash(B), T1))


def test_key_order_does_not_make_a_new_version() -> None:
    reordered = dict(reversed(list(A.items())))
    assert list(reordered) != list(A)

    versions, _ = record((), A, T0)
    versions, number = record(versions, reordered, T1)

    assert number == 1
    assert len(versions) == 1


def test_an_unknown_last_config_is_a_missed_update_recorded_before_the_new_config() -> None:
    versions, _ = record((), A, T0)

    versions, number = record_update(versions, A, {"config": C, "lastConfig": B}, T1)

    assert number == 3
    assert versions == (
        ConfigVersion(1, config_hash(A), T0),
        ConfigVersion(2, config_hash(B), T1, missed_update=True),
        ConfigVersion(3, config_hash(C), T1),
    )


def test_a_missed_update_is_recorded_once() -> None:
    versions, _ = record((), A, T0)
    versions, _ = record_update(versions, A, {"config": C, "lastConfig": B}, T1)

    # Redelivered, or B reported again by a later update: B is known now.
    again, number = record_update(versions, C, {"config": C, "lastConfig": B}, T2)

    assert number == 3
    assert again == versions
    assert [v.missed_update for v in again] == [False, True, False]


def test_the_held_config_as_last_config_is_no_missed_update() -> None:
    versions, _ = record((), A, T0)

    versions, number = record_update(versions, A, {"config": B, "lastConfig": A}, T1)

    assert number == 2
    assert [(v.version, v.missed_update) for v in versions] == [(1, False), (2, False)]


def test_a_last_config_that_differs_from_the_held_one_only_by_key_order_is_not_missed() -> None:
    # `held` need not be among the versions (a fold started mid-stream): it is compared by hash.
    held = dict(reversed(list(A.items())))

    versions, number = record_update((), held, {"config": B, "lastConfig": A}, T0)

    assert number == 1
    assert versions == (ConfigVersion(1, config_hash(B), T0),)


def test_a_first_update_with_an_unknown_last_config_records_both() -> None:
    versions, number = record_update((), None, {"config": B, "lastConfig": A}, T0)

    assert number == 2
    assert [(v.sha256, v.missed_update) for v in versions] == [(config_hash(A), True), (config_hash(B), False)]


def test_without_a_non_empty_config_the_number_is_none() -> None:
    versions, _ = record((), A, T0)

    for data in ({"configURL": "https://configs.example/1"}, {"config": {}, "lastConfig": {}}, {"config": None}):
        after, number = record_update(versions, A, data, T1)
        assert number is None, data
        assert after == versions, data


def test_a_url_only_update_still_records_an_unknown_last_config() -> None:
    versions, number = record_update((), None, {"configURL": "https://configs.example/1", "lastConfig": A}, T0)

    assert number is None
    assert versions == (ConfigVersion(1, config_hash(A), T0, missed_update=True),)


def test_diff_of_equal_values_is_empty() -> None:
    assert diff(A, orjson.loads(orjson.dumps(A))) == []
    assert diff({}, {}) == []
    assert diff(3, 3) == []


def test_diff_reports_added_removed_and_changed_leaves_sorted_by_path() -> None:
    old = {"b": 1, "a": {"keep": True, "gone": "x", "deep": {"n": 1}}, "z": [1, 2]}
    new = {"a": {"keep": True, "deep": {"n": 2}, "new": None}, "b": 1, "c": "added", "z": [2, 1]}

    assert diff(old, new) == [
        Change("a.deep.n", "changed", 1, 2),
        Change("a.gone", "removed", old="x"),
        Change("a.new", "added", new=None),
        Change("c", "added", new="added"),
        Change("z", "changed", [1, 2], [2, 1]),  # lists are one value
    ]


def test_diff_sorts_by_the_whole_path_not_key_by_key() -> None:
    # "a-b" sorts before "a.x" ("-" < "."), though the key "a" sorts before the key "a-b".
    assert [c.path for c in diff({"a": {"x": 1}}, {"a": {"x": 2}, "a-b": 0})] == ["a-b", "a.x"]


def test_diff_of_a_dict_replaced_by_a_scalar_is_one_change_at_its_path() -> None:
    assert diff({"read": {"objects": {}}}, {"read": None}) == [Change("read", "changed", {"objects": {}}, None)]
    assert diff([1], {"a": 1}) == [Change("", "changed", [1], {"a": 1})]
    assert diff({"a": 1}, {"a": 2}, path="config") == [Change("config.a", "changed", 1, 2)]


def test_diff_tells_json_types_apart_as_the_hash_does() -> None:
    assert diff({"n": 1}, {"n": 1.0}) == [Change("n", "changed", 1, 1.0)]
    assert diff({"n": [1]}, {"n": [True]}) == [Change("n", "changed", [1], [True])]


def test_diff_of_real_configs_names_the_object_that_was_added() -> None:
    changes = diff(A, config(("account", "contact")))

    assert [(c.path, c.op) for c in changes] == [("read.objects.contact", "added")]
    assert changes[0].new == {"objectName": "contact", "destination": "main-webhook", "schedule": "*/15 * * * *"}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=12,
)
CONFIGS = st.dictionaries(st.text(max_size=3), JSON, min_size=1, max_size=4)


@given(CONFIGS, CONFIGS)
def test_diff_is_empty_exactly_when_the_hashes_agree(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert (diff(old, new) == []) == (config_hash(old) == config_hash(new))


@given(st.lists(st.sampled_from([A, B, C]), min_size=1))
def test_numbers_follow_first_appearance(seen: list[dict[str, Any]]) -> None:
    versions: tuple[ConfigVersion, ...] = ()
    numbers = []
    for content in seen:
        versions, number = record(versions, content, T0)
        numbers.append(number)

    first_seen = list(dict.fromkeys(config_hash(content) for content in seen))
    assert [v.sha256 for v in versions] == first_seen
    assert numbers == [first_seen.index(config_hash(content)) + 1 for content in seen]


async def _three_versions(tracker: Tracker) -> str:
    """Created with A, updated to B, then updated back to A from C: an update to C the tracker never got."""
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.created", installation_id, config=A))
    await tracker.ingest(installation_event("installation.updated", installation_id, config=B, lastConfig=A))
    await tracker.ingest(installation_event("installation.updated", installation_id, config=A, lastConfig=C))
    return installation_id


async def test_the_versions_list_every_content_with_the_missed_update_marked(client: Client, tracker: Tracker) -> None:
    installation_id = await _three_versions(tracker)

    response = await client.get(f"/v1/installations/{installation_id}/config-versions")

    assert response.status == 200
    items = (await response.json())["items"]
    assert [(i["version"], i["missedUpdate"], i["config"]) for i in items] == [
        (1, False, A),
        (2, False, B),
        (3, True, C),
    ]
    assert [i["sha256"] for i in items] == [config_hash(A), config_hash(B), config_hash(C)]
    assert all(isinstance(datetime.fromisoformat(i["firstSeenAt"]), datetime) for i in items)


async def test_a_stream_longer_than_a_page_is_folded_whole(
    client: Client, tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation_id = await _three_versions(tracker)
    whole = await (await client.get(f"/v1/installations/{installation_id}/config-versions")).json()
    monkeypatch.setattr(config_history, "PAGE_SIZE", 2)  # pages of 2, 1, then an empty one

    paged = await (await client.get(f"/v1/installations/{installation_id}/config-versions")).json()

    assert len(whole["items"]) == 3
    assert paged == whole


async def test_a_stream_without_config_lists_no_versions(client: Client, tracker: Tracker) -> None:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("read.backfill.done", installation_id, objectName="account"))

    listed = await client.get(f"/v1/installations/{installation_id}/config-versions")
    diffed = await client.get(f"/v1/installations/{installation_id}/config-versions/diff")

    assert (listed.status, await listed.json()) == (200, {"items": []})
    assert diffed.status == 404
    assert "no config versions" in (await diffed.json())["error"]


async def test_the_diff_between_two_versions_names_the_changed_path(client: Client, tracker: Tracker) -> None:
    installation_id = await _three_versions(tracker)

    response = await client.get(f"/v1/installations/{installation_id}/config-versions/diff?from=1&to=3")

    assert response.status == 200
    assert await response.json() == {
        "from": 1,
        "to": 3,
        "changes": [
            {
                "path": "read.objects.account.destination",
                "op": "changed",
                "old": "main-webhook",
                "new": "other-webhook",
            }
        ],
    }


async def test_the_diff_defaults_to_the_newest_against_the_one_before(client: Client, tracker: Tracker) -> None:
    installation_id = await _three_versions(tracker)

    newest = await (await client.get(f"/v1/installations/{installation_id}/config-versions/diff")).json()
    to_two = await (await client.get(f"/v1/installations/{installation_id}/config-versions/diff?to=2")).json()

    assert (newest["from"], newest["to"]) == (2, 3)
    assert (to_two["from"], to_two["to"]) == (1, 2)
    assert [(c["path"], c["op"]) for c in to_two["changes"]] == [
        ("read.objects.account", "removed"),
        ("read.objects.contact", "added"),
    ]


async def test_unknown_installations_are_404(client: Client) -> None:
    for path in ("/v1/installations/nope/config-versions", "/v1/installations/nope/config-versions/diff"):
        response = await client.get(path)
        assert response.status == 404, path
        assert "nope" in (await response.json())["error"], path


async def test_bad_versions_are_400_with_a_reason(client: Client, tracker: Tracker) -> None:
    installation_id = await _three_versions(tracker)
    only_one = new_id("inst")
    await tracker.ingest(installation_event("installation.created", only_one, config=A))

    for key, query, reason in (
        (installation_id, "from=one", "must be integer"),
        (installation_id, "to=2.5", "must be integer"),
        (installation_id, "from=0", "from=0 is not a config version"),
        (installation_id, "from=1&to=4", "to=4 is not a config version"),
        (only_one, "", "nothing before it"),
    ):
        response = await client.get(f"/v1/installations/{key}/config-versions/diff?{query}")
        assert response.status == 400, query
        assert reason in (await response.json())["error"], query


async def test_the_document_and_the_route_number_a_late_created_alike(client: Client, tracker: Tracker) -> None:
    installation_id = new_id("inst")
    a, b, c, x = (config((name,)) for name in ("a", "b", "c", "x"))
    await tracker.ingest(installation_event("installation.updated", installation_id, config=b, lastConfig=a))
    await tracker.ingest(installation_event("installation.created", installation_id, config=x))  # arrives late
    await tracker.ingest(installation_event("installation.updated", installation_id, config=c, lastConfig=b))
    await tracker.catch_up()

    document = await (await client.get(f"/v1/installations/{installation_id}")).json()
    history = await (await client.get(f"/v1/installations/{installation_id}/config-versions")).json()
    numbered = {item["version"]: item["config"] for item in history["items"]}
    assert numbered[document["configVersion"]] == document["config"] == c
    assert [v["version"] for v in document["configVersions"]] == sorted(numbered)

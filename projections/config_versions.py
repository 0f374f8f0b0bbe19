"""An installation's config history: numbered distinct contents, and a structural diff between two of them.

Pure: no I/O, clock or randomness. Meant for both the installation read model and the config-versions
routes, so that a version number means the same content in either place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeGuard

import orjson

from projections.read_model import CAMEL_CASE
from tracker.domain import installation
from tracker.domain.catalog import types_of

CARRIES_CONFIG = types_of(
    installation.Created, installation.Updated, installation.Deleted, installation.ReadSchedulePaused
)
"""The notification types whose data may hold a `config` (and, for updates, a `lastConfig`)."""


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    __pydantic_config__ = CAMEL_CASE
    version: int
    """1 for the first distinct content seen, then one more for each new content; a content seen again keeps its."""
    sha256: str
    """Of the content with its keys sorted (`config_hash`): key order on the wire does not make a new version."""
    first_seen_at: datetime
    """When a notification carried it first; for a missed update, when the update that revealed it arrived."""
    missed_update: bool = False
    """Known only as the `lastConfig` of a later update: the tracker never received the update that set it."""


Versions = tuple[ConfigVersion, ...]


@dataclass(frozen=True, slots=True)
class Change:
    __pydantic_config__ = CAMEL_CASE
    path: str
    """Dict keys from the root, joined with "."; "" when the roots themselves differ."""
    op: Literal["added", "removed", "changed"]
    old: Any = None
    """The value before; None when added."""
    new: Any = None
    """The value after; None when removed."""


def config_hash(config: dict[str, Any]) -> str:
    """Hash the content, not its spelling: keys are sorted first, so reordering them changes nothing."""
    return hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()


def record(
    versions: Versions, config: dict[str, Any], at: datetime, *, missed_update: bool = False
) -> tuple[Versions, int]:
    """Return the versions after seeing `config`, and the number of its content.

    A content seen before keeps its number (A, B, A again is version 1 the third time); a new one gets the next.
    """
    return _record(versions, config_hash(config), at, missed_update)


def _record(versions: Versions, digest: str, at: datetime, missed_update: bool) -> tuple[Versions, int]:
    for known in versions:
        if known.sha256 == digest:
            return versions, known.version
    number = len(versions) + 1
    return (*versions, ConfigVersion(number, digest, at, missed_update)), number


def record_update(
    versions: Versions, held: dict[str, Any] | None, data: dict[str, Any], at: datetime
) -> tuple[Versions, int | None]:
    """Return the versions after one notification's `data`, and the number of its config (None if it has none).

    A `lastConfig` that is neither the `held` config nor a known content was set by an update the tracker
    never received: it is recorded first, as a missed update, so the numbers follow the order the contents
    were in force. So each version this step adds is `data["lastConfig"]` if it is `missed_update`, else
    `data["config"]`. Without a non-empty `config` (say, only a `configURL`) the held config stays and the
    number is None.
    """
    last = data.get("lastConfig")
    if _is_config(last):
        digest = config_hash(last)
        # `_record` keeps a known content's number anyway; checking first spares hashing the held config.
        if not _known(versions, digest) and (held is None or config_hash(held) != digest):
            versions, _ = _record(versions, digest, at, missed_update=True)
    config = data.get("config")
    if not _is_config(config):
        return versions, None
    return record(versions, config, at)


def _known(versions: Versions, digest: str) -> bool:
    return any(version.sha256 == digest for version in versions)


def _is_config(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and bool(value)


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """Return what changed from `old` to `new`, sorted by path.

    Dicts are compared key by key, recursively; everything else, lists included, is one value: a list
    whose items are reordered or edited is one "changed" at its path, since an index path would report
    every later item of a list with one item inserted. Values are equal only with equal types, so `1`
    against `1.0` or `true` is a change, as it is a new version by `config_hash`. A key that holds a "."
    makes its path ambiguous; the paths are for people to read.
    """
    return sorted(_changes(old, new, path), key=lambda change: change.path)


def _changes(old: Any, new: Any, path: str) -> list[Change]:
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in old.keys() | new.keys():  # in any order: diff() sorts the paths
            at = f"{path}.{key}" if path else str(key)
            if key not in new:
                changes.append(Change(at, "removed", old=old[key]))
            elif key not in old:
                changes.append(Change(at, "added", new=new[key]))
            else:
                changes.extend(_changes(old[key], new[key], at))
        return changes
    return [] if _same(old, new) else [Change(path, "changed", old, new)]


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON: Python's `==` holds `1 == 1.0 == True`, which JSON and `config_hash` tell apart."""
    if type(old) is not type(new):
        return False
    if isinstance(old, dict):
        return old.keys() == new.keys() and all(_same(old[key], new[key]) for key in old)
    if isinstance(old, list | tuple):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    return bool(old == new)

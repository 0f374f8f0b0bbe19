"""What the runner needs to know of a read model: its table, the events it folds and its evolve()."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ConfigDict, TypeAdapter
from pydantic.alias_generators import to_camel

from tracker.domain.recorded import Recorded

CAMEL_CASE = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)
"""Views are stored and served in Ampersand's camelCase; set as `__pydantic_config__` on each view."""

View = TypeVar("View")


def identity(data: dict[str, Any], fields: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The view fields (snake_case) that the notification data names (camelCase) as strings."""
    return {name: data[key] for name, key in fields if isinstance(data.get(key), str)}


@dataclass(frozen=True)
class ReadModel(Generic[View]):
    name: str
    stream_prefix: str
    """The streams it folds: `installation` for `installation:<id>`."""
    table: str
    key_column: str
    columns: tuple[tuple[str, str], ...]
    """Filter columns after the key, as (name, SQL type); `position` and `doc` follow them."""
    types: frozenset[str]
    """The notification types the read model folds; the runner reads no others."""
    key_of: Callable[[Recorded], str]
    evolve: Callable[[View | None, Recorded], View | None]
    row_of: Callable[[View], tuple[Any, ...]]
    """The key and filter column values of a view, in `columns` order."""
    adapter: TypeAdapter[View]
    entity: str
    """What the read model's issues are issues of (`installation`, `connection`, `destination`)."""
    issue_scope: Callable[[View], tuple[str | None, str | None]]
    """The project and integration an entity's issues are listed under."""
    version: int = 1
    """The version of its logic: raise it when evolve() or the rows change, and a tracker that starts with
    the new code rebuilds the read model beside the live one, then switches over."""

    def to_json(self, view: View) -> bytes:
        """The document the API serves, as JSON: stored into jsonb without a second encoding."""
        return self.adapter.dump_json(view, by_alias=True)

    def from_json(self, document: str | bytes) -> View:
        return self.adapter.validate_json(document)

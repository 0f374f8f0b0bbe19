"""Ampersand's notification spec, read from `../shared/spec/` beside the checkout (not copied in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "spec" / "notifications.yaml"


def load_schemas() -> dict[str, Any]:
    """The spec's schemas; a checkout without `../shared/spec/` skips the tests that need them."""
    if not SPEC_PATH.exists():
        pytest.skip(f"Ampersand's spec is not at {SPEC_PATH}", allow_module_level=True)
    schemas: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))["components"]["schemas"]
    return schemas

"""Wait for a condition with a deadline instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    timeout: float = 10.0,
    describe: Callable[[], Awaitable[str]] | None = None,
) -> T:
    """Return the first truthy result of `probe`, polling until `timeout` seconds have passed.

    On failure the message gives the last result and, from `describe`, what else the test saw (for example
    what was quarantined instead of stored).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            seen = f"; {await describe()}" if describe is not None else ""
            msg = f"condition not met within {timeout} s (last result: {result!r}{seen})"
            raise AssertionError(msg)
        await asyncio.sleep(0.02)

"""Long CPU-bound loops on the event loop let the other tasks run now and then.

A loop that converts or folds thousands of items without an await holds the event loop for tens of
milliseconds: webhooks wait for their answers, and a COPY being fed stalls, PostgreSQL waiting for rows
(the file import runs faster when both its parsing and its copying give way now and then).
"""

from __future__ import annotations

import asyncio


async def give_way(count: int, every: int) -> None:
    """Let the other tasks run at each `every`-th item of a loop that counts its items from 1."""
    if count % every == 0:
        await asyncio.sleep(0)

"""Requests waiting for their writes (`?minPosition=`) share one reading of the checkpoints at a time."""

from __future__ import annotations

import asyncio

from tracker.store.checkpoint_watch import CheckpointWatch


class Checkpoints:
    """Where the read models are: moves on by `step` at every reading, and counts the readings."""

    def __init__(self, step: int) -> None:
        self.position, self.step, self.readings = 0, step, 0

    async def reached(self) -> int:
        self.readings += 1
        await asyncio.sleep(0.005)  # a round trip
        self.position += self.step
        return self.position


async def test_many_waiters_share_each_reading() -> None:
    checkpoints = Checkpoints(step=1)
    watch = CheckpointWatch(checkpoints.reached, interval=0.001)

    reached = await asyncio.gather(*(watch.wait_for(10, max_wait=5) for _ in range(200)))

    assert all(position >= 10 for position in reached)
    assert checkpoints.readings < 30  # not 200 waiters x 10 readings


async def test_a_waiter_gives_up_at_its_deadline_with_the_last_position_read() -> None:
    checkpoints = Checkpoints(step=0)  # a read model that does not move
    watch = CheckpointWatch(checkpoints.reached, interval=0.001)

    assert await watch.wait_for(5, max_wait=0.05) == 0


async def test_one_waiter_timing_out_does_not_cancel_the_reading_the_others_wait_on() -> None:
    checkpoints = Checkpoints(step=1)
    watch = CheckpointWatch(checkpoints.reached, interval=0.001)

    hurried, patient = await asyncio.gather(watch.wait_for(1_000, max_wait=0.001), watch.wait_for(3, max_wait=5))

    assert hurried < 1_000
    assert patient >= 3

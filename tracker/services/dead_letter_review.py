"""Reviewing dead letters: the events a read model failed on, retried or skipped by its runner."""

from __future__ import annotations

from collections.abc import Callable

from tracker.projecting.dead_letters import DeadLetter, DeadLetters
from tracker.store.views import Page


class DeadLetterReview:
    def __init__(self, dead_letters: DeadLetters, wake_runners: Callable[[], None]) -> None:
        self._dead_letters = dead_letters
        self._wake_runners = wake_runners

    async def page(
        self, status: str | None = None, projection: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        return await self._dead_letters.page(status, projection, limit, cursor)

    async def get(self, letter_id: int) -> DeadLetter | None:
        return await self._dead_letters.get(letter_id)

    async def retry(self, letter_id: int) -> DeadLetter:
        """Ask the read model's runner to fold the event again now; LookupError, DeadLetterSettledError."""
        letter = await self._dead_letters.retry(letter_id)
        self._wake_runners()
        return letter

    async def skip(self, letter_id: int) -> DeadLetter:
        """Ask the read model's runner to go on past the event; LookupError, DeadLetterSettledError."""
        letter = await self._dead_letters.skip(letter_id)
        self._wake_runners()
        return letter

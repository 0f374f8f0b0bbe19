"""Kinesis over aiobotocore: one client as configured, and calls that back off while Kinesis throttles or
cannot be reached, as every consumer of `tracker.ingest.kinesis` makes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError  # type: ignore[import-untyped]
from botocore.utils import parse_timestamp  # type: ignore[import-untyped]

from tracker.ingest.kinesis_shards import RETRYABLE_ERRORS, backoff
from tracker.settings import Settings

log = logging.getLogger(__name__)

TRANSPORT_ERRORS = (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError)
"""The endpoint could not be reached or answered garbage: try again after a back-off."""


class KinesisConfigError(Exception):
    """The Kinesis client cannot be set up as configured."""


@contextlib.asynccontextmanager
async def kinesis_client(settings: Settings) -> AsyncIterator[Any]:
    """An aiobotocore Kinesis client for the consumers of all the configured streams, closed on exit."""
    config = AioConfig(
        retries={"total_max_attempts": 1},  # our own back-off, which knows throttling from failure
        max_pool_connections=max(10, 4 * len(settings.kinesis_streams)),
        connect_timeout=10,
        read_timeout=30,
    )
    # Region, endpoint and credentials: the explicit settings, else botocore's standard lookup
    # (AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, profiles...).
    session = get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    creating = session.create_client(
        "kinesis", region_name=settings.aws_region, endpoint_url=settings.kinesis_endpoint_url, config=config
    )
    async with contextlib.AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(creating)
        except NoRegionError:
            msg = "TRACKER_KINESIS_STREAMS is set but no AWS region is: set AWS_REGION (or AWS_DEFAULT_REGION)"
            raise KinesisConfigError(msg) from None
        yield client


class StreamClient:
    """The calls one stream's consumer makes."""

    def __init__(self, client: Any, stream: str) -> None:
        self._client = client
        self.stream = stream

    async def request(self, operation: str, attempts: int | None = None, **params: Any) -> dict[str, Any]:
        """Call Kinesis, backing off while it throttles or cannot be reached (at most `attempts` times, if
        given); other errors are raised."""
        attempt = 0
        while True:
            try:
                response: dict[str, Any] = await getattr(self._client, operation)(**params)
            except ClientError as exc:
                if error_code(exc) not in RETRYABLE_ERRORS:
                    raise
                problem: BaseException = exc
            except TRANSPORT_ERRORS as exc:
                problem = exc
            else:
                return response
            attempt += 1
            if attempts is not None and attempt >= attempts:
                raise problem
            delay = backoff(attempt, random.random())
            if attempt in (1, 10) or attempt % 100 == 0:
                log.warning("Kinesis %s on %s: %s; try %d in %.1f s", operation, self.stream, describe(problem),
                            attempt + 1, delay)  # fmt: skip
            await asyncio.sleep(delay)


def error_code(exc: ClientError) -> str:
    error: Mapping[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", ""))


def describe(exc: BaseException) -> str:
    """The error's code and message (ClientError's str() repeats the operation and the code)."""
    if isinstance(exc, ClientError):
        return f"{error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"


def _timestamp(value: Any) -> datetime:
    """Kinesis' JSON gives epoch seconds: read them as UTC. botocore's default parser converts each one
    to local time through dateutil, a sixth of the consumer's time at 10,000 records a page."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed: datetime = parse_timestamp(value)
    return parsed

"""A real Kinesis API on loopback for the consumer's tests: moto in server mode, and a proxy that injects faults.

The tracker reaches them through aiobotocore over HTTP, as it would reach AWS; nothing in botocore is
mocked. moto serves one account, so each test uses streams of its own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
from aiobotocore.session import get_session
from aiohttp import web
from moto.server import ThreadedMotoServer

from .ports import free_port

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""Fake: moto accepts any; set for each test that needs them, never for the whole run."""
PORTS = range(18100, 18150)
"""This helper's share of the ports given to the Kinesis work (the benchmark takes 18150-18199)."""


class MotoKinesis:
    """moto's ThreadedMotoServer on 127.0.0.1, one for the session."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        self.port = free_port(PORTS)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @contextlib.asynccontextmanager
    async def client(self, endpoint: str | None = None) -> AsyncIterator[Any]:
        """An aiobotocore client for the test's own calls (create streams, put records), credentials given."""
        async with get_session().create_client(
            "kinesis",
            region_name=REGION,
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        ) as client:
            yield client


class FaultyKinesis:
    """A proxy before moto that answers chosen GetRecords calls with an error, and keeps what it saw.

    `faults` is consumed in order, one per GetRecords: an error code (answered as Kinesis answers it,
    HTTP 400 with that `__type`) or None (passed through).
    """

    def __init__(self, upstream: str, faults: Iterator[str | None]) -> None:
        self._upstream = upstream
        self._faults = faults
        self.calls: list[tuple[float, str, dict[str, Any]]] = []
        """(monotonic time, operation, request body) for every call, in order."""
        self.port = free_port(PORTS)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FaultyKinesis:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        self.calls.append((time.monotonic(), operation, orjson.loads(body) if body else {}))
        if operation == "GetRecords":
            fault = next(self._faults, None)
            if fault is not None:
                error = {"__type": fault, "message": f"injected by the test: {fault}"}
                return web.Response(status=400, body=orjson.dumps(error), content_type="application/x-amz-json-1.1")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}}
        async with self._session.post(self._upstream + request.path_qs, data=body, headers=headers) as answer:
            payload = await answer.read()
            return web.Response(
                status=answer.status, body=payload, content_type=answer.content_type or "application/x-amz-json-1.1"
            )

"""`tracker serve` processes that a drill can kill with SIGKILL, start again on the same port, watch and stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]  # (types-psutil is not a dependency)

from bench import profile
from bench.children import Child, port_in, spawn, wait_listening
from bench.harness import OnLoopback, serve_command

ORPHAN_GRACE = 30.0
"""Seconds a child of `tracker serve` (its projection process) has to exit once the serve is killed or stopped."""


class DrillError(AssertionError):
    """A drill could not do what it set out to do (a server that never came back, say)."""


@dataclass(frozen=True, slots=True)
class Ports:
    """Where drill servers may listen: a range agreed with whoever else uses this machine."""

    first: int = 18500
    last: int = 18599

    @classmethod
    def parse(cls, text: str) -> Ports:
        first, _, last = text.partition("-")
        return cls(int(first), int(last or first))

    def take(self, taken: set[int]) -> int:
        """A port of the range that is free now and not in `taken` (which it joins)."""
        port = port_in(range(self.first, self.last + 1), taken)
        taken.add(port)
        return port


class ServeProcess(OnLoopback):
    """One `tracker serve` on a fixed loopback port; `kill` is a crash, `start` after it a restart."""

    def __init__(self, name: str, port: int, env: Mapping[str, str], log_dir: Path) -> None:
        """`env`: the whole environment of the process (`bench.harness.tracker_env`)."""
        self.name = name
        self.port = port
        self._env = env
        self._log_dir = log_dir
        self._stack: contextlib.AsyncExitStack | None = None
        self.child: Child | None = None
        self.starts = 0
        self.peak_rss = 0
        """Highest resident set size seen by `sample_rss`, in bytes (the serving process, not its child)."""
        self.orphans: list[str] = []
        """A line for each child that outlived its serve by `ORPHAN_GRACE` (then killed): a failed check."""

    @property
    def pid(self) -> int:
        if self.child is None:
            msg = f"{self.name} is not running"
            raise DrillError(msg)
        return self.child.pid

    async def start(self, timeout: float = 90) -> None:
        self.starts += 1
        stack = contextlib.AsyncExitStack()
        self.child = await stack.enter_async_context(
            spawn(f"{self.name}-{self.starts}", serve_command(self.port), self._env, self._log_dir)
        )
        self._stack = stack
        try:
            await wait_listening(self.child, self.port, timeout)
        except BaseException:
            await self.stop()
            raise

    async def kill(self) -> float:
        """SIGKILL the serving process alone, as the OOM killer would; return how long its projection
        child took to exit after it (past `ORPHAN_GRACE` it is killed and kept in `orphans`)."""
        children = self._children()
        os.kill(self.pid, signal.SIGKILL)
        assert self.child is not None
        await self.child.process.wait()
        killed = time.monotonic()
        await self._leave()
        await self._outlived_by(children, "its SIGKILL")
        return time.monotonic() - killed

    async def stop(self) -> None:
        """SIGTERM (a clean stop; SIGKILL after 5 s), nothing if it is not running; a child of it that then
        outlives `ORPHAN_GRACE` is killed and kept in `orphans`."""
        children = self._children() if self.alive() else []
        await self._leave()
        await self._outlived_by(children, "its stop")

    async def _leave(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self.child = None

    def _children(self) -> list[psutil.Process]:
        try:
            return list(psutil.Process(self.pid).children(recursive=True))
        except psutil.Error:
            return []

    async def _outlived_by(self, children: list[psutil.Process], event: str) -> None:
        """Wait for `children` to exit; past `ORPHAN_GRACE`, keep a py-spy dump of each, kill it, note it."""
        deadline = time.monotonic() + ORPHAN_GRACE
        while alive := [child for child in children if _alive(child)]:
            if time.monotonic() > deadline:
                for child in alive:
                    dump = self._log_dir / f"{self.name}-orphan-{child.pid}.txt"
                    await _py_spy_dump(child.pid, dump)
                    with contextlib.suppress(psutil.Error):
                        child.kill()
                    self.orphans.append(
                        f"{self.name}: child {child.pid} outlived {event} by {ORPHAN_GRACE:.0f} s (stacks: {dump})"
                    )
                return
            await asyncio.sleep(0.05)

    def alive(self) -> bool:
        return self.child is not None and self.child.process.returncode is None

    def sample_rss(self) -> int:
        """Read the serving process's RSS now, keep the peak, and return the sample (0 if not running)."""
        if not self.alive():
            return 0
        try:
            rss = int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def tail(self) -> str:
        return self.child.tail() if self.child is not None else ""


async def _py_spy_dump(pid: int, out: Path) -> None:
    """The Python stacks of a stuck process, for the report (nothing if py-spy is not installed)."""
    try:
        py_spy = profile.py_spy()
    except profile.ProfilerMissingError:
        return
    with out.open("wb") as file:
        process = await asyncio.create_subprocess_exec(
            py_spy, "dump", "--pid", str(pid), stdout=file, stderr=asyncio.subprocess.STDOUT
        )
        await process.wait()


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


async def status(session: aiohttp.ClientSession, server: ServeProcess) -> dict[str, Any]:
    async with session.get(f"{server.base}/v1/status") as response:
        response.raise_for_status()
        doc: dict[str, Any] = await response.json()
        return doc


async def wait_caught_up(session: aiohttp.ClientSession, server: ServeProcess, timeout: float) -> dict[str, Any]:
    """Wait until every read model of the served tracker has folded the whole log; return its status."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            last = await status(session, server)
            if last["projections"] and all(p["lag"] == 0 for p in last["projections"]):
                return last
        await asyncio.sleep(0.2)
    lags = {p["name"]: p["lag"] for p in last.get("projections", [])}
    msg = f"{server.name}: read models still behind the log after {timeout:.0f} s: {lags}"
    raise DrillError(msg)


async def wait_following(session: aiohttp.ClientSession, server: ServeProcess, timeout: float) -> None:
    """Wait until a runner of every read model has beaten: load before that would meet a projection process
    still starting, not the running one a drill means to test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            projections = (await status(session, server))["projections"]
            if projections and all(p["heartbeatAgeSeconds"] is not None for p in projections):
                return
        await asyncio.sleep(0.2)
    msg = f"{server.name}: no read model runner beat within {timeout:.0f} s:\n{server.tail()}"
    raise DrillError(msg)

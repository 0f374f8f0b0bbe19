"""Optional sampling profiles (py-spy) of the tracker under benchmark load, and their top frames.

A profiled run pays for the sampler on the same two cores, so its figures read low: profile to
find where the time goes, and take the figures from a run without `--profile`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

RATE = 200
"""Samples per second; py-spy reads the target's memory without pausing it (--nonblocking)."""

_LINE = re.compile(r" \(([^()]*):\d+\)$")


class ProfilerMissingError(RuntimeError):
    """py-spy is not installed beside this Python."""


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        msg = "--profile needs py-spy: pip install py-spy"
        raise ProfilerMissingError(msg)
    return found


def samples_path(profile_dir: Path | None, name: str) -> Path | None:
    """Where a profiled run's raw samples go (`--profile DIR`), None when the run is not profiled."""
    return None if profile_dir is None else profile_dir / f"{name}.txt"


def record_command(out: Path) -> list[str]:
    """The prefix that runs a command under py-spy: `[*record_command(out), "--", *argv]`."""
    return [py_spy(), "record", "--rate", str(RATE), "--nonblocking", "--format", "raw", "--output", str(out)]


def recorded(argv: list[str], out: Path | None) -> list[str]:
    """`argv` under py-spy, sampled into `out`; `argv` itself when `out` is None."""
    return argv if out is None else [*record_command(out), "--", *argv]


def summarise(out: Path | None) -> None:
    """Write the top frames of the samples in `out` beside them (`*.top.txt`); nothing when `out` is None."""
    if out is not None:
        out.with_suffix(".top.txt").write_text(top_frames(out))


@contextlib.asynccontextmanager
async def attached(pid: int, out: Path | None, log: Path) -> AsyncIterator[None]:
    """Sample process `pid` into `out` for the duration of the block, then summarise the samples; nothing
    when `out` is None. SIGINT makes py-spy write `out`."""
    if out is None:
        yield
        return
    with log.open("wb") as sink:
        spy = await asyncio.create_subprocess_exec(
            *record_command(out),
            "--pid",
            str(pid),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield
    finally:
        if spy.returncode is None:
            spy.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(spy.wait(), 30)
            except TimeoutError:
                spy.kill()
                await spy.wait()
    summarise(out)


def top_frames(raw: Path, count: int = 25) -> str:
    """Summarise py-spy's collapsed stacks: functions by own time, then by time including callees."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        weight = int(samples)
        frames = [_LINE.sub(r" (\1)", frame) for frame in stack.split(";")]
        total += weight
        own[frames[-1]] += weight
        for frame in set(frames):
            inclusive[frame] += weight
    if not total:
        return f"{raw}: no samples\n"
    out = [f"{raw.name}: {total} samples at {RATE}/s (active time only)", "", "own time:"]
    out += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(count)]
    out += ["", "including callees:"]
    out += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(count)]
    return "\n".join(out) + "\n"

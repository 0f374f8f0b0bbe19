"""The docs' examples run: every ```sh and ```python block of README.md and docs/*.md, in page order, but a
block after `<!-- skip: next -->` (Sybil's skip markers; other languages, ```console or ```json say, never run).

Sybil finds the blocks and applies the skip markers; each block then runs in a process of its own, so its
event loop, servers and exit code stay its own: a ```sh block with `bash -euo pipefail`, a ```python block
with this environment's Python. Both talk to one tracker this module starts on a free loopback port (no
secret, no token): `localhost:8080` and `127.0.0.1:8080` in a block are rewritten to it. Both see
TRACKER_DATABASE_URL naming the test database, and this environment's bin/ first on PATH (`tracker`). A
block's line numbers in its errors are the page's.

A marker may skip a block on a condition, which may use `shutil`:
`<!-- skip: next if(shutil.which("promtool") is None, "promtool is not installed") -->`; the block is then
reported skipped, with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import unittest
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sybil import Document, Example
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from tracker import Tracker
from tracker.settings import Settings

from .conftest import empty_tables

ROOT = Path(__file__).resolve().parent.parent
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
LANGUAGES = ("sh", "python")
BLOCK_TIMEOUT = 60.0
"""Seconds a block may run; then it and every process it started are killed."""
DEFAULT_ADDRESS = re.compile(r"\b(?:localhost|127\.0\.0\.1):8080\b")
NOT_LINKED = frozenset({".git", ".tracker", "site"})
"""Top-level entries a block's working directory does not link to."""


@dataclass(frozen=True, slots=True)
class Block:
    page: str
    """The page's path from the repository's top."""
    line: int
    """The line of the block's opening fence."""
    language: str
    source: str
    skipped: str | None = None
    """Why a conditional skip marker skips it here; None: it runs."""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The page's blocks in order: Sybil evaluates each example, and its skip markers keep the examples they
    skip from reaching `found`, or raise SkipTest for those a condition skips."""
    blocks: list[Block] = []

    def block(example: Example, skipped: str | None = None) -> Block:
        language = str(example.region.lexemes["arguments"])
        return Block(page.relative_to(ROOT).as_posix(), example.line, language, str(example.parsed), skipped)

    def found(example: Example) -> None:
        blocks.append(block(example))

    parsers = [CodeBlockParser(language, found) for language in LANGUAGES]
    document = Document.parse(str(page), *parsers, SkipParser())
    document.namespace["shutil"] = shutil
    for example in document.examples():
        try:
            example.evaluate()
        except unittest.SkipTest as skip:
            blocks.append(block(example, str(skip)))
    return blocks


BLOCKS = [block for page in PAGES for block in blocks_of(page)]


@dataclass(frozen=True, slots=True)
class Sandbox:
    """Where the blocks run: the tracker's port, their environment and working directory."""

    port: int
    environment: dict[str, str]
    directory: Path


@pytest.fixture(scope="module")
async def sandbox(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """One tracker for the module's blocks, on the emptied test database; a working directory whose entries
    link to the repository's, so that what a block writes stays out of the repository's top."""
    directory = tmp_path_factory.mktemp("docs-examples")
    for entry in ROOT.iterdir():
        if entry.name not in NOT_LINKED:
            (directory / entry.name).symlink_to(entry)
    await empty_tables(database_url)
    settings = Settings(database_url=database_url, data_dir=directory / ".tracker")  # no secret, no token
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TRACKER_")}
    environment |= {
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_DATA_DIR": str(directory / ".tracker"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", os.defpath)]),
    }
    async with Tracker(settings) as tracker:
        server = TestServer(tracker.web_app(), host="127.0.0.1")
        await server.start_server()
        try:
            assert server.port is not None
            yield Sandbox(server.port, environment, directory)
        finally:
            await server.close()


SAY_FAILED_LINE = """trap 'echo "$0: line $LINENO: exited $? at: $BASH_COMMAND" >&2' ERR"""


def command(block: Block, port: int) -> list[str]:
    """The block as a command; the lines before its source make the line numbers in its errors the page's."""
    source = "\n" * block.line + DEFAULT_ADDRESS.sub(f"127.0.0.1:{port}", block.source)
    if block.language == "sh":
        return ["bash", "-euo", "pipefail", "-c", SAY_FAILED_LINE + source, block.page]
    return [sys.executable, "-c", source]


async def run(block: Block, sandbox: Sandbox) -> tuple[int | None, str]:
    """The block's exit code (None: it timed out) and what it printed; then whatever it started is killed."""
    process = await asyncio.create_subprocess_exec(
        *command(block, sandbox.port),
        cwd=sandbox.directory,
        env=sandbox.environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group: a timeout kills what it started too
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), BLOCK_TIMEOUT)
    except TimeoutError:
        kill_group(process.pid)
        output, _ = await process.communicate()
        return None, output.decode(errors="replace")
    kill_group(process.pid)  # what it left running in the background
    return process.returncode, output.decode(errors="replace")


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def test_the_pages_have_blocks_to_run() -> None:
    """Guards the collection: a wrong path or parser would make the test below pass on nothing."""
    assert {block.language for block in BLOCKS if not block.skipped} == set(LANGUAGES)


@pytest.mark.parametrize(
    "block",
    [pytest.param(block, id=block.where, marks=[pytest.mark.skip(reason=block.skipped)] if block.skipped else [])
     for block in BLOCKS],
)  # fmt: skip
async def test_the_docs_example_runs(block: Block, sandbox: Sandbox) -> None:
    code, output = await run(block, sandbox)
    if code != 0:
        how = f"ran past {BLOCK_TIMEOUT:.0f} s and was killed" if code is None else f"exited {code}"
        pytest.fail(f"{block.where}: this ```{block.language} block {how}; it printed:\n{output}", pytrace=False)

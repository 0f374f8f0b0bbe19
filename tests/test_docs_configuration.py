"""docs/configuration.md lists every environment variable the service reads, and no other TRACKER_ one.

Pure: it reads source files and the page, no database. The service's code is `tracker/` and `projections/`
(the replay workers read the database URL from their environment).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"
CODE = (ROOT / "tracker", ROOT / "projections")

TRACKER_NAME = re.compile(r"\bTRACKER_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")
AWS_NAME = re.compile(r"\bAWS_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")
TABLE_ROW = re.compile(r"^\|(?P<first>[^|]*)\|")


def names_in_code(pattern: re.Pattern[str]) -> dict[str, list[str]]:
    """Each name the code mentions, with the files that mention it."""
    found: dict[str, list[str]] = {}
    for folder in CODE:
        for path in sorted(folder.rglob("*.py")):
            for name in set(pattern.findall(path.read_text(encoding="utf-8"))):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def listed_on_page(pattern: re.Pattern[str]) -> set[str]:
    """The names in the first column of the page's table rows: the variables it documents."""
    listed: set[str] = set()
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if match := TABLE_ROW.match(line):
            listed.update(pattern.findall(match.group("first")))
    return listed


def mentioned_on_page(pattern: re.Pattern[str]) -> set[str]:
    return set(pattern.findall(PAGE.read_text(encoding="utf-8")))


def test_the_code_reads_some_variables() -> None:
    """Guards the scan itself: a broken pattern or path would make the checks below pass on nothing."""
    assert "TRACKER_DATABASE_URL" in names_in_code(TRACKER_NAME)
    assert "TRACKER_DATABASE_URL" in listed_on_page(TRACKER_NAME)


def test_every_variable_the_code_reads_is_on_the_page() -> None:
    listed = listed_on_page(TRACKER_NAME)
    missing = {name: files for name, files in names_in_code(TRACKER_NAME).items() if name not in listed}
    assert not missing, "docs/configuration.md lacks a table row for: " + "; ".join(
        f"{name} (read in {', '.join(files)})" for name, files in sorted(missing.items())
    )


def test_the_page_lists_no_variable_the_code_no_longer_reads() -> None:
    stale = sorted(mentioned_on_page(TRACKER_NAME) - names_in_code(TRACKER_NAME).keys())
    assert not stale, "docs/configuration.md names variables tracker/ and projections/ do not read: " + ", ".join(stale)


def test_every_aws_variable_the_code_names_is_on_the_page() -> None:
    """The AWS variables are read by botocore, so the page may list more than the code names, never fewer."""
    missing = sorted(names_in_code(AWS_NAME).keys() - listed_on_page(AWS_NAME))
    assert not missing, "docs/configuration.md lacks a table row for: " + ", ".join(missing)

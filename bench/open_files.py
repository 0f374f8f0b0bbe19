"""The soft limit of open files, raised for a load of many sockets (the children of this process inherit it)."""

from __future__ import annotations

import resource


def raise_open_files_limit(needed: int) -> int | None:
    """Raise the soft limit to `needed` if it is lower; the hard limit when even that is too low, else None."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return None
    if hard != resource.RLIM_INFINITY and hard < needed:
        return hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return None

"""Reliability drills: crashes, database loss, two processes and a flood, under signed load.

`python -m tests.drills [--quick] [--json FILE]` runs them and prints one table; `tests/test_drills.py`
runs each with small sizes. Every drill ends with the same audit (`tests.drills.audit`).
"""

"""The speed benchmark: webhook throughput against two baselines, and rebuild rate.

`python -m bench [webhook|rebuild|all] [--quick] [--json FILE]` prints one table. Servers, the load
generator and the timed replays each run as their own process, so no measurement shares a CPU budget
with the code that measures it.
"""

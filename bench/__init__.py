"""The speed benchmark: each scenario's measure of the tracker beside baselines measured in the same run.

`python -m bench [SCENARIO ...|all] [--quick] [--json FILE]` prints one table. Servers, the load generator
and the timed replays each run as their own process (`bench.harness` starts them), so no measurement
shares a CPU budget with the code that measures it.
"""

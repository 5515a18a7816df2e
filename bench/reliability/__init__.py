"""channelkit's reliability suite: proof that nothing is lost or doubled (issue 7).

    .venv/bin/python -m bench.reliability --size small|full [--only NAME ...]

Each scenario is a module ``bench/reliability/<name>.py`` with
``run(size, *, progress=None) -> dict`` (keys: scenario, sent, accepted,
handler_calls, lost, doubled, status_5xx, ok, notes, seconds). The runner
prints a table, writes ``bench/results/reliability-<size>.md`` and ``.json``,
and exits non-zero when any scenario fails.
"""

#: Scenario modules, in running order (imported lazily by name).
SCENARIOS = ("load_duplicates", "outage", "handler_failures", "fuzz", "renewal_chaos", "lifecycle", "feeds")

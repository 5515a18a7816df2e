"""Renewal chaos at its small size: faults and crashes through renewal cycles (real emulator).

``bench/reliability/renewal_chaos.py`` (``python -m bench.reliability --size small
--only renewal_chaos`` prints the same as a table): subscriptions renewed
through several cycles while Google fails watch/stop calls and renewal runs
die between steps; changes keep arriving at the webhook. Each figure below
fails if the kit leaves a gap, a second live channel, an orphan at Google, or
hands one notification to the app twice.
"""

from __future__ import annotations


def test_renewal_chaos_ends_with_one_live_channel_per_subscription_and_every_change_delivered(run_scenario):
    result = run_scenario("renewal_chaos")
    summary = f"{result['scenario']}: {result['notes']}"
    # The chaos really happened: runs died mid-way, Google refused calls.
    assert result["crashed_runs"] > 0, summary
    assert any(status != "200" for status in result["details"]["watch_statuses"]), summary
    # Every change reached the app, none twice.
    # Half the resources change mid-cycle, all of them at its end.
    subs, cycles = result["subscriptions"], result["cycles"]
    assert result["sent"] == cycles * (subs + max(1, subs // 2)), summary
    assert result["lost"] == 0, summary
    assert result["doubled"] == 0, summary
    assert result["handler_calls"] >= result["sent"], summary
    # The end state: one active channel per subscription, Google's live set equals ours.
    assert result["without_one_active"] == 0, summary
    assert result["pending"] == 0, summary
    assert result["orphans"] == 0 and result["not_live"] == 0, summary
    assert result["active_channels"] == result["subscriptions"] == result["live_channels"], summary
    assert result["status_5xx"] == 0, summary
    assert result["ok"], summary

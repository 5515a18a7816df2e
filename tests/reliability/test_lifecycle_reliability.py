"""Subscription lifecycle at its small size: lasting refusals among transient faults (real emulator).

``bench/reliability/lifecycle.py`` (``python -m bench.reliability --size small
--only lifecycle`` prints the same as a table; ``--size full`` is the issue's
500 subscriptions x 20 cycles, 21 minutes on two shared cores: too long for
this suite, its figures are in bench/results/reliability-full.md): subscriptions
renewed cycle after cycle while Google fails calls at random, and refuses
some of them for good (a revoked permission, revoked credentials, a resource
gone, an address refused) or for so long that their channel ends. Each figure
below fails if a subscription ends in the wrong state or with the wrong
reason, if its app hears of the transition other than exactly once, if a
refused resource is asked again and again, or if a change is lost or doubled.
"""

from __future__ import annotations

SUSPENDED_REASONS = ("CREDENTIALS_INVALID", "ENDPOINT_UNAUTHORIZED", "PERMISSION_DENIED", "RESOURCE_GONE")


def test_lifecycle_ends_each_subscription_in_its_state_with_one_event_and_no_retry_storm(run_scenario):
    result = run_scenario("lifecycle")
    summary = f"{result['scenario']}: {result['notes']}"
    details = result["details"]
    # Every kind of end happened, and the transient faults really were met.
    finals = result["final_states"]
    assert all(finals.get(f"suspended/{reason}") for reason in SUSPENDED_REASONS), summary
    assert finals.get("expired") and finals.get("active"), summary
    assert sum(finals.values()) == result["subscriptions"], summary
    assert details["health"] == {
        "active": finals["active"],
        "suspended": sum(n for k, n in finals.items() if k.startswith("suspended/")),
        "expired": finals["expired"],
    }, summary
    assert details["outcomes"]["skipped"] > 0, summary  # transient failures postponed renewals
    assert {"429", "503"} <= set(details["watch_statuses"]), summary
    # One event per final transition (and the expiring warnings the roles imply): checked per
    # subscription by the scenario; here the totals, and renewed exactly once per renewal.
    events = result["events"]
    assert events["suspended"] == details["health"]["suspended"], summary
    assert events["expired"] == finals["expired"], summary
    assert result["renewed_events"] == result["renewals"] > 0, summary
    assert result["outbox"] == 0, summary
    # ... though the app's handler failed on some of them, transitions included: delivered again.
    failed = result["failed_event_deliveries"]
    assert sum(n for event, n in failed.items() if event != "renewed") > 0, summary
    # No retry storm: a lasting refusal is asked once (3 times for a permission), then never.
    refused = result["refused_calls"]
    for role in ("revoked", "not_found", "gone", "endpoint"):
        assert refused[role] == [1, 1], summary
    assert refused["permission"] == [3, 3], summary
    assert max(refused["permission_blip"]) <= 2, summary
    assert result["late_watches"] == 0, summary
    # The end state: active ones served by exactly one channel, the others by none.
    assert result["orphans"] == result["not_live"] == result["pending"] == 0, summary
    assert details["wrong_state"] == details["wrong_events"] == details["wrong_channels"] == [], summary
    # Every change reached the app, none twice.
    assert result["lost"] == 0 and result["lost_gaps"] == 0, summary
    assert result["doubled"] == 0, summary
    assert result["handler_calls"] >= result["sent"] - result["unserved"], summary
    assert result["status_5xx"] == 0, summary
    assert result["problems"] == [], summary
    assert result["ok"], summary

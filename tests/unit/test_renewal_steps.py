"""The renewal state machine's shape, and the run's summary as the renew function answers it (pure)."""

import json

from channelkit.cli import format_renewal
from channelkit.renewal import NEXT_STEPS, RenewalOutcome, RenewalStep, RenewalSummary, Renewer


def test_every_step_has_its_method_and_its_following_steps():
    for step in RenewalStep:
        assert step in NEXT_STEPS, step
        if step is not RenewalStep.DONE:
            assert callable(getattr(Renewer, "_" + step.name.lower())), step


def test_every_step_is_reached_from_the_first_and_every_path_ends_done():
    reached, todo = set(), [RenewalStep.CHECK_SUBSCRIPTION]
    while todo:
        step = todo.pop()
        if step not in reached:
            reached.add(step)
            todo.extend(NEXT_STEPS[step])
    assert reached == set(RenewalStep)
    # No cycles: each step comes after all the steps that may lead to it.
    order = list(RenewalStep)
    for step, following in NEXT_STEPS.items():
        assert all(order.index(f) > order.index(step) for f in following), step
    assert NEXT_STEPS[RenewalStep.DONE] == ()


def test_new_before_old():
    """On every path, the old channel is retired only once a successor is live at Google:
    in the commit after the watch (or one write at a time after it), and stopped after that."""
    assert NEXT_STEPS[RenewalStep.WATCH] == (RenewalStep.RECORD_RENEWAL, RenewalStep.RELEASE_LEASE)
    retiring = [s for s, following in NEXT_STEPS.items() if RenewalStep.RECORD_RENEWAL in following]
    assert retiring == [RenewalStep.FIND_SUCCESSOR, RenewalStep.WATCH]  # found active, or watched
    assert NEXT_STEPS[RenewalStep.RECORD_RENEWAL] == (RenewalStep.NOTIFY_RENEWED, RenewalStep.RECORD_APART)
    leading_to_stop = [s for s, following in NEXT_STEPS.items() if RenewalStep.STOP_OLD in following]
    assert leading_to_stop == [RenewalStep.RECORD_APART, RenewalStep.NOTIFY_RENEWED]


def test_a_successor_is_stored_only_under_the_lease():
    """The pending successor is written in the lease's commit, or after the lease alone."""
    assert NEXT_STEPS[RenewalStep.CHECK_SUBSCRIPTION][:2] == (
        RenewalStep.CLAIM_AND_MAKE,
        RenewalStep.CLAIM_LEASE,
    )
    making = [s for s, following in NEXT_STEPS.items() if RenewalStep.MAKE_SUCCESSOR in following]
    assert making == [RenewalStep.FIND_SUCCESSOR]
    assert NEXT_STEPS[RenewalStep.CLAIM_LEASE] == (RenewalStep.FIND_SUCCESSOR, RenewalStep.DONE)


def summary():
    s = RenewalSummary(duration_ms=1234)
    s.add(RenewalOutcome.RENEWED, {"old": "a", "new": "b"})
    s.add(RenewalOutcome.FAILED, {"id": "c", "reason": "watched resource is gone: 404"})
    s.add(RenewalOutcome.SKIPPED, {"id": "d", "reason": "renewed by another run"})
    s.add(RenewalOutcome.STOPPED, "a")
    s.add(RenewalOutcome.DEFERRED, "e")
    s.add(RenewalOutcome.SUSPENDED, {"id": "f", "subscriptionId": "s", "reason": "PERMISSION_DENIED"})
    return s


def test_the_summary_json_keeps_its_public_keys_in_order():
    assert json.dumps(summary().to_json()) == json.dumps(
        {
            "renewed": 1,
            "failed": 1,
            "skipped": 1,
            "stopped": 1,
            "deferred": 1,
            "suspended": 1,
            "published": 0,
            "details": {
                "renewed": [{"old": "a", "new": "b"}],
                "failed": [{"id": "c", "reason": "watched resource is gone: 404"}],
                "skipped": [{"id": "d", "reason": "renewed by another run"}],
                "stopped": ["a"],
                "deferred": ["e"],
                "suspended": [{"id": "f", "subscriptionId": "s", "reason": "PERMISSION_DENIED"}],
                "published": [],
            },
            "durationMs": 1234,
        }
    )
    assert summary().renewed == [{"old": "a", "new": "b"}] and summary().stopped == ["a"]


def test_the_readable_summary_has_a_line_per_channel_then_the_counts():
    assert format_renewal(summary()).splitlines() == [
        "renewed  a -> b",
        "failed   c: watched resource is gone: 404",
        "suspended f: PERMISSION_DENIED",
        "skipped  d: renewed by another run",
        "deferred e (time budget reached; next run)",
        "1 renewed, 1 failed, 1 skipped, 1 stopped, 1 deferred, 1 suspended",
    ]


def test_the_readable_summary_counts_what_went_to_the_workers():
    s = summary()
    s.add(RenewalOutcome.PUBLISHED, "s1")
    s.add(RenewalOutcome.PUBLISHED, "s2")
    lines = format_renewal(s).splitlines()
    assert lines[-2] == "published 2 subscriptions to the renew workers (CHANNELKIT_RENEW_TOPIC)"
    assert s.to_json()["published"] == 2 and s.to_json()["details"]["published"] == ["s1", "s2"]

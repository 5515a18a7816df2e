"""Subscriptions through their lifecycle: Google's refusals, events, reactivate, on the emulator.

The simulator plays Google (``refuse``/``refuse_next`` answer each class of
refusal), the Firestore emulator stores, and the renewal runs on the
simulator's clock (the ``run`` / ``watch`` fixtures of this tier's conftest).
"""

from __future__ import annotations

import pytest

from channelkit.errors import AuthError, InvalidTransitionError
from channelkit.reactivate import reactivate
from channelkit.subscribe import stop
from channelkit.testing.simulator import Resource

HOUR = 3600
DAY = 24 * HOUR
DUE = {"renew_before": 3 * HOUR}


class Crash(BaseException):
    """A process dying mid-step: not an error any code path catches."""


def events(handler, state=None):
    """The lifecycle events the app's handler got, as (state, reason, channel id)."""
    found = [(n.state, n.reason, n.channel_id) for n, _ in handler.calls if n.message_number == 0]
    return [e for e in found if state is None or e[0] == state]


def watches(simulator, file_id):
    """The watch calls Google got for one Drive file."""
    resource = Resource.of("drive", "files", fileId=file_id)
    return [c for c in simulator.calls if c.operation == "drive.files.watch" and c.resource == resource]


@pytest.mark.parametrize(
    ("refusal", "reason", "runs"),
    [
        ("unauthorized", "CREDENTIALS_INVALID", 1),
        ("not_found", "RESOURCE_GONE", 1),
        ("gone", "RESOURCE_GONE", 1),
        ("webhook_unauthorized", "ENDPOINT_UNAUTHORIZED", 1),
        ("webhook_not_https", "ENDPOINT_UNAUTHORIZED", 1),
        ("permission", "PERMISSION_DENIED", 3),
    ],
)
def test_each_reason_is_reached_from_its_google_answer(
    store, simulator, watch, run, handler, refusal, reason, runs
):
    old = watch("F1", ttl=HOUR)
    simulator.refuse(refusal, {"fileId": "F1"})
    for _ in range(runs - 1):
        run(**DUE)
        assert store.get_subscription(old.subscription_id).state == "active"
    run(**DUE)
    subscription = store.get_subscription(old.subscription_id)
    assert (subscription.state, subscription.reason) == ("suspended", reason)
    assert subscription.detail and str(watches(simulator, "F1")[-1].status) in subscription.detail
    assert events(handler, "suspended") == [("suspended", reason, old.id)]
    assert not subscription.events  # delivered: the outbox is empty


@pytest.mark.parametrize("refusal", ["rate_limit", "too_many", "backend"])
def test_transient_answers_never_suspend(store, simulator, watch, run, handler, refusal):
    old = watch("F1", ttl=DAY)
    simulator.refuse(refusal, {"fileId": "F1"})
    for _ in range(6):
        run(renew_before=2 * DAY)
    subscription = store.get_subscription(old.subscription_id)
    assert (subscription.state, subscription.failures) == ("active", 0)
    assert subscription.last_failure_at is not None
    assert events(handler, "suspended") == []
    simulator.unrefuse(refusal)
    assert run(renew_before=2 * DAY).to_json()["renewed"] == 1
    assert store.get_subscription(old.subscription_id).last_failure_at is None


@pytest.mark.parametrize("refusal", ["unauthorized", "permission"])
def test_no_retry_storm_a_suspended_subscription_sees_no_watch_across_ten_runs(
    store, simulator, watch, run, refusal
):
    old = watch("F1", ttl=HOUR)
    simulator.refuse(refusal, {"fileId": "F1"})
    for _ in range(10):
        run(**DUE)
    refused = [c for c in watches(simulator, "F1") if c.status >= 400]
    expected = 1 if refusal == "unauthorized" else 3  # a revoked credential: one try, never again
    assert len(refused) == expected
    assert store.get_subscription(old.subscription_id).state == "suspended"
    assert store.get(old.id).held  # out of the due query: no claim, no read per run either
    assert old.id not in [c.id for c in store.due_for_renewal(2**62)]


def test_a_suspended_subscription_keeps_its_channel_serving_until_it_ends(store, simulator, watch, run, hook):
    old = watch("F1", ttl=HOUR)
    simulator.refuse("unauthorized", {"fileId": "F1"})
    run(**DUE)
    simulator.change("drive", "files", fileId="F1", state="update")
    simulator.wait_idle()
    assert [s for c, n, s in hook.statuses if c == old.id and n > 1] == [200]


def test_expiring_is_sent_once_per_channel_then_expired_when_it_ends(store, simulator, watch, run, handler):
    old = watch("F1", ttl=2 * HOUR)
    simulator.refuse("backend", {"fileId": "F1"})
    run(**DUE)  # 2 h left: due, failing, not within the hour's warning yet
    assert events(handler) == []
    simulator.clock.advance(70 * 60)
    run(**DUE)
    run(**DUE)
    assert events(handler) == [("expiring", None, old.id)]
    assert store.get_subscription(old.subscription_id).expiring_for == old.id
    simulator.clock.advance(HOUR)  # past its end, renewal still failing
    summary = run(**DUE)
    assert summary.failed[0]["id"] == old.id and "expired" in summary.failed[0]["reason"]
    subscription = store.get_subscription(old.subscription_id)
    assert subscription.state == "expired" and store.get(old.id).status == "failed"
    assert events(handler) == [("expiring", None, old.id), ("expired", None, old.id)]
    run(**DUE)
    assert len(events(handler)) == 2 and len(watches(simulator, "F1")) == 1 + 4


def test_renewed_is_recorded_on_the_subscription_and_delivered_once(store, simulator, watch, run, handler):
    old = watch("F1", ttl=HOUR)
    summary = run(**DUE)
    new_id = summary.renewed[0]["new"]
    subscription = store.get_subscription(old.subscription_id)
    assert (subscription.channel_id, subscription.events) == (new_id, [])
    assert events(handler) == [("renewed", None, new_id)]


def test_an_event_left_by_a_run_killed_after_the_transition_is_sent_by_the_next(
    store, simulator, watch, run, handler
):
    old = watch("F1", ttl=HOUR)
    simulator.refuse("unauthorized", {"fileId": "F1"})

    def dies(notification, channel):
        raise Crash

    with pytest.raises(Crash):
        run(dispatcher=dies, **DUE)
    subscription = store.get_subscription(old.subscription_id)
    assert subscription.state == "suspended" and [e["event"] for e in subscription.events] == ["suspended"]
    run(**DUE)  # too soon: the event may still belong to a live run (younger than the lease)
    assert events(handler) == []
    simulator.clock.advance(11 * 60)
    run(**DUE)
    run(**DUE)
    assert events(handler) == [("suspended", "CREDENTIALS_INVALID", old.id)]
    assert store.get_subscription(old.subscription_id).events == []
    assert len([c for c in watches(simulator, "F1") if c.status >= 400]) == 1


def test_a_handler_that_fails_gets_the_event_again_on_a_later_run(store, simulator, watch, run, handler):
    old = watch("F1", ttl=HOUR)
    simulator.refuse("not_found", {"fileId": "F1"})
    failing = []

    def fails(notification, channel):
        failing.append(notification.state)
        raise RuntimeError("app down")

    run(dispatcher=fails, **DUE)
    assert failing == ["suspended"]
    simulator.clock.advance(11 * 60)
    run(**DUE)
    assert events(handler) == [("suspended", "RESOURCE_GONE", old.id)]


def test_reactivate_from_suspended_watches_again_and_sends_reactivated(
    store, simulator, watch, run, handler, google
):
    old = watch("F1", ttl=HOUR)
    simulator.refuse("unauthorized", {"fileId": "F1"})
    run(**DUE)
    with pytest.raises(AuthError):
        reactivate(old.subscription_id, store=store, google=google, dispatcher=handler)
    assert store.get_subscription(old.subscription_id).state == "suspended"
    simulator.unrefuse()
    new = reactivate(old.subscription_id, store=store, google=google, dispatcher=handler)
    subscription = store.get_subscription(old.subscription_id)
    assert (subscription.state, subscription.reason, subscription.channel_id) == ("active", None, new.id)
    assert store.get(old.id).status == "stopped" and not simulator.channel(old.id).live
    assert {c.id for c in simulator.live_channels()} == {new.id}
    assert events(handler)[-1] == ("reactivated", None, new.id)
    assert new.token == old.token and new.method_params == old.method_params
    assert run(**DUE).to_json()["renewed"] == 1  # renewed like any active subscription again


def test_reactivate_from_expired_and_refused_for_an_active_one(store, simulator, watch, run, handler, google):
    old = watch("F1", ttl=HOUR)
    simulator.refuse("backend", {"fileId": "F1"})
    simulator.clock.advance(2 * HOUR)
    run(**DUE)
    assert store.get_subscription(old.subscription_id).state == "expired"
    simulator.unrefuse()
    new = reactivate(old.subscription_id, store=store, google=google, dispatcher=handler)
    assert store.get_subscription(old.subscription_id).state == "active"
    assert {c.id for c in simulator.live_channels()} == {new.id}
    with pytest.raises(InvalidTransitionError):
        reactivate(old.subscription_id, store=store, google=google, dispatcher=handler)


def test_stop_records_stopped_and_sends_it_once(store, simulator, watch, handler, google):
    old = watch("F1", ttl=HOUR)
    stop(old.id, store=store, google=google, dispatcher=handler)
    stop(old.id, store=store, google=google, dispatcher=handler)
    assert store.get_subscription(old.subscription_id).state == "stopped"
    assert events(handler) == [("stopped", None, old.id)]

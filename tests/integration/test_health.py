"""``check_health`` on a store seeded with subscriptions in every state, on every backend."""

from __future__ import annotations

import datetime
import uuid

from channelkit.channel import Channel
from channelkit.health import check_health
from channelkit.subscription import Reason, State, Subscription
from support.store_backends import store  # noqa: F401 - the fixture, over every backend

UTC = datetime.UTC
NOW = 1_900_000_000_000  # ms
MINUTE = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR

#: Seconds, as the settings give them.
EXPIRING_WARN = 2 * 3600
QUIET_AFTER = 24 * 3600


def subscription(store, sid: str, state: State = State.ACTIVE, **fields) -> Subscription:
    values: dict = dict(
        id=sid,
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": sid},
        channel_id=f"{sid}-chan",
        state=state.value,
        since=NOW - HOUR,
        created_at=NOW - 10 * DAY,
    )
    values.update(fields)
    sub = Subscription(**values)
    store.create_subscription(sub)
    return sub


def channel(store, sid: str, expiration: int, **fields) -> Channel:
    c = Channel(
        "web_hook",
        f"{sid}-chan-{uuid.uuid4().hex[:4]}",
        "tok",
        "https://hook.example/webhook",
        expiration=expiration,
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": sid},
        subscription_id=sid,
        status="active",
        created_at=datetime.datetime.fromtimestamp((NOW - DAY) / 1000, tz=UTC),
        **fields,
    )
    store.create(c)
    return c


def check(store, *, renew_before: float = 3600):
    return check_health(
        store, now_ms=NOW, expiring_warn=EXPIRING_WARN, quiet_after=QUIET_AFTER, renew_before=renew_before
    )


def seed_every_state(store) -> dict[str, Channel]:
    """Two active (one heard, one quiet), two suspended, one expired, one stopped; their channels."""
    subscription(store, "heard", last_notification_at=NOW - MINUTE)
    subscription(store, "quiet", since=NOW - 3 * DAY)
    subscription(
        store, "denied", State.SUSPENDED, reason=Reason.PERMISSION_DENIED.value, detail="AuthError: HTTP 403"
    )
    subscription(store, "gone", State.SUSPENDED, reason=Reason.RESOURCE_GONE.value, detail="HTTP 404")
    subscription(store, "lapsed", State.EXPIRED, detail="expired, renewal failed")
    subscription(store, "ended", State.STOPPED, since=NOW - 5 * DAY)
    return {
        "ok": channel(store, "heard", NOW + 3 * DAY),
        "due": channel(store, "quiet", NOW + 30 * MINUTE),  # within the warning window, no error
        "failing": channel(store, "heard", NOW + 90 * MINUTE, last_error="TransientApiError: HTTP 503"),
        "later": channel(store, "quiet", NOW + 100 * MINUTE),  # in the window, its renewal still ahead
        "held": channel(store, "denied", NOW + 20 * MINUTE, held=True, last_error="AuthError: HTTP 403"),
    }


def test_counts_problems_and_quiet_subscriptions(store):
    channels = seed_every_state(store)

    report = check(store)

    assert report.counts == {"active": 2, "suspended": 2, "expired": 1, "stopped": 1}
    problems = {s.id: (s.state, s.reason, s.detail) for s in report.problems}
    assert problems == {
        "denied": ("suspended", "PERMISSION_DENIED", "AuthError: HTTP 403"),
        "gone": ("suspended", "RESOURCE_GONE", "HTTP 404"),
        "lapsed": ("expired", None, "expired, renewal failed"),
    }
    assert [s.id for s in report.quiet] == ["quiet"]
    assert report.soonest is not None and report.soonest.id == channels["due"].id  # held ones are not renewed
    assert report.healthy is False
    json_report = report.to_json()
    assert json_report["counts"] == report.counts and json_report["healthy"] is False
    assert {p["id"]: p["reason"] for p in json_report["problems"]} == {
        "denied": "PERMISSION_DENIED",
        "gone": "RESOURCE_GONE",
        "lapsed": None,
    }
    fields = report.log_fields()
    assert (fields["suspended"], fields["expired"], fields["quiet"], fields["healthy"]) == (2, 1, 1, False)


def test_expiring_channels_are_flagged_only_when_their_renewal_is_failing(store):
    # With renew_before 1 h: "due" (ends in 30 min) came due 30 min ago; "failing" (ends in
    # 90 min) carries a run's error; "later" (ends in 100 min) comes due in 40 min.
    channels = seed_every_state(store)
    due, failing, later = (channels[name].id for name in ("due", "failing", "later"))

    def flagged(renew_before: float = 3600) -> list[str]:
        return [c.id for c in check(store, renew_before=renew_before).expiring]

    # no renewal run recorded: a channel that came due has not been renewed
    assert flagged() == [due, failing]

    # a run since "due" came due: replacing it is renewal's normal work
    store.record_run("renewal", {"at": NOW - MINUTE})
    assert flagged() == [failing]

    # the last run was before "due" came due: none has run since
    store.record_run("renewal", {"at": NOW - HOUR})
    assert flagged() == [due, failing]

    # renew_before 3 h: all three came due (2.5 h, 1.5 h, 1 h 20 ago); the run 2 h ago saw only "due"
    store.record_run("renewal", {"at": NOW - 2 * HOUR})
    assert flagged(3 * 3600) == [failing, later]

    # a channel beyond the warning window is never flagged, however renewal fares
    assert channels["ok"].id not in flagged(4 * 24 * 3600)


def test_a_suspended_subscription_that_still_gets_notifications_is_never_quiet(store):
    subscription(store, "denied", State.SUSPENDED, reason="PERMISSION_DENIED", since=NOW - 5 * DAY)
    store.note_notification("denied", NOW - 3 * DAY)  # the blind write sets heardAt on any state

    assert check(store).quiet == []


def test_healthy_only_without_suspended_expired_or_expiring(store):
    subscription(store, "a", last_notification_at=NOW - MINUTE)
    subscription(store, "b", since=NOW - 3 * DAY)  # quiet: listed, never unhealthy
    subscription(store, "c", State.STOPPED)  # stopped by the user: not a problem
    channel(store, "a", NOW + 3 * DAY)
    channel(store, "b", NOW + 30 * MINUTE)  # in the window, renewal not failing
    store.record_run("renewal", {"at": NOW - MINUTE, "renewed": 1})

    report = check(store, renew_before=3600)
    assert report.healthy is True
    assert (report.problems, report.expiring, [s.id for s in report.quiet]) == ([], [], ["b"])
    assert report.last_run == {"at": NOW - MINUTE, "renewed": 1}

    store.update(channel(store, "a", NOW + 60 * MINUTE).id, last_error="TransientApiError: HTTP 503")
    assert check(store, renew_before=3600).healthy is False  # expiring while renewal fails


def test_an_expired_or_a_suspended_subscription_alone_makes_it_unhealthy(store):
    subscription(store, "a")
    assert check(store).healthy is True
    subscription(store, "lapsed", State.EXPIRED)
    assert check(store).healthy is False
    store.change_subscription("lapsed", lambda s: s.copy(state=State.STOPPED.value))
    assert check(store).healthy is True
    subscription(store, "denied", State.SUSPENDED, reason="OTHER")
    report = check(store)
    assert report.healthy is False and [s.id for s in report.problems] == ["denied"]


def test_an_empty_store_is_healthy(store):
    report = check(store)
    assert report.healthy is True
    assert report.counts == {"active": 0, "suspended": 0, "expired": 0, "stopped": 0}
    assert (report.problems, report.expiring, report.quiet, report.soonest, report.last_run) == (
        [],
        [],
        [],
        None,
        None,
    )

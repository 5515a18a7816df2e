"""A subscription's lifecycle, pure: transitions, judging Google's refusals, records, migration."""

from __future__ import annotations

import datetime
import json

import httplib2
import pytest
from google.auth import exceptions as auth_exc
from googleapiclient.errors import HttpError

from channelkit.channel import Channel
from channelkit.errors import (
    AuthError,
    GoogleApiError,
    InvalidRequestError,
    InvalidTransitionError,
    ResourceGoneError,
    TransientApiError,
)
from channelkit.google_api import GoogleApi, _map_http_error
from channelkit.lifecycle import (
    ENDPOINT_REASONS,
    MAX_OUTBOX,
    TRANSITIONS,
    Failure,
    FailureKind,
    judge_failure,
    record_failure,
    record_success,
    transition,
)
from channelkit.migrate import from_channels
from channelkit.subscription import Event, Reason, State, Subscription, from_record, to_record

UTC = datetime.UTC
NOW = 1_900_000_000_000  # ms
MINUTE = 60_000
HOUR = 3_600_000
EARLIER = NOW - 5 * HOUR


def subscription(state=State.ACTIVE, **fields) -> Subscription:
    values = dict(
        id="sub-1",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        address="https://hook.example/webhook",
        channel_id="chan-1",
        state=str(state),
        since=EARLIER,
        created_at=EARLIER - HOUR,
    )
    if state == State.SUSPENDED:
        values.update(reason=Reason.PERMISSION_DENIED.value, detail="AuthError: HTTP 403")
    values.update(fields)
    return Subscription(**values)


def move(sub: Subscription, event: Event, **options) -> Subscription:
    """``transition`` with the reason ``suspended`` needs."""
    if event is Event.SUSPENDED:
        options.setdefault("reason", Reason.OTHER)
    return transition(sub, event, now_ms=options.pop("now_ms", NOW), **options)


# --- transitions --------------------------------------------------------------------

ALL_PAIRS = [(state, event) for state in State for event in Event]


def test_the_table_names_only_real_states_and_events_and_stopped_is_final():
    assert all(isinstance(s, State) and isinstance(e, Event) for s, e in TRANSITIONS)
    assert not [pair for pair in TRANSITIONS if pair[0] is State.STOPPED]
    assert {target for target in TRANSITIONS.values()} == set(State)


@pytest.mark.parametrize(("state", "event"), [p for p in ALL_PAIRS if p in TRANSITIONS])
def test_an_allowed_event_leads_where_the_table_says(state, event):
    before = subscription(state)
    after = move(before, event)
    assert after.state == TRANSITIONS[(state, event)].value
    assert [e["event"] for e in after.events] == [event.value]
    assert before.state == state.value and before.events == []  # the input is left as it was


@pytest.mark.parametrize(("state", "event"), [p for p in ALL_PAIRS if p not in TRANSITIONS])
def test_every_other_event_is_an_invalid_transition(state, event):
    before = subscription(state)
    with pytest.raises(InvalidTransitionError):
        move(before, event)
    assert before.state == state.value and before.events == []


def test_the_refused_pairs_are_exactly_those_the_table_leaves_out():
    # 24 pairs: 9 allowed, and the stopped state refuses all 6 events.
    assert len(ALL_PAIRS) == 28 and len(TRANSITIONS) == 10


def test_the_event_is_appended_to_the_outbox_with_its_fields():
    first = move(subscription(), Event.EXPIRING, now_ms=NOW)
    second = move(first, Event.SUSPENDED, now_ms=NOW + 1, reason=Reason.CREDENTIALS_INVALID)
    assert len(second.events) == 2 and second.events[0] == first.events[0]
    expiring, suspended = second.events
    assert set(expiring) == {"id", "event", "at", "channelId"}
    assert (expiring["event"], expiring["at"], expiring["channelId"]) == ("expiring", NOW, "chan-1")
    assert set(suspended) == {"id", "event", "at", "channelId", "reason"}
    assert (suspended["event"], suspended["at"], suspended["reason"]) == (
        "suspended",
        NOW + 1,
        "CREDENTIALS_INVALID",
    )
    assert expiring["id"] != suspended["id"] and len(expiring["id"]) == 32
    assert first.events == [expiring]  # appending made a new list


def test_the_event_names_the_channel_it_is_about():
    renewed = move(subscription(), Event.RENEWED, channel_id="chan-2")
    assert renewed.events[-1]["channelId"] == "chan-2" and renewed.channel_id == "chan-2"
    expiring = move(subscription(), Event.EXPIRING, channel_id="chan-old")
    assert expiring.events[-1]["channelId"] == "chan-old" and expiring.expiring_for == "chan-old"
    assert expiring.channel_id == "chan-1"  # expiring names a channel, it does not replace it
    assert move(subscription(), Event.EXPIRED).events[-1]["channelId"] == "chan-1"


def test_a_full_outbox_lets_its_oldest_events_go():
    sub = subscription()
    for i in range(MAX_OUTBOX + 5):
        sub = transition(sub, Event.EXPIRING, now_ms=NOW + i, channel_id=f"chan-{i}")
    assert len(sub.events) == MAX_OUTBOX
    assert [e["at"] for e in sub.events] == [NOW + i for i in range(5, MAX_OUTBOX + 5)]


@pytest.mark.parametrize(("state", "event"), list(TRANSITIONS))
def test_since_changes_only_when_the_state_changes(state, event):
    after = move(subscription(state), event, now_ms=NOW)
    if TRANSITIONS[(state, event)] is state:
        assert after.since == EARLIER
    else:
        assert after.since == NOW


def test_a_reason_goes_with_suspended_and_only_with_it():
    with pytest.raises(ValueError):
        transition(subscription(), Event.SUSPENDED, now_ms=NOW)
    for state, event in TRANSITIONS:
        if event is not Event.SUSPENDED:
            with pytest.raises(ValueError):
                transition(subscription(state), event, now_ms=NOW, reason=Reason.OTHER)
    suspended = transition(
        subscription(), Event.SUSPENDED, now_ms=NOW, reason=Reason.RESOURCE_GONE, detail="gone"
    )
    assert (suspended.reason, suspended.detail) == ("RESOURCE_GONE", "gone")


@pytest.mark.parametrize(("state", "event"), list(TRANSITIONS))
def test_only_a_suspended_subscription_has_a_reason(state, event):
    after = move(subscription(state), event)
    if after.state == State.SUSPENDED:
        assert after.reason in {r.value for r in Reason}
    else:
        assert after.reason is None, f"{state} --{event}--> {after.state} kept reason {after.reason}"


@pytest.mark.parametrize(
    ("state", "event"),
    [(State.ACTIVE, Event.RENEWED), (State.SUSPENDED, Event.REACTIVATED), (State.EXPIRED, Event.REACTIVATED)],
)
def test_renewed_and_reactivated_start_afresh(state, event):
    worn = subscription(
        state, failures=2, last_failure_at=NOW - MINUTE, expiring_for="chan-1", detail="HTTP 403"
    )
    after = move(worn, event, channel_id="chan-2")
    assert (after.failures, after.last_failure_at, after.expiring_for, after.reason, after.detail) == (
        0,
        None,
        None,
        None,
        None,
    )
    assert after.state == State.ACTIVE and after.channel_id == "chan-2"


def test_other_events_keep_the_failure_count():
    worn = subscription(failures=2, last_failure_at=NOW - MINUTE)
    for event in (Event.EXPIRING, Event.EXPIRED, Event.STOPPED):
        after = move(worn, event)
        assert (after.failures, after.last_failure_at) == (2, NOW - MINUTE), event


# --- judging Google's answer ----------------------------------------------------------


def http_error(status: int, reason: str | None) -> HttpError:
    """What googleapiclient raises for an error answer, with Google's JSON error body."""
    errors = [{"reason": reason, "message": "m"}] if reason else []
    content = json.dumps({"error": {"code": status, "message": "m", "errors": errors}}).encode()
    return HttpError(httplib2.Response({"status": status}), content)


IMMEDIATE, COUNTED, TRANSIENT = FailureKind.IMMEDIATE, FailureKind.COUNTED, FailureKind.TRANSIENT

#: (status, Google's reason, the class _map_http_error makes, kind, suspension reason)
ANSWERS = [
    (401, "authError", AuthError, IMMEDIATE, Reason.CREDENTIALS_INVALID),
    (401, None, AuthError, IMMEDIATE, Reason.CREDENTIALS_INVALID),
    (400, "invalid_grant", InvalidRequestError, IMMEDIATE, Reason.CREDENTIALS_INVALID),
    (401, "invalid_grant", AuthError, IMMEDIATE, Reason.CREDENTIALS_INVALID),
    (403, "insufficientPermissions", AuthError, COUNTED, Reason.PERMISSION_DENIED),
    (403, "forbidden", AuthError, COUNTED, Reason.PERMISSION_DENIED),
    (403, None, AuthError, COUNTED, Reason.PERMISSION_DENIED),
    (429, "rateLimitExceeded", TransientApiError, TRANSIENT, None),
    (403, "rateLimitExceeded", TransientApiError, TRANSIENT, None),
    (403, "userRateLimitExceeded", TransientApiError, TRANSIENT, None),
    (403, "quotaExceeded", TransientApiError, TRANSIENT, None),
    (500, "backendError", TransientApiError, TRANSIENT, None),
    (502, None, TransientApiError, TRANSIENT, None),
    (503, "backendError", TransientApiError, TRANSIENT, None),
    (404, "notFound", ResourceGoneError, IMMEDIATE, Reason.RESOURCE_GONE),
    (410, "deleted", ResourceGoneError, IMMEDIATE, Reason.RESOURCE_GONE),
    (400, "badRequest", InvalidRequestError, COUNTED, Reason.OTHER),
    (400, "invalid", InvalidRequestError, COUNTED, Reason.OTHER),
    (400, None, InvalidRequestError, COUNTED, Reason.OTHER),
    (409, "conflict", GoogleApiError, COUNTED, Reason.OTHER),
] + [
    (status, reason, cls, IMMEDIATE, Reason.ENDPOINT_UNAUTHORIZED)
    for reason in ("push.webhookUrlUnauthorized", "push.webhookUrlNotHttps")
    for status, cls in ((400, InvalidRequestError), (401, AuthError), (403, AuthError))
]


@pytest.mark.parametrize(("status", "google_reason", "cls", "kind", "reason"), ANSWERS)
def test_each_google_answer_is_judged_by_its_status_and_reason(status, google_reason, cls, kind, reason):
    mapped = _map_http_error(http_error(status, google_reason), "drive v3 files.watch")
    assert type(mapped) is cls and (mapped.status, mapped.reason) == (status, google_reason)
    made = cls(f"drive v3 files.watch: HTTP {status}", status=status, reason=google_reason)
    assert judge_failure(made) == Failure(kind, reason)
    assert judge_failure(mapped) == Failure(kind, reason)


def test_every_endpoint_reason_suspends_at_once():
    for google_reason in ENDPOINT_REASONS:
        judged = judge_failure(InvalidRequestError("x", status=400, reason=google_reason))
        assert judged == Failure(IMMEDIATE, Reason.ENDPOINT_UNAUTHORIZED), google_reason


def test_failures_without_an_answer_from_google_are_transient():
    assert judge_failure(TransientApiError("drive v3 files.watch: connection failed: reset")) == Failure(
        TRANSIENT, None
    )
    assert judge_failure(TimeoutError("slow")) == Failure(TRANSIENT, None)
    assert judge_failure(RuntimeError("boom")) == Failure(TRANSIENT, None)


class RaisingRequest:
    """A built googleapiclient request whose ``execute`` fails as the HTTP layer would."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def execute(self, num_retries=0):
        raise self.exc


def judged_through_the_client(exc: BaseException) -> Failure:
    with pytest.raises(GoogleApiError) as raised:
        GoogleApi(root="http://127.0.0.1:9/", retries=0)._execute(RaisingRequest(exc), "drive v3 files.watch")
    return judge_failure(raised.value)


def test_a_revoked_refresh_token_suspends_at_once():
    revoked = auth_exc.RefreshError(
        "invalid_grant: Token has been expired or revoked.", {"error": "invalid_grant"}
    )
    assert judged_through_the_client(revoked) == Failure(IMMEDIATE, Reason.CREDENTIALS_INVALID)


def test_a_network_failure_while_refreshing_the_token_is_transient():
    # google-auth-httplib2 raises TransportError when the token endpoint cannot be reached:
    # a blip, not a credential Google refused.
    blip = auth_exc.TransportError(httplib2.ServerNotFoundError("oauth2.googleapis.com"))
    assert judged_through_the_client(blip) == Failure(TRANSIENT, None)
    retryable = auth_exc.RefreshError("token endpoint answered 503", retryable=True)
    assert judged_through_the_client(retryable) == Failure(TRANSIENT, None)


# --- counting failures ----------------------------------------------------------------


def fail(sub, failure, n=1, suspend_after=3):
    for i in range(n):
        sub = record_failure(sub, failure, now_ms=NOW + i, suspend_after=suspend_after, detail=f"try {i}")
    return sub


def test_a_counted_failure_suspends_on_the_suspend_after_th_run():
    denied = Failure(COUNTED, Reason.PERMISSION_DENIED)
    twice = fail(subscription(), denied, 2)
    assert (twice.state, twice.failures, twice.events) == ("active", 2, [])
    assert (twice.last_failure_at, twice.detail) == (NOW + 1, "try 1")
    third = record_failure(twice, denied, now_ms=NOW + 2, suspend_after=3, detail="try 2")
    assert (third.state, third.reason, third.failures, third.since) == (
        "suspended",
        "PERMISSION_DENIED",
        3,
        NOW + 2,
    )
    assert [(e["event"], e["reason"]) for e in third.events] == [("suspended", "PERMISSION_DENIED")]


def test_a_transient_failure_never_counts():
    transient = Failure(TRANSIENT, None)
    after = fail(subscription(failures=1), transient, 10, suspend_after=2)
    assert (after.state, after.failures, after.events) == ("active", 1, [])
    assert (after.last_failure_at, after.detail) == (NOW + 9, "try 9")


def test_a_transient_failure_between_counted_ones_neither_counts_nor_resets():
    denied, transient = Failure(COUNTED, Reason.OTHER), Failure(TRANSIENT, None)
    sub = fail(subscription(), denied)
    sub = fail(sub, transient)
    sub = fail(sub, denied)
    assert (sub.state, sub.failures) == ("active", 2)
    assert fail(sub, denied).state == "suspended"


@pytest.mark.parametrize(
    "reason", [Reason.CREDENTIALS_INVALID, Reason.RESOURCE_GONE, Reason.ENDPOINT_UNAUTHORIZED]
)
def test_an_immediate_failure_suspends_at_once(reason):
    after = fail(subscription(), Failure(IMMEDIATE, reason), suspend_after=100)
    assert (after.state, after.reason, after.failures) == ("suspended", reason.value, 1)
    assert [(e["event"], e["reason"]) for e in after.events] == [("suspended", reason.value)]


def test_a_success_resets_the_count_once_per_channel():
    worn = fail(subscription(), Failure(COUNTED, Reason.OTHER), 2)
    renewed = record_success(worn, channel_id="chan-2", now_ms=NOW + HOUR)
    assert renewed is not None
    assert (renewed.failures, renewed.last_failure_at, renewed.channel_id) == (0, None, "chan-2")
    assert [e["event"] for e in renewed.events] == ["renewed"]
    assert record_success(renewed, channel_id="chan-2", now_ms=NOW + HOUR) is None


# --- the stored form ------------------------------------------------------------------


def full_subscription(**fields) -> Subscription:
    values = dict(
        detail="AuthError: HTTP 403",
        failures=2,
        last_failure_at=NOW - MINUTE,
        last_notification_at=NOW - 2 * MINUTE,
        expiring_for="chan-0",
        events=[{"id": "e1", "event": "expiring", "at": NOW - HOUR, "channelId": "chan-0"}],
        cursor="cursor-7",
        credentials="cred-ref",
    )
    values.update(fields)
    return subscription(**values)


@pytest.mark.parametrize("state", list(State))
def test_a_subscription_survives_its_record(state):
    sub = full_subscription(state=state.value, reason="OTHER" if state is State.SUSPENDED else None)
    record = to_record(sub)
    assert from_record(record) == sub
    assert from_record(json.loads(json.dumps(record))) == sub  # plain JSON, as SQLite keeps it


def test_none_fields_and_an_empty_outbox_are_left_out_of_the_record():
    record = to_record(Subscription(id="s", state="stopped"))
    assert record == {"id": "s", "methodParams": {}, "state": "stopped", "failures": 0}
    assert from_record(record) == Subscription(id="s", state="stopped")


def test_events_pending_is_present_only_while_events_wait():
    with_events = to_record(full_subscription())
    assert with_events["eventsPending"] is True and len(with_events["events"]) == 1
    without = to_record(full_subscription(events=[]))
    assert "eventsPending" not in without and "events" not in without


def test_heard_at_is_the_latest_of_the_last_notification_and_since_while_active():
    assert to_record(subscription(since=NOW, last_notification_at=NOW - HOUR))["heardAt"] == NOW
    assert to_record(subscription(since=NOW - HOUR, last_notification_at=NOW))["heardAt"] == NOW
    assert to_record(subscription(since=NOW - HOUR))["heardAt"] == NOW - HOUR
    assert "heardAt" not in to_record(subscription(since=None))


@pytest.mark.parametrize("state", [State.SUSPENDED, State.EXPIRED, State.STOPPED])
def test_heard_at_is_absent_in_every_other_state(state):
    assert "heardAt" not in to_record(subscription(state, since=NOW, last_notification_at=NOW))


def test_derived_and_unknown_fields_are_dropped_when_read():
    record = to_record(full_subscription())
    record.update(heardAt=1, eventsPending=True, somethingNew="x")
    assert from_record(record) == full_subscription()


# --- migration: a subscription's state from its channels --------------------------------

T0 = datetime.datetime(2030, 1, 1, tzinfo=UTC)


def channel(cid, status, *, hours=0, **fields) -> Channel:
    values = dict(
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id="sub-m",
        status=status,
        created_at=T0 + datetime.timedelta(hours=hours),
    )
    values.update(fields)
    return Channel("web_hook", cid, "tok", "https://hook.example/webhook", expiration=NOW, **values)


def test_migrate_an_active_subscription_served_by_its_newest_active_channel():
    channels = [
        channel("c1", "stopped", renewed_by="c2"),
        channel("c2", "active", hours=1, renews="c1"),
        channel("c3", "active", hours=2, renews="c2"),  # a renewal in flight: both live
    ]
    sub = from_channels(channels, NOW)
    assert sub is not None
    assert (sub.id, sub.state, sub.channel_id, sub.reason, sub.detail) == (
        "sub-m",
        "active",
        "c3",
        None,
        None,
    )
    assert (sub.since, sub.created_at, sub.events) == (NOW, int(T0.timestamp() * 1000), [])
    assert (sub.api, sub.method, sub.method_params, sub.address) == (
        "drive",
        "files.watch",
        {"fileId": "F"},
        "https://hook.example/webhook",
    )


def test_migrate_a_gone_resource_as_suspended_resource_gone():
    gone = "ResourceGoneError: drive v3 files.watch: HTTP 404 notFound"
    channels = [
        channel("c1", "failed", last_error=gone),
        channel("c2", "failed", hours=1, renews="c1", last_error=gone),
    ]
    sub = from_channels(channels, NOW)
    assert sub is not None
    assert (sub.state, sub.reason, sub.detail, sub.channel_id) == ("suspended", "RESOURCE_GONE", gone, "c2")
    assert sub.events == []


def test_migrate_a_subscription_stopped_by_hand():
    channels = [channel("c1", "stopped", renewed_by="c2"), channel("c2", "stopped", hours=1, renews="c1")]
    sub = from_channels(channels, NOW)
    assert sub is not None and (sub.state, sub.reason, sub.channel_id) == ("stopped", None, "c2")


def test_migrate_a_failed_renewal_as_expired():
    channels = [
        channel("c1", "failed", last_error="expired, renewal failed: TransientApiError: HTTP 503"),
        channel("c2", "failed", hours=1, renews="c1", last_error="TransientApiError: HTTP 503"),
    ]
    sub = from_channels(channels, NOW)
    assert sub is not None and (sub.state, sub.reason) == ("expired", None)
    assert sub.detail == "TransientApiError: HTTP 503"


@pytest.mark.parametrize(
    "channels",
    [
        [],
        [channel("c1", "pending")],
        [channel("c1", "failed", last_error="AuthError: drive v3 files.watch: HTTP 401")],
        # a subscribe whose watch found no such file: never live, nothing to suspend
        [channel("c1", "failed", last_error="ResourceGoneError: drive v3 files.watch: HTTP 404")],
        [channel("c1", "active", subscription_id=None)],
    ],
    ids=["no-channels", "pending", "subscribe-refused", "subscribe-resource-gone", "no-subscription-id"],
)
def test_a_subscription_that_never_had_a_live_channel_gets_no_record(channels):
    assert from_channels(channels, NOW) is None

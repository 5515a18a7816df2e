"""channelkit.receive on the embedded SQLite store, with a fake clock and a recording dispatcher."""

from __future__ import annotations

import datetime
import io
import json
import os

import pytest

from channelkit.channel import Channel
from channelkit.config import Settings
from channelkit.errors import (
    BodyTooLargeError,
    ChannelGoneError,
    ChannelNotFoundError,
    HandlerConfigError,
    HandlerError,
    InvalidMessageNumberError,
    MessageInProgressError,
    MethodNotAllowedError,
    MissingHeaderError,
    PublishError,
    ResourceMismatchError,
    StoreUnavailable,
    TokenMismatchError,
)
from channelkit.receive import (
    ACCEPTED,
    DUPLICATE,
    ChannelCache,
    Receiver,
    outcome_for,
    read_body,
    receive,
    status_for,
)
from channelkit.store import ClaimOutcome, open_store
from channelkit.store.sqlite import SQLiteStore
from channelkit.testing.harness import notification_headers

UTC = datetime.UTC
NOW = 1_900_000_000.0  # seconds
HOUR_MS = 3_600_000
TOKEN = "tok-Secret-5f2c9"
RESOURCE = "res-A1"
RESOURCE_URI = "https://www.googleapis.com/drive/v3/files/F?alt=json"


class FakeClock:
    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A dispatcher: records each call; raises while ``failures`` is positive."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.failures = 0
        self.error: Exception = RuntimeError("handler broke")

    def __call__(self, notification, channel):
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        self.calls.append((notification, channel))

    @property
    def numbers(self):
        return [n.message_number for n, _ in self.calls]


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path}/channels.db")
    yield s
    s.close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def receiver(store, recorder, clock):
    return Receiver(store=store, dispatcher=recorder, clock=clock, grace=60, claim_timeout=30)


def make_channel(
    store,
    cid="chan-1",
    *,
    status="active",
    token=TOKEN,
    resource_id=RESOURCE,
    expiration=int(NOW * 1000) + HOUR_MS,
    **fields,
) -> Channel:
    channel = Channel(
        "web_hook",
        cid,
        token,
        "https://hook.example/webhook",
        expiration=expiration,
        resource_id=resource_id,
        resource_uri="https://www.googleapis.com/drive/v3/files/F",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id="sub-1",
        status=status,
        created_at=datetime.datetime.fromtimestamp(NOW - 60, UTC),
        **fields,
    )
    store.create(channel)
    return channel


def headers(cid="chan-1", number=1, *, state="sync", token=TOKEN, resource=RESOURCE, **extra):
    """Google's headers for channel ``cid``; ``token`` sent as given ("" too), None: not sent."""
    sent = Channel("web_hook", cid, None, "", resource_id=resource, resource_uri=RESOURCE_URI)
    return notification_headers(sent, number, state, Channel_Token=token) | extra


# --- acceptance and exactly-once -----------------------------------------------------


def test_a_valid_notification_is_dispatched_once_with_its_channel(store, receiver, recorder):
    make_channel(store)
    verdict = receiver.receive("POST", headers(number=1, state="sync"), b"")
    assert verdict.outcome == ACCEPTED and verdict.accepted and verdict.status == 200
    [(notification, channel)] = recorder.calls
    assert notification.message_number == 1 and notification.is_sync
    assert notification.channel_id == "chan-1" and notification.resource_id == RESOURCE
    assert channel.id == "chan-1" and channel.subscription_id == "sub-1"
    assert verdict.notification is notification


def test_a_duplicate_answers_200_without_a_second_call(store, receiver, recorder):
    make_channel(store)
    receiver.receive("POST", headers(number=7, state="update"), b"")
    again = receiver.receive("POST", headers(number=7, state="update"), b"")
    assert again.outcome == DUPLICATE and again.duplicate and again.status == 200
    assert recorder.numbers == [7]


def test_message_numbers_with_gaps_and_out_of_order_are_each_dispatched(store, receiver, recorder):
    make_channel(store)
    for n in (1, 40, 12, 977, 40, 1):
        receiver.receive("POST", headers(number=n, state="update"), b"")
    assert sorted(recorder.numbers) == [1, 12, 40, 977]


def test_header_names_are_case_insensitive_and_body_is_kept(store, receiver, recorder):
    make_channel(store)
    mixed = {k.lower() if i % 2 else k.upper(): v for i, (k, v) in enumerate(headers(number=3).items())}
    receiver.receive("POST", mixed, b'{"kind":"drive#changes"}')
    [(n, _)] = recorder.calls
    assert n.message_number == 3 and n.body == b'{"kind":"drive#changes"}'


def test_a_channel_without_token_accepts_a_notification_without_one(store, receiver, recorder):
    make_channel(store, token=None)
    receiver.receive("POST", headers(token=None), b"")
    assert recorder.numbers == [1]


def test_the_one_shot_function_form(store, recorder, clock):
    make_channel(store)
    verdict = receive("POST", headers(number=2), b"", store=store, dispatcher=recorder, clock=clock)
    assert verdict.accepted and recorder.numbers == [2]


# --- rejections, in order ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
def test_only_post_is_accepted(store, receiver, recorder, method):
    make_channel(store)
    with pytest.raises(MethodNotAllowedError) as info:
        receiver.receive(method, headers(), b"")
    assert status_for(info.value) == 405 and not recorder.calls


def test_a_body_over_the_limit_is_refused_and_a_stream_is_not_read_past_it(store, recorder, clock):
    make_channel(store)
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock, max_body=100)

    class Endless(io.RawIOBase):
        read_total = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            n = len(buffer)
            buffer[:n] = b"x" * n
            Endless.read_total += n
            return n

    with pytest.raises(BodyTooLargeError) as info:
        receiver.receive("POST", headers(), b"x" * 101)
    assert status_for(info.value) == 413
    with pytest.raises(BodyTooLargeError):
        receiver.receive("POST", headers(), Endless())
    assert Endless.read_total <= 101
    with pytest.raises(BodyTooLargeError):  # declared too large: refused unread
        receiver.receive("POST", {**headers(), "Content-Length": "5000"}, io.BytesIO(b""))
    verdict = receiver.receive("POST", headers(), io.BytesIO(b"y" * 100))
    assert verdict.notification.body == b"y" * 100 and not recorder.calls[0][0].body.strip(b"y")


@pytest.mark.parametrize(
    "missing",
    [
        "X-Goog-Channel-ID",
        "X-Goog-Message-Number",
        "X-Goog-Resource-ID",
        "X-Goog-Resource-State",
        "X-Goog-Resource-URI",
    ],
)
def test_a_missing_or_blank_required_header_is_400(store, receiver, recorder, missing):
    make_channel(store)
    h = headers()
    del h[missing]
    with pytest.raises(MissingHeaderError) as info:
        receiver.receive("POST", h, b"")
    assert status_for(info.value) == 400
    # A blank message number is a bad number (ValueError, as int("") was); other blanks are missing.
    blank_error = InvalidMessageNumberError if missing == "X-Goog-Message-Number" else MissingHeaderError
    with pytest.raises(blank_error) as info:
        receiver.receive("POST", {**headers(), missing: "  "}, b"")
    assert status_for(info.value) == 400
    assert not recorder.calls


@pytest.mark.parametrize(
    "number", ["0", "-1", "+4", "٣", "1.0", "abc", "1e3", "9223372036854775808", "0x10", ""]
)
def test_a_message_number_that_is_not_a_positive_int64_is_400_before_any_lookup(
    tmp_path, recorder, clock, number
):
    store = open_store(f"sqlite:///{tmp_path}/empty.db")  # the channel does not even exist
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock)
    with pytest.raises((InvalidMessageNumberError, MissingHeaderError)) as info:
        receiver.receive("POST", headers(number=number), b"")
    assert status_for(info.value) == 400 and not recorder.calls


def test_the_largest_int64_message_number_is_accepted(store, receiver, recorder):
    make_channel(store)
    receiver.receive("POST", headers(number=2**63 - 1, state="update"), b"")
    assert recorder.numbers == [2**63 - 1]


@pytest.mark.parametrize("cid", ["nope", "a/b", "__reserved__", "x" * 65, "spaces here", "é"])
def test_an_unknown_or_impossible_channel_id_is_404(store, receiver, recorder, cid):
    make_channel(store)
    with pytest.raises(ChannelNotFoundError) as info:
        receiver.receive("POST", headers(cid=cid), b"")
    assert status_for(info.value) == 404 and not recorder.calls


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN.upper(), TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_403(store, receiver, recorder, token):
    make_channel(store)
    with pytest.raises(TokenMismatchError) as info:
        receiver.receive("POST", headers(token=token), b"")
    assert status_for(info.value) == 403 and not recorder.calls


def test_a_different_resource_id_is_403(store, receiver, recorder):
    make_channel(store)
    with pytest.raises(ResourceMismatchError) as info:
        receiver.receive("POST", headers(resource="res-OTHER"), b"")
    assert status_for(info.value) == 403 and not recorder.calls


def test_a_wrong_token_is_403_even_on_a_stopped_channel(store, receiver):
    make_channel(store, status="stopped")
    with pytest.raises(TokenMismatchError):
        receiver.receive("POST", headers(token="guess"), b"")


@pytest.mark.parametrize("status", ["stopped", "failed"])
def test_a_stopped_or_failed_channel_is_410(store, receiver, recorder, status):
    make_channel(store, status=status)
    with pytest.raises(ChannelGoneError) as info:
        receiver.receive("POST", headers(), b"")
    assert status_for(info.value) == 410 and not recorder.calls


def test_an_expired_channel_is_accepted_within_the_grace_then_410(store, receiver, recorder, clock):
    make_channel(store, expiration=int(NOW * 1000) - 30_000)  # expired 30 s ago; grace 60 s
    receiver.receive("POST", headers(number=5, state="update"), b"")
    clock.advance(31)
    with pytest.raises(ChannelGoneError):
        receiver.receive("POST", headers(number=6, state="update"), b"")
    assert recorder.numbers == [5]


def test_a_channel_replaced_by_a_renewal_takes_in_flight_deliveries_for_the_grace(
    store, receiver, recorder, clock
):
    successor = make_channel(store, "chan-2", renews="chan-1")
    make_channel(store, "chan-1", status="stopped", renewed_by=successor.id)
    # successor created at NOW - 60 s; grace 60 s: still inside at NOW.
    receiver.receive("POST", headers("chan-1", 9, state="update"), b"")
    clock.advance(1)
    with pytest.raises(ChannelGoneError):
        receiver.receive("POST", headers("chan-1", 10, state="update"), b"")
    assert recorder.numbers == [9]


def test_a_pending_channel_learns_its_resource_id_from_the_first_notification(store, receiver, recorder):
    make_channel(store, status="pending", resource_id="", expiration=None)
    receiver.receive("POST", headers(number=1, resource="res-LEARNT"), b"")
    stored = store.get("chan-1")
    assert stored.resource_id == "res-LEARNT" and stored.status == "pending"
    assert stored.resource_uri  # kept from the channel
    assert recorder.calls[0][1].resource_id == "res-LEARNT"  # the handler sees it too
    with pytest.raises(ResourceMismatchError):
        receiver.receive("POST", headers(number=2, resource="res-OTHER", state="update"), b"")


def test_a_pending_channel_activated_meanwhile_is_judged_on_what_is_stored(tmp_path, recorder, clock):
    class RacingStore(SQLiteStore):
        """Activates the channel (as subscribe would) just before the receiver records its id."""

        def record_resource(self, channel_id, resource_id, resource_uri=None):
            if not getattr(self, "raced", False):
                self.raced = True
                super().update(channel_id, status="active", resource_id=self.google_says)
            return super().record_resource(channel_id, resource_id, resource_uri)

    store = RacingStore(str(tmp_path / "race.db"))
    make_channel(store, status="pending", resource_id="", expiration=None)
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock)
    store.google_says = "res-GOOGLE"
    receiver.receive("POST", headers(number=1, resource="res-GOOGLE"), b"")
    assert store.get("chan-1").status == "active" and recorder.numbers == [1]

    store2 = RacingStore(str(tmp_path / "race2.db"))
    make_channel(store2, status="pending", resource_id="", expiration=None)
    store2.google_says = "res-GOOGLE"
    receiver2 = Receiver(store=store2, dispatcher=recorder, clock=clock)
    with pytest.raises(ResourceMismatchError):
        receiver2.receive("POST", headers(number=1, resource="res-FORGED"), b"")


# --- failures and retries --------------------------------------------------------------


def test_a_failing_handler_gets_503_and_the_retry_is_processed_once(store, receiver, recorder):
    make_channel(store)
    recorder.failures = 1
    with pytest.raises(HandlerError) as info:
        receiver.receive("POST", headers(number=4, state="update"), b"")
    assert status_for(info.value) == 503 and isinstance(info.value.__cause__, RuntimeError)
    assert receiver.receive("POST", headers(number=4, state="update"), b"").accepted
    assert receiver.receive("POST", headers(number=4, state="update"), b"").duplicate
    assert recorder.numbers == [4]


def test_a_dispatch_error_passes_through_and_releases_the_claim(store, recorder, clock):
    make_channel(store)
    recorder.failures, recorder.error = 1, PublishError("topic down")
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock)
    with pytest.raises(PublishError):
        receiver.receive("POST", headers(), b"")
    claim = store.claim_message("chan-1", 1, now_ms=int(NOW * 1000), timeout_seconds=30)
    assert claim.outcome is ClaimOutcome.CLAIMED  # nothing left behind


def test_a_message_in_progress_elsewhere_is_503_until_its_claim_times_out(store, receiver, recorder, clock):
    make_channel(store)
    store.claim_message("chan-1", 3, now_ms=int(NOW * 1000), timeout_seconds=30)  # a crashed peer
    with pytest.raises(MessageInProgressError) as info:
        receiver.receive("POST", headers(number=3, state="update"), b"")
    assert status_for(info.value) == 503 and not recorder.calls
    clock.advance(31)  # claim_timeout is 30 s
    assert receiver.receive("POST", headers(number=3, state="update"), b"").accepted
    assert recorder.numbers == [3]


def test_a_misconfigured_handler_fails_before_any_claim(store, clock):
    make_channel(store)

    class Broken:
        def prepare(self):
            raise HandlerConfigError("CHANNELKIT_HANDLER='x:y': cannot import module 'x'")

        def dispatch(self, notification, channel):  # pragma: no cover - never reached
            raise AssertionError

    receiver = Receiver(store=store, dispatcher=Broken(), clock=clock)
    with pytest.raises(HandlerConfigError) as info:
        receiver.receive("POST", headers(), b"")
    assert status_for(info.value) == 503
    claim = store.claim_message("chan-1", 1, now_ms=int(NOW * 1000), timeout_seconds=30)
    assert claim.outcome is ClaimOutcome.CLAIMED


class FlakyStore(SQLiteStore):
    """The SQLite store, with chosen operations failing as an unreachable backend would."""

    failing: set[str]

    def _maybe_fail(self, name):
        if name in self.failing:
            raise StoreUnavailable(f"{name}: backend unreachable")

    def find(self, channel_id):
        self._maybe_fail("find")
        return super().find(channel_id)

    def claim_message(self, *args, **kwargs):
        self._maybe_fail("claim_message")
        return super().claim_message(*args, **kwargs)

    def finish_message(self, *args, **kwargs):
        self._maybe_fail("finish_message")
        return super().finish_message(*args, **kwargs)

    def release_message(self, *args, **kwargs):
        self._maybe_fail("release_message")
        return super().release_message(*args, **kwargs)

    def record_resource(self, *args, **kwargs):
        self._maybe_fail("record_resource")
        return super().record_resource(*args, **kwargs)


@pytest.fixture
def flaky(tmp_path):
    s = FlakyStore(str(tmp_path / "flaky.db"))
    s.failing = set()
    yield s
    s.close()


@pytest.mark.parametrize("operation", ["find", "claim_message", "record_resource"])
def test_a_store_outage_is_503_and_leaves_nothing_that_swallows_the_retry(flaky, recorder, clock, operation):
    learning = operation == "record_resource"
    make_channel(flaky, status="pending" if learning else "active", resource_id="" if learning else RESOURCE)
    receiver = Receiver(store=flaky, dispatcher=recorder, clock=clock, cache=None)
    flaky.failing = {operation}
    with pytest.raises(StoreUnavailable) as info:
        receiver.receive("POST", headers(number=8, state="update"), b"")
    assert status_for(info.value) == 503 and not recorder.calls
    flaky.failing = set()
    assert receiver.receive("POST", headers(number=8, state="update"), b"").accepted
    assert recorder.numbers == [8]


def test_a_processed_message_that_cannot_be_marked_done_is_still_accepted(flaky, recorder, clock):
    make_channel(flaky)
    waits = []
    receiver = Receiver(
        store=flaky,
        dispatcher=recorder,
        clock=clock,
        claim_timeout=30,
        sleep=lambda s: (waits.append(s), clock.advance(s)),
    )
    flaky.failing = {"finish_message"}
    assert receiver.receive("POST", headers(number=2, state="update"), b"").accepted
    assert recorder.numbers == [2]  # answering 503 here would risk a second call later
    assert 25 <= sum(waits) <= 30  # the store was waited for, up to the claim timeout


class FinishFailsAFewTimes(FlakyStore):
    failures_left = 0

    def finish_message(self, *args, **kwargs):
        if self.failures_left:
            self.failures_left -= 1
            raise StoreUnavailable("finish_message: backend unreachable")
        return super().finish_message(*args, **kwargs)


def test_a_short_outage_after_the_handler_is_waited_out_so_a_late_duplicate_is_not_run_again(
    tmp_path, recorder, clock
):
    store = FinishFailsAFewTimes(str(tmp_path / "f.db"))
    store.failing = set()
    make_channel(store)
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock, claim_timeout=30, sleep=clock.advance)
    store.failures_left = 3  # the store is away for three attempts, then back
    assert receiver.receive("POST", headers(number=5, state="update"), b"").accepted
    clock.advance(60)  # long past the claim timeout, Google delivers the message again
    assert receiver.receive("POST", headers(number=5, state="update"), b"").duplicate
    assert recorder.numbers == [5]
    store.close()


def test_a_failed_release_still_answers_503_and_the_claim_expires(flaky, recorder, clock):
    make_channel(flaky)
    receiver = Receiver(store=flaky, dispatcher=recorder, clock=clock, claim_timeout=30)
    flaky.failing, recorder.failures = {"release_message"}, 1
    with pytest.raises(HandlerError):
        receiver.receive("POST", headers(number=2, state="update"), b"")
    flaky.failing = set()
    with pytest.raises(MessageInProgressError):
        receiver.receive("POST", headers(number=2, state="update"), b"")
    clock.advance(31)
    assert receiver.receive("POST", headers(number=2, state="update"), b"").accepted
    assert recorder.numbers == [2]


# --- the channel cache --------------------------------------------------------------------


class Monotonic(FakeClock):
    pass


def test_cached_lookups_keep_reads_off_the_store_within_the_ttl(flaky, recorder, clock):
    make_channel(flaky)
    mono = Monotonic(0.0)
    receiver = Receiver(store=flaky, dispatcher=recorder, clock=clock, cache=ChannelCache(ttl=10, clock=mono))
    receiver.receive("POST", headers(number=1), b"")
    flaky.failing = {"find"}  # a read now would fail: the cache answers
    receiver.receive("POST", headers(number=2, state="update"), b"")
    mono.advance(10)
    with pytest.raises(StoreUnavailable):
        receiver.receive("POST", headers(number=3, state="update"), b"")
    assert recorder.numbers == [1, 2]


def test_a_stop_takes_effect_within_the_cache_ttl(store, recorder, clock):
    make_channel(store)
    mono = Monotonic(0.0)
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock, cache=ChannelCache(ttl=5, clock=mono))
    receiver.receive("POST", headers(number=1), b"")
    store.update("chan-1", status="stopped")
    receiver.receive("POST", headers(number=2, state="update"), b"")  # cached: still live
    mono.advance(5)
    with pytest.raises(ChannelGoneError):
        receiver.receive("POST", headers(number=3, state="update"), b"")
    assert recorder.numbers == [1, 2]


def test_a_stale_cached_channel_never_refuses_without_a_fresh_read(store, recorder, clock):
    make_channel(store)
    cache = ChannelCache(ttl=60, clock=Monotonic(0.0))
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock, cache=cache)
    stale = store.get("chan-1")
    for outdated in (
        stale.copy(status="stopped"),
        stale.copy(resource_id="res-OLD"),
        stale.copy(expiration=1000),
        stale.copy(status="failed"),
    ):
        cache.put(outdated)
        receiver.receive("POST", headers(number=len(recorder.calls) + 1, state="update"), b"")
    assert recorder.numbers == [1, 2, 3, 4]
    assert cache.get("chan-1") == store.get("chan-1")  # refreshed


def test_the_cache_is_bounded_and_its_ttl_comes_from_config(monkeypatch):
    mono = Monotonic(0.0)
    monkeypatch.setenv("CHANNELKIT_CACHE_TTL", "2")  # read once, when the cache is built
    cache = ChannelCache(max_size=3, clock=mono)
    for i in range(5):
        cache.put(Channel("web_hook", f"c{i}", None, None))
    assert len(cache) == 3 and cache.get("c0") is None and cache.get("c4") is not None
    mono.advance(2)
    assert cache.get("c4") is None
    monkeypatch.setenv("CHANNELKIT_CACHE_TTL", "0")  # 0 disables caching
    cache = ChannelCache(max_size=3, clock=mono)
    cache.put(Channel("web_hook", "c9", None, None))
    assert cache.get("c9") is None


# --- status table and body reading ----------------------------------------------------------


def test_every_error_maps_to_its_status_and_anything_else_to_503():
    from channelkit import errors

    expected = {
        errors.MethodNotAllowedError: 405,
        errors.MissingHeaderError: 400,
        errors.InvalidMessageNumberError: 400,
        errors.ChannelMismatchError: 400,
        errors.TokenMismatchError: 403,
        errors.ResourceMismatchError: 403,
        errors.ChannelNotFoundError: 404,
        errors.ChannelGoneError: 410,
        errors.BodyTooLargeError: 413,
        errors.UnreadableBodyError: 400,
        errors.MessageInProgressError: 503,
        errors.HandlerError: 503,
        errors.HandlerConfigError: 503,
        errors.PublishError: 503,
        errors.StoreUnavailable: 503,
        errors.ConfigError: 503,
    }
    for kind, status in expected.items():
        exc = kind("X-GOOG-CHANNEL-ID") if kind is errors.MissingHeaderError else kind("x")
        assert status_for(exc) == status, kind
        assert outcome_for(exc)
    assert status_for(RuntimeError("bug")) == 503 and outcome_for(KeyError()) == "error"


def test_read_body_reads_at_most_the_limit_plus_one():
    assert read_body(b"abc", 3) == b"abc"
    assert read_body(io.BytesIO(b"abc"), 3) == b"abc"
    assert read_body(None, 3) == b""
    with pytest.raises(BodyTooLargeError):
        read_body(io.BytesIO(b"abcd"), 3)
    with pytest.raises(BodyTooLargeError):
        read_body(None, 3, "4")
    assert read_body(io.BytesIO(b"ab"), 3, "not a number") == b"ab"


def test_a_stream_that_fails_while_read_is_an_unreadable_body():
    from channelkit.errors import UnreadableBodyError

    class BrokenChunks(io.RawIOBase):
        def read(self, size=-1):
            raise ValueError("Invalid chunk size: 'zz'")  # what a server's chunk parser raises

    with pytest.raises(UnreadableBodyError) as info:
        read_body(BrokenChunks(), 100)
    assert status_for(info.value) == 400 and isinstance(info.value.__cause__, ValueError)


# --- logs -----------------------------------------------------------------------------------------


def test_each_request_is_one_structured_line_without_the_token(store, receiver, recorder, log_lines):
    make_channel(store)
    recorder.failures = 1
    attempts = [
        ("POST", headers(number=1)),
        ("POST", headers(number=1)),
        ("POST", headers(number=1)),
        ("POST", headers(number=2, token="wrong-" + TOKEN)),
        ("GET", headers()),
        ("POST", headers(cid="unknown")),
    ]
    for method, h in attempts:
        try:
            receiver.receive(method, h, b"{}")
        except Exception:
            pass
    lines = log_lines()
    assert [(l["outcome"], l["status"]) for l in lines] == [
        ("dispatch_failed", 503),
        ("accepted", 200),
        ("duplicate", 200),
        ("forbidden", 403),
        ("method_not_allowed", 405),
        ("unknown_channel", 404),
    ]
    for line in lines:
        assert {"severity", "message", "latencyMs", "outcome", "status"} <= set(line)
    assert lines[1]["channelId"] == "chan-1" and lines[1]["messageNumber"] == 1
    assert lines[1]["state"] == "sync" and lines[1]["subscriptionId"] == "sub-1"
    assert lines[0]["severity"] == "ERROR" and "RuntimeError" in lines[0]["stack_trace"]
    assert TOKEN not in json.dumps(lines)


def test_a_second_different_resource_id_for_a_pending_channel_is_refused(store, recorder, clock):
    make_channel(store, status="pending", resource_id="", expiration=None)
    stale = Receiver(store=store, dispatcher=recorder, clock=clock)
    stale.cache.put(store.get("chan-1"))  # this instance saw the channel before it learned its id
    other = Receiver(store=store, dispatcher=recorder, clock=clock)
    other.receive("POST", headers(number=1, state="sync", resource="res-REAL"), b"")
    with pytest.raises(ResourceMismatchError):
        stale.receive("POST", headers(number=2, resource="res-OTHER"), b"")
    assert store.get("chan-1").resource_id == "res-REAL" and recorder.numbers == [1]


def test_a_notification_for_a_failed_channel_teaches_its_resource_for_a_stop(store, recorder, clock):
    make_channel(store, status="failed", resource_id="", expiration=None)
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock)
    with pytest.raises(ChannelGoneError):
        receiver.receive("POST", headers(number=1, state="sync", resource="res-LIVE"), b"")
    stored = store.get("chan-1")
    assert (stored.resource_id, stored.stop_pending, stored.status) == ("res-LIVE", True, "failed")
    assert not recorder.calls


# --- settings: fixed when the receiver is built ---------------------------------------------------


class EnvironmentSpy(dict):
    """Stands in for ``os.environ``; remembers every CHANNELKIT_ variable looked up."""

    def __init__(self, values):
        super().__init__(values)
        self.read: list[str] = []

    def _seen(self, name):
        if str(name).startswith("CHANNELKIT_"):
            self.read.append(name)

    def get(self, name, default=None):
        self._seen(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self._seen(name)
        return super().__getitem__(name)

    def __contains__(self, name):
        self._seen(name)
        return super().__contains__(name)


def test_the_receiver_reads_no_environment_per_request(store, recorder, clock, monkeypatch):
    make_channel(store)
    make_channel(store, "chan-old", expiration=int(NOW * 1000) - 30_000)  # expired 30 s ago
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock)  # defaults, from the environment
    spy = EnvironmentSpy(os.environ)
    monkeypatch.setattr(os, "environ", spy)
    # Settings that would refuse everything below, were they read now.
    for name, value in {
        "CHANNELKIT_MAX_BODY": "1",
        "CHANNELKIT_GRACE": "0",
        "CHANNELKIT_CACHE_TTL": "0",
        "CHANNELKIT_CLAIM_TIMEOUT": "bad",
    }.items():
        spy[name] = value
    assert receiver.receive("POST", headers(number=1), b"a body").accepted
    assert receiver.receive("POST", headers("chan-old", 1), b"").accepted  # still within the default grace
    store.update("chan-1", status="stopped")
    assert receiver.receive("POST", headers(number=2, state="update"), b"").accepted  # cached: the TTL held
    assert recorder.numbers == [1, 1, 2]
    assert spy.read == []


def test_the_receiver_takes_its_settings_from_a_settings_object(store, recorder, clock):
    make_channel(store, expiration=int(NOW * 1000) - 30_000)  # expired 30 s ago
    settings = Settings(max_body=10, grace=60, claim_timeout=30, cache_ttl=0)
    receiver = Receiver(store=store, dispatcher=recorder, clock=clock, settings=settings)
    assert receiver.cache is not None and receiver.cache.ttl == 0
    with pytest.raises(BodyTooLargeError):
        receiver.receive("POST", headers(), b"x" * 11)
    assert receiver.receive("POST", headers(number=1), b"x" * 10).accepted
    store.claim_message("chan-1", 2, now_ms=int(NOW * 1000), timeout_seconds=30)  # a crashed peer
    with pytest.raises(MessageInProgressError):
        receiver.receive("POST", headers(number=2, state="update"), b"")
    clock.advance(31)  # past the claim timeout, and past the grace: 30 + 31 > 60
    with pytest.raises(ChannelGoneError):
        receiver.receive("POST", headers(number=2, state="update"), b"")
    explicit = Receiver(store=store, dispatcher=recorder, clock=clock, settings=settings, grace=120)
    assert explicit.receive("POST", headers(number=2, state="update"), b"").accepted  # an argument wins
    assert recorder.numbers == [1, 2]


def test_the_judged_headers_of_a_wsgi_environ_are_header_maps_for_every_header_judged():
    """The judge looks its nine headers up in a Werkzeug request's environ instead of
    upper-casing all of them: the same names and values as ``header_map`` for those."""
    from werkzeug.datastructures import EnvironHeaders
    from werkzeug.test import EnvironBuilder

    from channelkit.channel import header_map
    from channelkit.judge import _ENVIRON_KEYS, _judged_headers

    sent = {
        "X-Goog-Channel-ID": "c-1",
        "x-goog-message-number": "7",
        "X-Goog-Resource-ID": "r",
        "X-Goog-Resource-State": "update",
        "X-Goog-Resource-URI": "https://x",
        "X-Goog-Channel-Token": "t",
        "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
        "X-Goog-Changed": "content",
        "X-Other": "not judged",
    }
    for headers in (sent, {k: v for k, v in sent.items() if "Token" not in k and "Changed" not in k}):
        environ = EnvironBuilder(method="POST", headers=headers, data=b"{}").get_environ()
        full, judged = header_map(EnvironHeaders(environ)), _judged_headers(EnvironHeaders(environ))
        wanted = {name for name, _ in _ENVIRON_KEYS} | {"CONTENT-LENGTH"}
        assert judged == {name: value for name, value in full.items() if name in wanted}
        assert judged["CONTENT-LENGTH"] == "2" and "X-OTHER" in full and "X-OTHER" not in judged
    assert _judged_headers(sent) == header_map(sent)  # not an environ: every header

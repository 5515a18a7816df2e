"""Sync a subscription: list what changed from its cursor, hand it over page by page, save as it goes.

``sync(subscription_id, ...)`` takes the subscription's sync lease
(``sync_lease``), then lists its feed (``feeds``) page by page. Each page is
handed to the app as a ``Batch`` (``change_sink``); when that returns, the
cursor moves past the page in the write that records it, checked against the
lease (the last page's in the write that ends the pass: P + 1 writes for P pages), so a batch the app processed is never offered again and a crash loses
at most the page in hand (offered again, from the same cursor). When the app
raises, the sync stops there and the cursor stays. A cursor Google no longer
knows starts a full resync, delivered as ``resync`` batches, the last one
``resync_complete``. Notifications that came meanwhile left a mark: one more
pass before the lease is let go.

Google's refusals are judged as renewal's are (``lifecycle.judge_failure``):
transient ones (retried with backoff by the client first) leave the work for
the next pass; 401/403/404 go to the subscription's lifecycle. The store, the
Google client, the sink and the clocks are injected.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

from channelkit import config, logs
from channelkit.change_sink import ChangeSink, load_change_sink
from channelkit.errors import ConfigError, FeedError, GoogleApiError, SyncLeaseLostError
from channelkit.feeds import BODY, GET, LIST, Batch, Cursor, Feed, feed_for
from channelkit.google_api import GoogleApi
from channelkit.lifecycle import FailureKind, judge_failure, record_failure
from channelkit.store import ChannelStore, open_store
from channelkit.subscription import Subscription
from channelkit.sync_lease import KEEP, Acquired, SyncLease

__all__ = [
    "DONE",
    "FAILED",
    "HANDLER_FAILED",
    "HELD",
    "INACTIVE",
    "LEASE_LOST",
    "MAX_SETTLE",
    "NOTHING",
    "OUT_OF_TIME",
    "SETTLE",
    "SyncResult",
    "first_cursor",
    "sync",
]

log = logs.get_logger("channelkit.sync")

#: How a sync ended (``SyncResult.outcome``).
DONE = "done"  # listed to the end
HELD = "held"  # another sync holds the lease: it was marked to make one more pass
INACTIVE = "inactive"  # the subscription is not active (suspended, expired, stopped)
NOTHING = "nothing"  # a body feed: its changes come in the notifications themselves
HANDLER_FAILED = "handler_failed"  # the app raised: the batch is offered again by the next pass
FAILED = "failed"  # Google refused; transient ones are left for the next pass
OUT_OF_TIME = "out_of_time"  # the budget ran out; the next pass goes on from the saved cursor
LEASE_LOST = "lease_lost"  # our lease lapsed and another sync took it

#: Seconds waited before one more pass, when notifications came during a pass (a burst joins it);
#: doubled for each further marked pass of one sync, up to ``MAX_SETTLE``: a long burst costs a few passes.
SETTLE = 1.0
MAX_SETTLE = 4.0

#: Restarts (full resyncs) one pass may begin: a cursor refused right after a fresh start is a failure.
MAX_RESTARTS = 2


@dataclasses.dataclass
class SyncResult:
    """What one ``sync`` did; ``to_json`` for ``python -m channelkit sync --json``."""

    subscription_id: str
    outcome: str = DONE
    passes: int = 0
    batches: int = 0
    items: int = 0
    resyncs: int = 0
    error: str | None = None
    #: When the oldest change handed over (not a resync's) happened, if its API says (ms).
    oldest_change_ms: int | None = None
    #: ``failed`` on a transient refusal (429, 5xx, a broken connection): a later pass may succeed.
    transient: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriptionId": self.subscription_id,
            "outcome": self.outcome,
            "passes": self.passes,
            "batches": self.batches,
            "items": self.items,
            "resyncs": self.resyncs,
            "error": self.error,
            "oldestChangeMs": self.oldest_change_ms,
        }


class _Pass:
    """One pass over a feed, from the stored cursor to the end (or a stop)."""

    def __init__(self, run: _Run, subscription: Subscription):
        self.run, self.subscription = run, subscription
        self.feed: Feed = run.feed
        self.cursor = Cursor() if self.feed.kind == GET else Cursor.decode(subscription.cursor)
        self.restarts = 0
        #: The cursor after the last page, saved by the write that ends the pass (``SyncLease.finish``).
        self.end_cursor: Any = KEEP

    def go(self) -> str:
        pages = 0
        while True:
            # The first page of a pass is always listed: a pass owed to a mark is made, even
            # when the settle before it spent the budget (else its notification's change waits
            # for the next notification, or the backstop).
            if pages and self.run.out_of_time():
                return OUT_OF_TIME
            pages += 1
            call = self.feed.call(self.cursor)
            try:
                response = self.run.google.call(
                    self.feed.api,
                    self.feed.version,
                    call.method,
                    call.params,
                    credentials=self.subscription.credentials,
                )
            except GoogleApiError as exc:
                if self.feed.restarts(exc) and self.restarts < MAX_RESTARTS:
                    self.restart()
                    continue
                self.run.failure = exc
                return FAILED
            step = self.feed.step(self.cursor, response)
            if step.items or step.resync_complete:
                batch = Batch(
                    self.subscription.id,
                    self.cursor.encode() if self.feed.kind != GET else None,
                    step.items,
                    resync=self.cursor.resync,
                    resync_complete=step.resync_complete,
                )
                try:
                    self.run.sink.deliver(batch, self.subscription)
                except Exception as exc:  # noqa: BLE001 - the app's handler may raise anything
                    self.run.handler_error = exc
                    return HANDLER_FAILED
                self.run.note(batch, self.feed)
            moved = step.cursor != self.cursor and self.feed.kind != GET
            if step.end:  # the last page's cursor rides on the write that ends the pass
                self.end_cursor = step.cursor.encode() if moved else KEEP
                self.cursor = step.cursor
                return DONE
            if moved:
                self.subscription = self.run.lease.save(step.cursor.encode())
            self.cursor = step.cursor

    def restart(self) -> None:
        """The cursor is gone: drop it and list everything again (saved, so a crash resumes the resync)."""
        self.restarts += 1
        self.run.result.resyncs += 1
        self.cursor = Cursor(resync=True)
        self.subscription = self.run.lease.save(self.cursor.encode())
        logs.event(log, "INFO", "cursor refused by Google: full resync", subscriptionId=self.subscription.id)


class _Run:
    """One ``sync`` call: the lease, the passes, and how it ended."""

    def __init__(self, subscription: Subscription, feed: Feed, **parts: Any):
        self.subscription, self.feed = subscription, feed
        self.store: ChannelStore = parts["store"]
        self.google: GoogleApi = parts["google"]
        self.sink: ChangeSink = parts["sink"]
        self.clock: Callable[[], float] = parts["clock"]
        self.monotonic: Callable[[], float] = parts["monotonic"]
        self.deadline = self.monotonic() + parts["budget"] if parts["budget"] is not None else None
        self.lease = SyncLease(
            self.store,
            subscription.id,
            parts["owner"],
            lease_ms=int(parts["lease"] * 1000),
            clock_ms=lambda: int(self.clock() * 1000),
        )
        self.result = SyncResult(subscription.id)
        self.failure: GoogleApiError | None = None
        self.handler_error: Exception | None = None
        self.suspend_after: int = parts["suspend_after"]
        self.settle_seconds: float = parts["settle"]
        self.settled = 0  # settles so far: each further one waits twice as long (up to MAX_SETTLE)
        self.sleep: Callable[[float], None] = parts["sleep"]

    def note(self, batch: Batch, feed: Feed) -> None:
        """Count a batch the app took, and how old its oldest change was."""
        self.result.batches += 1
        self.result.items += len(batch.items)
        if not batch.resync:
            times = [t for t in map(feed.item_time, batch.items) if t is not None]
            if times and (self.result.oldest_change_ms is None or min(times) < self.result.oldest_change_ms):
                self.result.oldest_change_ms = min(times)

    def settle(self) -> None:
        """Before one more pass, let the rest of a burst arrive (and leave its one mark) first.

        Only when notifications came during a pass: a lone notification waits for nothing.
        """
        wait = min(self.settle_seconds * 2**self.settled, max(MAX_SETTLE, self.settle_seconds))
        self.settled += 1
        if self.deadline is not None:
            wait = min(wait, max(0.0, self.deadline - self.monotonic()))
        if wait > 0:
            self.sleep(wait)

    def out_of_time(self) -> bool:
        return self.deadline is not None and self.monotonic() >= self.deadline

    def go(self) -> SyncResult:
        acquired, subscription = self.lease.acquire()
        if acquired is not Acquired.TAKEN or subscription is None:
            self.result.outcome = HELD if acquired is Acquired.MARKED else INACTIVE
            return self.result
        try:
            while True:
                self.result.passes += 1
                this_pass = _Pass(self, subscription)
                outcome = this_pass.go()
                if outcome != DONE:
                    self.stop(outcome)
                    return self.result
                if not self.lease.finish(this_pass.end_cursor):
                    self.result.outcome = DONE
                    return self.result
                self.settle()
                subscription = self.store.get_subscription(subscription.id)
        except SyncLeaseLostError as exc:
            self.result.outcome, self.result.error = LEASE_LOST, str(exc)
            return self.result

    def stop(self, outcome: str) -> None:
        """Let the lease go; a lasting refusal by Google goes to the lifecycle in the same write."""
        self.result.outcome = outcome
        change: Callable[[Subscription], Subscription] | None = None
        if self.failure is not None:
            failure, detail = judge_failure(self.failure), str(self.failure)[:500]
            self.result.error = detail
            self.result.transient = failure.kind is FailureKind.TRANSIENT
            now_ms = int(self.clock() * 1000)

            def change(current: Subscription) -> Subscription:
                return record_failure(
                    current, failure, now_ms=now_ms, suspend_after=self.suspend_after, detail=detail
                )

        elif self.handler_error is not None:
            self.result.error = str(self.handler_error)[:500]
        self.lease.release(change)
        logs.event(
            log,
            "WARNING" if outcome in (FAILED, HANDLER_FAILED) else "INFO",
            f"sync stopped: {outcome}",
            subscriptionId=self.subscription.id,
            outcome=outcome,
            reason=self.result.error,
        )


def sync(
    subscription_id: str,
    *,
    store: ChannelStore | None = None,
    google: GoogleApi | None = None,
    sink: ChangeSink | None = None,
    clock: Callable[[], float] | None = None,
    monotonic: Callable[[], float] | None = None,
    budget: float | None = None,
    lease: float | None = None,
    owner: str | None = None,
    settings: config.Settings | None = None,
    settle: float = SETTLE,
    sleep: Callable[[float], None] | None = None,
) -> SyncResult:
    """Run a catch-up sync of one ``--sync`` subscription; a ``SyncResult``.

    ``sink`` defaults to the app's (``CHANNELKIT_CHANGE_HANDLER`` and/or
    ``CHANNELKIT_PUBSUB_TOPIC``; ``ConfigError`` with neither). ``budget``: seconds
    after which no new page is started but a pass's first (None: no limit). ``lease``:
    seconds the sync lease lasts (default ``CHANNELKIT_SYNC_LEASE``), renewed by each
    page saved. ``settle``: seconds to wait before one more pass when notifications
    came during a pass, doubled for each further one up to ``MAX_SETTLE``, so that a
    burst costs a few passes (``sleep`` waits; tests pass their own). Raises ``SubscriptionNotFoundError``, or ``FeedError`` for
    a subscription made without ``--sync``.
    """
    store = store or open_store()
    subscription = store.get_subscription(subscription_id)
    if not subscription.sync:
        raise FeedError(f"subscription {subscription_id!r} was not made with --sync")
    feed = feed_for(subscription.api, subscription.version, subscription.method, subscription.method_params)
    if feed.kind == BODY:
        return SyncResult(subscription_id, outcome=NOTHING)
    if sink is None:
        sink = load_change_sink(settings)
        if sink is None:
            raise ConfigError("a sync needs CHANNELKIT_CHANGE_HANDLER or CHANNELKIT_PUBSUB_TOPIC")
    run = _Run(
        subscription,
        feed,
        store=store,
        google=google or GoogleApi(store=store),
        sink=sink,
        clock=clock or time.time,
        monotonic=monotonic or time.monotonic,
        budget=budget,
        lease=lease if lease is not None else (settings.sync_lease if settings else config.sync_lease()),
        owner=owner or uuid.uuid4().hex,
        suspend_after=settings.suspend_after if settings else config.suspend_after(),
        settle=settle,
        sleep=sleep or time.sleep,
    )
    return run.go()


def first_cursor(
    feed: Feed, params: dict[str, Any], google: GoogleApi, *, credentials: str | None, initial: bool
) -> str | None:
    """The cursor a new ``--sync`` subscription starts from, taken before its ``watch``.

    Drive ``changes.watch``: the given ``pageToken``, else ``changes.getStartPageToken``
    (same drive parameters), which also goes into ``params`` for the watch. A
    ``syncToken`` API: the given ``syncToken``, else the collection listed to its
    end (its items are not delivered). With ``initial`` the first sync lists what
    exists now and delivers it as one resync.
    """
    if feed.kind != LIST:
        return None
    if feed.method == "changes.watch":
        token = params.get("pageToken")
        if token is None:
            start = feed.call(Cursor(resync=True))
            answer = google.call(feed.api, feed.version, start.method, start.params, credentials=credentials)
            token = params["pageToken"] = answer["startPageToken"]
        return Cursor(token=token, resync=initial).encode()
    if params.get("syncToken"):
        return str(params["syncToken"])
    cursor = Cursor(resync=True)
    if initial:
        return cursor.encode()
    while True:
        call = feed.call(cursor)
        answer = google.call(feed.api, feed.version, call.method, call.params, credentials=credentials)
        step = feed.step(cursor, answer)
        cursor = step.cursor
        if step.end:
            return cursor.encode()

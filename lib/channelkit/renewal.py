"""Renewal: keep every subscription alive by replacing channels before they expire.

Google never renews a channel. Each run (Cloud Scheduler → the ``renew``
function, or ``python -m channelkit renew``) does three things:

1. *Sweep*: a ``pending`` channel older than the renewal lease belongs to a
   crashed subscribe or renewal. It is stopped at Google (404 = it never went
   live) and marked ``failed``, so nothing stays live without a record.
2. *Finish stops*: channels marked ``stop_pending`` are stopped at Google again.
3. *Renew*: every ``active`` channel expiring within ``CHANNELKIT_RENEW_BEFORE``
   is claimed with a lease (one winner among overlapping runs) and replaced:
   successor stored ``pending`` → ``watch`` → successor ``active`` → old marked
   ``stopped`` (``renewed_by`` links them) → old stopped at Google. New before
   old: there is never a moment without a live channel. Once the successor is
   live, the app's handler gets a synthetic ``renewed`` notification (at least
   once) for a catch-up sync.

Renewing one channel (``renew_channel``) is a self-contained, idempotent unit:
a crash after any step converges on the next run. Channels are renewed in
parallel with a bound; a run that nears its time budget claims no more work.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from channelkit import config, logs
from channelkit.channel import Channel, Notification, to_millis
from channelkit.errors import (
    ChannelConflictError,
    ChannelkitError,
    GoogleApiError,
    ResourceGoneError,
    TransientApiError,
)
from channelkit.google_api import GoogleApi
from channelkit.store import ACTIVE, FAILED, PENDING, STOPPED, ChannelStore, open_store
from channelkit.subscribe import activate, error_text, stop_at_google

log = logs.get_logger(__name__)

RENEWED_STATE = "renewed"
#: Synthetic notifications carry message number 0: Google's numbers start at 1.
SYNTHETIC_MESSAGE_NUMBER = 0


@dataclasses.dataclass
class RenewalSummary:
    """What one run did; ``to_json()`` is the renew function's answer."""

    renewed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    stopped: list[str] = dataclasses.field(default_factory=list)
    deferred: list[str] = dataclasses.field(default_factory=list)
    duration_ms: int = 0
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, item: Any) -> None:
        with self._lock:
            getattr(self, kind).append(item)

    def to_json(self) -> dict[str, Any]:
        kinds = ("renewed", "failed", "skipped", "stopped", "deferred")
        result: dict[str, Any] = {kind: len(getattr(self, kind)) for kind in kinds}
        result["details"] = {kind: list(getattr(self, kind)) for kind in kinds}
        result["durationMs"] = self.duration_ms
        return result


@dataclasses.dataclass
class Renewer:
    """One renewal run's collaborators and settings (clock and owner injectable)."""

    store: ChannelStore
    google: GoogleApi
    dispatcher: Any = None
    clock: Callable[[], float] = time.time
    renew_before: float | None = None
    lease_seconds: float | None = None
    owner: str = dataclasses.field(default_factory=lambda: f"renew-{uuid.uuid4().hex[:12]}")
    #: When ``due()`` listed the channels (ms on ``clock``); None: never listed.
    listed_ms: int | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        self.renew_before = config.renew_before(self.renew_before)
        self.lease_seconds = config.renew_lease(self.lease_seconds)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- the three phases -------------------------------------------------------

    def stale_pending(self) -> list[Channel]:
        """``pending`` channels older than the lease: a crashed subscribe or renewal left them."""
        now_ms = self.now_ms()
        stale_before = now_ms - self.lease_seconds * 1000
        return [
            c
            for c in self.store.list(status=PENDING)
            if (to_millis(c.created_at) or 0) <= stale_before and (c.lease_until or 0) <= now_ms
        ]

    def sweep_channel(self, channel: Channel, summary: RenewalSummary) -> None:
        """Abandon one stale pending channel (unless it was activated meanwhile)."""
        predecessor = self.store.find(channel.renews) if channel.renews else None
        if self.abandon(channel, predecessor, "abandoned: its watch never completed"):
            summary.add("failed", {"id": channel.id, "reason": "abandoned pending channel"})

    def finish_stop(self, channel: Channel, summary: RenewalSummary) -> None:
        """Stop at Google a channel whose earlier stop failed."""
        if stop_at_google(channel, store=self.store, google=self.google) is None:
            summary.add("stopped", channel.id)

    def due(self) -> list[Channel]:
        self.listed_ms = self.now_ms()
        return self.store.due_for_renewal(self.listed_ms + int(self.renew_before * 1000))

    # --- one channel --------------------------------------------------------------

    def renew_channel(self, old: Channel, summary: RenewalSummary) -> None:
        """Replace ``old`` by a successor; safe to repeat after a crash at any step.

        ``old`` is the channel as ``due()`` listed it. A claim that was never
        released (``leaseOwner`` still set) is the trace of a run that crashed or
        stalled mid-renewal: only then can a successor already exist, and only
        then are the subscription's channels searched for it (a query per
        channel would cost far more than the renewal itself). So a claim is
        released only by a run that found no such trace and finished cleanly;
        after an error, as after a crash, it stays until it lapses, and the
        next run looks for what was left.
        """
        suspect = self._may_have_successor(old)
        claimed = self.store.claim_lease(
            old.id, self.owner, now_ms=self.now_ms(), lease_seconds=self.lease_seconds
        )
        if claimed is None:
            summary.add("skipped", {"id": old.id, "reason": "claimed by another run or no longer active"})
            return
        released = self._renew_claimed(claimed, summary, search=suspect)
        if not released and not suspect:
            self.store.release_lease(old.id, self.owner)

    def _may_have_successor(self, old: Channel) -> bool:
        """Could a run have started replacing ``old`` without finishing? (see ``renew_channel``)"""
        if old.lease_owner is not None or self.listed_ms is None:
            return True
        # Listed long ago: another run may have claimed it since, and lapsed.
        return self.now_ms() - self.listed_ms >= self.lease_seconds * 1000

    def _renew_claimed(self, old: Channel, summary: RenewalSummary, *, search: bool = True) -> bool:
        """Renew a claimed channel; True when its retirement released the claim too."""
        successor = None
        for candidate in self._successors(old) if search else []:
            if candidate.status == PENDING:
                if self.abandon(candidate, old, "abandoned: superseded by a later renewal"):
                    continue
                candidate = self.store.get(candidate.id)  # activated meanwhile
            if candidate.status != ACTIVE:
                continue
            if successor is None:
                successor = candidate  # a crashed or slow run got this far: finish its work
            else:
                self.abandon(candidate, old, "abandoned: a second successor", expect=ACTIVE)
        if successor is None:
            successor = self._new_successor(old)
            try:
                successor = activate(successor, store=self.store, google=self.google)
            except ResourceGoneError as exc:
                self.store.update(old.id, status=FAILED, last_error=error_text(exc))
                summary.add("failed", {"id": old.id, "reason": f"watched resource is gone: {exc}"})
                self._log("WARNING", "subscription failed: resource gone", old, outcome="failed")
                return False
            except ChannelConflictError:
                summary.add("skipped", {"id": old.id, "reason": "stopped during renewal"})
                return False
            except GoogleApiError as exc:
                if isinstance(exc, TransientApiError):
                    self._stop_maybe_live(successor, old)
                self.store.update(old.id, last_error=error_text(exc))
                summary.add("skipped", {"id": old.id, "reason": f"retry next run: {exc}"})
                self._log("WARNING", "renewal postponed", old, outcome="postponed", error=str(exc))
                return False
        # Tell the app before retiring the old channel: a crash in between sends it
        # again on the next run (at least once), never not at all.
        self._notify_renewed(successor)
        return self._retire(old, successor, summary)

    def _successors(self, old: Channel) -> list[Channel]:
        if not old.subscription_id:
            return []
        return [
            c
            for c in self.store.list(subscription_id=old.subscription_id)
            if c.renews == old.id and c.status in (PENDING, ACTIVE)
        ]

    def _new_successor(self, old: Channel) -> Channel:
        now_ms = self.now_ms()
        lifetime = None
        created = to_millis(old.created_at)
        if old.expiration and created is not None and old.expiration > created:
            lifetime = old.expiration - created  # ask for what Google granted last time
        successor = old.copy(
            id=str(uuid.uuid4()),
            expiration=now_ms + lifetime if lifetime else None,
            resource_id="",
            resource_uri="",
            status=PENDING,
            created_at=datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC),
            renews=old.id,
            renewed_by=None,
            lease_until=None,
            lease_owner=None,
            last_error=None,
            stop_pending=None,
        )
        self.store.create(successor)
        return successor

    def _retire(self, old: Channel, successor: Channel, summary: RenewalSummary) -> bool:
        """The successor is live: mark the old channel stopped (its claim released in the
        same write), then stop it at Google. True if this run retired it."""
        try:
            retired = self.store.update(
                old.id,
                expect_status=ACTIVE,
                status=STOPPED,
                renewed_by=successor.id,
                stopped_at=self.now_ms(),
                stop_pending=True,
                last_error=None,
                lease_until=None,
                lease_owner=None,
            )
        except ChannelConflictError:
            self._retire_conflict(old.id, successor, summary)
            return False
        summary.add("renewed", {"old": old.id, "new": successor.id})
        if stop_at_google(retired, store=self.store, google=self.google) is None:
            summary.add("stopped", old.id)
        self._log("INFO", "channel renewed", successor, outcome="renewed", renews=old.id)
        return True

    def _retire_conflict(self, old_id: str, successor: Channel, summary: RenewalSummary) -> None:
        """The old channel left ``active`` while we renewed it: find out why, on what is stored."""
        current = self.store.get(old_id)
        if current.renewed_by == successor.id:
            summary.add("skipped", {"id": old_id, "reason": "renewed by another run"})
        elif current.renewed_by:
            # Another run retired it to its own successor: ours is one too many.
            self.abandon(successor, current, "abandoned: another run renewed first", expect=ACTIVE)
            summary.add("skipped", {"id": old_id, "reason": "renewed by another run"})
        elif current.status == STOPPED:
            # Stopped by hand while we renewed: the subscription is over, successor included.
            from channelkit.subscribe import stop

            stop(successor.id, store=self.store, google=self.google)
            summary.add("skipped", {"id": old_id, "reason": "stopped during renewal"})
        else:
            self.abandon(successor, current, f"abandoned: predecessor became {current.status}", expect=ACTIVE)
            summary.add("skipped", {"id": old_id, "reason": f"channel became {current.status}"})

    def abandon(
        self, channel: Channel, predecessor: Channel | None, reason: str, *, expect: str = PENDING
    ) -> bool:
        """Mark a channel ``failed`` and make sure Google forgets it.

        Only if it is still ``expect`` (by default ``pending``): False when it
        moved on meanwhile (say, a slow run activated it), and nothing is done.
        """
        try:
            current = self.store.update(channel.id, expect_status=expect, status=FAILED, last_error=reason)
        except ChannelConflictError:
            return False
        self._stop_maybe_live(current, predecessor)
        return True

    def _stop_maybe_live(self, channel: Channel, predecessor: Channel | None) -> None:
        """Stop a channel that may have gone live at Google without our knowing its id.

        Google's resource id is stable for a watched resource, so the
        predecessor's stands in when the channel never learned its own.
        """
        resource_id = channel.resource_id or (predecessor.resource_id if predecessor else "")
        if not resource_id:
            return
        marked = self.store.update(channel.id, resource_id=resource_id, stop_pending=True)
        stop_at_google(marked, store=self.store, google=self.google)

    def _notify_renewed(self, successor: Channel) -> None:
        if self.dispatcher is None:
            return
        notification = Notification(
            SYNTHETIC_MESSAGE_NUMBER,
            RENEWED_STATE,
            successor.resource_uri,
            successor.resource_id,
            channel_id=successor.id,
            channel_expiration=successor.expires_at,
        )
        try:
            # A Dispatcher, or any callable (notification, channel), as the webhook takes.
            send = getattr(self.dispatcher, "dispatch", self.dispatcher)
            send(notification, successor)
        except Exception as exc:  # noqa: BLE001 - the app's handler may raise anything
            self._log(
                "ERROR",
                "renewed notification not delivered",
                successor,
                outcome="dispatch_failed",
                error=type(exc).__name__,
            )

    def _log(self, severity: str, message: str, channel: Channel, **fields: Any) -> None:
        logs.event(
            log, severity, message, channelId=channel.id, subscriptionId=channel.subscription_id, **fields
        )


def renew_due(
    *,
    store: ChannelStore | None = None,
    google: GoogleApi | None = None,
    dispatcher: Any = None,
    clock: Callable[[], float] = time.time,
    renew_before: float | None = None,
    concurrency: int | None = None,
    budget_seconds: float | None = None,
    lease_seconds: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RenewalSummary:
    """One renewal run: sweep, finish pending stops, renew what is due. Never raises for one channel."""
    started = time.monotonic()
    store = store or open_store()
    google = google or GoogleApi()
    renewer = Renewer(store, google, dispatcher, clock, renew_before, lease_seconds)
    budget = config.renew_budget(budget_seconds)
    summary = RenewalSummary()
    # Renewals first: a slow Google stop must never cost a subscription its channel.
    tasks = [(renewer.renew_channel, c) for c in renewer.due()]
    renewals = len(tasks)
    tasks += [(renewer.finish_stop, c) for c in store.pending_stops()]
    tasks += [(renewer.sweep_channel, c) for c in renewer.stale_pending()]
    renewed_count = 0
    count_lock = threading.Lock()

    def work(task) -> None:
        nonlocal renewed_count
        unit, channel = task
        try:
            if time.monotonic() - started > budget:
                summary.add("deferred", channel.id)
                return
            unit(channel, summary)
        except ChannelkitError as exc:  # the store or Google failed for this one: next run
            summary.add("skipped", {"id": channel.id, "reason": error_text(exc)})
        finally:
            if unit == renewer.renew_channel:
                with count_lock:
                    renewed_count += 1
                    if progress:
                        progress(renewed_count, renewals)

    workers = config.renew_concurrency(concurrency)
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="renew") as pool:
        list(pool.map(work, tasks))
    summary.duration_ms = int((time.monotonic() - started) * 1000)
    logs.event(
        log,
        "INFO",
        "renewal run finished",
        outcome="done",
        **{k: v for k, v in summary.to_json().items() if k != "details"},
    )
    return summary


def renewal_dispatcher() -> Any:
    """The app's dispatcher for ``renewed`` notifications, or None if it is misconfigured.

    Renewal must go on when the handler cannot be imported or the topic is
    malformed: a broken handler must not also let every channel expire. The
    handler is imported when the first ``renewed`` notification is sent.
    """
    from channelkit.dispatch import load_dispatcher

    try:
        return load_dispatcher(prepare=False)
    except ChannelkitError as exc:
        logs.event(
            log,
            "CRITICAL",
            f"renewed notifications are not delivered: {exc}",
            outcome="dispatch_config_error",
        )
        return None


def run_cli(*, json_output: bool = False) -> int:
    """``python -m channelkit renew``: one run, a progress line on a terminal, then the summary."""
    interactive = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if interactive:
            print(f"\rrenewing {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    summary = renew_due(dispatcher=renewal_dispatcher(), progress=progress)
    data = summary.to_json()
    if json_output:
        print(json.dumps(data, indent=2))
    else:
        for item in summary.renewed:
            print(f"renewed  {item['old']} -> {item['new']}")
        for item in summary.failed:
            print(f"failed   {item['id']}: {item['reason']}")
        for item in summary.skipped:
            print(f"skipped  {item['id']}: {item['reason']}")
        for channel_id in summary.deferred:
            print(f"deferred {channel_id} (time budget reached; next run)")
        print(
            f"{data['renewed']} renewed, {data['failed']} failed, {data['skipped']} skipped, "
            f"{data['stopped']} stopped, {data['deferred']} deferred"
        )
    return 0

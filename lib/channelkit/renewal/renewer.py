"""Renewing one channel: each step of ``steps`` done by one method of ``Renewer``.

``Renewer.renew_channel`` walks a channel from ``CLAIM_LEASE`` to ``DONE``:
the step ``WATCH`` is done by the method ``_watch`` (and so on), which does
its part and names the step that follows: one that ``NEXT_STEPS`` allows, or
a RuntimeError says the code broke the drawing in ``steps``. What the steps learn
(the claimed channel, its successor) is kept on a ``ChannelRenewal``; what
became of the channel is counted on the run's ``RenewalSummary``.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
import uuid
from collections.abc import Callable
from typing import Any

from channelkit import config, logs, signing
from channelkit.channel import Channel, Notification, to_millis
from channelkit.errors import (
    ChannelConflictError,
    ChannelNotFoundError,
    GoogleApiError,
    ResourceGoneError,
    TransientApiError,
)
from channelkit.events import deliver_events, dispatch_events, without_events
from channelkit.feeds import rewatch_params
from channelkit.google_api import INVALID_GRANT, GoogleApi
from channelkit.lifecycle import record_success
from channelkit.migrate import ensure_subscription
from channelkit.renewal.cleanup import abandon, stop_maybe_live
from channelkit.renewal.lifecycle import after_failure, after_success, suspend_credential
from channelkit.renewal.outcomes import RenewalOutcome, RenewalSummary
from channelkit.renewal.steps import NEXT_STEPS, RenewalStep
from channelkit.signing import Signer
from channelkit.store import ACTIVE, FAILED, PENDING, STOPPED, ChannelStore
from channelkit.store.base import lease_claim
from channelkit.store.batches import ChangeChannel, ChangeSubscription, NewChannel
from channelkit.store.records import SealedToken
from channelkit.subscribe import active_fields, error_text, mark_active, stop_call, watched
from channelkit.subscription import Reason, State, Subscription

__all__ = [
    "RENEWED_STATE",
    "SYNTHETIC_MESSAGE_NUMBER",
    "ChannelRenewal",
    "Renewer",
    "renewed_notification",
    "send_renewed",
    "successor_of",
]


log = logs.get_logger("channelkit.renewal")

RENEWED_STATE = "renewed"
#: Synthetic notifications carry message number 0: Google's numbers start at 1.
SYNTHETIC_MESSAGE_NUMBER = 0


@dataclasses.dataclass
class ChannelRenewal:
    """What renewing one channel has learned so far."""

    #: The channel as ``due()`` listed it; once claimed, as the claim wrote it.
    old: Channel
    summary: RenewalSummary
    #: A run may have started replacing ``old`` without finishing: look for its successor.
    search: bool
    successor: Channel | None = None
    #: The successor as Google answered its watch, not stored active yet.
    watched: Channel | None = None
    #: The old channel as retired (marked stopped), to stop at Google.
    retired: Channel | None = None
    #: Its subscription's record (None only for a channel stored without a subscription id).
    subscription: Subscription | None = None
    #: The subscription as the renewal's commit wrote it (None: that commit left it as it was).
    recorded: Subscription | None = None
    #: Events sent to the app and still in the outbox: STOP_OLD's commit takes them out.
    delivered: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Renewer:
    """One renewal run's collaborators and settings (clock and owner injectable)."""

    store: ChannelStore
    google: GoogleApi
    dispatcher: Any = None
    clock: Callable[[], float] = time.time
    renew_before: float = dataclasses.field(default_factory=config.renew_before)
    lease_seconds: float = dataclasses.field(default_factory=config.renew_lease)
    suspend_after: int = dataclasses.field(default_factory=config.suspend_after)
    expiring_warn: float = dataclasses.field(default_factory=config.expiring_warn)
    owner: str = dataclasses.field(default_factory=lambda: f"renew-{uuid.uuid4().hex[:12]}")
    #: When ``due()`` listed the channels (ms on ``clock``); None: never listed.
    listed_ms: int | None = dataclasses.field(default=None, init=False)

    @classmethod
    def configured(
        cls,
        store: ChannelStore,
        google: GoogleApi,
        dispatcher: Any = None,
        clock: Callable[[], float] = time.time,
        *,
        settings: config.Settings | None = None,
        renew_before: int | None = None,
        lease_seconds: float | None = None,
        suspend_after: int | None = None,
        expiring_warn: float | None = None,
    ) -> Renewer:
        """A renewer whose numbers come from the arguments, else ``settings``, else the environment."""
        if settings is not None:
            renew_before = settings.renew_before if renew_before is None else renew_before
            lease_seconds = settings.renew_lease if lease_seconds is None else lease_seconds
            suspend_after = settings.suspend_after if suspend_after is None else suspend_after
            expiring_warn = settings.expiring_warn if expiring_warn is None else expiring_warn
        return cls(
            store,
            google,
            dispatcher,
            clock,
            config.renew_before(renew_before),
            config.renew_lease(lease_seconds),
            suspend_after=config.suspend_after(suspend_after),
            expiring_warn=config.expiring_warn(expiring_warn),
        )

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def due(self) -> list[Channel]:
        """Active channels expiring within ``renew_before``, soonest first."""
        self.listed_ms = self.now_ms()
        return self.store.due_for_renewal(self.listed_ms + int(self.renew_before * 1000))

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
        renewal = ChannelRenewal(old, summary, search=self._may_have_successor(old))
        step = RenewalStep.CHECK_SUBSCRIPTION
        while step is not RenewalStep.DONE:
            following: RenewalStep = getattr(self, "_" + step.name.lower())(renewal)
            if following not in NEXT_STEPS[step]:
                raise RuntimeError(f"renewal step {step.name} cannot lead to {following.name}")
            step = following

    def _may_have_successor(self, old: Channel) -> bool:
        """Could a run have started replacing ``old`` without finishing? (see ``renew_channel``)"""
        if old.lease_owner is not None or self.listed_ms is None:
            return True
        # Listed long ago: another run may have claimed it since, and lapsed.
        return self.now_ms() - self.listed_ms >= self.lease_seconds * 1000

    # --- the steps, in the order of RenewalStep ------------------------------------

    def _check_subscription(self, r: ChannelRenewal) -> RenewalStep:
        """Only an active subscription is renewed: a suspended one sees no watch until reactivated."""
        r.subscription = ensure_subscription(self.store, [r.old], self.now_ms())
        if r.subscription is not None and not r.subscription.is_active:
            reason = f"subscription {r.subscription.state}" + (
                f": {r.subscription.reason}" if r.subscription.reason else ""
            )
            self._hold(r, reason)  # out of the due query until reactivated
            return RenewalStep.DONE
        if isinstance(r.old.token, SealedToken):
            # A successor would carry a token that no notification can match: leave it to a run with the key.
            r.summary.add(RenewalOutcome.SKIPPED, {"id": r.old.id, "reason": SEALED_TOKEN})
            return RenewalStep.DONE
        return RenewalStep.CLAIM_LEASE if r.search else RenewalStep.CLAIM_AND_MAKE

    def _claim_and_make(self, r: ChannelRenewal) -> RenewalStep:
        """The lease and the pending successor in one commit: neither without the other."""
        now_ms = self.now_ms()
        successor = successor_of(r.old, now_ms, self.store.signer, r.subscription)
        claim = lease_claim(self.owner, now_ms=now_ms, lease_seconds=self.lease_seconds)
        try:
            claimed, made = self.store.write_together(
                ChangeChannel(r.old.id, claim, required=True), NewChannel(successor)
            )
        except (ChannelConflictError, ChannelNotFoundError):
            return self._not_claimed(r)
        r.old, r.successor = claimed, made
        return RenewalStep.WATCH

    def _claim_lease(self, r: ChannelRenewal) -> RenewalStep:
        claimed = self.store.claim_lease(
            r.old.id, self.owner, now_ms=self.now_ms(), lease_seconds=self.lease_seconds
        )
        if claimed is None:
            return self._not_claimed(r)
        r.old = claimed
        return RenewalStep.FIND_SUCCESSOR

    def _find_successor(self, r: ChannelRenewal) -> RenewalStep:
        """Adopt the active successor a crashed or slow run left; abandon every other one."""
        for candidate in self._successors(r.old):
            if candidate.status == PENDING:
                reason = "abandoned: superseded by a later renewal"
                if abandon(candidate, r.old, reason, store=self.store, google=self.google):
                    continue
                candidate = self.store.get(candidate.id)  # activated meanwhile
            if candidate.status != ACTIVE:
                continue
            if r.successor is None:
                r.successor = candidate  # a crashed or slow run got this far: finish its work
            else:
                reason = "abandoned: a second successor"
                abandon(candidate, r.old, reason, store=self.store, google=self.google, expect=ACTIVE)
        return RenewalStep.RECORD_RENEWAL if r.successor is not None else RenewalStep.MAKE_SUCCESSOR

    def _make_successor(self, r: ChannelRenewal) -> RenewalStep:
        r.successor = successor_of(r.old, self.now_ms(), self.store.signer, r.subscription)
        self.store.create(r.successor)
        return RenewalStep.WATCH

    def _watch(self, r: ChannelRenewal) -> RenewalStep:
        old, pending = r.old, r.successor
        assert pending is not None  # made by CLAIM_AND_MAKE or MAKE_SUCCESSOR
        try:
            r.watched = watched(pending, store=self.store, google=self.google)
        except GoogleApiError as exc:
            if isinstance(exc, TransientApiError):
                stop_maybe_live(pending, old, store=self.store, google=self.google)
            self._refused(r, exc)
            return RenewalStep.RELEASE_LEASE
        return RenewalStep.RECORD_RENEWAL

    def _refused(self, r: ChannelRenewal, exc: GoogleApiError) -> None:
        """Google refused the successor: record it on the subscription, then on the old channel."""
        old, detail = r.old, error_text(exc)
        subscription = r.subscription
        if subscription is not None:
            subscription = after_failure(
                self.store,
                subscription.id,
                old,
                exc,
                detail,
                now_ms=self.now_ms(),
                suspend_after=self.suspend_after,
                expiring_warn_ms=int(self.expiring_warn * 1000),
            )
        state = subscription.state if subscription is not None else None
        if isinstance(exc, ResourceGoneError) and state in (None, State.SUSPENDED):
            old = self.store.update(old.id, status=FAILED, last_error=detail)
            r.summary.add(RenewalOutcome.FAILED, {"id": old.id, "reason": f"watched resource is gone: {exc}"})
            _log("WARNING", "subscription suspended: resource gone", old, outcome="failed")
        elif state == State.SUSPENDED:
            assert subscription is not None
            old = self.store.update(old.id, held=True, last_error=detail)
            item = {"id": old.id, "subscriptionId": subscription.id, "reason": str(subscription.reason)}
            r.summary.add(RenewalOutcome.SUSPENDED, item)
            _log("WARNING", f"subscription suspended: {subscription.reason}", old, outcome="suspended")
        elif state == State.EXPIRED:
            old = self.store.update(old.id, status=FAILED, last_error=f"expired, renewal failed: {detail}")
            r.summary.add(RenewalOutcome.FAILED, {"id": old.id, "reason": f"expired, renewal failed: {exc}"})
            _log("ERROR", "subscription expired: renewal failed", old, outcome="expired")
        else:
            old = self.store.update(old.id, last_error=detail)
            r.summary.add(RenewalOutcome.SKIPPED, {"id": old.id, "reason": f"retry next run: {exc}"})
            _log("WARNING", "renewal postponed", old, outcome="postponed", error=str(exc))
        refused_grant = getattr(exc, "reason", None) == INVALID_GRANT or getattr(exc, "status", None) == 401
        if subscription is not None and subscription.reason == Reason.CREDENTIALS_INVALID and refused_grant:
            self._revoked(subscription, detail)
        if subscription is not None and subscription.events:
            channels = {old.id: old}
            deliver_events(
                self.store, self.dispatcher, subscription.id, known=subscription, channels=channels
            )

    def _revoked(self, subscription: Subscription, detail: str) -> None:
        """A stored grant Google refused: no other subscription of it may try it again."""
        reference = subscription.credentials or ""
        if not reference.startswith("user:"):
            return
        identities = getattr(self.google, "identities", None)
        if identities is not None:
            identities.revoke(reference.partition(":")[2])
        suspend_credential(self.store, reference, detail, now_ms=self.now_ms(), dispatcher=self.dispatcher)

    def _record_renewal(self, r: ChannelRenewal) -> RenewalStep:
        """One commit: the successor active (if just watched), ``renewed`` with its event on the
        subscription, the old channel stopped with its stop pending and its lease released."""
        successor = r.successor
        assert successor is not None  # found active, or made and watched
        now_ms = self.now_ms()
        items: list[Any] = []
        if r.watched is not None:
            fields = active_fields(r.watched)
            items.append(ChangeChannel(successor.id, _if_status(PENDING, fields), required=True))
        items.append(
            ChangeChannel(r.old.id, _if_status(ACTIVE, self._retired_fields(successor)), required=True)
        )
        if r.subscription is not None:
            items.append(ChangeSubscription(r.subscription.id, _recording(successor.id, now_ms)))
        try:
            written = self.store.write_together(*items)
        except (ChannelConflictError, ChannelNotFoundError):
            return RenewalStep.RECORD_APART  # something moved on meanwhile: judge each write alone
        if r.watched is not None:
            r.successor = written[0]
        r.retired = written[1 if r.watched is not None else 0]
        r.recorded = written[-1] if r.subscription is not None else None
        r.summary.add(RenewalOutcome.RENEWED, {"old": r.old.id, "new": successor.id})
        return RenewalStep.NOTIFY_RENEWED

    def _record_apart(self, r: ChannelRenewal) -> RenewalStep:
        """The renewal's writes one at a time, each judged on what is stored (a refused commit)."""
        if r.watched is not None:
            try:
                r.successor = mark_active(r.watched, store=self.store, google=self.google)
            except ChannelConflictError:
                r.summary.add(RenewalOutcome.SKIPPED, {"id": r.old.id, "reason": "stopped during renewal"})
                return RenewalStep.RELEASE_LEASE
        assert r.successor is not None
        if r.subscription is None:
            send_renewed(self.dispatcher, r.successor)
        else:
            written = after_success(self.store, r.subscription.id, r.successor, self.now_ms())
            if written is not None:
                channels = {r.successor.id: r.successor}
                deliver_events(self.store, self.dispatcher, written.id, known=written, channels=channels)
            else:  # recorded by a run that died before delivering, or not active: deliver what waits
                deliver_events(self.store, self.dispatcher, r.subscription.id)
        r.retired = self._retire(r.old, r.successor, r.summary)
        return RenewalStep.STOP_OLD if r.retired is not None else RenewalStep.RELEASE_LEASE

    def _notify_renewed(self, r: ChannelRenewal) -> RenewalStep:
        """Deliver the ``renewed`` event; it leaves the outbox in STOP_OLD's commit."""
        assert r.successor is not None
        if r.subscription is None:
            send_renewed(self.dispatcher, r.successor)
        elif r.recorded is not None:
            channels = {r.successor.id: r.successor}
            r.delivered = dispatch_events(self.store, self.dispatcher, r.recorded, channels=channels)
        else:  # recorded by a run that died before delivering, or not active: deliver what waits
            deliver_events(self.store, self.dispatcher, r.subscription.id)
        return RenewalStep.STOP_OLD

    def _stop_old(self, r: ChannelRenewal) -> RenewalStep:
        """``channels.stop`` for the old channel; then one commit: the stop, the events delivered."""
        assert r.retired is not None and r.successor is not None
        fields, error = stop_call(r.retired, google=self.google)
        items: list[Any] = []
        if fields:
            items.append(ChangeChannel(r.retired.id, lambda current: current.copy(**fields)))
        if r.delivered and r.subscription is not None:
            items.append(ChangeSubscription(r.subscription.id, without_events(r.delivered)))
        if items:
            self.store.write_together(*items)
        if error is None:
            r.summary.add(RenewalOutcome.STOPPED, r.old.id)
        _log("INFO", "channel renewed", r.successor, outcome="renewed", renews=r.old.id)
        return RenewalStep.DONE

    def _release_lease(self, r: ChannelRenewal) -> RenewalStep:
        if not r.search:  # else left to lapse: see renew_channel
            self.store.release_lease(r.old.id, self.owner)
        return RenewalStep.DONE

    def _not_claimed(self, r: ChannelRenewal) -> RenewalStep:
        reason = "claimed by another run or no longer active"
        r.summary.add(RenewalOutcome.SKIPPED, {"id": r.old.id, "reason": reason})
        return RenewalStep.DONE

    def _hold(self, r: ChannelRenewal, reason: str) -> None:
        """Take the channel out of the due query (one write, under the lease's own conditions)."""
        claimable = lease_claim(self.owner, now_ms=self.now_ms(), lease_seconds=self.lease_seconds)

        def hold(current: Channel) -> Channel | None:
            return current.copy(held=True) if claimable(current) is not None else None

        try:
            written = self.store.write_together(ChangeChannel(r.old.id, hold, required=True))
        except (ChannelConflictError, ChannelNotFoundError):
            self._not_claimed(r)
            return
        r.old = written[0]
        r.summary.add(RenewalOutcome.SKIPPED, {"id": r.old.id, "reason": reason})

    # --- what the steps share ------------------------------------------------------

    def _successors(self, old: Channel) -> list[Channel]:
        if not old.subscription_id:
            return []
        return [
            c
            for c in self.store.list(subscription_id=old.subscription_id)
            if c.renews == old.id and c.status in (PENDING, ACTIVE)
        ]

    def _retire(self, old: Channel, successor: Channel, summary: RenewalSummary) -> Channel | None:
        """The successor is live: mark the old channel stopped, its claim released in the
        same write. The channel as retired, or None if it had left ``active`` meanwhile."""
        try:
            retired = self.store.update(old.id, expect_status=ACTIVE, **self._retired_fields(successor))
        except ChannelConflictError:
            self._retire_conflict(old.id, successor, summary)
            return None
        summary.add(RenewalOutcome.RENEWED, {"old": old.id, "new": successor.id})
        return retired

    def _retired_fields(self, successor: Channel) -> dict[str, Any]:
        """What retiring the old channel writes: stopped, its stop at Google pending, lease released."""
        return {
            "status": STOPPED,
            "renewed_by": successor.id,
            "stopped_at": self.now_ms(),
            "stop_pending": True,
            "last_error": None,
            "lease_until": None,
            "lease_owner": None,
        }

    def _retire_conflict(self, old_id: str, successor: Channel, summary: RenewalSummary) -> None:
        """The old channel left ``active`` while we renewed it: find out why, on what is stored."""
        current = self.store.get(old_id)
        skipped = RenewalOutcome.SKIPPED
        if current.renewed_by == successor.id:
            summary.add(skipped, {"id": old_id, "reason": "renewed by another run"})
        elif current.renewed_by:
            # Another run retired it to its own successor: ours is one too many.
            reason = "abandoned: another run renewed first"
            abandon(successor, current, reason, store=self.store, google=self.google, expect=ACTIVE)
            summary.add(skipped, {"id": old_id, "reason": "renewed by another run"})
        elif current.status == STOPPED:
            # Stopped by hand while we renewed: the subscription is over, successor included.
            from channelkit.subscribe import stop

            stop(successor.id, store=self.store, google=self.google)
            summary.add(skipped, {"id": old_id, "reason": "stopped during renewal"})
        else:
            reason = f"abandoned: predecessor became {current.status}"
            abandon(successor, current, reason, store=self.store, google=self.google, expect=ACTIVE)
            summary.add(skipped, {"id": old_id, "reason": f"channel became {current.status}"})


def _if_status(status: str, fields: dict[str, Any]) -> Callable[[Channel], Channel | None]:
    """A change that sets ``fields`` on a channel that is ``status``; None on any other."""

    def change(current: Channel) -> Channel | None:
        return current.copy(**fields) if current.status == status else None

    return change


def _recording(successor_id: str, now_ms: int) -> Callable[[Subscription], Subscription | None]:
    """``renewed`` with its event, on an active subscription not told yet; else None (left as is)."""

    def change(current: Subscription) -> Subscription | None:
        if not current.is_active:
            return None
        return record_success(current, channel_id=successor_id, now_ms=now_ms)

    return change


#: Why a run without the deployment key leaves a channel whose token it cannot open.
SEALED_TOKEN = "token sealed under a key this process does not hold (CHANNELKIT_CREDENTIALS_KEY)"


def successor_of(
    old: Channel, now_ms: int, signer: Signer | None = None, subscription: Subscription | None = None
) -> Channel:
    """A new ``pending`` channel for the same subscription, asking for the lifetime ``old`` got.

    With a ``signer`` its id is signed and a derived token moves to the first key. With the
    ``subscription`` record of a ``--sync`` subscription, it watches from the cursor reached
    (``feeds.rewatch_params``: Drive's ``pageToken``), not from where ``old`` began.
    """
    lifetime = None
    created = to_millis(old.created_at)
    if old.expiration and created is not None and old.expiration > created:
        lifetime = old.expiration - created  # ask for what Google granted last time
    return old.copy(
        id=signing.new_channel_id(signer),
        token=signing.renewed_token(signer, old.token, old.subscription_id),
        expiration=now_ms + lifetime if lifetime else None,
        resource_id="",
        resource_uri="",
        status=PENDING,
        created_at=datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC),
        renews=old.id,
        method_params=rewatch_params(
            old.api,
            old.version,
            old.method,
            old.method_params or {},
            subscription.cursor if subscription is not None else None,
        ),
        renewed_by=None,
        lease_until=None,
        lease_owner=None,
        last_error=None,
        stop_pending=None,
        held=None,
    )


def renewed_notification(successor: Channel) -> Notification:
    """The synthetic notification that tells the app a channel was replaced (for a catch-up sync)."""
    return Notification(
        SYNTHETIC_MESSAGE_NUMBER,
        RENEWED_STATE,
        successor.resource_uri,
        successor.resource_id,
        channel_id=successor.id,
        channel_expiration=successor.expires_at,
    )


def send_renewed(dispatcher: Any, successor: Channel) -> None:
    """Give the app's handler a synthetic ``renewed`` notification; its failure is logged, not raised.

    ``dispatcher`` is a Dispatcher, or any callable (notification, channel) as
    the webhook takes; None sends nothing.
    """
    if dispatcher is None:
        return
    notification = renewed_notification(successor)
    try:
        send = getattr(dispatcher, "dispatch", dispatcher)
        send(notification, successor)
    except Exception as exc:  # noqa: BLE001 - the app's handler may raise anything
        error = type(exc).__name__
        _log("ERROR", "renewed notification not delivered", successor, outcome="dispatch_failed", error=error)


def _log(severity: str, message: str, channel: Channel, **fields: Any) -> None:
    logs.event(log, severity, message, channelId=channel.id, subscriptionId=channel.subscription_id, **fields)

"""One renewal run: every channel's work on a bounded pool, within a time budget.

Renewals go first, then the retried stops, then the sweep: a slow Google stop
must never cost a subscription its channel. Work not started when the budget
is spent is deferred to the next run; one channel's failure is counted, never
raised. With a renew topic, due channels past ``CHANNELKIT_RENEW_INLINE`` are
published to workers before the run starts on its own (``fanout``), and so are
renewals the budget left unstarted.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from channelkit import config, logs
from channelkit.channel import Channel
from channelkit.errors import ChannelkitError
from channelkit.events import deliver_pending
from channelkit.google_api import GoogleApi
from channelkit.health import check_health
from channelkit.renewal.cleanup import finish_stop, stale_pending, sweep_channel
from channelkit.renewal.fanout import ShardPublisher, plan_fanout, split_shards
from channelkit.renewal.outcomes import RenewalOutcome, RenewalSummary
from channelkit.renewal.renewer import Renewer
from channelkit.signing import NO_KEY_WARNING
from channelkit.store import ChannelStore, open_store
from channelkit.subscribe import error_text

__all__ = [
    "DISPATCH_VARIABLES",
    "renew_due",
    "renewal_collaborators",
    "renewal_dispatcher",
]


log = logs.get_logger("channelkit.renewal")

#: One channel's work in a run: (channel, summary) -> None.
Unit = Callable[[Channel, RenewalSummary], None]


def renew_due(
    *,
    store: ChannelStore | None = None,
    google: GoogleApi | None = None,
    dispatcher: Any = None,
    clock: Callable[[], float] = time.time,
    renew_before: int | None = None,
    concurrency: int | None = None,
    budget_seconds: float | None = None,
    lease_seconds: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    suspend_after: int | None = None,
    expiring_warn: float | None = None,
    settings: config.Settings | None = None,
    publisher: ShardPublisher | None = None,
    renew_inline: int | None = None,
    shard_size: int | None = None,
) -> RenewalSummary:
    """One renewal run: renew what is due, finish pending stops, sweep, deliver events left over.

    Never raises for one channel. ``progress(done, total)`` is called after each
    due channel's renewal. ``settings`` (resolved once, as the renew function
    does) supplies what the arguments leave out; without it the environment is read.
    ``publisher`` (else one for ``CHANNELKIT_RENEW_TOPIC``, when set) receives the
    shards of due channels past ``renew_inline``, and of renewals the budget left.
    """
    if settings is not None:
        concurrency = settings.renew_concurrency if concurrency is None else concurrency
        budget_seconds = settings.renew_budget if budget_seconds is None else budget_seconds
        renew_inline = settings.renew_inline if renew_inline is None else renew_inline
        shard_size = settings.renew_shard_size if shard_size is None else shard_size
    if publisher is None:
        topic = settings.renew_topic if settings is not None else config.renew_topic()
        publisher = ShardPublisher(topic) if topic else None
    started = time.monotonic()
    store = store or open_store()
    google = google or GoogleApi(store=store)
    renewer = Renewer.configured(
        store,
        google,
        dispatcher,
        clock,
        settings=settings,
        renew_before=renew_before,
        lease_seconds=lease_seconds,
        suspend_after=suspend_after,
        expiring_warn=expiring_warn,
    )
    budget = config.renew_budget(budget_seconds)
    summary = RenewalSummary()
    inline, fanned = plan_fanout(
        renewer.due(), config.renew_inline(renew_inline) if publisher is not None else None
    )
    listed_ms = renewer.listed_ms or renewer.now_ms()  # set by due(): a later channel is a renewal
    size = config.renew_shard_size(shard_size)
    if fanned:
        assert publisher is not None  # plan_fanout sends nothing without one
        _fan_out(publisher, fanned, size, summary, listed_ms=listed_ms, run=renewer.owner)
    tasks: list[tuple[Unit, Channel]] = [(renewer.renew_channel, c) for c in inline]
    renewals = len(tasks)
    late: list[Channel] = []  # renewals the budget left unstarted, for the workers
    tasks += [(functools.partial(finish_stop, store=store, google=google), c) for c in store.pending_stops()]
    stale = stale_pending(store, now_ms=renewer.now_ms(), lease_seconds=renewer.lease_seconds)
    tasks += [(functools.partial(sweep_channel, store=store, google=google), c) for c in stale]
    renewed_count = 0
    count_lock = threading.Lock()

    def work(index: int) -> None:
        nonlocal renewed_count
        unit, channel = tasks[index]
        try:
            if time.monotonic() - started > budget:
                if publisher is not None and index < renewals and channel.subscription_id:
                    with count_lock:
                        late.append(channel)
                else:
                    summary.add(RenewalOutcome.DEFERRED, channel.id)
                return
            unit(channel, summary)
        except ChannelkitError as exc:  # the store or Google failed for this one: next run
            summary.add(RenewalOutcome.SKIPPED, {"id": channel.id, "reason": error_text(exc)})
        finally:
            if index < renewals:
                with count_lock:
                    renewed_count += 1
                    if progress:
                        progress(renewed_count, renewals)

    workers = config.renew_concurrency(concurrency)
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="renew") as pool:
        list(pool.map(work, range(len(tasks))))
    if late:
        assert publisher is not None
        _fan_out(publisher, late, size, summary, listed_ms=listed_ms, run=renewer.owner)
    _backstop(store, google, dispatcher, clock, settings, budget - (time.monotonic() - started))
    if time.monotonic() - started <= budget:
        # Events a crash or a failed delivery left behind; younger ones belong to a live actor.
        recorded_before = renewer.now_ms() - int(renewer.lease_seconds * 1000)
        try:
            deliver_pending(store, dispatcher, recorded_before_ms=recorded_before)
        except ChannelkitError as exc:
            logs.event(log, "WARNING", "lifecycle events left for the next run", error=error_text(exc))
    summary.duration_ms = int((time.monotonic() - started) * 1000)
    counts = {k: v for k, v in summary.to_json().items() if k != "details"}
    logs.event(log, "INFO", "renewal run finished", outcome="done", **counts)
    _report(store, renewer, counts, settings)
    return summary


def _fan_out(
    publisher: ShardPublisher,
    channels: list[Channel],
    size: int,
    summary: RenewalSummary,
    *,
    listed_ms: int,
    run: str,
) -> None:
    """Publish the channels' subscriptions in shards; what Pub/Sub did not take is deferred."""
    shards = split_shards((c.subscription_id or "" for c in channels), size, listed_ms=listed_ms, run=run)
    sent, failed, error = publisher.publish(shards)
    for shard in sent:
        for subscription_id in shard.subscriptions:
            summary.add(RenewalOutcome.PUBLISHED, subscription_id)
    if failed:
        left = {s for shard in failed for s in shard.subscriptions}
        for channel in channels:
            if channel.subscription_id in left:
                summary.add(RenewalOutcome.DEFERRED, channel.id)
        logs.event(log, "WARNING", "renewal shards left for the next run", shards=len(failed), error=error)
    if sent:
        logs.event(log, "INFO", "renewal shards published", shards=len(sent), topic=publisher.topic)


def _backstop(
    store: ChannelStore,
    google: GoogleApi,
    dispatcher: Any,
    clock: Callable[[], float],
    settings: Any,
    left: float,
) -> None:
    """Sync the ``--sync`` subscriptions no notification synced lately (``renewal.backstop``); never raises."""
    from channelkit.change_sink import load_change_sink
    from channelkit.renewal.backstop import run_backstop

    if left <= 0:
        return
    try:
        sink = load_change_sink(settings)
        if sink is None:
            return  # nowhere to hand changes to: --sync subscriptions wait for a configured run
        counts = run_backstop(
            store,
            google,
            sink,
            dispatcher=dispatcher,
            clock=clock,
            backstop_seconds=settings.sync_backstop if settings is not None else config.sync_backstop(),
            budget_seconds=left,
            lease_seconds=settings.sync_lease if settings is not None else config.sync_lease(),
        )
    except ChannelkitError as exc:
        logs.event(log, "WARNING", "backstop sync left for the next run", error=error_text(exc))
        return
    if counts["synced"]:
        logs.event(log, "INFO", "backstop sync finished", **counts)


def _report(store: ChannelStore, renewer: Renewer, counts: dict[str, Any], settings: Any) -> None:
    """Keep the run's record for ``status`` and log the ``channelkit health`` line; never raises."""
    now_ms = renewer.now_ms()
    failures = counts.get("failed", 0) + counts.get("suspended", 0)
    try:
        store.record_run("renewal", {"at": now_ms, **counts, "renewalFailures": failures})
        report = check_health(
            store,
            now_ms=now_ms,
            expiring_warn=renewer.expiring_warn,
            quiet_after=settings.quiet_after if settings is not None else config.quiet_after(),
            renew_before=renewer.renew_before,
        )
    except ChannelkitError as exc:
        logs.event(log, "WARNING", "channelkit health unknown", outcome="unavailable", error=error_text(exc))
        return
    severity = "INFO" if report.healthy else "WARNING"
    logs.event(log, severity, "channelkit health", renewalFailures=failures, **report.log_fields())


#: Read by ``renewal_dispatcher()`` alone, which logs a broken handler or topic and renews
#: anyway: a bad one must not stop a run (channels would expire), so the settings skip them.
DISPATCH_VARIABLES = ("CHANNELKIT_HANDLER", "CHANNELKIT_PUBSUB_TOPIC")


def renewal_collaborators(environ: Mapping[str, str], *, logger: Any) -> dict[str, Any]:
    """What the renew and renew-worker functions build once per instance.

    ``settings`` (from ``environ`` without ``DISPATCH_VARIABLES``), ``store``,
    ``google`` and ``dispatcher``; a store without a key logs the warning that
    says so on ``logger``. Raises what ``Settings`` and ``open_store`` raise.
    """
    settings = config.Settings.from_env({k: v for k, v in environ.items() if k not in DISPATCH_VARIABLES})
    store = open_store(settings.store_url, **settings.store_options())
    if store.signer is None:
        logs.event(logger, "WARNING", NO_KEY_WARNING)
    return {
        "settings": settings,
        "store": store,
        "google": GoogleApi.from_settings(settings, store=store),
        "dispatcher": renewal_dispatcher(),
    }


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

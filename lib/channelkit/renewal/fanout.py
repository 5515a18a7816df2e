"""Renewal fan-out: a run that finds more due channels than it renews itself hands the rest to workers.

With ``CHANNELKIT_RENEW_TOPIC`` set, a run renews the soonest
``CHANNELKIT_RENEW_INLINE`` due channels itself and publishes the others'
subscription ids, ``CHANNELKIT_RENEW_SHARD_SIZE`` to a message (a *shard*), to
that topic. Each message triggers the ``renew-worker`` function
(``functions/renew_worker.py``), which calls ``renew_shard``: every listed
subscription whose active channel is still due is renewed by the same
``Renewer`` steps under the same leases as a run. So a subscription renewed
meanwhile (its active channel is now a successor that is not due) or leased by
another worker or run is skipped: each is renewed once, whoever gets there
first. Cloud Functions' autoscaling spreads the messages over instances, and
Pub/Sub redelivers a shard whose worker failed or crashed; what a crashed
worker left leased is finished by the next run once the lease lapses.

What is pure here: ``plan_fanout`` (which due channels stay, which go),
``split_shards``, ``shard_message`` and ``parse_shard`` / ``shard_from_event``
(``MalformedShardError``). The I/O: ``ShardPublisher`` (google-cloud-pubsub)
and ``renew_shard`` (the store and Google).
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from channelkit import config, logs
from channelkit.channel import Channel, to_millis
from channelkit.errors import ChannelkitError, MalformedShardError, ShardPublishError
from channelkit.google_api import GoogleApi
from channelkit.renewal.outcomes import RenewalOutcome, RenewalSummary
from channelkit.renewal.renewer import Renewer
from channelkit.store import ACTIVE, ChannelStore
from channelkit.subscribe import error_text

__all__ = [
    "MAX_SHARD_SIZE",
    "SHARD_VERSION",
    "Shard",
    "ShardPublisher",
    "is_due",
    "parse_shard",
    "plan_fanout",
    "renew_shard",
    "shard_from_event",
    "shard_message",
    "split_shards",
]

log = logs.get_logger("channelkit.renewal")

#: The shard message's format; a worker refuses any other (``MalformedShardError``).
SHARD_VERSION = 1
#: Most subscription ids a worker accepts in one shard (a Pub/Sub message holds far more).
MAX_SHARD_SIZE = config.MAX_RENEW_SHARD_SIZE
#: Longest subscription id accepted (a Firestore document id is at most 1,500 bytes).
MAX_ID_LENGTH = 1500
DEFAULT_PUBLISH_TIMEOUT = 30.0  # seconds to wait for Pub/Sub to take the run's shards


@dataclasses.dataclass(frozen=True)
class Shard:
    """Subscription ids for one worker; when the run listed them as due; the run (for the logs).

    A channel created after ``listed_ms`` is a renewal made meanwhile: the worker leaves it,
    even when its own lifetime is shorter than ``CHANNELKIT_RENEW_BEFORE``.
    """

    subscriptions: tuple[str, ...]
    listed_ms: int
    run: str = ""


# --- pure: what goes where, and the message -------------------------------------------


def plan_fanout(due: Sequence[Channel], inline: int | None) -> tuple[list[Channel], list[Channel]]:
    """Split the run's due channels (soonest first) into those it renews and those it publishes.

    ``inline`` None: no fan-out, all stay. Otherwise the first ``inline`` stay,
    and so does every channel without a subscription id (stored before
    subscription records: a shard names subscriptions); the rest go.
    """
    if inline is None:
        return list(due), []
    kept: list[Channel] = []
    sent: list[Channel] = []
    for channel in due:
        if len(kept) < inline or not channel.subscription_id:
            kept.append(channel)
        else:
            sent.append(channel)
    return kept, sent


def split_shards(subscription_ids: Iterable[str], size: int, *, listed_ms: int, run: str = "") -> list[Shard]:
    """The ids in order, each once, in shards of at most ``size`` (``size`` >= 1)."""
    if size < 1:
        raise ValueError("a shard holds at least one subscription")
    unique = list(dict.fromkeys(subscription_ids))
    return [Shard(tuple(unique[i : i + size]), listed_ms, run) for i in range(0, len(unique), size)]


def shard_message(shard: Shard) -> bytes:
    """A shard's Pub/Sub message data: ``{"v": 1, "subscriptions": [...], "listedAt": ms, "run": "..."}``."""
    body = {
        "v": SHARD_VERSION,
        "subscriptions": list(shard.subscriptions),
        "listedAt": shard.listed_ms,
        "run": shard.run,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def parse_shard(data: bytes | str) -> Shard:
    """The shard in a message's data; ``MalformedShardError`` for anything ``shard_message`` did not make."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedShardError(f"shard is not JSON: {exc}"[:200]) from exc
    if not isinstance(body, dict):
        raise MalformedShardError("shard is not a JSON object")
    if body.get("v") != SHARD_VERSION:
        raise MalformedShardError(f"shard version {body.get('v')!r}, expected {SHARD_VERSION}")
    ids = body.get("subscriptions")
    if not isinstance(ids, list) or not ids:
        raise MalformedShardError("shard has no list of subscription ids")
    if len(ids) > MAX_SHARD_SIZE:
        raise MalformedShardError(f"shard has {len(ids)} subscription ids, at most {MAX_SHARD_SIZE}")
    for value in ids:
        if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH or "/" in value:
            raise MalformedShardError(f"not a subscription id: {str(value)[:80]!r}")
    listed = body.get("listedAt")
    if not isinstance(listed, int) or isinstance(listed, bool) or listed < 0:
        raise MalformedShardError("shard has no listedAt time (ms)")
    run = body.get("run", "")
    if not isinstance(run, str):
        raise MalformedShardError("shard's run is not a string")
    return Shard(tuple(dict.fromkeys(ids)), listed, run[:100])


def shard_from_event(data: Any) -> Shard:
    """The shard in a Pub/Sub CloudEvent's data (``{"message": {"data": base64}}``)."""
    message = data.get("message") if isinstance(data, Mapping) else None
    encoded = message.get("data") if isinstance(message, Mapping) else None
    if not isinstance(encoded, str):
        raise MalformedShardError("event carries no Pub/Sub message data")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedShardError("message data is not base64") from exc
    return parse_shard(raw)


def is_due(channel: Channel, horizon_ms: int, listed_ms: int | None = None) -> bool:
    """What the run's due query finds: active, renewal not held, expiring by ``horizon_ms``;
    with ``listed_ms``, also made by then (a later channel is a renewal made meanwhile)."""
    created = to_millis(channel.created_at)
    return (
        channel.status == ACTIVE
        and not channel.held
        and channel.expiration is not None
        and channel.expiration <= horizon_ms
        and (listed_ms is None or created is None or created <= listed_ms)
    )


# --- publishing ----------------------------------------------------------------------


class ShardPublisher:
    """Publishes shards to the renew topic with google-cloud-pubsub (a client made on first use)."""

    def __init__(self, topic: str, *, publisher: Any = None, timeout: float = DEFAULT_PUBLISH_TIMEOUT):
        self.topic = topic
        self.timeout = timeout
        self._publisher = publisher

    def _client(self) -> Any:
        if self._publisher is None:
            try:
                import google.cloud.pubsub_v1 as pubsub_v1

                self._publisher = pubsub_v1.PublisherClient()
            except Exception as exc:
                raise ShardPublishError(f"cannot create the Pub/Sub client: {type(exc).__name__}") from exc
        return self._publisher

    def publish(self, shards: Sequence[Shard]) -> tuple[list[Shard], list[Shard], str | None]:
        """Publish every shard at once and wait: (taken by Pub/Sub, not taken, the first error)."""
        try:
            client = self._client()
        except ShardPublishError as exc:
            return [], list(shards), str(exc)
        from google.api_core import retry as gretry

        retry = gretry.Retry(timeout=self.timeout)
        futures = []
        for shard in shards:
            try:
                future = client.publish(
                    self.topic, shard_message(shard), retry=retry, timeout=self.timeout, run=shard.run
                )
            except Exception as exc:  # noqa: BLE001 - the client library's own errors, wrapped below
                future = exc
            futures.append((shard, future))
        sent, failed, error = [], [], None
        for shard, future in futures:
            try:
                if isinstance(future, Exception):
                    raise future
                future.result(timeout=self.timeout)
            except Exception as exc:  # noqa: BLE001 - reported as text, the shard stays due
                failed.append(shard)
                error = error or f"publish to {self.topic} failed: {type(exc).__name__}: {exc}"[:300]
            else:
                sent.append(shard)
        return sent, failed, error


# --- the worker's side ---------------------------------------------------------------


def renew_shard(
    shard: Shard,
    *,
    store: ChannelStore,
    google: GoogleApi,
    dispatcher: Any = None,
    clock: Callable[[], float] = time.time,
    settings: config.Settings | None = None,
    renew_before: int | None = None,
    concurrency: int | None = None,
    lease_seconds: float | None = None,
) -> RenewalSummary:
    """Renew the shard's subscriptions whose active channel is due, as a run would; skip the rest.

    Each due channel goes through ``Renewer.renew_channel`` (lease first): one
    leased by a run or another worker, or renewed meanwhile, is skipped. A
    failure of the store or Google for one subscription does not stop the
    others; once all are done the first such error is raised (after the
    shard's log line), so that Pub/Sub redelivers the shard: what was renewed
    is then no longer due, and only the rest is tried again.
    """
    if settings is not None:
        concurrency = settings.renew_concurrency if concurrency is None else concurrency
    renewer = Renewer.configured(
        store,
        google,
        dispatcher,
        clock,
        settings=settings,
        renew_before=renew_before,
        lease_seconds=lease_seconds,
    )
    started = time.monotonic()
    summary = RenewalSummary()
    errors: list[ChannelkitError] = []

    def one(subscription_id: str) -> None:
        try:
            now_ms = renewer.now_ms()
            horizon = now_ms + int(renewer.renew_before * 1000)
            listed = store.list(status=ACTIVE, subscription_id=subscription_id)
            due = [c for c in listed if is_due(c, horizon, shard.listed_ms)]
            if not due:
                reason = "not due: renewed meanwhile, or no longer active"
                summary.add(RenewalOutcome.SKIPPED, {"subscriptionId": subscription_id, "reason": reason})
                return
            for channel in due:
                renewer.renew_channel(channel, summary)
        except ChannelkitError as exc:  # the store or Google failed for this one: redelivery retries it
            errors.append(exc)
            summary.add(
                RenewalOutcome.SKIPPED, {"subscriptionId": subscription_id, "reason": error_text(exc)}
            )

    # Read just now: a lease still set on a channel read here is the trace of a crashed run or worker.
    renewer.listed_ms = renewer.now_ms()
    workers = min(config.renew_concurrency(concurrency), len(shard.subscriptions)) or 1
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="renew-shard") as pool:
        list(pool.map(one, shard.subscriptions))
    summary.duration_ms = int((time.monotonic() - started) * 1000)
    counts = {k: v for k, v in summary.to_json().items() if k != "details"}
    severity = "WARNING" if errors else "INFO"
    logs.event(
        log,
        severity,
        "renewal shard finished",
        run=shard.run,
        subscriptions=len(shard.subscriptions),
        **counts,
    )
    if errors:
        raise errors[0]
    return summary

"""Every setting channelkit reads, in one place: an argument, else the environment, else a default.

Two ways in, one set of rules:

- ``Settings.resolve(**overrides)`` (``Settings.from_env(environ, **overrides)``
  for another environment) resolves every setting once into a frozen object
  and validates all of them, raising one ``ConfigError`` that names each bad
  variable and what it wants. The Cloud Functions build it at their first
  request and hand its values to the library, so no request reads the
  environment.
- ``config.grace()``, ``config.store_url()``, ... resolve one setting at the
  time of the call. The CLI and the library's constructors use them when they
  are given no value.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from channelkit.errors import ConfigError

__all__ = [
    "Settings",
    "accept_unsigned_ids",
    "api_retries",
    "api_root",
    "cache_ttl",
    "change_handler",
    "claim_timeout",
    "collection",
    "collection_beside",
    "credentials_key",
    "delegated_subject",
    "expiring_warn",
    "grace",
    "handler",
    "keyring",
    "max_body",
    "project",
    "pubsub_topic",
    "quiet_after",
    "record_ttl_days",
    "renew_before",
    "renew_budget",
    "renew_concurrency",
    "renew_inline",
    "renew_lease",
    "renew_shard_size",
    "renew_topic",
    "store_timeout",
    "store_url",
    "suspend_after",
    "sync_backstop",
    "sync_budget",
    "sync_lease",
    "sync_topic",
    "webhook_concurrency",
]

DEFAULT_COLLECTION = "channels"
DEFAULT_RENEW_BEFORE = 10_800  # seconds: 3 h
DEFAULT_STORE_TIMEOUT = 5.0  # seconds: bound on one store operation
DEFAULT_GRACE = 300.0  # seconds a stopped/expired channel still accepts deliveries
DEFAULT_MAX_BODY = 1_048_576  # bytes
DEFAULT_CLAIM_TIMEOUT = 600.0  # seconds before an in-progress message claim may be retaken
DEFAULT_CACHE_TTL = 300.0  # seconds a channel lookup is cached per instance (docs/design.md, "Receive")
DEFAULT_API_RETRIES = 4  # googleapiclient num_retries for Google API calls
DEFAULT_RECORD_TTL_DAYS = 30  # days after a channel ends that Firestore TTL deletes it
DEFAULT_RENEW_CONCURRENCY = 32  # most of a renewal is waiting on Google and Firestore
DEFAULT_RENEW_BUDGET = 240.0  # seconds a renewal run may start new work
DEFAULT_SUSPEND_AFTER = 3  # consecutive failed renewal runs before a lasting refusal suspends
DEFAULT_EXPIRING_WARN = 3600.0  # seconds before a failing channel's end that "expiring" is sent
DEFAULT_QUIET_AFTER = 86_400.0  # seconds without a notification after which status lists a subscription
DEFAULT_RENEW_LEASE = 600.0  # seconds a renewal claim on a channel lasts
#: Due channels a run renews itself before fanning the rest out (CHANNELKIT_RENEW_TOPIC): what one
#: run finishes well within DEFAULT_RENEW_BUDGET at the rate measured in docs/benchmarks.md
#: ("Renewal fan-out": 16.7 renewals/s at parallelism 32 on the emulator, so 240 s hold about
#: 4,000; half of that leaves room for a slower Firestore, Google's latency and the run's own work).
DEFAULT_RENEW_INLINE = 2000
DEFAULT_RENEW_SHARD_SIZE = 200  # subscription ids per published shard: one worker request each
#: A worker refuses a longer shard as malformed (``renewal.fanout.MAX_SHARD_SIZE``): never publish one.
MAX_RENEW_SHARD_SIZE = 1000
DEFAULT_SYNC_BUDGET = 20.0  # seconds a sync inside the webhook request may run
DEFAULT_SYNC_LEASE = 120.0  # seconds a sync lease lasts; renewed by every page saved
DEFAULT_SYNC_BACKSTOP = 3600.0  # seconds after which a renewal run syncs what no notification announced
DEFAULT_WEBHOOK_CONCURRENCY = 80  # notifications a webhook instance serves at once (deploy.sh too)

Environ = Mapping[str, str]
N = TypeVar("N", bound=float)


def _env(name: str, environ: Environ | None = None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _number(
    name: str,
    value: Any,
    environ: Environ | None,
    default: N,
    kind: Callable[[Any], N],
    minimum: float,
    unit: str,
) -> N:
    raw = value if value is not None else _env(name, environ)
    if raw is None:
        return default
    wants = f"{name} must be {'a whole number' if kind is int else 'a number'} of {unit} >= {minimum:g}"
    try:
        number = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{wants}, got {raw!r}") from None
    if number < minimum:
        raise ConfigError(f"{wants}, got {raw!r}")
    return number


# --- one setting, resolved at the time of the call -----------------------------------


def project(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """Google Cloud project; None lets the client library find it (ADC / gcloud)."""
    return value or _env("GOOGLE_CLOUD_PROJECT", environ) or _env("GCLOUD_PROJECT", environ)


def store_url(value: str | None = None, *, environ: Environ | None = None) -> str:
    """``firestore`` or ``sqlite:///PATH`` (``CHANNELKIT_STORE``)."""
    url = value or _env("CHANNELKIT_STORE", environ) or "firestore"
    if url != "firestore" and not url.startswith("sqlite://"):
        raise ConfigError(f"CHANNELKIT_STORE must be 'firestore' or 'sqlite:///PATH', got {url!r}")
    return url


def collection(value: str | None = None, *, environ: Environ | None = None) -> str:
    """Firestore collection holding channels (``CHANNELKIT_COLLECTION``)."""
    name = value or _env("CHANNELKIT_COLLECTION", environ) or DEFAULT_COLLECTION
    if "/" in name:
        raise ConfigError(f"CHANNELKIT_COLLECTION must be a top-level collection id, got {name!r}")
    return name


#: The collections kept beside the channels, by kind, for the default ``channels`` collection.
BESIDE_DEFAULT = {"subscriptions": "subscriptions", "credentials": "credentials", "runs": "channelkit_runs"}


def collection_beside(channels: str, kind: str) -> str:
    """The collection of ``kind`` records (subscriptions, credentials, runs) beside ``channels``.

    The kind's own name beside the default ``channels`` (``channelkit_runs`` for
    runs); ``NAME_kind`` beside any other, so deployments sharing a database stay apart.
    """
    if kind not in BESIDE_DEFAULT:
        raise ValueError(f"unknown record kind {kind!r}")
    return BESIDE_DEFAULT[kind] if channels == DEFAULT_COLLECTION else f"{channels}_{kind}"


def store_timeout(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds after which a store operation fails with StoreUnavailable."""
    return _number("CHANNELKIT_STORE_TIMEOUT", value, environ, DEFAULT_STORE_TIMEOUT, float, 0.1, "seconds")


def record_ttl_days(value: int | None = None, *, environ: Environ | None = None) -> int:
    """Days after a channel's end before Firestore TTL deletes its documents."""
    return _number("CHANNELKIT_RECORD_TTL_DAYS", value, environ, DEFAULT_RECORD_TTL_DAYS, int, 1, "days")


def handler(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """``package.module:function`` called for each accepted notification."""
    return value or _env("CHANNELKIT_HANDLER", environ)


def change_handler(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """``package.module:function`` called as ``fn(batch, subscription)`` with each batch of changes."""
    return value or _env("CHANNELKIT_CHANGE_HANDLER", environ)


def _topic(name: str, value: str | None, environ: Environ | None) -> str | None:
    """A ``projects/P/topics/T`` setting, or None when unset."""
    topic = value or _env(name, environ)
    if topic is not None:
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "topics" or not all(parts):
            raise ConfigError(f"{name} must be projects/P/topics/T, got {topic!r}")
    return topic


def pubsub_topic(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """``projects/P/topics/T`` receiving each accepted notification."""
    return _topic("CHANNELKIT_PUBSUB_TOPIC", value, environ)


def sync_topic(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """``projects/P/topics/T``: the webhook asks the ``sync`` function for syncs there instead of syncing inline."""
    return _topic("CHANNELKIT_SYNC_TOPIC", value, environ)


def api_root(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """Replacement for Google's API root URL (simulator, tests); None means Google."""
    root = value or _env("CHANNELKIT_API_ROOT", environ)
    if root is None:
        return None
    if not root.startswith(("http://", "https://")):
        raise ConfigError(f"CHANNELKIT_API_ROOT must be an http(s) URL, got {root!r}")
    return root if root.endswith("/") else root + "/"


def api_retries(value: int | None = None, *, environ: Environ | None = None) -> int:
    """How many times a transient Google API failure is retried (with backoff)."""
    return _number("CHANNELKIT_API_RETRIES", value, environ, DEFAULT_API_RETRIES, int, 0, "retries")


def delegated_subject(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """User to impersonate with domain-wide delegation (Admin SDK), if any."""
    return value or _env("CHANNELKIT_SUBJECT", environ)


def credentials_key(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """``CHANNELKIT_CREDENTIALS_KEY``: base64 keys, comma-separated (first encrypts); None when unset.

    Validated here (``ConfigError`` names the variable, never its value); the
    text itself is a secret: ``Settings`` keeps it out of its repr.
    """
    text = value or _env("CHANNELKIT_CREDENTIALS_KEY", environ)
    if text is not None:
        from channelkit.crypto import Keyring

        Keyring.parse(text)
    return text


def keyring(value: str | None = None, *, environ: Environ | None = None) -> Any:
    """The ``crypto.Keyring`` of ``credentials_key`` (argument, then environment); None when unset."""
    text = credentials_key(value, environ=environ)
    if text is None:
        return None
    from channelkit.crypto import Keyring

    return Keyring.parse(text)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def accept_unsigned_ids(value: bool | None = None, *, environ: Environ | None = None) -> bool:
    """``CHANNELKIT_ACCEPT_UNSIGNED_IDS``: with a key, do channel ids without a MAC still reach the store?

    Default true, so that channels made before ids were signed keep working
    until renewed; set false once they are, and every request whose id does
    not verify is refused before any read.
    """
    if value is not None:
        return bool(value)
    text = _env("CHANNELKIT_ACCEPT_UNSIGNED_IDS", environ)
    if text is None:
        return True
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ConfigError(f"CHANNELKIT_ACCEPT_UNSIGNED_IDS must be true or false, got {text[:20]!r}")


def grace(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds a stopped or expired channel keeps accepting in-flight deliveries."""
    return _number("CHANNELKIT_GRACE", value, environ, DEFAULT_GRACE, float, 0, "seconds")


def max_body(value: int | None = None, *, environ: Environ | None = None) -> int:
    """Largest accepted notification body, in bytes (413 above)."""
    return _number("CHANNELKIT_MAX_BODY", value, environ, DEFAULT_MAX_BODY, int, 0, "bytes")


def claim_timeout(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds after which an in-progress message claim is considered abandoned."""
    return _number("CHANNELKIT_CLAIM_TIMEOUT", value, environ, DEFAULT_CLAIM_TIMEOUT, float, 1, "seconds")


def cache_ttl(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds a channel lookup stays cached in one function instance."""
    return _number("CHANNELKIT_CACHE_TTL", value, environ, DEFAULT_CACHE_TTL, float, 0, "seconds")


def renew_before(value: int | None = None, *, environ: Environ | None = None) -> int:
    """Seconds before expiration at which a channel is renewed."""
    return _number("CHANNELKIT_RENEW_BEFORE", value, environ, DEFAULT_RENEW_BEFORE, int, 0, "seconds")


def renew_concurrency(value: int | None = None, *, environ: Environ | None = None) -> int:
    """How many channels one renewal run renews at the same time."""
    return _number(
        "CHANNELKIT_RENEW_CONCURRENCY", value, environ, DEFAULT_RENEW_CONCURRENCY, int, 1, "channels"
    )


def renew_budget(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds after which a renewal run stops claiming new channels (the rest wait)."""
    return _number("CHANNELKIT_RENEW_BUDGET", value, environ, DEFAULT_RENEW_BUDGET, float, 0, "seconds")


def renew_lease(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds a renewal run holds its claim on a channel; a crashed run's claim then lapses."""
    return _number("CHANNELKIT_RENEW_LEASE", value, environ, DEFAULT_RENEW_LEASE, float, 1, "seconds")


def renew_topic(value: str | None = None, *, environ: Environ | None = None) -> str | None:
    """``projects/P/topics/T`` receiving the renewal shards a run fans out; None: no fan-out."""
    return _topic("CHANNELKIT_RENEW_TOPIC", value, environ)


def renew_inline(value: int | None = None, *, environ: Environ | None = None) -> int:
    """How many due channels a run renews itself before it publishes the rest as shards."""
    return _number("CHANNELKIT_RENEW_INLINE", value, environ, DEFAULT_RENEW_INLINE, int, 0, "channels")


def renew_shard_size(value: int | None = None, *, environ: Environ | None = None) -> int:
    """How many subscription ids one published renewal shard carries."""
    size = _number(
        "CHANNELKIT_RENEW_SHARD_SIZE", value, environ, DEFAULT_RENEW_SHARD_SIZE, int, 1, "subscriptions"
    )
    if size > MAX_RENEW_SHARD_SIZE:
        raise ConfigError(
            f"CHANNELKIT_RENEW_SHARD_SIZE must be at most {MAX_RENEW_SHARD_SIZE} subscriptions"
            f" (a renew-worker refuses a longer shard), got {size}"
        )
    return size


def suspend_after(value: int | None = None, *, environ: Environ | None = None) -> int:
    """Consecutive failed renewal runs (403, other lasting refusals) before a subscription is suspended."""
    return _number("CHANNELKIT_SUSPEND_AFTER", value, environ, DEFAULT_SUSPEND_AFTER, int, 1, "runs")


def expiring_warn(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds before a live channel's end, renewal failing, at which ``expiring`` is sent."""
    return _number("CHANNELKIT_EXPIRING_WARN", value, environ, DEFAULT_EXPIRING_WARN, float, 0, "seconds")


def quiet_after(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds without a notification after which ``status`` lists an active subscription as quiet."""
    return _number("CHANNELKIT_QUIET_AFTER", value, environ, DEFAULT_QUIET_AFTER, float, 1, "seconds")


def sync_budget(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds a sync run inside the webhook request may take; what is left waits for the next pass."""
    return _number("CHANNELKIT_SYNC_BUDGET", value, environ, DEFAULT_SYNC_BUDGET, float, 0, "seconds")


def sync_lease(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds a sync holds its lease on a subscription (each saved page renews it); a crashed one lapses."""
    return _number("CHANNELKIT_SYNC_LEASE", value, environ, DEFAULT_SYNC_LEASE, float, 1, "seconds")


def sync_backstop(value: float | None = None, *, environ: Environ | None = None) -> float:
    """Seconds since its last sync after which a renewal run syncs a ``--sync`` subscription anyway."""
    return _number("CHANNELKIT_SYNC_BACKSTOP", value, environ, DEFAULT_SYNC_BACKSTOP, float, 1, "seconds")


def webhook_concurrency(value: int | None = None, *, environ: Environ | None = None) -> int:
    """Notifications one webhook instance serves at once: Cloud Run's concurrency, and as many
    gunicorn threads (``THREADS``) in the instance. scripts/run-local reads it here; deploy.sh
    reads the same variable, with the same default, itself."""
    return _number("CHANNELKIT_CONCURRENCY", value, environ, DEFAULT_WEBHOOK_CONCURRENCY, int, 1, "requests")


# --- every setting, resolved once ----------------------------------------------------

#: Settings field -> the function resolving it (its variable, default and rule).
_RESOLVERS: dict[str, Callable[..., Any]] = {
    "project": project,
    "store_url": store_url,
    "collection": collection,
    "store_timeout": store_timeout,
    "record_ttl_days": record_ttl_days,
    "handler": handler,
    "change_handler": change_handler,
    "pubsub_topic": pubsub_topic,
    "api_root": api_root,
    "api_retries": api_retries,
    "delegated_subject": delegated_subject,
    "credentials_key": credentials_key,
    "accept_unsigned_ids": accept_unsigned_ids,
    "grace": grace,
    "max_body": max_body,
    "claim_timeout": claim_timeout,
    "cache_ttl": cache_ttl,
    "renew_before": renew_before,
    "renew_concurrency": renew_concurrency,
    "renew_budget": renew_budget,
    "renew_lease": renew_lease,
    "renew_topic": renew_topic,
    "renew_inline": renew_inline,
    "renew_shard_size": renew_shard_size,
    "suspend_after": suspend_after,
    "expiring_warn": expiring_warn,
    "quiet_after": quiet_after,
    "sync_budget": sync_budget,
    "sync_lease": sync_lease,
    "sync_backstop": sync_backstop,
    "sync_topic": sync_topic,
}
_NO_ENVIRONMENT: Environ = {}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting, resolved and validated once; build it with ``resolve`` or ``from_env``.

    Built directly (``Settings(grace=60)``), a field left out takes its default
    without reading the environment; every value is validated either way.
    """

    project: str | None = None
    store_url: str = "firestore"
    collection: str = DEFAULT_COLLECTION
    store_timeout: float = DEFAULT_STORE_TIMEOUT
    record_ttl_days: int = DEFAULT_RECORD_TTL_DAYS
    handler: str | None = None
    change_handler: str | None = None
    pubsub_topic: str | None = None
    api_root: str | None = None
    api_retries: int = DEFAULT_API_RETRIES
    delegated_subject: str | None = None
    credentials_key: str | None = dataclasses.field(default=None, repr=False)  # a secret
    accept_unsigned_ids: bool = True
    grace: float = DEFAULT_GRACE
    max_body: int = DEFAULT_MAX_BODY
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT
    cache_ttl: float = DEFAULT_CACHE_TTL
    renew_before: int = DEFAULT_RENEW_BEFORE
    renew_concurrency: int = DEFAULT_RENEW_CONCURRENCY
    renew_budget: float = DEFAULT_RENEW_BUDGET
    renew_lease: float = DEFAULT_RENEW_LEASE
    renew_topic: str | None = None
    renew_inline: int = DEFAULT_RENEW_INLINE
    renew_shard_size: int = DEFAULT_RENEW_SHARD_SIZE
    suspend_after: int = DEFAULT_SUSPEND_AFTER
    expiring_warn: float = DEFAULT_EXPIRING_WARN
    quiet_after: float = DEFAULT_QUIET_AFTER
    sync_budget: float = DEFAULT_SYNC_BUDGET
    sync_lease: float = DEFAULT_SYNC_LEASE
    sync_backstop: float = DEFAULT_SYNC_BACKSTOP
    sync_topic: str | None = None

    def __post_init__(self) -> None:
        for name, value in _resolve_all(vars(self), _NO_ENVIRONMENT).items():
            object.__setattr__(self, name, value)  # normalised: "8" -> 8, a root gets its "/"

    @classmethod
    def from_env(cls, environ: Environ | None = None, **overrides: Any) -> Settings:
        """Each setting from ``overrides``, else ``environ`` (default ``os.environ``), else its default.

        An override of None counts as not given. Raises one ``ConfigError``
        naming every bad variable.
        """
        unknown = sorted(set(overrides) - set(_RESOLVERS))
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(unknown)}")
        return cls(**_resolve_all(overrides, os.environ if environ is None else environ))

    @classmethod
    def resolve(cls, **overrides: Any) -> Settings:
        """``from_env`` on this process's environment."""
        return cls.from_env(None, **overrides)

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments for ``open_store(self.store_url, ...)`` that its backend accepts."""
        options: dict[str, Any] = {
            "timeout": self.store_timeout,
            "ttl_days": self.record_ttl_days,
            "keyring": keyring(self.credentials_key) if self.credentials_key else False,
        }
        if self.store_url == "firestore":
            options.update(project=self.project, collection=self.collection)
        return options


def _resolve_all(values: Mapping[str, Any], environ: Environ) -> dict[str, Any]:
    resolved, problems = {}, []
    for name, resolve in _RESOLVERS.items():
        try:
            resolved[name] = resolve(values.get(name), environ=environ)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems))
    return resolved

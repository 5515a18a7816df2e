"""Every setting channelkit reads, in one place, read at call time.

Each function takes an optional explicit value; without one it reads the
environment, then falls back to the default. Nothing is cached, so tests and
long-lived processes see changes to the environment immediately.
"""

from __future__ import annotations

import os

from channelkit.errors import ConfigError

DEFAULT_COLLECTION = "channels"
DEFAULT_RENEW_BEFORE = 10_800  # seconds: 3 h
DEFAULT_STORE_TIMEOUT = 5.0  # seconds: bound on one store operation
DEFAULT_GRACE = 300  # seconds a stopped/expired channel still accepts deliveries
DEFAULT_MAX_BODY = 1_048_576  # bytes
DEFAULT_CLAIM_TIMEOUT = 600  # seconds before an in-progress message claim may be retaken
DEFAULT_CACHE_TTL = 300.0  # seconds a channel lookup is cached per instance (see README: Webhook)
DEFAULT_API_RETRIES = 4  # googleapiclient num_retries for Google API calls
DEFAULT_RECORD_TTL_DAYS = 30  # days after a channel ends that Firestore TTL deletes it


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _number(name: str, value, default, kind, minimum=0):
    raw = value if value is not None else _env(name)
    if raw is None:
        return default
    try:
        number = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return number


def project(value: str | None = None) -> str | None:
    """Google Cloud project; None lets the client library find it (ADC / gcloud)."""
    return value or _env("GOOGLE_CLOUD_PROJECT") or _env("GCLOUD_PROJECT")


def store_url(value: str | None = None) -> str:
    """``firestore`` or ``sqlite:///PATH`` (``CHANNELKIT_STORE``)."""
    url = value or _env("CHANNELKIT_STORE") or "firestore"
    if url != "firestore" and not url.startswith("sqlite://"):
        raise ConfigError(f"CHANNELKIT_STORE must be 'firestore' or 'sqlite:///PATH', got {url!r}")
    return url


def collection(value: str | None = None) -> str:
    """Firestore collection holding channels (``CHANNELKIT_COLLECTION``)."""
    name = value or _env("CHANNELKIT_COLLECTION") or DEFAULT_COLLECTION
    if "/" in name:
        raise ConfigError(f"CHANNELKIT_COLLECTION must be a top-level collection id, got {name!r}")
    return name


def store_timeout(value: float | None = None) -> float:
    """Seconds after which a store operation fails with StoreUnavailable."""
    return _number("CHANNELKIT_STORE_TIMEOUT", value, DEFAULT_STORE_TIMEOUT, float, 0.1)


def handler(value: str | None = None) -> str | None:
    """``package.module:function`` called for each accepted notification."""
    return value or _env("CHANNELKIT_HANDLER")


def pubsub_topic(value: str | None = None) -> str | None:
    """``projects/P/topics/T`` receiving each accepted notification."""
    topic = value or _env("CHANNELKIT_PUBSUB_TOPIC")
    if topic is not None:
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "topics" or not all(parts):
            raise ConfigError(f"CHANNELKIT_PUBSUB_TOPIC must be projects/P/topics/T, got {topic!r}")
    return topic


def renew_before(value: int | None = None) -> int:
    """Seconds before expiration at which a channel is renewed."""
    return _number("CHANNELKIT_RENEW_BEFORE", value, DEFAULT_RENEW_BEFORE, int, 0)


def api_root(value: str | None = None) -> str | None:
    """Replacement for Google's API root URL (simulator, tests); None means Google."""
    root = value or _env("CHANNELKIT_API_ROOT")
    if root is None:
        return None
    if not root.startswith(("http://", "https://")):
        raise ConfigError(f"CHANNELKIT_API_ROOT must be an http(s) URL, got {root!r}")
    return root if root.endswith("/") else root + "/"


def api_retries(value: int | None = None) -> int:
    """How many times a transient Google API failure is retried (with backoff)."""
    return _number("CHANNELKIT_API_RETRIES", value, DEFAULT_API_RETRIES, int, 0)


def delegated_subject(value: str | None = None) -> str | None:
    """User to impersonate with domain-wide delegation (Admin SDK), if any."""
    return value or _env("CHANNELKIT_SUBJECT")


def grace(value: float | None = None) -> float:
    """Seconds a stopped or expired channel keeps accepting in-flight deliveries."""
    return _number("CHANNELKIT_GRACE", value, DEFAULT_GRACE, float, 0)


def max_body(value: int | None = None) -> int:
    """Largest accepted notification body, in bytes (413 above)."""
    return _number("CHANNELKIT_MAX_BODY", value, DEFAULT_MAX_BODY, int, 0)


def claim_timeout(value: float | None = None) -> float:
    """Seconds after which an in-progress message claim is considered abandoned."""
    return _number("CHANNELKIT_CLAIM_TIMEOUT", value, DEFAULT_CLAIM_TIMEOUT, float, 1)


def cache_ttl(value: float | None = None) -> float:
    """Seconds a channel lookup stays cached in one function instance."""
    return _number("CHANNELKIT_CACHE_TTL", value, DEFAULT_CACHE_TTL, float, 0)


def record_ttl_days(value: int | None = None) -> int:
    """Days after a channel's end before Firestore TTL deletes its documents."""
    return _number("CHANNELKIT_RECORD_TTL_DAYS", value, DEFAULT_RECORD_TTL_DAYS, int, 1)


DEFAULT_RENEW_CONCURRENCY = 32  # most of a renewal is waiting on Google and Firestore
DEFAULT_RENEW_BUDGET = 240.0  # seconds a renewal run may start new work
DEFAULT_RENEW_LEASE = 600.0  # seconds a renewal claim on a channel lasts


def renew_concurrency(value: int | None = None) -> int:
    """How many channels one renewal run renews at the same time."""
    return _number("CHANNELKIT_RENEW_CONCURRENCY", value, DEFAULT_RENEW_CONCURRENCY, int, 1)


def renew_budget(value: float | None = None) -> float:
    """Seconds after which a renewal run stops claiming new channels (the rest wait)."""
    return _number("CHANNELKIT_RENEW_BUDGET", value, DEFAULT_RENEW_BUDGET, float, 0)


def renew_lease(value: float | None = None) -> float:
    """Seconds a renewal run holds its claim on a channel; a crashed run's claim then lapses."""
    return _number("CHANNELKIT_RENEW_LEASE", value, DEFAULT_RENEW_LEASE, float, 1)

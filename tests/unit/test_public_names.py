"""Each module's public names are pinned: an accidental export or removal fails here.

``PUBLIC`` is the contract: a change to a module's ``__all__`` is made on purpose,
in both places. Every module of the package (private ``_x`` modules and
``__main__`` aside) declares ``__all__``, every name in it exists, and the
top-level package exports nothing public beyond its ``__all__``.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import channelkit

PUBLIC: dict[str, list[str]] = {
    "channelkit": [
        "Channel",
        "ChannelkitError",
        "InvalidNotificationError",
        "Notification",
        "new_webhook_channel",
        "notification_from_headers",
    ],
    "channelkit.channel": [
        "CHANNEL_PARAMS",
        "Channel",
        "EPOCH",
        "InvalidNotificationError",
        "Notification",
        "X_GOOG_CHANGED",
        "X_GOOG_CHANNEL_EXPIRATION",
        "X_GOOG_CHANNEL_ID",
        "X_GOOG_CHANNEL_TOKEN",
        "X_GOOG_MESSAGE_NUMBER",
        "X_GOOG_RESOURCE_ID",
        "X_GOOG_RESOURCE_STATE",
        "X_GOOG_RESOURCE_URI",
        "from_header_map",
        "new_webhook_channel",
        "notification_from_headers",
        "to_millis",
        "validate_channel_id",
        "validate_token",
    ],
    "channelkit.channel_cache": ["ChannelCache"],
    "channelkit.cli": [
        "EXIT_FAILED",
        "EXIT_OK",
        "EXIT_USAGE",
        "build_parser",
        "channel_json",
        "format_remaining",
        "format_renewal",
        "format_table",
        "main",
    ],
    "channelkit.config": [
        "Settings",
        "api_retries",
        "api_root",
        "cache_ttl",
        "claim_timeout",
        "collection",
        "delegated_subject",
        "grace",
        "handler",
        "max_body",
        "project",
        "pubsub_topic",
        "record_ttl_days",
        "renew_before",
        "renew_budget",
        "renew_concurrency",
        "renew_lease",
        "store_timeout",
        "store_url",
    ],
    "channelkit.delivery": ["ExactlyOnceDelivery"],
    "channelkit.dispatch": [
        "Dispatcher",
        "clear_handler_cache",
        "load_dispatcher",
        "load_handler",
        "pubsub_attributes",
        "pubsub_payload",
    ],
    "channelkit.errors": [
        "AuthError",
        "BodyTooLargeError",
        "ChannelConflictError",
        "ChannelExistsError",
        "ChannelGoneError",
        "ChannelMismatchError",
        "ChannelNotFoundError",
        "ChannelStateError",
        "ChannelkitError",
        "ConfigError",
        "DispatchError",
        "GoogleApiError",
        "HandlerConfigError",
        "HandlerError",
        "InvalidMessageNumberError",
        "InvalidNotificationError",
        "InvalidRequestError",
        "MessageInProgressError",
        "MethodNotAllowedError",
        "MissingHeaderError",
        "PublishError",
        "RequestError",
        "ResourceGoneError",
        "ResourceMismatchError",
        "StoreError",
        "StoreUnavailable",
        "TokenMismatchError",
        "TransientApiError",
        "UnknownApiError",
        "UnreadableBodyError",
    ],
    "channelkit.google_api": [
        "GoogleApi",
        "canonical",
        "check_watch_method",
        "discovery_document",
        "is_loopback_url",
        "method_description",
    ],
    "channelkit.hints": ["explain"],
    "channelkit.judge": ["RequestJudge", "read_body"],
    "channelkit.logs": ["JsonFormatter", "configure", "event", "get_logger"],
    "channelkit.receive": [
        "ACCEPTED",
        "ChannelCache",
        "DUPLICATE",
        "Receiver",
        "Verdict",
        "outcome_for",
        "read_body",
        "receive",
        "status_for",
    ],
    "channelkit.renewal": [
        "NEXT_STEPS",
        "RENEWED_STATE",
        "RenewalOutcome",
        "RenewalStep",
        "RenewalSummary",
        "Renewer",
        "SYNTHETIC_MESSAGE_NUMBER",
        "renew_due",
        "renewal_dispatcher",
    ],
    "channelkit.renewal.cleanup": [
        "abandon",
        "finish_stop",
        "stale_pending",
        "stop_maybe_live",
        "sweep_channel",
    ],
    "channelkit.renewal.outcomes": ["RenewalOutcome", "RenewalSummary"],
    "channelkit.renewal.renewer": [
        "ChannelRenewal",
        "RENEWED_STATE",
        "Renewer",
        "SYNTHETIC_MESSAGE_NUMBER",
        "renewed_notification",
        "send_renewed",
        "successor_of",
    ],
    "channelkit.renewal.run": ["renew_due", "renewal_dispatcher"],
    "channelkit.renewal.steps": ["NEXT_STEPS", "RenewalStep"],
    "channelkit.store": [
        "ACTIVE",
        "ChannelStore",
        "ClaimOutcome",
        "FAILED",
        "MessageClaim",
        "PENDING",
        "STATUSES",
        "STOPPED",
        "open_store",
    ],
    "channelkit.store.base": [
        "ChannelExistsError",
        "ChannelStore",
        "ClaimOutcome",
        "MAX_CAS_ATTEMPTS",
        "MessageClaim",
        "Record",
        "Version",
    ],
    "channelkit.store.claims": ["ClaimOutcome", "DONE", "IN_PROGRESS", "MessageClaim", "MessageClaims"],
    "channelkit.store.firestore": ["FirestoreStore", "document_id"],
    "channelkit.store.records": [
        "ACTIVE",
        "FAILED",
        "FIELDS",
        "PENDING",
        "Record",
        "STATUSES",
        "STOPPED",
        "Version",
        "field_name",
        "from_record",
        "to_record",
    ],
    "channelkit.store.sqlite": ["SQLiteStore", "path_from_url"],
    "channelkit.store.versions": ["KnownVersions", "VersionedChannels"],
    "channelkit.subscribe": [
        "activate",
        "check_address",
        "error_text",
        "fail",
        "stop",
        "stop_at_google",
        "subscribe",
    ],
    "channelkit.testing": [],
    "channelkit.testing.emulators": [
        "Emulator",
        "EmulatorError",
        "KINDS",
        "free_port",
        "gcloud_available",
        "reset_firestore",
        "stop_process_group",
    ],
    "channelkit.testing.fixtures": ["simulator"],
    "channelkit.testing.harness": [
        "FAR_EXPIRATION",
        "FunctionsFrameworkProcess",
        "LoopbackReceiver",
        "free_port",
        "judged_by",
        "notification_headers",
        "port_open",
        "post",
        "stop_process_group",
        "wait_until",
    ],
    "channelkit.testing.harness.headers": ["FAR_EXPIRATION", "notification_headers"],
    "channelkit.testing.harness.loopback": ["free_port", "port_open", "post"],
    "channelkit.testing.harness.processes": [
        "FunctionsFrameworkProcess",
        "READY_PROBE",
        "stop_process_group",
    ],
    "channelkit.testing.harness.receiver": ["LoopbackReceiver", "judged_by"],
    "channelkit.testing.harness.waiting": ["wait_until"],
    "channelkit.testing.simulator": [
        "ApiCall",
        "ChannelInfo",
        "Clock",
        "Delivery",
        "REFUSALS",
        "Refusal",
        "Resource",
        "Simulator",
        "StandingRefusal",
        "WATCH_KINDS",
        "WatchKind",
        "is_loopback_host",
        "main",
    ],
    "channelkit.testing.simulator.cli": ["main"],
    "channelkit.testing.simulator.clock": ["Clock"],
    "channelkit.testing.simulator.control": ["CONTROL_PREFIX", "handle_control"],
    "channelkit.testing.simulator.delivery": ["DeliveryScheduler", "RETRY_STATUSES"],
    "channelkit.testing.simulator.faults": ["Faults", "OPERATIONS", "StandingRefusal"],
    "channelkit.testing.simulator.http_server": ["ControlHandler", "HttpServer"],
    "channelkit.testing.simulator.notifications": ["Notifier", "USER_AGENT", "http_date"],
    "channelkit.testing.simulator.records": [
        "ApiCall",
        "CANCELLED",
        "ChannelInfo",
        "DELIVERED",
        "Delivery",
        "FAILED",
        "RETRY",
        "UNDELIVERABLE",
    ],
    "channelkit.testing.simulator.refusals": [
        "REASONS",
        "REFUSALS",
        "Refusal",
        "default_reason",
        "describe_target",
        "refusal",
    ],
    "channelkit.testing.simulator.resources": [
        "ADMIN",
        "DAY",
        "DRIVE_CHANGED",
        "GOOGLEAPIS",
        "HOUR",
        "Resource",
        "STOP_PATHS",
        "WATCH_KINDS",
        "WatchKind",
        "check_changed",
        "check_state",
        "watch_kind",
    ],
    "channelkit.testing.simulator.routes": [
        "ApiAnswer",
        "ApiError",
        "ApiRoutes",
        "INVALID_JSON",
        "google_error",
    ],
    "channelkit.testing.simulator.server": ["Simulator"],
    "channelkit.testing.simulator.state": ["Channel", "Message", "Settings", "State"],
    "channelkit.verdict": ["ACCEPTED", "DUPLICATE", "Verdict", "outcome_for", "status_for"],
}


def _modules() -> list[str]:
    names = ["channelkit"]
    for info in pkgutil.walk_packages(channelkit.__path__, "channelkit."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def test_every_module_is_pinned():
    assert _modules() == sorted(PUBLIC)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_all_is_pinned_and_every_name_exists(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} declares no __all__"
    assert sorted(module.__all__) == sorted(PUBLIC[name])
    assert len(set(module.__all__)) == len(module.__all__), "a name is listed twice"
    missing = [attr for attr in module.__all__ if not hasattr(module, attr)]
    assert not missing


def test_the_package_exports_nothing_public_beyond_all():
    public = {name for name in vars(channelkit) if not name.startswith("_")}
    submodules = {info.name for info in pkgutil.iter_modules(channelkit.__path__)}
    assert public - submodules == set(channelkit.__all__)

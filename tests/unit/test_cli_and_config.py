"""Pure parts of the CLI (formatting, argument parsing) and of the configuration (``config.Settings``)."""

import base64
import dataclasses
import datetime

import pytest

from channelkit import config
from channelkit.channel import Channel
from channelkit.cli import build_parser, channel_json, format_remaining, format_table
from channelkit.config import Settings
from channelkit.crypto import Keyring
from channelkit.errors import ConfigError
from channelkit.subscription import Subscription

NOW = 1_900_000_000_000


@pytest.mark.parametrize(
    "expiration,text",
    [
        (None, "-"),
        (0, "-"),
        (NOW - 1, "expired"),
        (NOW + 30_000, "30s"),
        (NOW + 45 * 60_000, "45m"),
        (NOW + (3 * 3600 + 120) * 1000, "3h 2m"),
        (NOW + (2 * 86400 + 5 * 3600) * 1000, "2d 5h"),
    ],
)
def test_time_to_expiry(expiration, text):
    assert format_remaining(expiration, NOW) == text


def sample(**fields):
    values = dict(
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id="abcdef0123456789",
        status="active",
        created_at=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
    )
    values.update(fields)
    return Channel("web_hook", "chan-1", "SECRET", "https://x/h", expiration=NOW + 3_600_000, **values)


def test_table_has_a_header_and_one_row_per_channel():
    suspended = Subscription("abcdef0123456789", state="suspended", reason="PERMISSION_DENIED")
    rows = [sample(), sample(status="stopped", stop_pending=True), sample(subscription_id="none")]
    lines = format_table(rows, NOW, {suspended.id: suspended}).splitlines()
    assert lines[0].split() == ["ID", "STATUS", "API", "METHOD", "EXPIRES", "IN", "SUBSCRIPTION", "STATE"]
    assert lines[1].split() == [
        *("chan-1", "active", "drive", "v3", "files.watch", "1h", "0m", "abcdef01"),
        *("suspended", "(PERMISSION_DENIED)"),
    ]
    assert "stopped (stop pending)" in lines[2]
    assert lines[3].split()[-1] == "-"  # no subscription record (not migrated yet)
    assert "SECRET" not in "\n".join(lines)


def test_json_view_never_has_the_token_and_shows_the_subscription_state():
    data = channel_json(sample(), NOW, Subscription("abcdef01-sub", state="expired"))
    assert "SECRET" not in str(data) and "token" not in data
    assert (data["subscriptionState"], data["subscriptionReason"]) == ("expired", None)
    assert data["expiresInSeconds"] == 3600 and data["params"] == {"fileId": "F"}


def test_parser_collects_params_and_ttl():
    args = build_parser().parse_args(
        [
            "watch",
            "drive",
            "v3",
            "files.watch",
            "--address",
            "https://x",
            "--param",
            "fileId=A=B",
            "--param",
            "x=",
            "--ttl",
            "60",
        ]
    )
    assert dict(args.param) == {"fileId": "A=B", "x": ""} and args.ttl == 60.0


@pytest.mark.parametrize(
    "name,value",
    [
        ("CHANNELKIT_STORE", "postgres://x"),
        ("CHANNELKIT_RENEW_BEFORE", "soon"),
        ("CHANNELKIT_RENEW_BEFORE", "-1"),
        ("CHANNELKIT_PUBSUB_TOPIC", "topics/t"),
        ("CHANNELKIT_API_ROOT", "ftp://x"),
        ("CHANNELKIT_COLLECTION", "a/b"),
        ("CHANNELKIT_RENEW_CONCURRENCY", "0"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    getter = {
        "CHANNELKIT_STORE": config.store_url,
        "CHANNELKIT_RENEW_BEFORE": config.renew_before,
        "CHANNELKIT_PUBSUB_TOPIC": config.pubsub_topic,
        "CHANNELKIT_API_ROOT": config.api_root,
        "CHANNELKIT_COLLECTION": config.collection,
        "CHANNELKIT_RENEW_CONCURRENCY": config.renew_concurrency,
    }[name]
    with pytest.raises(ConfigError, match=name):
        getter()


def test_settings_are_read_at_call_time_argument_first(monkeypatch):
    assert config.renew_before() == 10_800
    monkeypatch.setenv("CHANNELKIT_RENEW_BEFORE", "60")
    assert config.renew_before() == 60
    assert config.renew_before(5) == 5
    monkeypatch.setenv("CHANNELKIT_API_ROOT", "http://127.0.0.1:9")
    assert config.api_root() == "http://127.0.0.1:9/"


# --- Settings: every setting resolved once ----------------------------------------------------

#: Variables whose value is a secret.
SECRET_SETTINGS = {"CHANNELKIT_CREDENTIALS_KEY"}
KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()

#: Settings field -> (its variable, a valid value in the environment, what it resolves to,
#: an argument that differs from both the environment and the default).
EVERY_SETTING = {
    "project": ("GOOGLE_CLOUD_PROJECT", "proj-1", "proj-1", "proj-arg"),
    "store_url": ("CHANNELKIT_STORE", "sqlite:///x.db", "sqlite:///x.db", "sqlite:///arg.db"),
    "collection": ("CHANNELKIT_COLLECTION", "subs", "subs", "subs-arg"),
    "store_timeout": ("CHANNELKIT_STORE_TIMEOUT", "2.5", 2.5, 9.0),
    "record_ttl_days": ("CHANNELKIT_RECORD_TTL_DAYS", "7", 7, 9),
    "handler": ("CHANNELKIT_HANDLER", "app.hooks:handle", "app.hooks:handle", "arg.hooks:handle"),
    "pubsub_topic": (
        "CHANNELKIT_PUBSUB_TOPIC",
        "projects/p/topics/t",
        "projects/p/topics/t",
        "projects/a/topics/b",
    ),
    "api_root": ("CHANNELKIT_API_ROOT", "http://127.0.0.1:9", "http://127.0.0.1:9/", "https://arg.example/"),
    "api_retries": ("CHANNELKIT_API_RETRIES", "0", 0, 9),
    "delegated_subject": ("CHANNELKIT_SUBJECT", "admin@example.com", "admin@example.com", "arg@example.com"),
    "credentials_key": ("CHANNELKIT_CREDENTIALS_KEY", KEY_A, KEY_A, f"{KEY_B},{KEY_A}"),
    "accept_unsigned_ids": ("CHANNELKIT_ACCEPT_UNSIGNED_IDS", "false", False, True),
    "grace": ("CHANNELKIT_GRACE", "12", 12.0, 9.0),
    "max_body": ("CHANNELKIT_MAX_BODY", "2048", 2048, 9),
    "claim_timeout": ("CHANNELKIT_CLAIM_TIMEOUT", "45", 45.0, 9.0),
    "cache_ttl": ("CHANNELKIT_CACHE_TTL", "0", 0.0, 9.0),
    "renew_before": ("CHANNELKIT_RENEW_BEFORE", "60", 60, 9),
    "renew_concurrency": ("CHANNELKIT_RENEW_CONCURRENCY", "3", 3, 9),
    "renew_budget": ("CHANNELKIT_RENEW_BUDGET", "30", 30.0, 9.0),
    "renew_lease": ("CHANNELKIT_RENEW_LEASE", "90", 90.0, 9.0),
    "renew_topic": (
        "CHANNELKIT_RENEW_TOPIC",
        "projects/p/topics/channelkit-renew",
        "projects/p/topics/channelkit-renew",
        "projects/a/topics/r",
    ),
    "renew_inline": ("CHANNELKIT_RENEW_INLINE", "0", 0, 9),
    "renew_shard_size": ("CHANNELKIT_RENEW_SHARD_SIZE", "50", 50, 9),
    "suspend_after": ("CHANNELKIT_SUSPEND_AFTER", "5", 5, 9),
    "expiring_warn": ("CHANNELKIT_EXPIRING_WARN", "600", 600.0, 9.0),
    "quiet_after": ("CHANNELKIT_QUIET_AFTER", "3600", 3600.0, 9.0),
    "change_handler": ("CHANNELKIT_CHANGE_HANDLER", "app.sync:on_changes", "app.sync:on_changes", "b:c"),
    "sync_budget": ("CHANNELKIT_SYNC_BUDGET", "5", 5.0, 9.0),
    "sync_lease": ("CHANNELKIT_SYNC_LEASE", "30", 30.0, 9.0),
    "sync_backstop": ("CHANNELKIT_SYNC_BACKSTOP", "600", 600.0, 9.0),
    "sync_topic": (
        "CHANNELKIT_SYNC_TOPIC",
        "projects/p/topics/sync",
        "projects/p/topics/sync",
        "projects/a/topics/s",
    ),
}

#: A value each variable refuses, and a word of what it wants.
BAD_SETTINGS = {
    "CHANNELKIT_CREDENTIALS_KEY": ("c2hvcnQ=", "key 1 is 5 bytes"),
    "CHANNELKIT_STORE": ("postgres://x", "sqlite:///PATH"),
    "CHANNELKIT_ACCEPT_UNSIGNED_IDS": ("maybe", "true or false"),
    "CHANNELKIT_COLLECTION": ("a/b", "top-level"),
    "CHANNELKIT_STORE_TIMEOUT": ("0", "seconds >= 0.1"),
    "CHANNELKIT_RECORD_TTL_DAYS": ("1.5", "whole number of days >= 1"),
    "CHANNELKIT_PUBSUB_TOPIC": ("topics/t", "projects/P/topics/T"),
    "CHANNELKIT_API_ROOT": ("ftp://x", "http(s) URL"),
    "CHANNELKIT_API_RETRIES": ("-1", "whole number of retries >= 0"),
    "CHANNELKIT_GRACE": ("abc", "number of seconds >= 0"),
    "CHANNELKIT_MAX_BODY": ("lots", "whole number of bytes >= 0"),
    "CHANNELKIT_CLAIM_TIMEOUT": ("0.5", "seconds >= 1"),
    "CHANNELKIT_CACHE_TTL": ("-1", "seconds >= 0"),
    "CHANNELKIT_RENEW_BEFORE": ("soon", "whole number of seconds >= 0"),
    "CHANNELKIT_RENEW_CONCURRENCY": ("0", "whole number of channels >= 1"),
    "CHANNELKIT_RENEW_BUDGET": ("-5", "seconds >= 0"),
    "CHANNELKIT_RENEW_LEASE": ("x", "seconds >= 1"),
    "CHANNELKIT_RENEW_TOPIC": ("channelkit-renew", "projects/P/topics/T"),
    "CHANNELKIT_RENEW_INLINE": ("-1", "whole number of channels >= 0"),
    "CHANNELKIT_RENEW_SHARD_SIZE": ("0", "whole number of subscriptions >= 1"),
    "CHANNELKIT_SUSPEND_AFTER": ("0", "whole number of runs >= 1"),
    "CHANNELKIT_EXPIRING_WARN": ("-1", "seconds >= 0"),
    "CHANNELKIT_QUIET_AFTER": ("never", "seconds >= 1"),
    "CHANNELKIT_SYNC_BUDGET": ("-1", "seconds >= 0"),
    "CHANNELKIT_SYNC_LEASE": ("0", "seconds >= 1"),
    "CHANNELKIT_SYNC_BACKSTOP": ("hourly", "seconds >= 1"),
    "CHANNELKIT_SYNC_TOPIC": ("channelkit-sync", "projects/P/topics/T"),
}


def test_settings_has_one_resolver_per_field_and_every_field_is_covered_here():
    names = [field.name for field in dataclasses.fields(Settings)]
    assert names == list(config._RESOLVERS) and set(names) == set(EVERY_SETTING)


def test_settings_without_environment_are_the_defaults():
    assert Settings.from_env({}) == Settings()
    defaults = Settings()
    assert (defaults.store_url, defaults.collection, defaults.max_body) == (
        "firestore",
        "channels",
        1_048_576,
    )
    assert (defaults.grace, defaults.claim_timeout, defaults.cache_ttl) == (300, 600, 300)
    assert defaults.project is None and defaults.handler is None and defaults.api_root is None


@pytest.mark.parametrize("field", sorted(EVERY_SETTING))
def test_settings_read_each_variable(field):
    variable, raw, expected, _ = EVERY_SETTING[field]
    settings = Settings.from_env({variable: f"  {raw} "})
    assert getattr(settings, field) == expected
    assert type(getattr(settings, field)) is type(expected)


@pytest.mark.parametrize("field", sorted(EVERY_SETTING))
def test_settings_prefer_an_argument_to_the_environment(field):
    variable, raw, expected, argument = EVERY_SETTING[field]
    assert argument != expected
    if type(argument) is not bool:  # a switch has only two values: its argument is the default
        assert argument != getattr(Settings(), field)
    settings = Settings.from_env({variable: raw}, **{field: argument})
    assert getattr(settings, field) == argument
    assert getattr(Settings.from_env({variable: raw}, **{field: None}), field) == expected  # None: not given


def test_settings_resolve_reads_this_process_environment(monkeypatch):
    monkeypatch.setenv("CHANNELKIT_GRACE", "7")
    monkeypatch.setenv("GCLOUD_PROJECT", "from-gcloud")
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    settings = Settings.resolve(max_body=10)
    assert (settings.grace, settings.max_body, settings.project) == (7.0, 10, "from-gcloud")


@pytest.mark.parametrize("variable", sorted(BAD_SETTINGS))
def test_settings_validate_with_a_config_error_naming_the_variable_and_what_it_wants(variable):
    raw, wants = BAD_SETTINGS[variable]
    with pytest.raises(ConfigError) as info:
        Settings.from_env({variable: raw})
    message = str(info.value)
    assert message.startswith(f"{variable} must be") and wants in message
    if variable in SECRET_SETTINGS:
        assert raw not in message  # a secret is never echoed, not even a malformed one
    else:
        assert repr(raw) in message


def test_one_config_error_names_every_bad_variable():
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {"CHANNELKIT_GRACE": "abc", "CHANNELKIT_MAX_BODY": "-1", "CHANNELKIT_HANDLER": "x:y"}
        )
    assert str(info.value) == (
        "CHANNELKIT_GRACE must be a number of seconds >= 0, got 'abc'; "
        "CHANNELKIT_MAX_BODY must be a whole number of bytes >= 0, got '-1'"
    )


def test_settings_built_directly_are_validated_normalised_and_frozen():
    settings = Settings(grace="8", api_root="https://sim.example")
    assert settings.grace == 8.0 and settings.api_root == "https://sim.example/"
    with pytest.raises(ConfigError, match="CHANNELKIT_CLAIM_TIMEOUT"):
        Settings(claim_timeout=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.grace = 1  # type: ignore[misc]
    with pytest.raises(TypeError, match="grase"):
        Settings.from_env({}, grase=1)


def test_store_options_suit_the_store_backend():
    firestore = Settings(project="p", collection="subs", store_timeout=2, record_ttl_days=3)
    assert firestore.store_options() == {
        "project": "p",
        "collection": "subs",
        "timeout": 2.0,
        "ttl_days": 3,
        "keyring": False,  # none: the store must not look for one in the environment
    }
    sqlite = Settings(store_url="sqlite:///:memory:", store_timeout=2)
    assert sqlite.store_options() == {"timeout": 2.0, "ttl_days": 30, "keyring": False}
    keyed = Settings(store_url="sqlite:///:memory:", credentials_key=f"{KEY_B},{KEY_A}")
    assert keyed.store_options()["keyring"] == Keyring.parse(f"{KEY_B},{KEY_A}")

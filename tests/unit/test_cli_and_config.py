"""Pure parts of the CLI (formatting, argument parsing) and of the configuration."""

import datetime

import pytest

from channelkit import config
from channelkit.channel import Channel
from channelkit.cli import build_parser, channel_json, format_remaining, format_table
from channelkit.errors import ConfigError

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
    lines = format_table([sample(), sample(status="stopped", stop_pending=True)], NOW).splitlines()
    assert lines[0].split() == ["ID", "STATUS", "API", "METHOD", "EXPIRES", "IN", "SUBSCRIPTION"]
    assert lines[1].split() == ["chan-1", "active", "drive", "v3", "files.watch", "1h", "0m", "abcdef01"]
    assert "stopped (stop pending)" in lines[2]
    assert "SECRET" not in "\n".join(lines)


def test_json_view_never_has_the_token():
    data = channel_json(sample(), NOW)
    assert "SECRET" not in str(data) and "token" not in data
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

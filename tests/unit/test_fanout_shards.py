"""Renewal fan-out, the pure parts: which due channels a run keeps, the shards, and reading them back."""

from __future__ import annotations

import base64
import datetime
import json

import pytest

from channelkit.channel import Channel
from channelkit.config import Settings
from channelkit.errors import ConfigError, MalformedShardError
from channelkit.renewal.fanout import (
    MAX_SHARD_SIZE,
    Shard,
    is_due,
    parse_shard,
    plan_fanout,
    shard_from_event,
    shard_message,
    split_shards,
)
from channelkit.store import ACTIVE, STOPPED


def channel(n: int, subscription: str | None = "", **fields) -> Channel:
    return Channel(
        "web_hook",
        f"c{n}",
        "tok",
        "https://hooks.example.com/w",
        expiration=fields.pop("expiration", 1_000 + n),
        subscription_id=f"s{n}" if subscription == "" else subscription,
        status=fields.pop("status", ACTIVE),
        **fields,
    )


def test_plan_without_a_topic_keeps_every_due_channel():
    due = [channel(i) for i in range(5)]
    assert plan_fanout(due, None) == (due, [])


def test_plan_keeps_the_soonest_inline_and_sends_the_rest_in_order():
    due = [channel(i) for i in range(5)]
    kept, sent = plan_fanout(due, 2)
    assert [c.id for c in kept] == ["c0", "c1"] and [c.id for c in sent] == ["c2", "c3", "c4"]


def test_plan_keeps_a_channel_without_a_subscription_id_past_the_limit():
    due = [channel(0), channel(1, None), channel(2)]
    kept, sent = plan_fanout(due, 1)
    assert [c.id for c in kept] == ["c0", "c1"] and [c.id for c in sent] == ["c2"]


def test_plan_with_inline_zero_sends_everything_it_can():
    due = [channel(i) for i in range(3)]
    assert plan_fanout(due, 0) == ([], due)


def test_split_shards_covers_every_id_once_in_order():
    ids = [f"s{i}" for i in range(7)] + ["s3"]
    shards = split_shards(ids, 3, listed_ms=77, run="renew-1")
    assert [s.subscriptions for s in shards] == [("s0", "s1", "s2"), ("s3", "s4", "s5"), ("s6",)]
    assert {(s.run, s.listed_ms) for s in shards} == {("renew-1", 77)}
    assert split_shards([], 3, listed_ms=0) == []
    with pytest.raises(ValueError):
        split_shards(ids, 0, listed_ms=0)


def test_a_shard_message_parses_back_to_the_same_shard():
    shard = Shard(("a", "b-1", "c_2"), 1_700_000_000_000, "renew-abc")
    data = shard_message(shard)
    assert json.loads(data) == {
        "v": 1,
        "subscriptions": ["a", "b-1", "c_2"],
        "listedAt": 1_700_000_000_000,
        "run": "renew-abc",
    }
    assert parse_shard(data) == shard
    assert parse_shard(data.decode()) == shard


def test_a_shard_from_a_pubsub_cloud_event():
    shard = Shard(("a", "b"), 5, "r")
    event = {"message": {"data": base64.b64encode(shard_message(shard)).decode(), "messageId": "1"}}
    assert shard_from_event(event) == shard


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"subscriptions": ["a"], "listedAt": 1}',
        b'{"v": 2, "subscriptions": ["a"], "listedAt": 1}',
        b'{"v": 1, "listedAt": 1}',
        b'{"v": 1, "subscriptions": [], "listedAt": 1}',
        b'{"v": 1, "subscriptions": "a", "listedAt": 1}',
        b'{"v": 1, "subscriptions": [1], "listedAt": 1}',
        b'{"v": 1, "subscriptions": [""], "listedAt": 1}',
        b'{"v": 1, "subscriptions": ["a/b"], "listedAt": 1}',
        b'{"v": 1, "subscriptions": ["a"]}',
        b'{"v": 1, "subscriptions": ["a"], "listedAt": -1}',
        b'{"v": 1, "subscriptions": ["a"], "listedAt": "1"}',
        b'{"v": 1, "subscriptions": ["a"], "listedAt": true}',
        b'{"v": 1, "subscriptions": ["a"], "listedAt": 1, "run": 5}',
        json.dumps({"v": 1, "subscriptions": ["x" * 1501], "listedAt": 1}).encode(),
        json.dumps(
            {"v": 1, "subscriptions": [f"s{i}" for i in range(MAX_SHARD_SIZE + 1)], "listedAt": 1}
        ).encode(),
    ],
)
def test_anything_else_is_a_malformed_shard(data):
    with pytest.raises(MalformedShardError):
        parse_shard(data)


@pytest.mark.parametrize(
    "data",
    [None, {}, {"message": {}}, {"message": {"data": 5}}, {"message": {"data": "!!not base64!!"}}, "x"],
)
def test_an_event_without_shard_data_is_malformed(data):
    with pytest.raises(MalformedShardError):
        shard_from_event(data)


def test_malformed_shard_is_a_value_error():
    assert issubclass(MalformedShardError, ValueError)


def test_is_due_is_what_the_due_query_finds():
    assert is_due(channel(1, expiration=500), 500)
    made_at_10s = channel(1, expiration=500, created_at=datetime.datetime.fromtimestamp(10, datetime.UTC))
    assert is_due(made_at_10s, 500, listed_ms=10_000)
    assert not is_due(made_at_10s, 500, listed_ms=9_999)  # made after the run listed: a renewal
    assert is_due(channel(1, expiration=500), 500, listed_ms=0)  # no creation time: as old as can be
    assert not is_due(channel(1, expiration=501), 500)
    assert not is_due(channel(1, expiration=None), 500)
    assert not is_due(channel(1, expiration=100, status=STOPPED), 500)
    assert not is_due(channel(1, expiration=100, held=True), 500)


def test_fanout_settings_default_and_validate():
    settings = Settings.from_env({})
    assert (settings.renew_topic, settings.renew_inline, settings.renew_shard_size) == (None, 2000, 200)
    settings = Settings.from_env(
        {
            "CHANNELKIT_RENEW_TOPIC": "projects/p/topics/channelkit-renew",
            "CHANNELKIT_RENEW_INLINE": "0",
            "CHANNELKIT_RENEW_SHARD_SIZE": "50",
        }
    )
    assert (settings.renew_topic, settings.renew_inline, settings.renew_shard_size) == (
        "projects/p/topics/channelkit-renew",
        0,
        50,
    )
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(
            {
                "CHANNELKIT_RENEW_TOPIC": "channelkit-renew",
                "CHANNELKIT_RENEW_INLINE": "-1",
                "CHANNELKIT_RENEW_SHARD_SIZE": "0",
            }
        )
    for name in ("CHANNELKIT_RENEW_TOPIC", "CHANNELKIT_RENEW_INLINE", "CHANNELKIT_RENEW_SHARD_SIZE"):
        assert name in str(raised.value)


def test_a_shard_size_no_worker_would_accept_is_refused_up_front():
    """Shards longer than a worker reads would be acknowledged as malformed and never renewed."""
    assert (
        Settings.from_env({"CHANNELKIT_RENEW_SHARD_SIZE": str(MAX_SHARD_SIZE)}).renew_shard_size
        == MAX_SHARD_SIZE
    )
    with pytest.raises(ConfigError, match=f"at most {MAX_SHARD_SIZE}"):
        Settings.from_env({"CHANNELKIT_RENEW_SHARD_SIZE": str(MAX_SHARD_SIZE + 1)})
    # What a run may publish, a worker reads back.
    [shard] = split_shards([f"s{i}" for i in range(MAX_SHARD_SIZE)], MAX_SHARD_SIZE, listed_ms=1, run="r")
    assert len(parse_shard(shard_message(shard)).subscriptions) == MAX_SHARD_SIZE

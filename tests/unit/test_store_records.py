"""Channels as the store hands them back (pure)."""

import datetime

from channelkit.channel import Channel
from channelkit.store import records

UTC = datetime.UTC


def channel(**fields):
    values = dict(
        expiration=1_900_000_000_000,
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id="s1",
        status="active",
        created_at=datetime.datetime(2030, 1, 1, tzinfo=UTC),
    )
    values.update(fields)
    return Channel("web_hook", "c1", "tok", "https://x.example/hook", **values)


def test_a_channel_survives_its_record_and_copies_keep_its_subscription_fields():
    plain = channel()
    stored = records.from_record(records.to_record(plain, ttl_days=30))
    assert stored == plain and plain == stored
    changed = stored.copy(status="stopped", lease_owner="run-a")
    assert (changed.status, changed.lease_owner, stored.status) == ("stopped", "run-a", "active")
    assert changed == plain.copy(status="stopped", lease_owner="run-a")


def test_renew_at_is_derived_only_while_active():
    assert records.to_record(channel(), ttl_days=30)["renewAt"] == 1_900_000_000_000
    assert "renewAt" not in records.to_record(channel(status="stopped"), ttl_days=30)
    no_expiry = channel(expiration=None)
    expire_at = records.to_record(no_expiry, ttl_days=30)["expireAt"]
    assert expire_at == datetime.datetime(2030, 1, 31, tzinfo=UTC)

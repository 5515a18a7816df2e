"""Code written for googleapiclient.channel runs unchanged against channelkit.channel.

``legacy_program`` is written exactly as a user of googleapiclient would write
it; it runs against both modules and must give the same observable results
(apart from sending the token its channel declares, which the old module never
checked).
"""

import datetime

import pytest
from googleapiclient import channel as google_channel
from googleapiclient import errors as google_errors

from channelkit import channel as ck_channel

PUBLIC_NAMES = [
    "Channel",
    "Notification",
    "new_webhook_channel",
    "notification_from_headers",
    "X_GOOG_CHANNEL_ID",
    "X_GOOG_MESSAGE_NUMBER",
    "X_GOOG_RESOURCE_STATE",
    "X_GOOG_RESOURCE_URI",
    "X_GOOG_RESOURCE_ID",
    "CHANNEL_PARAMS",
    "EPOCH",
]


def legacy_program(module):
    """What a googleapiclient user does: build, watch, update, receive, stop."""
    out = {}
    ch = module.Channel("web_hook", "chan-1", "tok", "https://example.com/hook")
    out["plain_body"] = ch.body()
    ch2 = module.Channel(
        "web_hook",
        "chan-2",
        None,
        "https://example.com/hook",
        expiration=1_426_325_213_000,
        params={"ttl": "3600"},
        resource_id="res-1",
        resource_uri="https://www.googleapis.com/drive/v3/files/F",
    )
    out["full_body"] = ch2.body()
    made = module.new_webhook_channel(
        "https://example.com/hook",
        token="tok",
        expiration=datetime.datetime(2030, 1, 2, 3, 4, 5),
        params={"a": "b"},
    )
    out["made"] = (made.type, made.token, made.address, int(made.expiration), made.params)
    out["made_id_is_uuid"] = len(made.id) == 36
    # watch() response as Google sends it
    ch.update(
        {
            "kind": "api#channel",
            "id": "chan-1",
            "resourceId": "res-9",
            "resourceUri": "https://www.googleapis.com/drive/v3/files/F?alt=json",
            "expiration": "1426325213000",
            "token": None,
        }
    )
    out["after_update"] = (ch.id, ch.resource_id, ch.resource_uri, int(ch.expiration), ch.token)
    headers = {
        "x-goog-channel-id": "chan-1",
        "X-Goog-Message-Number": "7",
        "X-GOOG-RESOURCE-STATE": "update",
        "x-goog-resource-uri": "https://www.googleapis.com/drive/v3/files/F?alt=json",
        "X-Goog-Resource-Id": "res-9",
        "X-Goog-Channel-Token": "tok",
    }
    n = module.notification_from_headers(ch, headers)
    out["notification"] = (n.message_number, n.state, n.resource_uri, n.resource_id)
    try:
        module.notification_from_headers(ch, dict(headers, **{"x-goog-channel-id": "other"}))
        out["mismatch"] = "accepted"
    except google_errors.InvalidNotificationError:
        out["mismatch"] = "InvalidNotificationError"
    try:
        module.notification_from_headers(ch, dict(headers, **{"X-Goog-Message-Number": "x"}))
        out["bad_number"] = "accepted"
    except ValueError:
        out["bad_number"] = "ValueError"
    direct = module.Notification(3, "sync", "uri", "rid")
    out["direct"] = (direct.message_number, direct.state, direct.resource_uri, direct.resource_id)
    out["params"] = dict(module.CHANNEL_PARAMS)
    out["constants"] = [
        module.X_GOOG_CHANNEL_ID,
        module.X_GOOG_MESSAGE_NUMBER,
        module.X_GOOG_RESOURCE_STATE,
        module.X_GOOG_RESOURCE_URI,
        module.X_GOOG_RESOURCE_ID,
    ]
    out["epoch"] = module.EPOCH
    return out


def test_every_public_name_of_googleapiclient_channel_exists():
    for name in PUBLIC_NAMES:
        assert hasattr(ck_channel, name), name


def test_legacy_program_gives_the_same_results_on_both_modules():
    assert legacy_program(ck_channel) == legacy_program(google_channel)


def test_invalid_notification_is_catchable_as_googleapiclients_error():
    ch = ck_channel.Channel("web_hook", "a", None, "https://x")
    with pytest.raises(google_errors.InvalidNotificationError):
        ck_channel.notification_from_headers(ch, {"X-Goog-Channel-ID": "a"})


def test_constructor_argument_order_matches():
    args = ("web_hook", "id-1", "tok", "https://x", 5, {"p": "q"}, "rid", "ruri")
    ours, theirs = ck_channel.Channel(*args), google_channel.Channel(*args)
    for attr in ("type", "id", "token", "address", "expiration", "params", "resource_id", "resource_uri"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr

"""Signed channel ids and sealed tokens, through the webhook under functions-framework (emulator).

With ``CHANNELKIT_CREDENTIALS_KEY`` set, a request whose channel id does not
verify is refused 404 before any store read and leaves no cache entry; ids of
channels made before signing (unsigned) still work until
``CHANNELKIT_ACCEPT_UNSIGNED_IDS=false``; an id signed under a key that was
rotated out is refused; without a key the function says so once.
"""

from __future__ import annotations

import base64
import json
import sys

import pytest

from channelkit.crypto import Keyring
from channelkit.signing import Signer
from channelkit.store import open_store
from channelkit.store.firestore import FirestoreStore
from channelkit.testing.harness import notification_headers
from support.webhook_testing import new_channel

KEY_A = base64.b64encode(b"k" * 32).decode()
KEY_B = base64.b64encode(b"n" * 32).decode()


@pytest.fixture
def reads(monkeypatch):
    """Every channel read made by any Firestore store in this process, by channel id."""
    seen: list[str] = []
    real = FirestoreStore._read

    def counting(self, channel_id):
        seen.append(channel_id)
        return real(self, channel_id)

    monkeypatch.setattr(FirestoreStore, "_read", counting)
    return seen


def keyed_store(keys: str):
    return open_store("firestore", timeout=30, keyring=Keyring.parse(keys))


def signed_channel(keys: str = KEY_A, **fields):
    signer = Signer(Keyring.parse(keys))
    channel = new_channel(**fields)
    channel.id = signer.new_channel_id()
    channel.token = signer.derive_token(channel.subscription_id)
    return channel


def forged(channel_id: str) -> str:
    last = "A" if channel_id[-1] != "A" else "B"
    return channel_id[:-1] + last


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_signed_channel_is_accepted_and_a_forged_id_costs_no_read(make_app, recording, reads, capsys):
    client = make_app(CHANNELKIT_CREDENTIALS_KEY=KEY_A)
    channel = signed_channel()
    keyed_store(KEY_A).create(channel)
    assert client.post("/", headers=notification_headers(channel, 1, "sync")).status_code == 200
    assert [c["channelId"] for c in recording.ok()] == [channel.id]
    webhook = sys.modules["webhook"]
    cached = len(webhook._receiver.cache)
    capsys.readouterr()
    reads.clear()

    fakes = [forged(channel.id), forged(signed_channel().id), signed_channel(KEY_B).id]
    for fake in fakes:
        headers = notification_headers(channel, 2, "update", Channel_ID=fake)
        assert client.post("/", headers=headers).status_code == 404
    assert reads == []  # refused on the key alone
    assert len(webhook._receiver.cache) == cached  # and nothing learned about them
    assert len(recording.calls()) == 1

    # The log line of a forgery is the usual refusal's: no other fields, no longer.
    unknown_unsigned = new_channel()
    client.post("/", headers=notification_headers(unknown_unsigned, 2, "update"))
    refused = lines(capsys)
    usual = refused[-1]
    assert usual["outcome"] == "unknown_channel" and reads == [unknown_unsigned.id]
    for line in refused[:-1]:
        assert line["outcome"] == "unknown_channel" and set(line) <= set(usual)
        assert len(json.dumps(line)) <= len(json.dumps(usual)) + 16  # ids of 48 and 36 characters


def test_unsigned_ids_reach_the_store_until_turned_off(make_app, recording, reads):
    legacy = new_channel()  # a uuid id, made before ids were signed
    keyed_store(KEY_A).create(legacy)
    client = make_app(CHANNELKIT_CREDENTIALS_KEY=KEY_A)
    assert client.post("/", headers=notification_headers(legacy, 1, "sync")).status_code == 200

    strict = make_app(CHANNELKIT_CREDENTIALS_KEY=KEY_A, CHANNELKIT_ACCEPT_UNSIGNED_IDS="false")
    reads.clear()
    assert strict.post("/", headers=notification_headers(legacy, 2, "update")).status_code == 404
    assert reads == []
    signed = signed_channel()
    keyed_store(KEY_A).create(signed)
    assert strict.post("/", headers=notification_headers(signed, 1, "sync")).status_code == 200
    assert sorted(c["channelId"] for c in recording.ok()) == sorted([legacy.id, signed.id])


def test_rotation_keeps_old_ids_while_the_old_key_is_held(make_app, recording, reads):
    old = signed_channel(KEY_A)
    keyed_store(KEY_A).create(old)
    rotated = make_app(CHANNELKIT_CREDENTIALS_KEY=f"{KEY_B},{KEY_A}")
    assert rotated.post("/", headers=notification_headers(old, 1, "sync")).status_code == 200

    retired = make_app(CHANNELKIT_CREDENTIALS_KEY=KEY_B)  # key A rotated out
    reads.clear()
    assert retired.post("/", headers=notification_headers(old, 2, "update")).status_code == 404
    assert reads == []
    assert [c["messageNumber"] for c in recording.ok()] == [1]


def test_a_derived_token_is_still_checked(make_app, recording):
    client = make_app(CHANNELKIT_CREDENTIALS_KEY=KEY_A)
    channel = signed_channel()
    keyed_store(KEY_A).create(channel)
    for wrong in ("x" * 43, None):
        headers = notification_headers(channel, 1, "sync", Channel_Token=wrong)
        assert client.post("/", headers=headers).status_code == 403
    assert recording.calls() == []


def test_without_a_key_the_function_warns_once(make_app, store, recording, capsys):
    client = make_app(CHANNELKIT_CREDENTIALS_KEY=None)
    channel = new_channel()
    store.create(channel)
    capsys.readouterr()
    for number in (1, 2, 3):
        assert client.post("/", headers=notification_headers(channel, number, "update")).status_code == 200
    warnings = [line for line in lines(capsys) if "not signed" in line.get("message", "")]
    assert len(warnings) == 1 and warnings[0]["severity"] == "WARNING"
    assert "CHANNELKIT_CREDENTIALS_KEY" in warnings[0]["message"]


def test_a_forged_id_is_refused_before_the_other_headers_are_read(make_app, recording, reads):
    client = make_app(CHANNELKIT_CREDENTIALS_KEY=KEY_A)
    channel = signed_channel()
    headers = notification_headers(channel, 1, "update", Channel_ID=forged(channel.id), Resource_State=None)
    assert client.post("/", headers=headers).status_code == 404  # the id first: it was never ours
    genuine = notification_headers(channel, 1, "update", Resource_State=None)
    assert client.post("/", headers=genuine).status_code == 400  # a verified id: the headers decide
    assert reads == [] and recording.calls() == []

"""Signed ids and tokens kept out of Firestore, through subscribe, the webhook and renewal.

Firestore emulator as the store (its raw documents read through the emulator's
REST API), the simulator as Google, a webhook on the same store.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import urllib.request

import pytest

from channelkit.crypto import Keyring
from channelkit.errors import ConfigError
from channelkit.reactivate import reactivate
from channelkit.renewal import renew_due
from channelkit.renewal.renewer import SEALED_TOKEN
from channelkit.signing import ID_PREFIX, IdCheck, Signer
from channelkit.store import open_store
from channelkit.store.records import SealedToken
from channelkit.subscribe import subscribe
from support.webhook_harness import RecordingHandler, WebhookServer

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()
HOUR = 3600
PROJECT = "channelkit-test"


@pytest.fixture
def store(firestore_env, monkeypatch):
    """The store of a deployment with key A (from the environment, as the functions read it)."""
    monkeypatch.setenv("CHANNELKIT_CREDENTIALS_KEY", KEY_A)
    s = open_store()
    yield s
    s.close()


def raw_documents(host: str, collection: str = "channels") -> str:
    """A collection's documents as the emulator's REST API hands them out."""
    url = f"http://{host}/v1/projects/{PROJECT}/databases/(default)/documents/{collection}?pageSize=300"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def drive_watch(store, google, hook, clock, **options):
    return subscribe(
        "drive",
        "v3",
        "files.watch",
        address=hook.url,
        params={"fileId": options.pop("file_id", "F1")},
        ttl=HOUR,
        store=store,
        google=google,
        clock=clock,
        **options,
    )


def test_subscribe_makes_a_signed_id_and_a_token_firestore_never_holds(
    store, google, simulator, hook, handler, clock, firestore_env
):
    derived = drive_watch(store, google, hook, clock)
    own = drive_watch(store, google, hook, clock, file_id="F2", token="the-users-own-token")
    signer = Signer(Keyring.parse(KEY_A))
    for channel in (derived, own):
        assert channel.id.startswith(ID_PREFIX) and signer.check_channel_id(channel.id) is IdCheck.SIGNED
        assert simulator.channel(channel.id).token == channel.token  # Google got the real token
        assert store.get(channel.id).token == channel.token  # and the store gives it back
    assert derived.token == signer.derive_token(derived.subscription_id)

    documents = raw_documents(firestore_env)
    assert derived.id in documents and own.id in documents
    assert derived.token not in documents and "the-users-own-token" not in documents
    subscriptions = raw_documents(firestore_env, "subscriptions")
    assert derived.subscription_id in subscriptions  # the records beside the channels hold none either
    assert derived.token not in subscriptions and "the-users-own-token" not in subscriptions
    fields = {d["name"].rsplit("/", 1)[1]: d["fields"] for d in json.loads(documents)["documents"]}
    assert "token" not in fields[derived.id] and "tokenKeyId" in fields[derived.id]
    assert "token" not in fields[own.id] and "tokenSealed" in fields[own.id]

    simulator.change("drive", "files", fileId="F1", state="update")
    simulator.change("drive", "files", fileId="F2", state="update")
    simulator.wait_idle()
    assert sorted(c for c, n, s in hook.statuses if s == 200 and n > 1) == sorted([derived.id, own.id])


def test_renewal_signs_under_the_first_key_and_keeps_notifications_flowing(
    store, google, simulator, clock, firestore_env
):
    rotated = open_store(keyring=Keyring.parse(f"{KEY_B},{KEY_A}"))  # key B put first
    handler = RecordingHandler()
    with WebhookServer(rotated, handler, clock, grace=60) as hook:
        old = drive_watch(store, google, hook, clock)  # made under key A alone
        simulator.change("drive", "files", fileId="F1", state="update")
        simulator.wait_idle()
        assert any(c == old.id and s == 200 and n > 1 for c, n, s in hook.statuses)

        summary = renew_due(store=rotated, google=google, clock=clock, renew_before=3 * HOUR)
        [renewed] = summary.renewed
        new = rotated.get(renewed["new"])
        signer_b = Signer(Keyring.parse(KEY_B))
        assert signer_b.check_channel_id(new.id) is IdCheck.SIGNED  # signed under the new first key
        assert new.token == signer_b.derive_token(old.subscription_id) != old.token
        assert simulator.channel(new.id).token == new.token
        simulator.change("drive", "files", fileId="F1", state="update")
        simulator.wait_idle()
        assert any(c == new.id and s == 200 and n > 1 for c, n, s in hook.statuses)
    documents = raw_documents(firestore_env)
    assert old.token not in documents and new.token not in documents
    rotated.close()


def test_a_legacy_channel_is_renewed_to_a_signed_id_its_token_sealed(
    google, simulator, clock, firestore_env, monkeypatch
):
    monkeypatch.delenv("CHANNELKIT_CREDENTIALS_KEY", raising=False)
    keyless = open_store()
    handler = RecordingHandler()
    with WebhookServer(keyless, handler, clock, grace=60) as hook:
        old = drive_watch(keyless, google, hook, clock)
    assert not old.id.startswith(ID_PREFIX) and old.token in raw_documents(firestore_env)

    keyed = open_store(keyring=Keyring.parse(KEY_A))
    [renewed] = renew_due(store=keyed, google=google, clock=clock, renew_before=3 * HOUR).renewed
    new = keyed.get(renewed["new"])
    assert Signer(Keyring.parse(KEY_A)).check_channel_id(new.id) is IdCheck.SIGNED
    assert new.token == old.token  # a random token is kept (it may be the user's), sealed
    documents = json.loads(raw_documents(firestore_env))["documents"]
    [successor] = [d["fields"] for d in documents if d["name"].endswith(new.id)]
    assert "tokenSealed" in successor and old.token not in json.dumps(successor)


def test_a_run_without_the_key_leaves_a_sealed_channel_alone(store, google, simulator, clock, hook):
    channel = drive_watch(store, google, hook, clock, token="the-users-own-token")
    keyless = open_store(keyring=False)
    assert isinstance(keyless.get(channel.id).token, SealedToken)
    summary = renew_due(store=keyless, google=google, clock=clock, renew_before=3 * HOUR)
    assert summary.renewed == [] and {"id": channel.id, "reason": SEALED_TOKEN} in summary.skipped
    watches = [c for c in simulator.calls if c.operation == "drive.files.watch"]
    assert len(watches) == 1  # no watch with a token nobody could match
    assert store.get(channel.id).token == "the-users-own-token"  # written back intact


def test_reactivate_without_the_key_refuses_with_one_clear_error(store, google, simulator, clock, hook):
    channel = drive_watch(store, google, hook, clock)
    store.change_subscription(
        channel.subscription_id, lambda s: dataclasses.replace(s, state="suspended", reason="OTHER")
    )
    keyless = open_store(keyring=False)
    with pytest.raises(ConfigError, match="CHANNELKIT_CREDENTIALS_KEY"):
        reactivate(channel.subscription_id, store=keyless, google=google, clock=clock)


def test_an_id_chosen_by_hand_is_refused_when_unsigned_ids_are(store, google, hook, clock, monkeypatch):
    monkeypatch.setenv("CHANNELKIT_ACCEPT_UNSIGNED_IDS", "false")
    with pytest.raises(ConfigError, match="not signed"):
        drive_watch(store, google, hook, clock, channel_id="my-own-id")
    monkeypatch.setenv("CHANNELKIT_ACCEPT_UNSIGNED_IDS", "true")
    assert drive_watch(store, google, hook, clock, channel_id="my-own-id").id == "my-own-id"

"""Signed channel ids and derived tokens (channelkit.signing), and how records keep tokens."""

from __future__ import annotations

import base64
import re

import pytest

from channelkit import signing
from channelkit.channel import Channel, validate_channel_id
from channelkit.crypto import Keyring
from channelkit.signing import ID_PREFIX, IdCheck, Signer
from channelkit.store import records

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
GOOGLE_ID = re.compile(r"^[A-Za-z0-9\-_+/=]{1,64}$")


def signer(text: str = KEY_A) -> Signer:
    return Signer(Keyring.parse(text))


def test_signed_ids_fit_google_and_verify_under_their_key():
    s = signer()
    ids = {s.new_channel_id() for _ in range(200)}
    assert len(ids) == 200
    for channel_id in ids:
        assert GOOGLE_ID.match(channel_id) and validate_channel_id(channel_id) == channel_id
        assert channel_id.startswith(ID_PREFIX) and len(channel_id) == 48
        assert s.check_channel_id(channel_id) is IdCheck.SIGNED


@pytest.mark.parametrize("position", [4, 20, 26, 47])
def test_one_changed_character_makes_a_forgery(position):
    s = signer()
    good = s.new_channel_id()
    bad = good[:position] + ("A" if good[position] != "A" else "B") + good[position + 1 :]
    assert s.check_channel_id(bad) is IdCheck.FORGED


def test_non_ascii_in_a_signed_shape_is_forged_not_an_error():
    good = signer().new_channel_id()
    assert signer().check_channel_id(good[:30] + "\u00e9" + good[31:]) is IdCheck.FORGED


def test_ids_of_another_shape_are_unsigned_not_forged():
    s = signer()
    for other in ["3f1c2b9e-1d2c-4c49-9f0e-1234567890ab", "my-channel", "ck1-short", "x" * 48]:
        assert s.check_channel_id(other) is IdCheck.UNSIGNED


def test_an_id_of_another_deployment_is_forged():
    assert signer(KEY_A).check_channel_id(signer(KEY_B).new_channel_id()) is IdCheck.FORGED


def test_rotation_old_ids_verify_while_the_old_key_is_held_and_not_after():
    old_id = signer(KEY_A).new_channel_id()
    assert signer(f"{KEY_B},{KEY_A}").check_channel_id(old_id) is IdCheck.SIGNED
    assert signer(KEY_B).check_channel_id(old_id) is IdCheck.FORGED


def test_derived_tokens_are_per_subscription_and_per_key():
    s = signer(f"{KEY_B},{KEY_A}")
    token = s.derive_token("sub-1")
    assert token == s.derive_token("sub-1") and token != s.derive_token("sub-2")
    assert len(token) == 43 and GOOGLE_ID.match(token)
    assert s.token_key(token, "sub-1") == s.keyring.primary_id
    assert s.token_key(token, "sub-2") is None
    under_a = signer(KEY_A).derive_token("sub-1")
    assert under_a != token and s.token_key(under_a, "sub-1") is not None
    assert s.derive_token("sub-1", key="no-such-key") is None


def test_renewal_moves_a_derived_token_to_the_first_key_and_keeps_the_users_own():
    after = signer(f"{KEY_B},{KEY_A}")
    under_a = signer(KEY_A).derive_token("sub-1")
    assert signing.renewed_token(after, under_a, "sub-1") == after.derive_token("sub-1")
    assert signing.renewed_token(after, "users-own-token", "sub-1") == "users-own-token"
    assert signing.renewed_token(None, under_a, "sub-1") == under_a


def test_without_a_key_ids_are_uuids_and_tokens_random():
    assert signing.new_channel_id(None) != signing.new_channel_id(None)
    assert len(signing.new_channel_id(None)) == 36
    assert signing.new_token(None, "sub-1") != signing.new_token(None, "sub-1")
    keyed = signer()
    assert signing.new_token(keyed, "sub-1") == keyed.derive_token("sub-1")


# --- records: the token never stored in clear when there is a key -------------------


def channel(token: str | None, subscription_id: str | None = "sub-1") -> Channel:
    return Channel("web_hook", "ch-1", token, "https://example.com/hook", subscription_id=subscription_id)


def test_a_derived_token_is_stored_as_its_key_id_only():
    s = signer()
    token = s.derive_token("sub-1")
    record = records.to_record(channel(token), ttl_days=30, signer=s)
    assert record["tokenKeyId"] == s.keyring.primary_id
    assert token not in repr(record) and "token" not in record and "tokenSealed" not in record
    assert records.from_record(record, s).token == token


def test_a_users_token_is_sealed_and_opens_with_the_key():
    s = signer()
    record = records.to_record(channel("users-own-token"), ttl_days=30, signer=s)
    assert "users-own-token" not in repr(record) and "token" not in record
    assert set(record["tokenSealed"]) == {"keyId", "nonce", "ciphertext"}
    assert records.from_record(record, s).token == "users-own-token"


def test_without_a_key_the_token_is_stored_as_before():
    record = records.to_record(channel("t0k"), ttl_days=30)
    assert record["token"] == "t0k"
    assert records.from_record(record).token == "t0k"
    # A record written before the key existed still reads in clear with one.
    assert records.from_record(record, signer()).token == "t0k"


@pytest.mark.parametrize("token", ["users-own-token", None])
def test_a_token_this_process_cannot_open_matches_nothing_and_is_written_back_as_it_was(token):
    keyed = signer()
    token = token or keyed.derive_token("sub-1")
    stored = records.to_record(channel(token), ttl_days=30, signer=keyed)
    for reader in (None, signer(KEY_B)):  # no key, or not the key that sealed it
        opened = records.from_record(stored, reader)
        assert isinstance(opened.token, records.SealedToken)
        assert opened.token != token and token not in opened.token
        rewritten = records.to_record(opened, ttl_days=30, signer=reader)
        assert {k: rewritten[k] for k in records.TOKEN_FIELDS if k in rewritten} == {
            k: stored[k] for k in records.TOKEN_FIELDS if k in stored
        }
        assert records.from_record(rewritten, keyed).token == token


def test_two_unopenable_tokens_differ_so_neither_can_be_guessed():
    stored = records.to_record(channel("x"), ttl_days=30, signer=signer())
    assert records.from_record(stored).token != records.from_record(stored).token


def test_a_sealed_token_moved_to_an_altered_record_does_not_open():
    s = signer()
    record = records.to_record(channel("users-own-token"), ttl_days=30, signer=s)
    sealed = dict(record["tokenSealed"])
    sealed["ciphertext"] = base64.b64encode(b"\0" * 40).decode()
    opened = records.from_record({**record, "tokenSealed": sealed}, s)
    assert isinstance(opened.token, records.SealedToken)

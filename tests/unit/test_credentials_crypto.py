"""Sealing stored credentials (AES-256-GCM) and reading credential references: pure, no I/O."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from channelkit.crypto import Keyring, key_id, new_key
from channelkit.errors import ConfigError, CredentialDecryptError
from channelkit.user_credentials import (
    StoredCredential,
    parse_authorized_user,
    parse_reference,
    seal,
    unseal,
)

OLD, NEW = new_key(), new_key()
REFRESH, SECRET = "1//refresh-token-of-alice", "client-secret-xyz"
INFO = {"type": "authorized_user", "client_id": "cid", "client_secret": SECRET, "refresh_token": REFRESH}


def stored(keys: Keyring, key: str = "alice", version: int = 1) -> StoredCredential:
    sealed = seal(keys, key, version, refresh_token=REFRESH, client_secret=SECRET)
    return StoredCredential(key, "cid", "https://oauth2.example/token", [], sealed, version=version)


def test_a_sealed_credential_opens_with_its_key_and_shows_no_secret():
    keys = Keyring.parse(OLD)
    credential = stored(keys)
    assert unseal(keys, credential) == {"refresh_token": REFRESH, "client_secret": SECRET}
    record = str(credential.to_record()) + repr(credential) + str(credential.public_json())
    assert REFRESH not in record and SECRET not in record
    assert OLD not in repr(keys) and key_id(base64.b64decode(OLD)) in repr(keys)


def test_a_tampered_ciphertext_is_refused():
    keys = Keyring.parse(OLD)
    credential = stored(keys)
    raw = bytearray(base64.b64decode(credential.sealed["ciphertext"]))
    raw[3] ^= 1
    credential.sealed["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(CredentialDecryptError):
        unseal(keys, credential)


def test_a_ciphertext_moved_to_another_key_or_version_is_refused():
    keys = Keyring.parse(OLD)
    credential = stored(keys, "alice")
    with pytest.raises(CredentialDecryptError):
        unseal(keys, dataclasses.replace(credential, key="bob"))
    with pytest.raises(CredentialDecryptError):
        unseal(keys, dataclasses.replace(credential, version=2))


def test_a_wrong_key_is_refused_and_rotation_keeps_old_keys_reading():
    credential = stored(Keyring.parse(OLD))
    with pytest.raises(CredentialDecryptError, match="does not hold"):
        unseal(Keyring.parse(NEW), credential)
    rotated = Keyring.parse(f"{NEW},{OLD}")
    assert unseal(rotated, credential)["refresh_token"] == REFRESH  # the old key still reads
    assert rotated.encrypt(b"x", b"ad")["keyId"] == rotated.primary_id == key_id(base64.b64decode(NEW))


@pytest.mark.parametrize(
    ("text", "wants"),
    [("", "empty"), ("not base64!", "not base64"), (base64.b64encode(b"short").decode(), "is 5 bytes")],
)
def test_a_bad_key_setting_is_a_config_error_that_never_echoes_it(text, wants):
    with pytest.raises(ConfigError, match=wants) as caught:
        Keyring.parse(text)
    assert not text or text not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        (None, "adc"),
        ("adc", "adc"),
        ("subject:ann@example.com", "subject:ann@example.com"),
        ("user:alice", "user:alice"),
        ("user:team-7.bob@example.com", "user:team-7.bob@example.com"),
    ],
)
def test_references_are_read_and_normalised(text, reference):
    assert parse_reference(text) == reference


def test_subject_alone_takes_the_default_subject_and_bad_references_are_refused():
    assert parse_reference("subject:", default_subject="admin@example.com") == "subject:admin@example.com"
    for bad in ("subject:", "user:", "user:a b", "oauth:x", "alice"):
        with pytest.raises(ConfigError):
            parse_reference(bad)


def test_an_authorized_user_file_is_read_and_its_faults_named_without_values():
    fields = parse_authorized_user(INFO)
    assert fields["token_uri"] == "https://oauth2.googleapis.com/token" and fields["scopes"] == []
    with pytest.raises(ConfigError, match="refresh_token") as caught:
        parse_authorized_user({**INFO, "refresh_token": ""})
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigError, match="service_account"):
        parse_authorized_user({**INFO, "type": "service_account"})
    with pytest.raises(ConfigError, match="not JSON"):
        parse_authorized_user("{nope")

"""Acting as each user: stored OAuth grants, encrypted at rest, one refresh per token, revocation.

The simulator plays Google's token endpoint and checks that each owned file is
watched and stopped with its owner's token; the Firestore emulator stores.
"""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from channelkit.credentials_admin import (
    list_user_credentials,
    reactivate_credential,
    remove_user_credentials,
    rotate_credentials,
    store_user_credentials,
)
from channelkit.crypto import Keyring, new_key
from channelkit.errors import CredentialInUseError, CredentialNotFoundError
from channelkit.google_api import GoogleApi
from channelkit.reactivate import reactivate
from channelkit.renewal import renew_due
from channelkit.subscribe import stop, subscribe
from channelkit.testing.simulator import Resource

HOUR = 3600
DAY = 24 * HOUR
KEY = new_key()
PROJECT = "channelkit-test"


@pytest.fixture
def users(store, simulator, monkeypatch):
    """Alice and Bob, each with a stored grant and a file only they may watch."""
    monkeypatch.setenv("CHANNELKIT_CREDENTIALS_KEY", KEY)
    simulator.token_lifetime = 30 * DAY  # google-auth judges expiry on real time, the simulator on its own
    grants = {}
    for user in ("alice", "bob"):
        grants[user] = simulator.add_user(user)
        store_user_credentials(user, grants[user], store=store)
        simulator.set_owner(Resource.of("drive", "files", fileId=f"F-{user}"), user)
    return grants


@pytest.fixture
def api(store, simulator):
    return GoogleApi(root=simulator.url, retries=0, store=store, credentials_key=KEY)


@pytest.fixture
def clock(simulator):
    return lambda: simulator.clock.now_ms() / 1000


def watch(store, api, clock, user, file_id=None, ttl=HOUR):
    return subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://hooks.example.com/w",
        params={"fileId": file_id or f"F-{user}"},
        ttl=ttl,
        store=store,
        google=api,
        clock=clock,
        credentials=f"user:{user}",
    )


def calls_by_user(simulator, operation):
    return [(c.user, c.status) for c in simulator.calls if c.operation == operation]


def lifecycle(handler_calls):
    return [(n.state, n.reason, c.subscription_id) for n, c in handler_calls if n.message_number == 0]


def test_watch_renew_and_stop_each_go_out_with_their_own_users_token(store, simulator, users, api, clock):
    a, b = watch(store, api, clock, "alice"), watch(store, api, clock, "bob")
    assert store.get_subscription(a.subscription_id).credentials == "user:alice"
    summary = renew_due(store=store, google=api, clock=clock, renew_before=3 * HOUR, lease_seconds=600)
    assert summary.to_json()["renewed"] == 2
    watches = calls_by_user(simulator, "drive.files.watch")
    assert sorted(watches) == [("alice", 200), ("alice", 200), ("bob", 200), ("bob", 200)]
    by_file = {c.resource.params: c.user for c in simulator.calls if c.operation == "drive.files.watch"}
    assert by_file == {(("fileId", "F-alice"),): "alice", (("fileId", "F-bob"),): "bob"}
    stops = calls_by_user(simulator, "drive.channels.stop")
    assert sorted(stops) == [("alice", 204), ("bob", 204)]  # the renewed-away channels, each by its owner
    stop(
        store.get_subscription(a.subscription_id).channel_id,
        store=store,
        google=api,
        dispatcher=lambda n, c: None,
    )
    assert calls_by_user(simulator, "drive.channels.stop")[-1] == ("alice", 204)
    assert simulator.refreshes("alice") == 1 and simulator.refreshes("bob") == 1
    assert {c.id for c in simulator.live_channels()} == {store.get_subscription(b.subscription_id).channel_id}


def test_secrets_are_encrypted_at_rest(store, simulator, users, firestore_env):
    url = f"http://{firestore_env}/v1/projects/{PROJECT}/databases/(default)/documents/credentials/alice"
    raw = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "F-alice" not in raw and json.loads(raw)["fields"]["clientId"]
    for secret in (users["alice"]["refresh_token"], users["alice"]["client_secret"]):
        assert secret not in raw
    listed = json.dumps([u.to_json() for u in list_user_credentials(store)])
    assert users["alice"]["refresh_token"] not in listed and users["alice"]["client_secret"] not in listed


def test_rotation_reencrypts_and_the_old_key_still_reads(store, simulator, users, api, clock, monkeypatch):
    watch(store, api, clock, "alice")
    rotated = f"{new_key()},{KEY}"
    monkeypatch.setenv("CHANNELKIT_CREDENTIALS_KEY", rotated)
    assert rotate_credentials(store=store) == 2
    assert rotate_credentials(store=store) == 0
    primary = Keyring.parse(rotated).primary_id
    assert {c.sealed["keyId"] for c in store.list_credentials()} == {primary}
    fresh = GoogleApi(root=simulator.url, retries=0, store=store, credentials_key=rotated)
    summary = renew_due(store=store, google=fresh, clock=clock, renew_before=3 * HOUR, lease_seconds=600)
    assert summary.to_json()["renewed"] == 1


def test_a_revoked_grant_is_tried_once_and_suspends_every_subscription_of_it(
    store, simulator, users, api, clock
):
    a1, a2 = watch(store, api, clock, "alice"), watch(store, api, clock, "alice", file_id="F-alice-2")
    b = watch(store, api, clock, "bob")
    simulator.set_owner(Resource.of("drive", "files", fileId="F-alice-2"), "alice")
    simulator.revoke("alice")
    attempts = simulator.refreshes("alice", all_attempts=True)
    fresh = GoogleApi(root=simulator.url, retries=0, store=store, credentials_key=KEY)  # a new instance
    events = []
    summary = renew_due(
        store=store,
        google=fresh,
        dispatcher=lambda n, c: events.append((n, c)),
        clock=clock,
        renew_before=3 * HOUR,
        lease_seconds=600,
    )
    assert simulator.refreshes("alice", all_attempts=True) - attempts == 1  # exactly one refresh attempt
    for sub in (a1, a2):
        record = store.get_subscription(sub.subscription_id)
        assert (record.state, record.reason) == ("suspended", "CREDENTIALS_INVALID")
    assert sorted(lifecycle(events)) == sorted(
        [
            ("suspended", "CREDENTIALS_INVALID", a1.subscription_id),
            ("suspended", "CREDENTIALS_INVALID", a2.subscription_id),
        ]
        + [("renewed", None, b.subscription_id)]
    )
    assert store.get_subscription(b.subscription_id).state == "active"
    assert store.get_credential("alice").revoked
    assert summary.to_json()["renewed"] == 1
    renew_due(store=store, google=fresh, clock=clock, renew_before=3 * HOUR, lease_seconds=600)
    assert simulator.refreshes("alice", all_attempts=True) - attempts == 1  # no further refresh, ever

    reconnected = simulator.add_user("alice")  # the user connects again: a new grant
    store_user_credentials("alice", reconnected, store=store)
    assert not store.get_credential("alice").revoked
    fresh.identities.CHECK_EVERY = 0  # the instance that saw the refusal notices the new grant
    reactivate(a1.subscription_id, store=store, google=fresh, dispatcher=lambda n, c: None)
    done, failed = reactivate_credential("alice", store=store, google=api, dispatcher=lambda n, c: None)
    assert done == [a2.subscription_id] and failed == {}
    assert {store.get_subscription(s.subscription_id).state for s in (a1, a2, b)} == {"active"}


def test_without_the_key_nothing_is_stored_and_subscriptions_that_need_one_are_suspended(
    store, simulator, users, api, clock, monkeypatch
):
    a = watch(store, api, clock, "alice")
    monkeypatch.delenv("CHANNELKIT_CREDENTIALS_KEY")
    with pytest.raises(Exception, match="CHANNELKIT_CREDENTIALS_KEY"):
        store_user_credentials("carol", simulator.add_user("carol"), store=store)
    keyless = GoogleApi(root=simulator.url, retries=0, store=store)
    renew_due(store=store, google=keyless, clock=clock, renew_before=3 * HOUR, lease_seconds=600)
    record = store.get_subscription(a.subscription_id)
    assert (record.state, record.reason) == ("suspended", "CREDENTIALS_INVALID")
    assert "CHANNELKIT_CREDENTIALS_KEY" in record.detail
    assert not store.get_credential("alice").revoked  # the grant is fine: the key is missing


def test_remove_is_refused_while_in_use_unless_stopping_them(store, simulator, users, api, clock):
    a = watch(store, api, clock, "alice")
    with pytest.raises(CredentialInUseError):
        remove_user_credentials("alice", store=store, google=api)
    assert remove_user_credentials("alice", stop=True, store=store, google=api) == [a.subscription_id]
    assert store.find_credential("alice") is None
    assert store.get_subscription(a.subscription_id).state == "stopped"
    with pytest.raises(CredentialNotFoundError):
        watch(store, api, clock, "alice")


def test_one_refresh_per_user_across_a_run_of_many_subscriptions(store, simulator, api, clock, monkeypatch):
    monkeypatch.setenv("CHANNELKIT_CREDENTIALS_KEY", KEY)
    simulator.token_lifetime = 30 * DAY
    users, per_user = int(os.environ.get("CK_CRED_USERS", "10")), 10
    for n in range(users):
        store_user_credentials(f"u{n}", simulator.add_user(f"u{n}"), store=store)
    setup = GoogleApi(root=simulator.url, retries=0, store=store, credentials_key=KEY)
    for n in range(users):
        for f in range(per_user):
            watch(store, setup, clock, f"u{n}", file_id=f"F{n}-{f}")
    before = simulator.refreshes()
    fresh = GoogleApi(root=simulator.url, retries=0, store=store, credentials_key=KEY)
    summary = renew_due(store=store, google=fresh, clock=clock, renew_before=3 * HOUR, lease_seconds=600)
    assert summary.to_json()["renewed"] == users * per_user
    assert simulator.refreshes() - before == users  # each user's token refreshed once, shared by its renewals


def test_a_channel_whose_grant_was_refused_is_left_to_expire_not_retried(store, simulator, users, api, clock):
    a = watch(store, api, clock, "alice")
    simulator.revoke("alice")
    fresh = GoogleApi(root=simulator.url, retries=0, store=store, credentials_key=KEY)
    renew_due(store=store, google=fresh, clock=clock, renew_before=3 * HOUR, lease_seconds=600)
    assert store.get_subscription(a.subscription_id).state == "suspended"
    assert remove_user_credentials("alice", stop=True, store=store, google=fresh) == [a.subscription_id]
    channel = store.get(a.id)
    assert channel.status == "stopped" and not channel.stop_pending
    assert "ends at its expiration" in channel.last_error
    assert store.pending_stops() == []  # nothing for every later run to retry

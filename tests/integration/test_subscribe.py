"""Subscribe and stop flows: Firestore emulator as the store, the simulator as Google."""

import pytest

from channelkit.errors import AuthError, ConfigError, UnknownApiError
from channelkit.subscribe import stop, subscribe
from channelkit.testing.harness import LoopbackReceiver


def test_channel_is_stored_pending_before_watch_returns(store, google, simulator):
    """The simulator sends sync before answering watch; the record must already exist."""
    simulator.sync_before_response = True
    seen = []

    def on_post(headers, body):
        found = store.find(headers["X-Goog-Channel-ID"])
        seen.append((headers["X-Goog-Resource-State"], found.status if found else None))
        return 200

    with LoopbackReceiver(on_post) as hook:
        channel = subscribe(
            "drive",
            "v3",
            "files.watch",
            address=hook.url,
            params={"fileId": "F1"},
            store=store,
            google=google,
        )
    assert seen == [("sync", "pending")]
    stored = store.get(channel.id)
    assert stored.status == "active"
    live = simulator.channel(channel.id)
    assert stored.resource_id == live.resource_id and stored.expiration == live.expiration_ms
    assert stored.token and stored.token == live.token
    assert (stored.api, stored.version, stored.method, stored.method_params) == (
        "drive",
        "v3",
        "files.watch",
        {"fileId": "F1"},
    )
    assert stored.subscription_id and stored.created_at is not None


def test_given_token_ttl_and_admin_aliases(store, google, simulator):
    channel = subscribe(
        "directory",
        "v1",
        "users.watch",
        address="https://hooks.example.com/h",
        params={"customer": "my_customer", "event": "update"},
        token="my-token",
        ttl=600,
        store=store,
        google=google,
    )
    assert (channel.api, channel.version) == ("admin", "directory_v1")
    assert channel.token == "my-token"
    sent = simulator.calls[-1].body
    assert sent["token"] == "my-token" and int(sent["expiration"]) == channel.expiration


def test_watch_failure_marks_failed_and_leaves_nothing_at_google(store, google, simulator):
    simulator.fail_next("watch", status=403, message="insufficient permissions")
    with pytest.raises(AuthError):
        subscribe(
            "drive",
            "v3",
            "files.watch",
            address="https://hooks.example.com/h",
            params={"fileId": "F"},
            store=store,
            google=google,
        )
    [failed] = store.list()
    assert failed.status == "failed" and "403" in failed.last_error
    assert simulator.live_channels() == []
    assert store.due_for_renewal(2**62) == []


def test_bad_requests_are_refused_before_anything_is_stored(store, google, simulator):
    with pytest.raises(ConfigError):
        subscribe(
            "drive",
            "v3",
            "files.watch",
            address="http://example.com/h",
            params={"fileId": "F"},
            store=store,
            google=google,
        )
    with pytest.raises(UnknownApiError):
        subscribe("drive", "v3", "files.nope", address="https://x.example/h", store=store, google=google)
    with pytest.raises(ValueError):
        subscribe(
            "drive",
            "v3",
            "files.watch",
            address="https://x.example/h",
            params={"fileId": "F"},
            token="t" * 257,
            store=store,
            google=google,
        )
    assert store.list() == [] and simulator.calls == []


def test_stop_ends_deliveries_and_marks_stopped(store, google, simulator):
    with LoopbackReceiver() as hook:
        channel = subscribe(
            "calendar",
            "v3",
            "events.watch",
            address=hook.url,
            params={"calendarId": "primary"},
            store=store,
            google=google,
        )
        simulator.wait_for_deliveries(1, channel_id=channel.id)
        [stopped] = stop(channel.id, store=store, google=google)
        assert stopped.status == "stopped" and not stopped.stop_pending
        assert simulator.live_channels() == []
        simulator.change("calendar", "events", calendarId="primary", state="exists")
        simulator.wait_idle()
        assert [h["X-Goog-Resource-State"] for h, _ in hook.requests] == ["sync"]


def test_stop_of_a_channel_google_no_longer_knows_succeeds(store, google, simulator):
    channel = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://x.example/h",
        params={"fileId": "F"},
        store=store,
        google=google,
    )
    google.stop("drive", "v3", channel.id, channel.resource_id)  # gone behind our back
    [stopped] = stop(channel.id, store=store, google=google)
    assert stopped.status == "stopped" and not stopped.stop_pending


def test_stop_refused_by_google_is_kept_for_a_later_stop(store, google, simulator):
    channel = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://x.example/h",
        params={"fileId": "F"},
        store=store,
        google=google,
    )
    simulator.fail_next("stop", status=403)
    with pytest.raises(AuthError):
        stop(channel.id, store=store, google=google)
    kept = store.get(channel.id)
    assert kept.status == "stopped" and kept.stop_pending and "403" in kept.last_error
    assert [c.id for c in store.pending_stops()] == [channel.id]
    [done] = stop(channel.id, store=store, google=google)  # retried later
    assert not done.stop_pending and simulator.live_channels() == []


def test_stop_covers_every_live_channel_of_the_subscription(store, google, simulator):
    first = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://x.example/h",
        params={"fileId": "F"},
        store=store,
        google=google,
    )
    second = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://x.example/h",
        params={"fileId": "F"},
        store=store,
        google=google,
        subscription_id=first.subscription_id,
    )
    stop(first.id, store=store, google=google)
    assert {c.status for c in store.list()} == {"stopped"}
    assert simulator.live_channels() == []
    assert second.id in {c.id for c in store.list(status="stopped")}


def test_stop_of_unknown_channel_raises(store, google):
    from channelkit.errors import ChannelNotFoundError

    with pytest.raises(ChannelNotFoundError):
        stop("missing", store=store, google=google)


def test_a_create_whose_lost_first_write_had_landed_still_subscribes(store, google, simulator, monkeypatch):
    real = store._insert

    def landed_then_retried(channel_id, record):
        real(channel_id, record)  # the first attempt landed; its answer was lost
        real(channel_id, record)  # the retry: "already exists"

    monkeypatch.setattr(store, "_insert", landed_then_retried)
    channel = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://x.example/h",
        params={"fileId": "F"},
        store=store,
        google=google,
    )
    assert store.get(channel.id).status == "active"
    assert [c.id for c in simulator.live_channels()] == [channel.id]


def test_a_genuine_id_clash_is_refused(store, google, simulator):
    from channelkit.errors import ChannelExistsError

    first = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://x.example/h",
        params={"fileId": "F"},
        store=store,
        google=google,
    )
    with pytest.raises(ChannelExistsError):
        subscribe(
            "drive",
            "v3",
            "files.watch",
            address="https://x.example/h",
            params={"fileId": "G"},
            store=store,
            google=google,
            channel_id=first.id,
        )
    assert len(simulator.live_channels()) == 1

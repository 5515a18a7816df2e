"""The backstop in the renewal run: --sync subscriptions no notification synced lately are synced,
and changes no notification announced earn the subscription a ``missed`` event."""

import pytest

from channelkit.subscribe import subscribe
from support import recording_changes


@pytest.fixture
def changes_file(tmp_path, monkeypatch):
    path = tmp_path / "changes.jsonl"
    monkeypatch.setenv("CHANNELKIT_CHANGE_HANDLER", "support.recording_changes:handle")
    monkeypatch.setenv("RECORDING_CHANGES_FILE", str(path))
    monkeypatch.delenv("CHANNELKIT_PUBSUB_TOPIC", raising=False)
    return path


@pytest.fixture
def drive_changes(store, google, clock):
    """A --sync Drive changes subscription whose notifications go nowhere (all of them 'lost')."""
    channel = subscribe(
        "drive",
        "v3",
        "changes.watch",
        address="https://hooks.example.com/lost",
        ttl=7 * 86_400,
        store=store,
        google=google,
        clock=clock,
        sync=True,
    )
    return channel.subscription_id


def delivered(path):
    return [c["fileId"] for batch in recording_changes.read(path) for c in batch["items"]]


def test_a_renewal_run_syncs_what_no_notification_announced_and_says_missed(
    store, simulator, run, handler, changes_file, drive_changes
):
    made = simulator.drive.create_file("unannounced")["id"]
    simulator.clock.advance(3600)
    run()
    assert delivered(changes_file) == [made]
    assert handler.states() == ["missed"]
    subscription = store.get_subscription(drive_changes)
    assert subscription.state == "active" and subscription.events == [] and subscription.last_sync_at


def test_recent_changes_are_synced_without_a_missed_event(
    simulator, run, handler, changes_file, drive_changes
):
    made = simulator.drive.create_file("just now")["id"]
    simulator.clock.advance(60)
    run()
    assert delivered(changes_file) == [made] and handler.states() == []


def test_a_subscription_synced_lately_is_left_alone(
    store, google, simulator, run, changes_file, drive_changes, clock
):
    from channelkit.change_sink import ChangeSink
    from channelkit.sync import sync

    sync(drive_changes, store=store, google=google, sink=ChangeSink(handler=lambda b, s: None), clock=clock)
    simulator.drive.create_file("later")
    simulator.clock.advance(600)  # less than CHANNELKIT_SYNC_BACKSTOP (1 h) since that sync
    run()
    assert delivered(changes_file) == []


def test_a_renewal_watches_drive_changes_from_the_cursor_reached_not_the_first_token(
    store, google, simulator, run, changes_file, drive_changes, clock
):
    from channelkit.change_sink import ChangeSink
    from channelkit.sync import sync

    first = store.get_subscription(drive_changes).cursor
    simulator.drive.create_file("moves the cursor")
    sync(drive_changes, store=store, google=google, sink=ChangeSink(handler=lambda b, s: None), clock=clock)
    reached = store.get_subscription(drive_changes).cursor
    assert reached != first
    old = store.get(store.get_subscription(drive_changes).channel_id)
    assert old.method_params["pageToken"] == first
    simulator.clock.advance(7 * 86_400 - 3600)  # within CHANNELKIT_RENEW_BEFORE of its end
    assert run().to_json()["renewed"] == 1
    successor = store.get(store.get_subscription(drive_changes).channel_id)
    assert successor.id != old.id and successor.renews == old.id
    assert successor.method_params["pageToken"] == reached
    # Google was asked for exactly that: the watch requests the simulator took.
    watches = [c for c in simulator.calls if c.operation == "drive.changes.watch"]
    assert [c.query.get("pageToken") for c in watches] == [first, reached]

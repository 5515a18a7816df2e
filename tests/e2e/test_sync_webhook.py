"""End to end: the CLI subscribes with --sync, the simulator changes state and pushes, and the
webhook under functions-framework fetches the changes and hands them to the change handler.
"""

from __future__ import annotations

import json

import pytest

from channelkit.testing.harness import wait_until
from channelkit.testing.simulator import RETRY
from support import recording_changes
from support.sync_testing import CHANGES, changes_file, cli, delivered, sim  # noqa: F401 - fixtures


@pytest.fixture
def server(webhook_server, sim, changes_file):
    def start(**env):
        return webhook_server(
            CHANNELKIT_API_ROOT=sim.url,
            CHANNELKIT_API_RETRIES="0",
            CHANNELKIT_CHANGE_HANDLER=CHANGES,
            RECORDING_CHANGES_FILE=str(changes_file),
            **env,
        )

    return start


def test_the_webhook_fetches_drive_changes_and_hands_each_over_once(sim, cli, server, changes_file, store):
    hook = server()
    channel_id = cli("watch", "drive", "v3", "changes.watch", "--address", hook.url, "--sync").stdout.strip()
    subscription = store.get_subscription(store.get(channel_id).subscription_id)
    assert subscription.sync and subscription.cursor
    sim.max_page_size = 2
    made = [sim.drive.create_file(f"f{i}")["id"] for i in range(5)]
    wait_until(lambda: len(delivered(changes_file)) >= 5, timeout=60, interval=0.2, message="the changes")
    sim.wait_idle(timeout=60)
    assert [c["fileId"] for c in delivered(changes_file)] == made
    assert store.get_subscription(subscription.id).cursor == sim.drive.start_page_token()


def test_a_failing_change_handler_never_changes_the_answer_and_its_batch_comes_again(
    sim, cli, server, changes_file, store
):
    hook = server(RECORDING_CHANGES_FAIL_FIRST="1")
    channel_id = cli("watch", "drive", "v3", "changes.watch", "--address", hook.url, "--sync").stdout.strip()
    first = sim.drive.create_file("first")["id"]
    sim.wait_idle(timeout=60)
    assert delivered(changes_file) == []  # the handler raised: nothing recorded, cursor kept
    second = sim.drive.create_file("second")["id"]
    wait_until(lambda: len(delivered(changes_file)) >= 2, timeout=60, interval=0.2, message="the changes")
    sim.wait_idle(timeout=60)
    assert [c["fileId"] for c in delivered(changes_file)] == [first, second]
    attempts = [d for d in sim.deliveries if d.channel_id == channel_id]
    assert attempts and not [d for d in attempts if d.outcome == RETRY]  # every notification answered 2xx


def test_watch_sync_initial_delivers_what_exists_as_one_resync(sim, cli, server, changes_file):
    hook = server()
    sim.calendar.insert_event("cal", event_id="a")
    sim.calendar.insert_event("cal", event_id="b")
    args = ("watch", "calendar", "v3", "events.watch", "--param", "calendarId=cal", "--address", hook.url)
    cli(*args, "--sync", "--initial")
    batches = recording_changes.read(changes_file)
    assert [e["id"] for e in delivered(changes_file)] == ["a", "b"]
    assert all(b["resync"] for b in batches) and batches[-1]["resyncComplete"]


def test_cli_sync_by_id_and_all_as_json(sim, cli, changes_file, store):
    channel_id = cli(
        "watch", "drive", "v3", "changes.watch", "--address", "https://hooks.example.com/h", "--sync"
    ).stdout.strip()
    subscription_id = store.get(channel_id).subscription_id
    made = sim.drive.create_file("x")["id"]
    [result] = json.loads(cli("sync", subscription_id, "--json").stdout)
    assert (result["subscriptionId"], result["outcome"], result["items"]) == (subscription_id, "done", 1)
    assert [c["fileId"] for c in delivered(changes_file)] == [made]
    assert json.loads(cli("sync", "--all", "--json").stdout)[0]["items"] == 0
    assert "done: 0 batches, 0 items" in cli("sync", subscription_id).stdout


def test_sync_refused_up_front_for_a_method_without_a_feed(cli, store):
    result = cli(
        "watch",
        "admin",
        "directory_v1",
        "users.aliases.watch",
        "--param",
        "userKey=u",
        "--address",
        "https://hooks.example.com/h",
        "--sync",
        expect=2,
    )
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert "no change feed" in result.stderr
    assert store.list() == []


def test_directory_bodies_are_handed_over_as_batches_of_one(sim, cli, server, changes_file):
    hook = server()
    channel_id = cli(
        "watch",
        "admin",
        "directory_v1",
        "users.watch",
        "--param",
        "customer=my_customer",
        "--param",
        "event=add",
        "--address",
        hook.url,
        "--sync",
    ).stdout.strip()
    sim.change_channel_resource(channel_id, state="add")
    wait_until(lambda: len(delivered(changes_file)) >= 1, timeout=60, interval=0.2, message="the body batch")
    [batch] = recording_changes.read(changes_file)
    assert batch["items"][0]["kind"] == "admin#directory#user" and batch["cursor"] is None


def test_google_failing_while_listing_never_changes_the_answer(sim, cli, server, changes_file, store):
    hook = server()
    channel_id = cli("watch", "drive", "v3", "changes.watch", "--address", hook.url, "--sync").stdout.strip()
    sim.fail_next("read", status=500, count=1)
    first = sim.drive.create_file("first")["id"]
    sim.wait_idle(timeout=60)
    attempts = [d for d in sim.deliveries if d.channel_id == channel_id]
    assert attempts and not [
        d for d in attempts if d.outcome == RETRY
    ]  # answered 2xx although the sync failed
    assert delivered(changes_file) == []
    second = sim.drive.create_file("second")["id"]
    wait_until(lambda: len(delivered(changes_file)) >= 2, timeout=60, interval=0.2, message="the changes")
    assert [c["fileId"] for c in delivered(changes_file)] == [first, second]

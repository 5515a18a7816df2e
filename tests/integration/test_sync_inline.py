"""The webhook core syncing inline (``InlineSync``), on the simulator's clock.

A change announced on the old and on the new channel around a renewal is handed
over once; other subscriptions' notifications are not touched by the feeds.
"""

from __future__ import annotations

import pytest

from channelkit.change_sink import ChangeSink
from channelkit.inline_sync import InlineSync
from channelkit.subscribe import subscribe
from channelkit.testing.harness import notification_headers, post
from support import recording_changes
from support.webhook_harness import WebhookServer

DAY = 86_400


class Changes:
    def __init__(self):
        self.batches = []

    def __call__(self, batch, subscription):
        self.batches.append(batch)

    def file_ids(self):
        return [c["fileId"] for b in self.batches for c in b.items]


@pytest.fixture
def changes():
    return Changes()


@pytest.fixture
def inline_hook(store, google, handler, clock, changes):
    inline = InlineSync(
        store=store, sink=ChangeSink(handler=changes), budget=20, lease=120, google=google, clock=clock
    )
    with WebhookServer(store, handler, clock, grace=600, changes=inline) as server:
        yield server


def test_one_change_announced_on_the_old_and_the_new_channel_is_handed_over_once(
    store, google, simulator, clock, run, inline_hook, changes
):
    old = subscribe(
        "drive",
        "v3",
        "changes.watch",
        address=inline_hook.url,
        ttl=DAY,
        store=store,
        google=google,
        clock=clock,
        sync=True,
    )
    simulator.wait_idle(timeout=30)
    simulator.clock.advance(DAY - 3600)  # inside CHANNELKIT_RENEW_BEFORE: renewal replaces it
    assert run().to_json()["renewed"] == 1
    made = simulator.drive.create_file("once")["id"]  # Google pushes it to the new channel
    simulator.wait_idle(timeout=30)
    late = notification_headers(store.get(old.id), 999, "change")  # and, in the overlap, to the old one
    assert post(inline_hook.url, late)[0] == 200
    assert changes.file_ids() == [made]
    assert {status for _, _, status in inline_hook.statuses} == {200}


def test_notifications_of_other_subscriptions_do_not_touch_subscription_records(
    store, google, simulator, clock, inline_hook, changes, monkeypatch
):
    plain = subscribe(
        "drive",
        "v3",
        "files.watch",
        address=inline_hook.url,
        params={"fileId": "F1"},
        store=store,
        google=google,
    )
    simulator.wait_idle(timeout=30)
    touched = []
    for name in ("find_subscription", "get_subscription", "change_subscription"):
        real = getattr(store, name)
        monkeypatch.setattr(
            store, name, lambda *a, _real=real, _name=name, **k: touched.append(_name) or _real(*a, **k)
        )
    assert post(inline_hook.url, notification_headers(store.get(plain.id), 5, "update"))[0] == 200
    assert touched == [] and changes.batches == []


def test_a_dropped_notification_is_caught_by_the_backstop_with_a_missed_event(
    store, google, simulator, clock, run, inline_hook, changes, handler, monkeypatch, tmp_path
):
    monkeypatch.setenv("CHANNELKIT_CHANGE_HANDLER", "support.recording_changes:handle")
    monkeypatch.setenv("RECORDING_CHANGES_FILE", str(tmp_path / "backstop.jsonl"))
    subscribe(
        "drive",
        "v3",
        "changes.watch",
        address=inline_hook.url,
        ttl=7 * DAY,
        store=store,
        google=google,
        clock=clock,
        sync=True,
    )
    announced = simulator.drive.create_file("announced")["id"]
    simulator.wait_idle(timeout=30)
    assert changes.file_ids() == [announced]  # synced inline, after its notification
    simulator.drop_next(1)
    lost = simulator.drive.create_file("lost")["id"]
    simulator.wait_idle(timeout=30)
    assert changes.file_ids() == [announced]  # no notification, no sync
    simulator.clock.advance(3601)
    run()
    assert [c["fileId"] for b in recording_changes.read(tmp_path / "backstop.jsonl") for c in b["items"]] == [
        lost
    ]
    assert "missed" in handler.states()

"""A Hypothesis state machine of the change feeds: random changes, notifications and failures.

Against the Firestore emulator with the real client, and the simulator through
googleapiclient. Each example makes a Drive ``changes.watch`` (on a shared drive of
its own) and a Calendar ``events.watch`` (on a calendar of its own) subscription
with ``--sync``, their notifications pushed by the simulator to a webhook that
syncs inline (``InlineSync``). The rules then mix: changes (files created,
updated, trashed, removed; events inserted, updated, cancelled), notifications
dropped, duplicated and reordered by the simulator, syncs run by hand (as the CLI,
the backstop or another instance would) alone or several at once, handler
failures, Google failing a read, page size changes, cursors expired (Drive's
invalid page token, Calendar's 410), time passing, and crashes of a sync at a
random point: in a Google call after its answer came, in the handler, or in a
store write, before or after it reached Firestore (the process dies: nothing
runs after, the lease stays behind until it lapses).

The invariant, checked once everything has settled (a last sync after any lease
left behind has lapsed): the batches the handler returned from, concatenated, are

* Drive: exactly the change log after the first cursor, each change once and in
  order; a resync's batches are read as mark and sweep (the files listed, then
  whatever the app holds and was not listed is gone), after which the changes go
  on exactly from the start token the resync took; the app's files at the end are
  the drive's;
* Calendar: each event state (id, sequence, status) handed over once by the
  incremental batches; resyncs as mark and sweep; the app's events at the end are
  the calendar's, cancelled ones included.

A process killed after the handler returned and before the cursor's write is the
one case in which a returned batch is offered again: the test checks that the
next batch then starts at the same cursor, and counts the batch once.

Also checked all along: one subscription's handler calls never overlap.
``SYNC_STATE_MACHINE_EXAMPLES`` sets the number of examples (default 12).
"""

from __future__ import annotations

import collections
import os
import threading
import uuid

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from channelkit.change_sink import ChangeSink
from channelkit.feeds import Cursor
from channelkit.inline_sync import InlineSync
from channelkit.subscribe import subscribe
from channelkit.sync import DONE, sync
from support.webhook_harness import RecordingHandler, WebhookServer

EXAMPLES = int(os.environ.get("SYNC_STATE_MACHINE_EXAMPLES") or 12)
LEASE = 120  # seconds of the simulator's clock
DAY = 86_400


class Crash(BaseException):
    """A process killed mid-sync: no ``except Exception`` runs, nothing after it either."""


class HandlerFailure(RuntimeError):
    """The app's handler failing on purpose (the batch is not processed)."""


class App:
    """The change handler: records the batches it returned from, per subscription; thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.returned: dict[str, list] = collections.defaultdict(list)
        self.unsaved: dict[str, object] = {}  # a returned batch whose cursor write a crash prevented
        self.again: dict[str, str | None] = {}  # the cursor the next batch must start from
        self.pending: dict[str, object] = {}  # returned since the last cursor write of a crashable sync
        self.failures = 0
        self.crash_in_handler = False
        self.inside: collections.Counter = collections.Counter()
        self.overlaps = 0
        self.mismatches: list[str] = []

    def __call__(self, batch, subscription):
        sid = subscription.id
        with self.lock:
            self.inside[sid] += 1
            if self.inside[sid] > 1:
                self.overlaps += 1
        try:
            with self.lock:
                if self.crash_in_handler:
                    self.crash_in_handler = False
                    raise Crash("killed inside the handler")
                if self.failures:
                    self.failures -= 1
                    raise HandlerFailure("the app failed this batch")
                if sid in self.again:
                    expected = self.again.pop(sid)
                    if batch.cursor != expected and not batch.resync:
                        self.mismatches.append(f"{sid}: offered again from {batch.cursor}, not {expected}")
                self.returned[sid].append(batch)
                self.pending[sid] = batch
        finally:
            with self.lock:
                self.inside[sid] -= 1


class CrashingStore:
    """The real store; its ``n``-th ``change_subscription`` crashes before or after it is written."""

    def __init__(self, store, app: App, n: int, after: bool):
        self._store, self._app, self._n, self._after, self._calls = store, app, n, after, 0
        with app.lock:
            app.pending.clear()  # only what this sync returns can be left unsaved by its crash

    def __getattr__(self, name):
        return getattr(self._store, name)

    def change_subscription(self, subscription_id, change):
        self._calls += 1
        if self._calls == self._n and not self._after:
            with self._app.lock:
                unsaved = self._app.pending.pop(subscription_id, None)
                if unsaved is not None:  # returned, but the cursor never moved past it
                    self._app.returned[subscription_id].remove(unsaved)
                    self._app.again[subscription_id] = unsaved.cursor
            raise Crash(f"killed before store write {self._n}")
        written = self._store.change_subscription(subscription_id, change)
        with self._app.lock:
            self._app.pending.pop(subscription_id, None)
        if self._calls == self._n:
            raise Crash(f"killed after store write {self._n}")
        return written


class CrashingGoogle:
    """The real Google client; its ``n``-th call crashes once Google has answered."""

    def __init__(self, google, n: int):
        self._google, self._n, self._calls = google, n, 0

    def __getattr__(self, name):
        return getattr(self._google, name)

    def call(self, *args, **kwargs):
        self._calls += 1
        answer = self._google.call(*args, **kwargs)
        if self._calls == self._n:
            raise Crash(f"killed after Google call {self._n} answered")
        return answer


class World:
    """What lives across examples: the store, the client, the simulator, the webhook."""

    def __init__(self, store, google, simulator, clock, hook, app):
        self.store, self.google, self.simulator, self.clock = store, google, simulator, clock
        self.hook, self.app = hook, app


class FeedMachine(RuleBasedStateMachine):
    world: World

    def __init__(self):
        super().__init__()
        w = self.world
        self.store, self.google, self.sim, self.clock, self.app = (
            w.store,
            w.google,
            w.simulator,
            w.clock,
            w.app,
        )
        self.sim.max_page_size = None
        self.sim.clear_faults()
        with self.app.lock:
            self.app.failures, self.app.crash_in_handler = 0, False
        tag = uuid.uuid4().hex[:8]
        self.drive_id, self.calendar_id = f"drive-{tag}", f"cal-{tag}"
        self.sim.calendar.add_calendar(self.calendar_id)
        drive = self._subscribe("changes.watch", {"driveId": self.drive_id, "supportsAllDrives": True})
        calendar = self._subscribe("events.watch", {"calendarId": self.calendar_id})
        self.drive_sub, self.calendar_sub = drive.subscription_id, calendar.subscription_id
        self.first_drive_token = self.store.get_subscription(self.drive_sub).cursor
        self.sim.wait_idle(timeout=30)
        self.files: list[str] = []
        self.events: list[str] = []

    def _subscribe(self, method, params):
        api = "drive" if method == "changes.watch" else "calendar"
        return subscribe(
            api,
            "v3",
            method,
            address=self.world.hook.url,
            params=params,
            ttl=7 * DAY,
            store=self.store,
            google=self.google,
            clock=self.clock,
            sync=True,
        )

    def settle(self):
        self.sim.wait_idle(timeout=60)

    def live_files(self):
        return [f["id"] for f in self.sim.drive.files(self.drive_id)]

    def live_events(self):
        return [
            e["id"] for e in self.sim.calendar.items("events", self.calendar_id) if e["status"] != "cancelled"
        ]

    # --- changes (each pushed as notifications by the simulator) ------------------------

    @initialize(files=st.integers(1, 6), events=st.integers(1, 4))
    def some_changes_first(self, files, events):
        for _ in range(files):
            self.sim.drive.create_file("f", drive_id=self.drive_id)
        for _ in range(events):
            self.sim.calendar.insert_event(self.calendar_id)
        self.settle()

    @rule(count=st.integers(1, 4))
    def create_files(self, count):
        for _ in range(count):
            self.sim.drive.create_file("f", drive_id=self.drive_id)
        self.settle()

    @rule(data=st.data(), how=st.sampled_from(["update", "trash", "untrash", "remove"]))
    def change_a_file(self, data, how):
        live = self.live_files()
        if not live:
            return
        file_id = data.draw(st.sampled_from(live))
        getattr(self.sim.drive, {"update": "update_file"}.get(how, how + "_file"))(file_id)
        self.settle()

    @rule(count=st.integers(1, 3))
    def insert_events(self, count):
        for _ in range(count):
            self.sim.calendar.insert_event(self.calendar_id)
        self.settle()

    @rule(data=st.data(), delete=st.booleans())
    def change_an_event(self, data, delete):
        live = self.live_events()
        if not live:
            return
        event_id = data.draw(st.sampled_from(live))
        if delete:
            self.sim.calendar.delete_event(self.calendar_id, event_id)
        else:
            self.sim.calendar.update_event(self.calendar_id, event_id, summary=uuid.uuid4().hex[:6])
        self.settle()

    # --- what happens to notifications, the handler, Google ------------------------------

    def _some_changes(self, drive: bool, count: int):
        for _ in range(count):
            if drive:
                self.sim.drive.create_file("f", drive_id=self.drive_id)
            else:
                self.sim.calendar.insert_event(self.calendar_id)

    @rule(count=st.integers(1, 3), drive=st.booleans())
    def notifications_dropped(self, count, drive):
        self.sim.drop_next(count)
        self._some_changes(drive, count)
        self.settle()

    @rule(count=st.integers(1, 3), drive=st.booleans())
    def notifications_duplicated(self, count, drive):
        self.sim.duplicate_next(count)
        self._some_changes(drive, count)
        self.settle()

    @rule(count=st.integers(2, 4), drive=st.booleans())
    def notifications_reordered(self, count, drive):
        self.sim.reorder_next(count)
        self._some_changes(drive, count)
        self.settle()

    @rule()
    def release_held_notifications(self):
        self.sim.release_held()
        self.settle()

    @rule(count=st.integers(1, 3))
    def handler_fails(self, count):
        with self.app.lock:
            self.app.failures += count

    @rule(size=st.one_of(st.none(), st.integers(1, 4)))
    def page_size(self, size):
        self.sim.max_page_size = size

    @rule(which=st.sampled_from(["drive", "calendar"]))
    def cursors_expire(self, which):
        if which == "drive":
            self.sim.drive.expire_page_tokens(self.drive_id)
        else:
            self.sim.calendar.expire_sync_tokens(self.calendar_id)

    @rule()
    def time_passes_beyond_the_lease(self):
        self.sim.clock.advance(LEASE + 1)

    # --- syncs run by hand: alone, failing, crashing, several at once --------------------

    def _subscription(self, drive: bool) -> str:
        return self.drive_sub if drive else self.calendar_sub

    def _sync(self, subscription_id, *, store=None, google=None):
        return sync(
            subscription_id,
            store=store or self.store,
            google=google or self.google,
            sink=ChangeSink(handler=self.app),
            clock=self.clock,
            lease=LEASE,
            sleep=lambda seconds: None,
        )

    @rule(drive=st.booleans())
    def sync_by_hand(self, drive):
        self._sync(self._subscription(drive))

    @rule(drive=st.booleans(), status=st.sampled_from([429, 500, 503]))
    def google_fails_a_read(self, drive, status):
        self.sim.fail_next("read", status=status)
        self._sync(self._subscription(drive))
        self.sim.clear_faults()

    @rule(drive=st.booleans(), n=st.integers(1, 6), after=st.booleans())
    def crash_in_a_store_write(self, drive, n, after):
        sid = self._subscription(drive)
        with pytest.raises(Crash):
            result = self._sync(sid, store=CrashingStore(self.store, self.app, n, after))
            raise Crash(f"no crash: the sync made fewer than {n} writes ({result.outcome})")

    @rule(drive=st.booleans(), n=st.integers(1, 4))
    def crash_after_a_google_answer(self, drive, n):
        with pytest.raises(Crash):
            result = self._sync(self._subscription(drive), google=CrashingGoogle(self.google, n))
            raise Crash(f"no crash: the sync made fewer than {n} calls ({result.outcome})")

    @rule(drive=st.booleans())
    def crash_in_the_handler(self, drive):
        with self.app.lock:
            self.app.crash_in_handler = True
        try:
            self._sync(self._subscription(drive))
        except Crash:
            pass
        with self.app.lock:
            self.app.crash_in_handler = False

    @rule(drive=st.booleans(), count=st.integers(2, 4))
    def concurrent_syncs(self, drive, count):
        sid = self._subscription(drive)
        errors: list[BaseException] = []

        def one():
            try:
                self._sync(sid)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=one) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    # --- the invariant -------------------------------------------------------------------

    def teardown(self):
        self.sim.release_held()
        self.sim.clear_faults()
        self.settle()
        with self.app.lock:
            self.app.failures, self.app.crash_in_handler = 0, False
        self.sim.clock.advance(LEASE + 1)  # any lease a crash left behind has lapsed
        for sid in (self.drive_sub, self.calendar_sub):
            assert self._sync(sid).outcome == DONE
            assert self.store.get_subscription(sid).sync_owner is None
        with self.app.lock:
            assert self.app.overlaps == 0, "one subscription's handler calls overlapped"
            assert self.app.mismatches == []
            assert self.app.again == {}
            drive_batches = list(self.app.returned[self.drive_sub])
            calendar_batches = list(self.app.returned[self.calendar_sub])
        # What the example exercised (pytest --hypothesis-show-statistics).
        event(f"drive: {'a resync' if any(b.resync for b in drive_batches) else 'no resync'}")
        event(f"calendar: {'a resync' if any(b.resync for b in calendar_batches) else 'no resync'}")
        event(f"drive changes handed over: {min(sum(len(b.items) for b in drive_batches) // 10 * 10, 50)}+")
        check_drive(self.sim, self.drive_id, self.first_drive_token, drive_batches)
        check_calendar(self.sim, self.calendar_id, calendar_batches)


def _change_key(change):
    return (change["fileId"], "removed" if change.get("removed") else change["file"]["version"])


def check_drive(sim, drive_id, first_token, batches):
    """The change log after ``first_token``, each change once, resyncs read as mark and sweep."""
    log = [_change_key(c) for c in sim.drive.changes(drive_id, first_token)]
    first = int(first_token)
    position, app, seen = 0, {}, None
    for number, batch in enumerate(batches):
        cursor = Cursor.decode(batch.cursor)
        if batch.resync:
            seen = set() if seen is None else seen
            for item in batch.items:
                app[item["fileId"]] = item["file"]["version"]
                seen.add(item["fileId"])
            if batch.resync_complete:
                app = {k: v for k, v in app.items() if k in seen}
                position, seen = int(cursor.token) - first, None  # the changes go on from its start token
            continue
        assert seen is None, f"batch {number}: a change batch inside a resync"
        assert int(cursor.token) - first == position, f"batch {number} starts at {cursor.token}"
        keys = [_change_key(c) for c in batch.items]
        assert keys == log[position : position + len(keys)], f"batch {number} is not the log at {position}"
        for change in batch.items:
            if change.get("removed"):
                app.pop(change["fileId"], None)
            else:
                app[change["fileId"]] = change["file"]["version"]
        position += len(keys)
    assert seen is None, "a resync never completed"
    assert position == len(log), f"{len(log) - position} changes never handed over"
    assert app == {f["id"]: f["version"] for f in sim.drive.files(drive_id)}


def check_calendar(sim, calendar_id, batches):
    """Each event state handed over once; resyncs as mark and sweep; the app ends with the calendar."""
    app, seen, handed = {}, None, set()
    for number, batch in enumerate(batches):
        states = {e["id"]: (e["sequence"], e["status"]) for e in batch.items}
        if batch.resync:
            seen = set() if seen is None else seen
            app.update(states)
            seen.update(states)
            if batch.resync_complete:
                app, seen = {k: v for k, v in app.items() if k in seen}, None
            continue
        assert seen is None, f"batch {number}: a change batch inside a resync"
        for event_id, state in states.items():
            assert (event_id, state) not in handed, f"batch {number}: {event_id} {state} handed over twice"
            handed.add((event_id, state))
        app.update(states)
    assert seen is None, "a resync never completed"
    current = {e["id"]: (e["sequence"], e["status"]) for e in sim.calendar.items("events", calendar_id)}
    assert app == current


def test_every_change_arrives_once_whatever_happens_to_notifications_handlers_and_syncs(
    store, google, simulator, clock
):
    app = App()
    inline = InlineSync(
        store=store, sink=ChangeSink(handler=app), budget=20, lease=LEASE, google=google, clock=clock
    )
    with WebhookServer(store, RecordingHandler(), clock, grace=600, changes=inline) as hook:
        FeedMachine.world = World(store, google, simulator, clock, hook, app)
        run_state_machine_as_test(
            FeedMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )

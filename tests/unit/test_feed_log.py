"""The simulator's change log: the cut a listing is paged over, and token expiry."""

from channelkit.testing.simulator.feed_log import ChangeLog, rfc3339


def test_a_cut_keeps_the_last_change_of_each_key_in_the_order_of_those_changes():
    log = ChangeLog()
    for key, value in [("a", 1), ("b", 1), ("a", 2), ("c", 1)]:
        log.append(key, {"v": value}, 0)
    log.append("b", None, 0)

    assert [(e.key, e.item) for e in log.latest_between(0, 5)] == [
        ("a", {"v": 2}),
        ("c", {"v": 1}),
        ("b", None),
    ]
    assert [(e.key, e.item) for e in log.latest_between(0, 2)] == [("a", {"v": 1}), ("b", {"v": 1})]
    assert [e.key for e in log.latest_between(2, 5)] == ["a", "c", "b"]
    assert log.current == {"a": {"v": 2}, "c": {"v": 1}}


def test_later_changes_leave_an_earlier_cut_as_it_was():
    log = ChangeLog()
    log.append("a", {"v": 1}, 0)
    before = [(e.key, e.item) for e in log.latest_between(0, 1)]
    log.append("a", {"v": 2}, 0)
    assert [(e.key, e.item) for e in log.latest_between(0, 1)] == before
    assert [(e.key, e.item) for e in log.latest_between(0, 2)] == [("a", {"v": 2})]


def test_expiry_moves_the_floor_past_every_change_and_starts_a_new_generation():
    log = ChangeLog()
    log.append("a", {}, 0)
    log.expire()
    assert (log.generation, log.floor, log.last_seq) == (1, 2, 1)
    assert [e.seq for e in log.after(1, 10)] == []
    log.append("b", {}, 0)
    assert [e.key for e in log.after(1, 10)] == ["b"]


def test_times_are_written_as_google_writes_them():
    assert rfc3339(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"

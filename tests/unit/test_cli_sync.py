"""The CLI's sync arguments, refused before any I/O."""

import pytest

from channelkit.cli import EXIT_USAGE, format_sync, main
from channelkit.sync import SyncResult


def test_initial_without_sync_is_a_usage_error(capsys):
    args = ["watch", "drive", "v3", "changes.watch", "--address", "https://h.example/x", "--initial"]
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.strip() == "channelkit: error: --initial goes with --sync"


@pytest.mark.parametrize("args", [["sync"], ["sync", "S1", "--all"]])
def test_sync_takes_one_subscription_or_all(args, capsys):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == EXIT_USAGE
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_sync_without_a_change_handler_or_topic_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv("CHANNELKIT_CHANGE_HANDLER", raising=False)
    monkeypatch.delenv("CHANNELKIT_PUBSUB_TOPIC", raising=False)
    assert main(["sync", "--all"]) == EXIT_USAGE
    assert "CHANNELKIT_CHANGE_HANDLER" in capsys.readouterr().err


def test_format_sync_says_what_happened():
    done = SyncResult("S", batches=3, items=120, resyncs=1)
    assert format_sync(done) == "done: 3 batches, 120 items (1 resync)"
    failed = SyncResult("S", outcome="handler_failed", error="change handler raised\nValueError: x")
    assert format_sync(failed) == "handler_failed: 0 batches, 0 items; change handler raised ValueError: x"

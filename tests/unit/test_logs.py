"""channelkit.logs: one JSON object per line, as Cloud Logging reads them, never a secret."""

from __future__ import annotations

import json
import logging

from channelkit import logs


def emit(capsys, *args, **fields):
    logs.configure()
    logs.event(logs.get_logger("test"), *args, **fields)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_line_has_severity_message_and_the_fields(capsys):
    [line] = emit(capsys, "WARNING", "hello", channelId="c-1", messageNumber=3, skipped=None)
    assert line["severity"] == "WARNING" and line["message"] == "hello"
    assert line["channelId"] == "c-1" and line["messageNumber"] == 3
    assert "skipped" not in line and line["logger"] == "channelkit.test" and line["time"]


def test_fields_named_like_secrets_are_dropped_even_nested(capsys):
    [line] = emit(
        capsys,
        "INFO",
        "x",
        token="t0k",
        channelToken="t0k",
        password="p",
        notification={"channelId": "c", "token": "t0k", "Authorization": "Bearer x"},
    )
    text = json.dumps(line)
    assert "t0k" not in text and "Bearer" not in text and '"p"' not in text
    assert line["notification"] == {"channelId": "c"}


def test_an_exception_goes_into_stack_trace(capsys):
    try:
        raise ValueError("boom")
    except ValueError:
        [line] = emit(capsys, "ERROR", "failed", exc_info=True)
    assert line["severity"] == "ERROR" and "ValueError: boom" in line["stack_trace"]


def test_configure_is_idempotent_and_levels_filter(capsys):
    logs.configure()
    logger = logs.configure()
    ours = [h for h in logger.handlers if isinstance(h.formatter, logs.JsonFormatter)]
    assert len(ours) == 1, logger.handlers
    logger.setLevel(logging.WARNING)
    try:
        assert emit_quiet(capsys) == []
    finally:
        logs.configure(logging.INFO)


def emit_quiet(capsys):
    logs.event(logs.get_logger("test"), "INFO", "not shown")
    return capsys.readouterr().out.splitlines()


def test_the_time_field_is_datetimes_own_iso_form_to_the_millisecond():
    import datetime
    import random

    from channelkit.logs import _utc_time

    rng = random.Random(7)
    edges = [1_764_680_000.0, 1_733_321_193.5529995, 1_764_680_000.9999996, 1_764_680_000.0004995]
    for created in edges + [rng.uniform(1.6e9, 1.9e9) for _ in range(20_000)]:
        expected = (
            datetime.datetime.fromtimestamp(created, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        assert _utc_time(created) == expected


def test_the_direct_line_is_the_logging_modules_line(capsys):
    """``event`` writes its line without a LogRecord when only our handler would see it: the
    same fields, in the same order, as the logging module's path (a filter forces that one)."""
    fields = {"channelId": "c-1", "state": "update", "messageNumber": 7, "latencyMs": 1.5, "token": "t"}
    [direct] = emit(capsys, "NOTICE", "notification accepted", **fields, outcome="accepted", skipped=None)
    logger = logs.get_logger("test")
    logger.addFilter(lambda record: True)
    try:
        [through_logging] = emit(capsys, "NOTICE", "notification accepted", **fields, outcome="accepted")
    finally:
        logger.filters.clear()
    assert list(direct) == list(through_logging)
    assert {k: v for k, v in direct.items() if k != "time"} == {
        k: v for k, v in through_logging.items() if k != "time"
    }
    assert direct["severity"] == "INFO" and "token" not in direct


def test_a_capture_handler_beside_ours_still_sees_every_record(capsys, log_lines):
    logs.configure()
    logs.event(logs.get_logger("test"), "INFO", "seen twice", channelId="c-1")
    assert [line["message"] for line in log_lines()] == ["seen twice"]
    assert [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()] == ["seen twice"]

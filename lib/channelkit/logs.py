"""Structured log lines that Google Cloud Logging understands.

Cloud Functions (2nd gen) and Cloud Run parse every line a function writes to
stdout or stderr that is a JSON object: ``severity`` sets the level,
``message`` the summary, and the other fields become the entry's
``jsonPayload``. channelkit logs through the standard ``logging`` module, with
its fields in ``extra={"fields": {...}}``; ``JsonFormatter`` turns each record
into one such line and ``configure()`` installs it on the ``channelkit`` logger.

Nothing secret is logged: callers pass only the fields below, and
``JsonFormatter`` drops any field whose name says it holds a secret (``token``,
``password``, ``secret``, ``credential``, ``authorization``) as a last guard.

    from channelkit import logs

    log = logs.get_logger(__name__)
    logs.event(log, "INFO", "notification accepted", channelId="c-1", outcome="accepted")
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import math
import sys
import threading
import time
import traceback
from typing import Any

__all__ = ["JsonFormatter", "configure", "event", "event_fields", "get_logger"]

ROOT = "channelkit"

#: Python level name -> Cloud Logging severity.
SEVERITIES = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
}
_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "NOTICE": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
    "ALERT": logging.CRITICAL,
}
#: Field names never written, whatever a caller passes.
_SECRET_WORDS = ("token", "password", "secret", "credential", "authorization")
_MAX_FIELD_CHARS = 2000

#: A level that ``event`` logs at -> the severity its line carries (the record's level name's).
_SEVERITY_OF_LEVEL = {level: SEVERITIES[logging.getLevelName(level)] for level in set(_LEVELS.values())}

_configure_lock = threading.Lock()


def get_logger(name: str) -> logging.Logger:
    """A logger below ``channelkit`` (``channelkit.receive``, ...)."""
    if name != ROOT and not name.startswith(ROOT + "."):
        name = f"{ROOT}.{name}"
    return logging.getLogger(name)


@functools.lru_cache(maxsize=512)  # a handful of field names, checked on every line
def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_FIELD_CHARS else value[:_MAX_FIELD_CHARS] + "…"
    if isinstance(value, bytes):
        return _jsonable(value.decode("utf-8", "replace"))
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not _is_secret(str(k))}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return _jsonable(str(value))


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_PLAIN = (int, float, bool, type(None))


class _SecondsCache(threading.local):
    """The formatted UTC second of the last line, per thread: most lines share it."""

    second = -1
    text = ""


def _utc_time(created: float, cache: _SecondsCache = _SecondsCache()) -> str:  # noqa: B008 - one per module
    """``2026-12-02T13:01:22.123Z`` (what ``isoformat(timespec="milliseconds")`` gives, in UTC)."""
    fraction, whole = math.modf(created)  # rounded to the microsecond as datetime does it
    second, micros = int(whole), round(fraction * 1_000_000)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    if second != cache.second:
        cache.text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        cache.second = second
    return f"{cache.text}.{micros // 1000:03d}Z"


def _entry(severity: str, message: str, name: str, created: float, fields: Any) -> dict[str, Any]:
    """The JSON object of one line: ``severity``, ``message``, ``logger``, ``time`` and the fields."""
    entry: dict[str, Any] = {
        "severity": severity,
        "message": message,
        "logger": name,
        "time": _utc_time(created),
    }
    if isinstance(fields, dict):
        for field, value in fields.items():
            if value is None or field in entry or _is_secret(field):
                continue
            if (type(value) is str and len(value) <= _MAX_FIELD_CHARS) or type(value) in _PLAIN:
                entry[field] = value  # the common case, as _jsonable would give it
            else:
                entry[field] = _jsonable(value)
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``severity``, ``message``, ``logger``, ``time`` and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(
            SEVERITIES.get(record.levelname, "DEFAULT"),
            record.getMessage(),
            record.name,
            record.created,
            getattr(record, "fields", None),
        )
        if record.exc_info and record.exc_info[0] is not None:
            # Error Reporting groups entries whose stack_trace holds a Python traceback.
            entry["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        return _ENCODER.encode(entry)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (test capture, worker redirection)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)

    def write_line(self, line: str) -> bool:
        """What ``emit`` does with a formatted record: the line, a newline, a flush.

        False if the stream failed (then ``emit`` reports it, as for any record).
        """
        try:
            with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
                stream = self.stream = sys.stdout
                stream.write(line + "\n")
                stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - handled by the logging module's own path
            return False
        return True


def _sole_stdout_handler(logger: logging.Logger, level: int) -> _StdoutHandler | None:
    """The handler a record of ``logger`` at ``level`` would reach, if it is only ours.

    Then a line can be written without a ``LogRecord``: nothing else (another
    handler, a filter, a test's capture handler) would see the record, and the
    line is the one ``JsonFormatter`` gives. Otherwise None: the logging module's path.
    """
    found: _StdoutHandler | None = None
    current: logging.Logger | None = logger
    if logger.filters or logger.disabled:
        return None
    while current is not None:
        for handler in current.handlers:
            if found is not None or type(handler) is not _StdoutHandler or handler.filters:
                return None
            if level < handler.level or type(handler.formatter) is not JsonFormatter:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


def configure(level: int | str = logging.INFO) -> logging.Logger:
    """Make the ``channelkit`` logger write JSON lines to stdout (idempotent).

    The entry points (``functions/*.py``) call this once. The logger stops
    propagating so that a root handler installed by the hosting framework does
    not print each line a second time, unformatted.
    """
    logger = logging.getLogger(ROOT)
    with _configure_lock:
        if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
            handler = _StdoutHandler()
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return logger


def event(
    logger: logging.Logger,
    severity: str,
    message: str,
    *,
    exc_info: Any = None,
    **fields: Any,
) -> None:
    """Log ``message`` at Cloud Logging ``severity`` with structured ``fields``.

    Fields whose value is None are left out.
    """
    event_fields(logger, severity, message, fields, exc_info=exc_info)


def event_fields(
    logger: logging.Logger, severity: str, message: str, fields: dict[str, Any], *, exc_info: Any = None
) -> None:
    """``event`` with the fields in a dict the caller built (and no longer changes)."""
    level = _LEVELS.get(severity.upper(), logging.INFO)
    if not logger.isEnabledFor(level):
        return
    if not exc_info:
        # The usual case (every notification): the same line, without the logging module's
        # record, its handler chain and its second lock.
        handler = _sole_stdout_handler(logger, level)
        if handler is not None:
            entry = _entry(_SEVERITY_OF_LEVEL[level], str(message), logger.name, time.time(), fields)
            if handler.write_line(_ENCODER.encode(entry)):
                return
    clean = {k: v for k, v in fields.items() if v is not None}
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif exc_info and not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    # makeRecord + handle is Logger.log without its search of the stack for the caller's
    # file and line, which no JSON line carries (one call per notification on the webhook).
    record = logger.makeRecord(logger.name, level, "", 0, message, (), exc_info, extra={"fields": clean})
    logger.handle(record)

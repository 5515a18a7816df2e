"""Fixtures of the pure tier."""

import io
import json
import logging

import pytest

from channelkit import logs


@pytest.fixture
def log_lines():
    """Every JSON line the channelkit loggers write during the test, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("channelkit")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old_level)

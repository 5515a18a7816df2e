"""pytest fixture for the push simulator.

Import it into your ``conftest.py``::

    from channelkit.testing.fixtures import simulator  # noqa: F401

or load the module as a plugin: ``pytest_plugins = ["channelkit.testing.fixtures"]``.
Each test gets a fresh, started ``Simulator`` on a free loopback port; it is
stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channelkit.testing.simulator import Simulator

__all__ = ["simulator"]


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A started ``Simulator`` (defaults: tiny retry backoff, port 0), stopped after the test."""
    with Simulator() as sim:
        yield sim

"""Every module of ``bench`` imports: a tool run by hand (``python -m bench.X``) that no
benchmark part imports is otherwise only found broken when someone next runs it."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bench

MODULES = sorted(
    f"bench.{m.name}" for m in pkgutil.iter_modules(bench.__path__) if m.name not in ("__main__", "opcount")
)


def test_the_hand_run_tools_are_among_the_modules():
    assert {"bench.profile_webhook", "bench.webhook_load", "bench.coldstart"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_each_bench_module_imports(name):
    importlib.import_module(name)

"""``python -m bench.reliability --size small|full [--only NAME ...]``

Runs the scenarios (progress on stderr), prints the table, writes
``bench/results/reliability-<size>.md`` and ``.json``, and exits 1 when any
scenario lost or doubled a message or failed its own check (2 on bad arguments).
A scenario whose module is not there yet is listed as skipped; one that crashes
is a FAIL with the error in its notes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

from bench.reliability import SCENARIOS
from bench.reliability.common import format_table, write_results


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load(name: str):
    try:
        return importlib.import_module(f"bench.reliability.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.reliability.{name}":
            return None
        raise


def _crashed(name: str, exc: BaseException, seconds: float) -> dict:
    return {
        "scenario": name,
        "sent": 0,
        "accepted": 0,
        "handler_calls": 0,
        "lost": 0,
        "doubled": 0,
        "status_5xx": 0,
        "ok": False,
        "seconds": round(seconds, 1),
        "notes": f"crashed: {type(exc).__name__}: {exc}"[:500],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reliability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--size",
        choices=("small", "full"),
        default="small",
        help="small: CI size (a few minutes); full: the issue's size",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", choices=SCENARIOS, help="run only these scenarios"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

    results = []
    started = time.monotonic()
    for name in args.only or SCENARIOS:
        module = _load(name)
        if module is None:
            _progress(f"{name}: skipped (bench/reliability/{name}.py is not there)")
            continue
        _progress(f"{name}: starting ({args.size})")
        t0 = time.monotonic()
        try:
            outcome = module.run(args.size, progress=_progress)
        except Exception as exc:
            traceback.print_exc()
            outcome = _crashed(name, exc, time.monotonic() - t0)
        outcome.setdefault("seconds", round(time.monotonic() - t0, 1))
        results.append(outcome)
        _progress(
            f"{name}: {'PASS' if outcome.get('ok') else 'FAIL'} "
            f"(lost {outcome.get('lost')}, doubled {outcome.get('doubled')}, "
            f"{outcome.get('seconds')}s)"
        )
    if not results:
        print("no scenario ran", file=sys.stderr)
        return 1
    path = write_results(args.size, results, merge=bool(args.only))
    print(format_table(results))
    _progress(f"written {path} (+ .json); total {time.monotonic() - started:.0f}s")
    failed = [
        r["scenario"] for r in results if not r.get("ok") or r.get("lost", 0) > 0 or r.get("doubled", 0) > 0
    ]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

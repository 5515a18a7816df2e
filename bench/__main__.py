"""``python -m bench``: every benchmark of channelkit against its baseline, in one run.

Prints one table and writes it, with the raw figures and the machine they came
from, to ``bench/results/latest.md`` and ``latest.json``. Every comparison is
measured side by side in this run and reported as a ratio; absolute times on
a shared machine drift, ratios much less.

    .venv/bin/python -m bench            # the default run (about 12 minutes)
    .venv/bin/python -m bench --full     # 10,000 renewals, more webhook rounds
    .venv/bin/python -m bench --quick    # a smoke run (2 to 3 minutes)
    .venv/bin/python -m bench --only parsing,coldstart
    .venv/bin/python -m bench --only renewal --before main   # renewal beside main's

Needs wrk (``apt-get install wrk``) and gcloud's Firestore emulator (started
here unless ``FIRESTORE_EMULATOR_HOST`` names one). Exits 1 if a run saw a
correctness problem (a non-2xx answer, a renewal that did not verify), and, with
``--strict``, also if a target is missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

from bench._support import BENCH, progress, progress_done

PARTS = ("parsing", "webhook", "refusals", "renewal", "fanout", "coldstart", "feeds", "concurrency")
SIZES = {
    "quick": {
        "webhook": {"seconds": 3, "rounds": 2, "warmup": 1},
        "refusals": {"seconds": 2, "rounds": 2, "warmup": 1},
        "renewal": {"n": 200, "serial_sample": 40},
        "fanout": {"n": 60, "rounds": 1, "shard_size": 20},
        "coldstart": {"samples": 2},
        "parsing": {"rounds": 5},
        "feeds": {"changes": 300, "rounds": 2, "burst": 200, "single": 10},
        "concurrency": {"seconds": 2, "rounds": 1, "warmup": 1},
    },
    "default": {
        "webhook": {"seconds": 8, "rounds": 5},
        "refusals": {"seconds": 5, "rounds": 5},
        "renewal": {"n": 1000},
        "fanout": {"n": 400, "rounds": 2, "shard_size": 50},
        "coldstart": {"samples": 5},
        "parsing": {"rounds": 21},
        "feeds": {"changes": 2000, "rounds": 3, "burst": 1000, "single": 50},
        "concurrency": {"seconds": 8, "rounds": 3},
    },
    "full": {
        "webhook": {"seconds": 10, "rounds": 7},
        "refusals": {"seconds": 8, "rounds": 7},
        "renewal": {"n": 10_000},
        "fanout": {"n": 2000, "rounds": 3, "shard_size": 200},
        "coldstart": {"samples": 9},
        "parsing": {"rounds": 41},
        "feeds": {"changes": 5000, "rounds": 5, "burst": 1000, "single": 100},
        "concurrency": {"seconds": 10, "rounds": 5},
    },
}


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_at_start": os.getloadavg()[0],
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def run_parts(parts, size: str, before: str | None = None) -> dict:
    settings = SIZES[size]
    results: dict = {}
    if "parsing" in parts:
        from bench import parsing

        progress("parsing: channelkit vs googleapiclient ...")
        results["parsing"] = parsing.run(**settings["parsing"])
    if "webhook" in parts:
        from bench import webhook_load

        results["webhook"] = webhook_load.run(**settings["webhook"])
    if "refusals" in parts:
        from bench import refusals

        results["refusals"] = refusals.run(**settings["refusals"])
    if "renewal" in parts:
        from bench import bench_renewal

        results["renewal"] = bench_renewal.run(
            progress=lambda m: progress(f"renewal: {m}"), before=before, **settings["renewal"]
        )
    if "fanout" in parts:
        from bench import fanout

        results["fanout"] = fanout.run(progress=lambda m: progress(f"fanout: {m}"), **settings["fanout"])
    if "coldstart" in parts:
        from bench import coldstart

        results["coldstart"] = coldstart.run(**settings["coldstart"])
    if "feeds" in parts:
        from bench import bench_feeds

        results["feeds"] = bench_feeds.run(progress=progress, **settings["feeds"])
    if "concurrency" in parts:
        from bench import concurrency

        results["concurrency"] = concurrency.run(**settings["concurrency"])
    progress_done()
    return results


def _x(value) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def rows(results: dict) -> list[tuple[str, str, str, str, str, str]]:
    """(measure, channelkit, baseline, ratio, target, verdict) for each comparison."""
    out = []

    def add(measure, ours, base, ratio, target, ok):
        out.append((measure, ours, base, ratio, target, "n/a" if ok is None else ("met" if ok else "MISSED")))

    p = results.get("parsing")
    if p:
        for form, r in p.items():
            add(
                f"parse one notification ({form})",
                f"{r['channelkit_us']:.2f} µs",
                f"googleapiclient {r['googleapiclient_us']:.2f} µs",
                f"{r['speed_ratio']:.2f}x speed",
                ">= 1.0x",
                r["speed_ratio"] >= 1.0,
            )
    w = results.get("webhook")
    if w:
        t, r = w["targets"], w["ratios"]
        ck = t.get("channelkit", {})
        if "user_dedupe" in t:
            add(
                "webhook throughput vs (b) user + dedupe",
                f"{ck['rps']:.0f}/s",
                f"{t['user_dedupe']['rps']:.0f}/s",
                _x(r["throughput_vs_user_dedupe"]),
                ">= 1.6x",
                r["throughput_vs_user_dedupe"] >= 1.6,
            )
        if "claim_floor" in t:
            add(
                "webhook throughput vs (c) claim floor",
                f"{ck['rps']:.0f}/s",
                f"{t['claim_floor']['rps']:.0f}/s",
                _x(r["throughput_vs_claim_floor"]),
                ">= 1.0x",
                r["throughput_vs_claim_floor"] >= 1.0,
            )
            add(
                "webhook p99 latency vs (c) claim floor",
                f"{ck['p99_ms']:.1f} ms",
                f"{t['claim_floor']['p99_ms']:.1f} ms",
                _x(r["p99_vs_claim_floor"]),
                "<= 1.05x",
                r["p99_vs_claim_floor"] <= 1.05,
            )
        if "bare" in t:
            add(
                "webhook throughput vs (a) bare function",
                f"{ck['rps']:.0f}/s",
                f"{t['bare']['rps']:.0f}/s",
                _x(r["channelkit_vs_bare"]),
                "(ceiling)",
                None,
            )
        if "user_plain" in t:
            add(
                "(c) claim floor vs (d) user, no dedupe",
                f"{t['claim_floor']['rps']:.0f}/s",
                f"{t['user_plain']['rps']:.0f}/s",
                _x(r["claim_floor_vs_user_plain"]),
                "(context)",
                None,
            )
            add(
                "(b) user + dedupe vs (d) user, no dedupe",
                f"{t['user_dedupe']['rps']:.0f}/s",
                f"{t['user_plain']['rps']:.0f}/s",
                _x(r["user_dedupe_vs_user_plain"]),
                "(context)",
                None,
            )
        if ck.get("writes_per_notification") is not None:
            by = ck.get("writes_per_notification_by_collection") or {}
            heard = sum(v for k, v in by.items() if k.endswith("subscriptions"))
            split = f" ({by.get('messages', 0):.3f} claims + {heard:.3f} lastNotificationAt)" if heard else ""
            add(
                "Firestore writes per notification",
                f"{ck['writes_per_notification']:.3f}{split}",
                f"(b) {t.get('user_dedupe', {}).get('writes_per_notification') or 0:.3f}",
                "",
                "<= 2",
                ck["writes_per_notification"] <= 2.0,
            )
            add(
                "Firestore reads per notification",
                f"{ck['reads_per_notification']:.3f}",
                f"(b) {t.get('user_dedupe', {}).get('reads_per_notification') or 0:.3f}",
                "",
                "<= 0.05",
                ck["reads_per_notification"] <= 0.05,
            )
    rf = results.get("refusals")
    if rf:
        t, r = rf["targets"], rf["ratios"]
        add(
            "404 for a forged id vs 400 for a missing header (cost)",
            f"{t['forged_id']['rps']:.0f}/s",
            f"{t['missing_header']['rps']:.0f}/s",
            _x(r["forged_404_cost_vs_400"]),
            "<= 1.2x",
            r["forged_404_cost_vs_400"] <= 1.2,
        )
        add(
            "404 for an unknown id without a key vs 400 (cost)",
            f"{t['unknown_id']['rps']:.0f}/s",
            f"{t['missing_header']['rps']:.0f}/s",
            _x(r["unknown_404_keyless_cost_vs_400"]),
            "(context: before signing)",
            None,
        )
        add(
            "Firestore reads per forged-id request",
            f"{t['forged_id']['reads_per_request'] or 0:.3f}",
            f"unknown id, no key {t['unknown_id']['reads_per_request'] or 0:.3f}",
            "",
            "0",
            not t["forged_id"]["reads_per_request"],
        )
        add(
            "accepted notifications: signed ids vs unsigned (throughput)",
            f"{t['accepted_signed']['rps']:.0f}/s",
            f"{t['accepted_unsigned']['rps']:.0f}/s",
            _x(r["accepted_signed_vs_unsigned_throughput"]),
            ">= 0.95x",
            r["accepted_signed_vs_unsigned_throughput"] >= 0.95,
        )
        add(
            "accepted notifications: signed ids vs unsigned (p99)",
            f"{t['accepted_signed']['p99_ms']:.1f} ms",
            f"{t['accepted_unsigned']['p99_ms']:.1f} ms",
            _x(r["accepted_signed_vs_unsigned_p99"]),
            "<= 1.1x",
            r["accepted_signed_vs_unsigned_p99"] <= 1.1,
        )
    rn = results.get("renewal")
    if rn:
        add(
            f"renew {rn['n']:,} due channels (+{rn['latency_ms']:g} ms per call)",
            f"{rn['renewals_per_second']:.1f}/s (x{rn['concurrency']})",
            f"{rn['serial_rate']:.2f}/s (x1, {rn['serial_sample']} ch.)",
            f"{rn['speedup']:.1f}x",
            ">= 10x",
            rn["speedup"] >= 10,
        )
        ops = rn.get("operations", {}).get("per_channel")
        earlier = rn.get("before")
        if ops and not earlier:
            add(
                "Firestore per renewal: reads / writes / commits",
                f"{ops['reads']:g} / {ops['writes']:g} / {ops['commits']:g}",
                "",
                "",
                "(context)",
                None,
            )
        if earlier and ops:
            add(
                f"renew {rn['n']:,} due channels vs before ({earlier['ref']})",
                f"{rn['renewals_per_second']:.1f}/s (x{rn['concurrency']})",
                f"{earlier['renewals_per_second']:.1f}/s (x{earlier['concurrency']})",
                f"{rn['speedup_vs_before']:.2f}x",
                "(context)",
                None,
            )
            add(
                f"renew, parallelism 1, vs before ({earlier['ref']})",
                f"{rn['serial_rate']:.2f}/s",
                f"{earlier['serial_rate']:.2f}/s",
                f"{rn['serial_speedup_vs_before']:.2f}x",
                "(context)",
                None,
            )
            was = earlier["operations"]["per_channel"]
            add(
                "Firestore per renewal: reads / writes / commits / RPCs",
                f"{ops['reads']:g} / {ops['writes']:g} / {ops['commits']:g} / {ops['rpcs']:g}",
                f"before {was['reads']:g} / {was['writes']:g} / {was['commits']:g} / {was['rpcs']:g}",
                "",
                "(context)",
                None,
            )
        measured = rn["n"] >= 10_000
        add(
            "10,000 renewals" + ("" if measured else " (projected from this rate)"),
            f"{(rn['seconds'] if measured else rn['projected_seconds_10000']):.0f} s",
            "",
            "",
            "< 60 s",
            (rn["seconds"] if measured else rn["projected_seconds_10000"]) < 60,
        )
    fo = results.get("fanout")
    if fo:
        share = fo["firestore_emulator_cpu_share_two"]
        add(
            f"fan-out: 2 renew-workers vs 1 ({fo['n']:,} subscriptions, +{fo['latency_ms']:g} ms per call)",
            f"{fo['two_workers_rate']:.1f}/s",
            f"1 worker {fo['one_worker_rate']:.1f}/s",
            f"{fo['speedup']:.2f}x",
            "(context: Firestore emulator at "
            + ("n/a" if share is None else f"{share:.0%}")
            + f" of {fo['cores']} cores, machine {fo['machine_cpu_busy_two']:.0%} busy)",
            None,
        )
        add(
            "fan-out: subscriptions renewed once / twice / missed",
            f"{fo['renewed_once']} / {fo['renewed_twice']} / {fo['missed']}",
            "",
            "",
            "all once",
            fo["all_renewed_once"],
        )
    c = results.get("coldstart")
    if c:
        ck, base, floor = (
            c["targets"]["channelkit"],
            c["targets"]["firestore_import"],
            c["targets"]["claim_floor"],
        )
        add(
            "cold start: import the webhook module",
            f"{ck['import_ms']:.0f} ms",
            f"firestore import {base['import_ms']:.0f} ms",
            _x(c["ratios"]["import_vs_firestore_import"]),
            "<= 1.2x",
            c["ratios"]["import_vs_firestore_import"] <= 1.2,
        )
        add(
            "cold start: memory after the first request",
            f"{ck['rss_mb']:.1f} MB",
            f"firestore import {base['rss_mb']:.1f} MB",
            _x(c["ratios"]["rss_vs_firestore_import"]),
            "<= 1.2x",
            c["ratios"]["rss_vs_firestore_import"] <= 1.2,
        )
        add(
            "cold start: import + first answer",
            f"{ck['import_ms'] + ck['first_request_ms']:.0f} ms",
            f"(c) claim floor {floor['import_ms'] + floor['first_request_ms']:.0f} ms",
            _x(c["ratios"]["first_answer_vs_claim_floor"]),
            "(context)",
            None,
        )
        add(
            "webhook process imports googleapiclient",
            "yes" if ck["googleapiclient_imported"] else "no",
            "",
            "",
            "no",
            not ck["googleapiclient_imported"],
        )
    f = results.get("feeds")
    if f:
        feed_rows(f, add)
    if results.get("concurrency"):
        from bench import concurrency

        for row in concurrency.table_rows(results["concurrency"]):
            add(*row)
    return out


def feed_rows(f: dict, add) -> None:
    """The change feeds' rows (``bench.bench_feeds``)."""
    ck, base, burst, single = f["channelkit"], f["baseline"], f["burst"], f["single"]
    add(
        f"changes handed over per second (+{f['latency_ms']:g} ms per call)",
        f"{f['channelkit_rate']:.0f}/s",
        f"hand-written loop {f['baseline_rate']:.0f}/s",
        _x(f["ratio"]),
        ">= 0.9x",
        f["ratio"] >= 0.9,
    )
    add(
        f"Firestore writes per page of changes ({ck['pages'] // f['rounds']} pages per sync)",
        f"{ck['writes_per_page']:.3f}",
        f"hand-written loop {base['writes_per_page']:.3f}",
        "",
        "<= 1",
        ck["writes_per_page"] <= 1,
    )
    add(
        f"Firestore writes per notification, {single['notifications']} one at a time",
        f"{single['writes_per_notification']:.3f} ({single['claim_writes_per_notification']:.3f} claims + "
        f"{single['sync_writes_per_notification']:.3f} sync)",
        "",
        "",
        "<= 2",
        single["writes_per_notification"] <= 2,
    )
    add(
        f"Firestore writes per notification, a burst of {burst['notifications']:,}",
        f"{burst['writes_per_notification']:.3f} ({burst['claim_writes_per_notification']:.3f} claims + "
        f"{burst['sync_writes_per_notification']:.3f} sync)",
        "",
        "",
        "<= 2",
        burst["writes_per_notification"] <= 2,
    )
    add(
        f"sync passes for a burst of {burst['notifications']:,} notifications on one subscription",
        f"{burst['sync_passes']}",
        "",
        "",
        "<= 10",
        burst["sync_passes"] <= 10,
    )


def problems(results: dict) -> list[str]:
    found = []
    for name, target in results.get("webhook", {}).get("targets", {}).items():
        if target["non_2xx"] or target["socket_errors"]:
            found.append(
                f"webhook {name}: {target['non_2xx']} non-2xx answers, "
                f"{target['socket_errors']} socket errors"
            )
    refusals = results.get("refusals")
    if refusals:
        found += [f"refusals: {p}" for p in refusals["problems"]]
        found += [
            f"refusals {name}: {t['socket_errors']} socket errors"
            for name, t in refusals["targets"].items()
            if t["socket_errors"]
        ]
    if results.get("concurrency"):
        from bench import concurrency

        found += concurrency.problems(results["concurrency"])
    renewal = results.get("renewal")
    if renewal and not renewal["all_renewed"]:
        found.append(
            "renewal: not every channel verified renewed exactly once: "
            + "; ".join(map(str, renewal["problems"][:5]))
        )
    feeds = results.get("feeds")
    if feeds:
        found += [f"feeds: {p}" for p in feeds["problems"]]
    fanout = results.get("fanout")
    if fanout and not fanout["all_renewed_once"]:
        found.append(
            f"fanout: {fanout['renewed_twice']} subscriptions renewed more than once, {fanout['missed']} missed"
        )
    return found


def markdown(results: dict, info: dict, size: str) -> str:
    lines = [
        f"# channelkit benchmarks ({size} run)",
        "",
        f"{info['date']} on {info['cores']} cores ({info['cpu']}), Python {info['python']}, "
        f"{info['system']}; load average {info['load_average_at_start']:.1f} at the start, "
        f"{info.get('load_average_at_end', 0):.1f} at the end. Command: `.venv/bin/python -m bench"
        f"{info.get('arguments') or ('' if size == 'default' else ' --' + size)}`.",
        "",
        "| measure | channelkit | baseline | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows(results)]
    w = results.get("webhook")
    if w:
        s = w["settings"]
        lines += [
            "",
            f"Webhook: wrk, {s['connections']} connections, {s['rounds']} interleaved rounds of "
            f"{s['seconds']:g} s per target over {s['channels']} channels each, {s['server']}, one "
            "Firestore emulator; medians of the rounds (ratios: median of per-round ratios).",
            "",
            "| target | notifications/s | p50 ms | p99 ms | writes/req | reads/req | non-2xx |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in w["targets"].values():
            writes, reads = t["writes_per_notification"], t["reads_per_notification"]
            lines.append(
                f"| {t['label']} | {t['rps']:.0f} | {t['p50_ms']:.1f} | {t['p99_ms']:.1f} | "
                f"{'' if writes is None else f'{writes:.3f}'} | "
                f"{'' if reads is None else f'{reads:.3f}'} | {t['non_2xx']} |"
            )
    if results.get("concurrency"):
        from bench import concurrency

        lines += concurrency.markdown(results["concurrency"])
    found = problems(results)
    if found:
        lines += ["", "Problems seen in this run:", ""] + [f"- {p}" for p in found]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="10,000 renewals, more rounds")
    group.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--output", default=str(BENCH / "results"), help="where latest.md/json go")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--before", metavar="REF", help="renewal: also run it on the library of git REF, side by side"
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    size = "full" if args.full else "quick" if args.quick else "default"
    info = machine()
    info["arguments"] = "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    results = run_parts(parts, size, before=args.before)
    info["load_average_at_end"] = os.getloadavg()[0]
    text = markdown(results, info, size)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    name = "latest" if size == "default" else f"latest-{size}"
    (output / f"{name}.md").write_text(text)
    (output / f"{name}.json").write_text(
        json.dumps({"machine": info, "size": size, "results": results}, indent=2, default=str)
    )
    print(text)
    print(f"written to {output / (name + '.md')} and .json", file=sys.stderr)
    if problems(results):
        return 1
    if args.strict and any(row[5] == "MISSED" for row in rows(results)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

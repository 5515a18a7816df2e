"""``python -m channelkit``: create, list, stop and renew watch channels from a shell.

Output contract (docs/design.md, "CLI"): ``watch`` prints the new channel id alone on
stdout; ``--json`` prints JSON; exit 0 on success, non-zero with a one-line
reason on stderr on failure (2 for bad arguments, 1 for failures).
Tokens are never printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from channelkit.channel import Channel
from channelkit.errors import ChannelkitError, ConfigError, InvalidRequestError, UnknownApiError
from channelkit.hints import explain

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "channel_json",
    "format_remaining",
    "format_renewal",
    "format_table",
    "main",
]


if TYPE_CHECKING:
    from channelkit.renewal import RenewalSummary

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_TTL = 366 * 86_400  # no Google channel lives longer; the API clamps far less


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _param(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key, value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    if value > MAX_TTL:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TTL} seconds: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="channelkit",
        description="Manage Google API push-notification channels stored by channelkit.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    watch = sub.add_parser("watch", help="create a channel (stored before watch is called)")
    watch.add_argument("api", help="API name, e.g. drive, calendar, admin (or directory, reports)")
    watch.add_argument("version", help="API version, e.g. v3, directory_v1")
    watch.add_argument("method", help="watch method, e.g. files.watch, changes.watch, events.watch")
    watch.add_argument("--address", required=True, help="the webhook URL (https)")
    watch.add_argument(
        "--param",
        action="append",
        type=_param,
        default=[],
        metavar="K=V",
        help="a parameter of the watch method, e.g. fileId=XYZ (repeatable)",
    )
    watch.add_argument("--token", help="channel token (default: a random one)")
    watch.add_argument("--ttl", type=_positive, metavar="SECONDS", help="requested lifetime")

    listing = sub.add_parser("list", help="show every channel")
    listing.add_argument("--json", action="store_true", help="print JSON")

    stop = sub.add_parser("stop", help="stop a channel and its subscription")
    stop.add_argument("channel_id")

    renew = sub.add_parser("renew", help="renew channels that expire soon")
    renew.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def channel_json(channel: Channel, now_ms: int) -> dict[str, Any]:
    """What ``list --json`` shows of a channel: everything but the token."""
    return {
        "id": channel.id,
        "status": channel.status,
        "api": channel.api,
        "version": channel.version,
        "method": channel.method,
        "params": channel.method_params or {},
        "address": channel.address,
        "resourceId": channel.resource_id or None,
        "resourceUri": channel.resource_uri or None,
        "expiration": channel.expiration or None,
        "expiresInSeconds": (channel.expiration - now_ms) // 1000 if channel.expiration else None,
        "subscriptionId": channel.subscription_id,
        "renews": channel.renews,
        "renewedBy": channel.renewed_by,
        "stopPending": bool(channel.stop_pending),
        "lastError": channel.last_error,
        "createdAt": channel.created_at.isoformat() if channel.created_at else None,
    }


def format_remaining(expiration: int | None, now_ms: int) -> str:
    """``2d 3h``, ``45m``, ``expired`` or ``-``."""
    if not expiration:
        return "-"
    seconds = (expiration - now_ms) // 1000
    if seconds <= 0:
        return "expired"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def format_table(channels: Sequence[Channel], now_ms: int) -> str:
    headers = ("ID", "STATUS", "API", "METHOD", "EXPIRES IN", "SUBSCRIPTION")
    rows = [
        (
            c.id,
            (c.status or "-") + (" (stop pending)" if c.stop_pending else ""),
            f"{c.api or '-'} {c.version or ''}".strip(),
            c.method or "-",
            format_remaining(c.expiration, now_ms),
            (c.subscription_id or "-")[:8],
        )
        for c in channels
    ]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    if not rows:
        lines.append("(no channels)")
    return "\n".join(lines)


def _cmd_watch(args) -> int:
    from channelkit.subscribe import subscribe

    channel = subscribe(
        args.api,
        args.version,
        args.method,
        address=args.address,
        params=dict(args.param),
        token=args.token,
        ttl=args.ttl,
    )
    print(channel.id)
    return EXIT_OK


def _cmd_list(args) -> int:
    from channelkit.store import open_store

    channels = open_store().list()
    now_ms = int(time.time() * 1000)
    if args.json:
        print(json.dumps([channel_json(c, now_ms) for c in channels], indent=2))
    else:
        print(format_table(channels, now_ms))
    return EXIT_OK


def _cmd_stop(args) -> int:
    from channelkit.subscribe import stop

    for channel in stop(args.channel_id):
        print(f"stopped {channel.id}", file=sys.stderr)
    return EXIT_OK


def _cmd_renew(args: argparse.Namespace) -> int:
    """One renewal run: a progress line on a terminal, then the summary."""
    from channelkit.renewal import renew_due, renewal_dispatcher

    interactive = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if interactive:
            print(f"\rrenewing {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    summary = renew_due(dispatcher=renewal_dispatcher(), progress=progress)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(format_renewal(summary))
    return EXIT_OK


def format_renewal(summary: RenewalSummary) -> str:
    """A run's summary for people: a line per renewed, failed, skipped or deferred channel, then the counts."""
    lines = [f"renewed  {item['old']} -> {item['new']}" for item in summary.renewed]
    lines += [f"failed   {item['id']}: {item['reason']}" for item in summary.failed]
    lines += [f"skipped  {item['id']}: {item['reason']}" for item in summary.skipped]
    lines += [f"deferred {channel_id} (time budget reached; next run)" for channel_id in summary.deferred]
    counts = summary.to_json()
    lines.append(
        f"{counts['renewed']} renewed, {counts['failed']} failed, {counts['skipped']} skipped, "
        f"{counts['stopped']} stopped, {counts['deferred']} deferred"
    )
    return "\n".join(lines)


COMMANDS = {"watch": _cmd_watch, "list": _cmd_list, "stop": _cmd_stop, "renew": _cmd_renew}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, UnknownApiError, InvalidRequestError, ValueError, OverflowError) as exc:
        print(f"channelkit: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ChannelkitError as exc:
        print(f"channelkit: error: {explain(exc, os.environ) or _one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("channelkit: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

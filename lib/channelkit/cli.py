"""``python -m channelkit``: watch, list, stop, renew, check and reactivate subscriptions from a shell.

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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from channelkit.channel import Channel
from channelkit.errors import ChannelkitError, ConfigError, InvalidRequestError, UnknownApiError
from channelkit.hints import explain
from channelkit.subscription import Subscription

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "channel_json",
    "format_credentials",
    "format_duration",
    "format_health",
    "format_remaining",
    "format_renewal",
    "format_sync",
    "format_table",
    "main",
]


if TYPE_CHECKING:
    from channelkit.health import HealthReport
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
    watch.add_argument(
        "--credentials",
        metavar="REF",
        help="who watches: adc (default), subject:EMAIL (domain-wide delegation) or user:KEY (stored)",
    )

    watch.add_argument(
        "--sync",
        action="store_true",
        help="fetch the changes after each notification and hand them to CHANNELKIT_CHANGE_HANDLER",
    )
    watch.add_argument(
        "--initial",
        action="store_true",
        help="with --sync: also deliver what exists now, as one resync, right away",
    )

    catch_up = sub.add_parser("sync", help="run a catch-up sync of --sync subscriptions now")
    which = catch_up.add_mutually_exclusive_group(required=True)
    which.add_argument("subscription_id", nargs="?", help="the subscription to sync")
    which.add_argument("--all", action="store_true", help="every active --sync subscription")
    catch_up.add_argument("--json", action="store_true", help="print JSON")

    listing = sub.add_parser("list", help="show every channel")
    listing.add_argument("--json", action="store_true", help="print JSON")

    stop = sub.add_parser("stop", help="stop a subscription (by a channel id or the subscription id)")
    stop.add_argument("channel_id", metavar="ID", help="a channel id, or a subscription id")

    renew = sub.add_parser("renew", help="renew channels that expire soon")
    renew.add_argument("--json", action="store_true", help="print the summary as JSON")

    status = sub.add_parser("status", help="the health of every subscription (exit 1 when unhealthy)")
    status.add_argument("--json", action="store_true", help="print JSON")

    reactivate = sub.add_parser("reactivate", help="watch again for a suspended or expired subscription")
    reactivate.add_argument("subscription_id")

    migrate = sub.add_parser("migrate", help="create the subscription records of an older deployment")
    migrate.add_argument("--json", action="store_true", help="print JSON")

    creds = sub.add_parser("credentials", help="stored OAuth user credentials (user:KEY)")
    verbs = creds.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    add = verbs.add_parser("add", help="store (or replace) an authorized_user grant, encrypted")
    add.add_argument("key")
    add.add_argument(
        "--from-file", required=True, metavar="FILE", help="authorized_user JSON ('-' for stdin)"
    )
    add.add_argument("--reactivate", action="store_true", help="then reactivate its suspended subscriptions")
    listed = verbs.add_parser("list", help="stored credentials (never a secret)")
    listed.add_argument("--json", action="store_true", help="print JSON")
    remove = verbs.add_parser("remove", help="delete stored credentials")
    remove.add_argument("key")
    remove.add_argument("--stop", action="store_true", help="stop the subscriptions that use them first")
    verbs.add_parser("rotate", help="re-encrypt every stored credential under the first key")
    return parser


def channel_json(channel: Channel, now_ms: int, subscription: Subscription | None = None) -> dict[str, Any]:
    """What ``list --json`` shows of a channel (and its subscription's state): everything but the token."""
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
        "credentials": channel.credentials or "adc",
        "subscriptionState": subscription.state if subscription else None,
        "subscriptionReason": subscription.reason if subscription else None,
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
    return format_duration(seconds) if seconds > 0 else "expired"


def format_duration(seconds: int) -> str:
    """``2d 3h``, ``1h 5m``, ``45m`` or ``30s``."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def _columns(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str) -> str:
    """Rows under their headers, each column as wide as its widest cell; ``empty`` when there are none."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    if not rows:
        lines.append(empty)
    return "\n".join(lines)


def _state_text(subscription: Subscription | None) -> str:
    if subscription is None:
        return "-"
    return subscription.state + (f" ({subscription.reason})" if subscription.reason else "")


def format_table(
    channels: Sequence[Channel], now_ms: int, subscriptions: Mapping[str, Subscription] | None = None
) -> str:
    subscriptions = subscriptions or {}
    headers = ("ID", "STATUS", "API", "METHOD", "EXPIRES IN", "SUBSCRIPTION", "STATE")
    rows = [
        (
            c.id,
            (c.status or "-") + (" (stop pending)" if c.stop_pending else ""),
            f"{c.api or '-'} {c.version or ''}".strip(),
            c.method or "-",
            format_remaining(c.expiration, now_ms),
            (c.subscription_id or "-")[:8],
            _state_text(subscriptions.get(c.subscription_id or "")),
        )
        for c in channels
    ]
    return _columns(headers, rows, empty="(no channels)")


def _cmd_watch(args) -> int:
    from channelkit.change_sink import load_change_sink
    from channelkit.subscribe import subscribe

    if args.initial and not args.sync:
        raise ConfigError("--initial goes with --sync")
    sink = load_change_sink() if args.initial else None
    if args.initial and sink is None:
        raise ConfigError(
            "--initial needs CHANNELKIT_CHANGE_HANDLER or CHANNELKIT_PUBSUB_TOPIC to deliver to"
        )
    channel = subscribe(
        args.api,
        args.version,
        args.method,
        address=args.address,
        params=dict(args.param),
        token=args.token,
        ttl=args.ttl,
        credentials=args.credentials,
        sync=args.sync,
        initial=args.initial,
    )
    print(channel.id)
    if args.initial and channel.subscription_id:
        from channelkit.sync import DONE, sync

        result = sync(channel.subscription_id, sink=sink)
        print(f"initial sync: {format_sync(result)}", file=sys.stderr)
        return EXIT_OK if result.outcome == DONE else EXIT_FAILED
    return EXIT_OK


def _cmd_sync(args) -> int:
    """One catch-up sync of one subscription, or of every active ``--sync`` one; exit 1 if any failed."""
    from channelkit.change_sink import load_change_sink
    from channelkit.store import open_store
    from channelkit.sync import FAILED, HANDLER_FAILED, LEASE_LOST, sync

    sink = load_change_sink()
    if sink is None:
        raise ConfigError("sync needs CHANNELKIT_CHANGE_HANDLER or CHANNELKIT_PUBSUB_TOPIC to deliver to")
    store = open_store()
    if args.all:
        ids = [s.id for s in store.list_subscriptions(sync=True) if s.is_active]
    else:
        ids = [args.subscription_id]
    results = [sync(subscription_id, store=store, sink=sink) for subscription_id in ids]
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for result in results:
            print(f"{result.subscription_id}  {format_sync(result)}")
        if not results:
            print("(no --sync subscriptions)")
    failed = any(r.outcome in (FAILED, HANDLER_FAILED, LEASE_LOST) for r in results)
    return EXIT_FAILED if failed else EXIT_OK


def format_sync(result: Any) -> str:
    """``done: 3 batches, 120 items (1 resync)``, and the reason when it stopped."""
    text = f"{result.outcome}: {result.batches} batches, {result.items} items"
    if result.resyncs:
        text += f" ({result.resyncs} resync)"
    if result.error:
        text += f"; {_one_line(Exception(result.error))}"
    return text


def _cmd_list(args) -> int:
    from channelkit.store import open_store

    store = open_store()
    channels = store.list()
    subscriptions = {s.id: s for s in store.list_subscriptions()}
    now_ms = int(time.time() * 1000)
    if args.json:
        listed = [channel_json(c, now_ms, subscriptions.get(c.subscription_id or "")) for c in channels]
        print(json.dumps(listed, indent=2))
    else:
        print(format_table(channels, now_ms, subscriptions))
    return EXIT_OK


def _cmd_stop(args) -> int:
    """Stop by channel id, or by subscription id when no channel has that id."""
    from channelkit.errors import ChannelNotFoundError
    from channelkit.events import default_dispatcher
    from channelkit.store import open_store
    from channelkit.subscribe import stop, stop_subscription

    store, dispatcher = open_store(), default_dispatcher()
    try:
        stopped = stop(args.channel_id, store=store, dispatcher=dispatcher)
    except ChannelNotFoundError:
        if store.find_subscription(args.channel_id) is None:
            raise
        stopped = stop_subscription(args.channel_id, store=store, dispatcher=dispatcher)
    for channel in stopped:
        print(f"stopped {channel.id}", file=sys.stderr)
    return EXIT_OK


def _cmd_status(args) -> int:
    """The health probe: exit 0 when healthy, 1 otherwise."""
    from channelkit import config
    from channelkit.health import check_health
    from channelkit.store import open_store

    report = check_health(
        open_store(),
        now_ms=int(time.time() * 1000),
        expiring_warn=config.expiring_warn(),
        quiet_after=config.quiet_after(),
        renew_before=config.renew_before(),
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_health(report))
    return EXIT_OK if report.healthy else EXIT_FAILED


def format_health(report: HealthReport) -> str:
    """``status`` for people: the verdict, the counts, then each problem on its own line."""
    data = report.to_json()
    counts = data["counts"]
    lines = [
        ("healthy" if report.healthy else "UNHEALTHY")
        + ": "
        + ", ".join(f"{n} {state}" for state, n in counts.items())
    ]
    soonest = data["soonestExpiry"]
    if soonest:
        lines.append(
            f"soonest expiry: channel {soonest['channelId']} in {format_remaining(soonest['expiration'], report.now_ms)}"
        )
    for item in data["problems"]:
        since = format_duration(item["sinceSeconds"] or 0)
        reason = f" {item['reason']}" if item["reason"] else ""
        lines.append(
            f"{item['state']}{reason}: subscription {item['id']} for {since} ({item['detail'] or '-'})"
        )
    for item in data["expiringSoon"]:
        lines.append(
            f"expiring: channel {item['channelId']} (subscription {item['subscriptionId']}) ends in "
            f"{format_remaining(item['expiration'], report.now_ms)}; last error: {item['lastError'] or '-'}"
        )
    for item in data["quiet"]:
        lines.append(
            f"quiet: subscription {item['id']}: no notification since {item['lastNotificationAt'] or 'it began'}"
        )
    run = data["lastRenewalRun"]
    if run:
        ago = format_duration((report.now_ms - int(run["at"])) // 1000)
        lines.append(
            f"last renewal run: {ago} ago, {run.get('renewed', 0)} renewed, "
            f"{run.get('renewalFailures', 0)} failed or suspended"
        )
    else:
        lines.append("last renewal run: none recorded")
    return "\n".join(lines)


def _cmd_reactivate(args) -> int:
    """A new watch for a suspended or expired subscription; any refusal by Google exits 1."""
    from channelkit.errors import GoogleApiError
    from channelkit.events import default_dispatcher
    from channelkit.reactivate import reactivate

    try:
        channel = reactivate(args.subscription_id, dispatcher=default_dispatcher())
    except GoogleApiError as exc:  # a 400 here is Google refusing, not a bad argument
        print(f"channelkit: error: {explain(exc, os.environ) or _one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(channel.id)
    return EXIT_OK


def _cmd_migrate(args) -> int:
    from channelkit.migrate import migrate
    from channelkit.store import open_store

    summary = migrate(open_store(), now_ms=int(time.time() * 1000))
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(
            f"{summary.created} subscription records created, {summary.existing} already there, "
            f"{summary.skipped} without a live channel left as they are"
        )
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
    lines += [f"suspended {item['id']}: {item['reason']}" for item in summary.suspended]
    lines += [f"skipped  {item['id']}: {item['reason']}" for item in summary.skipped]
    lines += [f"deferred {channel_id} (time budget reached; next run)" for channel_id in summary.deferred]
    if summary.published:
        lines.append(
            f"published {len(summary.published)} subscriptions to the renew workers (CHANNELKIT_RENEW_TOPIC)"
        )
    counts = summary.to_json()
    lines.append(
        f"{counts['renewed']} renewed, {counts['failed']} failed, {counts['skipped']} skipped, "
        f"{counts['stopped']} stopped, {counts['deferred']} deferred, {counts['suspended']} suspended"
    )
    return "\n".join(lines)


def _cmd_credentials(args) -> int:
    """``credentials add | list | remove | rotate``: never prints a secret."""
    from channelkit import credentials_admin as admin
    from channelkit.events import default_dispatcher

    if args.verb == "add":
        try:
            with open(args.from_file if args.from_file != "-" else 0, encoding="utf-8") as source:
                info = source.read()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.from_file}: {exc.strerror}") from None
        stored = admin.store_user_credentials(args.key, info)
        print(f"stored credentials {stored.reference} (version {stored.version})", file=sys.stderr)
        if args.reactivate:
            done, failed = admin.reactivate_credential(args.key, dispatcher=default_dispatcher())
            for subscription_id in done:
                print(f"reactivated {subscription_id}", file=sys.stderr)
            for subscription_id, reason in failed.items():
                print(f"not reactivated {subscription_id}: {reason}", file=sys.stderr)
            return EXIT_FAILED if failed else EXIT_OK
        return EXIT_OK
    if args.verb == "list":
        uses = admin.list_user_credentials()
        if args.json:
            print(json.dumps([u.to_json() for u in uses], indent=2))
        else:
            print(format_credentials(uses))
        return EXIT_OK
    if args.verb == "remove":
        for subscription_id in admin.remove_user_credentials(
            args.key, stop=args.stop, dispatcher=default_dispatcher()
        ):
            print(f"stopped {subscription_id}", file=sys.stderr)
        print(f"removed credentials user:{args.key}", file=sys.stderr)
        return EXIT_OK
    moved = admin.rotate_credentials()
    print(f"{moved} credentials re-encrypted under the first key", file=sys.stderr)
    return EXIT_OK


def format_credentials(uses: Sequence[Any]) -> str:
    """``credentials list`` for people: key, client, scopes, dates, use; never a secret."""
    headers = ("KEY", "CLIENT", "SCOPES", "CREATED", "LAST REFRESH", "IN USE", "STATE")
    rows = []
    for use in uses:
        data = use.to_json()
        rows.append(
            (
                data["key"],
                (data["clientId"] or "-")[:24],
                str(len(data["scopes"])),
                _date(data["createdAt"]),
                _date(data["lastRefreshedAt"]),
                str(data["inUse"]),
                "revoked" if data["revoked"] else "ok",
            )
        )
    return _columns(headers, rows, empty="(no stored credentials)")


def _date(ms: int | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


COMMANDS = {
    "watch": _cmd_watch,
    "list": _cmd_list,
    "stop": _cmd_stop,
    "renew": _cmd_renew,
    "status": _cmd_status,
    "reactivate": _cmd_reactivate,
    "migrate": _cmd_migrate,
    "credentials": _cmd_credentials,
    "sync": _cmd_sync,
}


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

"""Run channelkit on this machine: store, webhook, renew function, and Google played by the simulator.

Started by ``scripts/run-local`` (which sets up the virtualenv first). It starts

* the Firestore emulator (gcloud's; when it is missing or cannot start, the
  embedded SQLite store instead, and says so),
* the push simulator (``channelkit.testing.simulator``) playing Google's side,
* the webhook and renew functions under functions-framework,

prints their URLs and how to create a watch against them, and stops everything
(the emulator's Java child included) on Ctrl-C or SIGTERM, however it was started
(its own handlers: a shell's ``nohup … &`` starts it with SIGINT ignored).
``--demo`` instead runs the whole job once, narrated: subscribe, sync, changes
reaching the handler, a renewal across a simulated expiry, stop; then it stops
everything and exits 0. What it writes (function logs, the SQLite store) lives
in one ``channelkit-local-*`` temporary directory, removed on exit unless the
run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
if str(ROOT / "lib") not in sys.path:
    sys.path.insert(0, str(ROOT / "lib"))

from channelkit import config  # noqa: E402
from channelkit.channel import Channel  # noqa: E402
from channelkit.testing.emulators import Emulator, EmulatorError, gcloud_available  # noqa: E402
from channelkit.testing.harness import (  # noqa: E402
    FunctionsFrameworkProcess,
    free_port,
    notification_headers,
    port_open,
    post,
    wait_until,
)
from channelkit.testing.simulator import Simulator  # noqa: E402

BIN = pathlib.Path(sys.executable).parent
DEMO_HANDLER = "demo_handler:handle"
DEMO_FILE = "demo-file"
DEMO_TTL = 3000  # seconds: the first channel's lifetime (50 min)
DEMO_RENEW_BEFORE = 3600  # the local renew window in the demo: 1 h


class Stop(Exception):
    """SIGINT or SIGTERM arrived."""


def _on_signal(signum, frame):
    raise Stop(signal.Signals(signum).name)


def function(name: str, port: int, env: dict[str, str], run_dir: pathlib.Path, stream: bool):
    """``functions/<name>.py`` (target ``name``) under functions-framework; its output in ``run_dir``,
    and on our output too, each line prefixed ``[name]``, when ``stream``."""

    def echo(line: str) -> None:
        print(f"[{name}] {line}", end="", flush=True)

    return FunctionsFrameworkProcess(
        name,
        ROOT / "functions" / f"{name}.py",
        log_path=run_dir / f"{name}.log",
        env=env,
        port=port,
        cwd=ROOT,
        echo=echo if stream else None,
    )


class LocalRun:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.demo = args.demo
        self.run_dir = pathlib.Path(tempfile.mkdtemp(prefix="channelkit-local-"))
        self.emulator: Emulator | None = None
        self.simulator: Simulator | None = None
        self.functions: list[FunctionsFrameworkProcess] = []
        self.env: dict[str, str] = {}
        self.store_note = ""

    # -- starting and stopping ------------------------------------------------------------

    def port(self, wanted: int) -> int:
        """``wanted``, if nothing listens there; any free port with --free-ports."""
        if self.args.free_ports:
            return free_port()
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", wanted))
            except OSError:
                raise RuntimeError(
                    f"port {wanted} is already in use: stop what uses it, or pass --free-ports"
                ) from None
        return wanted

    def start(self) -> None:
        project = f"channelkit-demo-{uuid.uuid4().hex[:8]}" if self.demo else self.args.project
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHANNELKIT_")}
        env.update(
            {
                "GOOGLE_CLOUD_PROJECT": project,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self._start_store(project))
        self.simulator = Simulator(port=self.port(self.args.simulator_port)).start()
        env["CHANNELKIT_API_ROOT"] = self.simulator.url  # the functions and the CLI talk to the simulator
        if self.demo:
            env["CHANNELKIT_HANDLER"] = DEMO_HANDLER
            env["DEMO_HANDLER_LOG"] = str(self.run_dir / "handler-calls.jsonl")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")]))
        elif os.environ.get("CHANNELKIT_HANDLER"):
            env["CHANNELKIT_HANDLER"] = os.environ["CHANNELKIT_HANDLER"]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
        self.env = env
        renew_env = dict(env)
        if self.demo:
            renew_env["CHANNELKIT_RENEW_BEFORE"] = str(DEMO_RENEW_BEFORE)
        elif os.environ.get("CHANNELKIT_RENEW_BEFORE"):
            renew_env["CHANNELKIT_RENEW_BEFORE"] = os.environ["CHANNELKIT_RENEW_BEFORE"]
        stream = not self.demo
        # As deploy.sh deploys it: one gunicorn worker, a thread per request Cloud Run may send it.
        webhook_env = dict(env, WORKERS="1", THREADS=str(self.args.concurrency))
        for name, port, function_env in (
            ("webhook", self.args.webhook_port, webhook_env),
            ("renew", self.args.renew_port, renew_env),
        ):
            # Each one listed before it starts: a signal now still finds it to stop.
            self.functions.append(function(name, self.port(port), function_env, self.run_dir, stream))
            self.functions[-1].start()
        for started in self.functions:
            started.wait_ready()  # functions-framework's own /robots.txt: no line in the function's log

    def _start_store(self, project: str) -> dict[str, str]:
        """The store's settings: an emulator already running, one started here, or SQLite."""
        if self.args.store != "sqlite":
            external = os.environ.get("FIRESTORE_EMULATOR_HOST")
            if external:
                self.store_note = f"the Firestore emulator at {external} (FIRESTORE_EMULATOR_HOST)"
                return {"CHANNELKIT_STORE": "firestore", "FIRESTORE_EMULATOR_HOST": external}
            reason = "gcloud is not on PATH"
            if gcloud_available():
                emulator = Emulator("firestore", port=self.port(self.args.firestore_port))
                say(f"starting the Firestore emulator (gcloud) on {emulator.host_port}…")
                self.emulator = emulator  # before it starts: a signal now still finds it to stop
                try:
                    emulator.start()
                except EmulatorError as exc:
                    self.emulator = None  # stopped by its failed start, its log kept
                    reason = str(exc)
                else:
                    self.store_note = f"the Firestore emulator on {emulator.host_port}"
                    return {"CHANNELKIT_STORE": "firestore", "FIRESTORE_EMULATOR_HOST": emulator.host_port}
            if self.args.store == "firestore":
                raise RuntimeError(f"the Firestore emulator is required (--store firestore): {reason}")
            say(
                f"gcloud's Firestore emulator is not available ({reason}): "
                "using the embedded SQLite store instead"
            )
        path = self.run_dir / "channels.sqlite3"
        self.store_note = f"the embedded SQLite store at {path} (not Firestore)"
        return {"CHANNELKIT_STORE": f"sqlite:///{path}"}

    def stop(self) -> None:
        ports = [f.port for f in self.functions]
        for function in reversed(self.functions):
            function.stop()
        if self.simulator is not None:
            ports.append(self.simulator.port)
            self.simulator.stop()
        if self.emulator is not None:
            ports.append(self.emulator.port)
            self.emulator.stop()  # the whole process group: the Java child too
        # A killed process lets go of its port a moment later: say "stopped" once it has.
        try:
            wait_until(lambda: not [p for p in ports if port_open(p)], 15, 0.1, "the ports to close")
        except TimeoutError:
            still = [p for p in ports if port_open(p)]
            print(f"warning: something still listens on {still}", file=sys.stderr, flush=True)

    def clean_up(self, failed: bool) -> None:
        """Remove what this run wrote, unless it failed: then say where its logs are."""
        if failed:
            print(f"run-local: its logs are kept in {self.run_dir}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- what to tell the user ----------------------------------------------------------------

    def banner(self) -> None:
        webhook, renew = self.functions
        sim = self.simulator.url
        env_line = " ".join(
            f"{k}={shlex.quote(self.env[k])}"
            for k in (
                "GOOGLE_CLOUD_PROJECT",
                "CHANNELKIT_STORE",
                "FIRESTORE_EMULATOR_HOST",
                "CHANNELKIT_API_ROOT",
            )
            if k in self.env
        )
        print(
            f"""
channelkit is running locally.
  store      {self.store_note}
  Google     {sim}  (the push simulator; control API under {sim}_simulator/)
  webhook    {webhook.url}  (functions/webhook.py, target webhook; {self.args.concurrency} threads, as --concurrency)
  renew      {renew.url}  (functions/renew.py, target renew)
  logs       {self.run_dir}  (removed on exit, kept if the run fails)

Create a watch against them, in another terminal:
  export {env_line}
  {BIN / "python"} -m channelkit watch drive v3 files.watch --param fileId=F1 --address {webhook.url}
Make Google report a change to that file:
  curl -X POST {sim}_simulator/change -d '{{"api": "drive", "kind": "files", "params": {{"fileId": "F1"}}, "state": "update", "changed": ["content"]}}'
Run a renewal, as Cloud Scheduler would:
  curl -X POST {renew.url}
See the channels:
  {BIN / "python"} -m channelkit list

Ctrl-C stops everything.""",
            flush=True,
        )

    # -- the demo -------------------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        command = [str(BIN / "python"), "-m", "channelkit", *args]
        print(f"    $ python -m channelkit {' '.join(shlex.quote(a) for a in args)}", flush=True)
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=str(ROOT)
        )
        if result.returncode != 0:
            raise RuntimeError(f"python -m channelkit {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    def handled(self) -> list[dict]:
        path = pathlib.Path(self.env["DEMO_HANDLER_LOG"])
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def wait_handled(self, channel_id: str, number: int, what: str) -> dict:
        def found():
            return next(
                (c for c in self.handled() if c["channelId"] == channel_id and c["messageNumber"] == number),
                None,
            )

        return wait_until(found, message=what)

    def channel_json(self, channel_id: str) -> dict:
        channels = json.loads(self.cli("list", "--json"))
        return next(c for c in channels if c["id"] == channel_id)

    def run_demo(self) -> None:
        sim = self.simulator
        webhook, renew = self.functions
        short = lambda cid: cid[:8]  # noqa: E731

        step(1, "Subscribe: watch a Drive file, the channel stored before watch is called")
        old_id = self.cli(
            "watch",
            "drive",
            "v3",
            "files.watch",
            "--param",
            f"fileId={DEMO_FILE}",
            "--address",
            webhook.url,
            "--ttl",
            str(DEMO_TTL),
        ).strip()
        stored = self.channel_json(old_id)
        say(
            f"channel {short(old_id)}… is {stored['status']}; Google (the simulator) gave it "
            f"resource id {stored.get('resourceId')} and {DEMO_TTL // 60} minutes to live"
        )

        step(2, "Sync: Google's first message reaches the webhook")
        call = self.wait_handled(old_id, 1, "the sync notification at the handler")
        say(f"webhook answered 200; the handler got message #1, state '{call['state']}'")

        step(3, "Changes: the file changes twice; Google delivers one message twice")
        first = sim.change("drive", "files", fileId=DEMO_FILE, state="update", changed=["content"])[old_id]
        sim.duplicate_next(1)
        second = sim.change(
            "drive", "files", fileId=DEMO_FILE, state="update", changed=["content", "properties"]
        )[old_id]
        for number in (first, second):
            call = self.wait_handled(old_id, number, f"message #{number} at the handler")
            say(f"handler got message #{number}, state '{call['state']}', changed {call['changed']}")
        sim.wait_idle(timeout=30)
        deliveries = [d for d in sim.deliveries if d.channel_id == old_id and d.message_number == second]
        calls = [c for c in self.handled() if c["channelId"] == old_id and c["messageNumber"] == second]
        say(
            f"message #{second} was delivered {len(deliveries)} times "
            f"(answers {', '.join(str(d.status) for d in deliveries)}) and handled {len(calls)} time"
        )
        if len(calls) != 1:
            raise RuntimeError(f"message #{second} was handled {len(calls)} times")
        as_forged = Channel(
            "web_hook", old_id, "forged", webhook.url, resource_id=stored.get("resourceId") or "x"
        )
        status, _ = post(webhook.url, notification_headers(as_forged, 999, "update"))
        say(f"a forged notification (wrong token) is answered {status}, and the handler is not called")

        step(4, "Renewal across an expiry")
        say(
            f"the channel ends in {DEMO_TTL // 60} minutes; the local renew function renews what ends "
            f"within {DEMO_RENEW_BEFORE // 60} (CHANNELKIT_RENEW_BEFORE={DEMO_RENEW_BEFORE})"
        )
        say(f"Cloud Scheduler's call, played here: POST {renew.url}")
        status, body = post(renew.url, {"Content-Type": "application/json"}, b"{}", timeout=120)
        if status != 200:
            raise RuntimeError(f"the renew function answered {status}: {body[:300]!r}")
        summary = json.loads(body)
        renewed = summary["details"]["renewed"]
        if summary["renewed"] != 1 or renewed[0]["old"] != old_id:
            raise RuntimeError(f"expected one renewal of {old_id}, got {summary}")
        new_id = renewed[0]["new"]
        say(
            f"renewed {summary['renewed']}: {short(old_id)}… → {short(new_id)}… (the new channel "
            f"first, then the old one stopped at Google) in {summary['durationMs']} ms"
        )
        call = self.wait_handled(new_id, 0, "the 'renewed' notification at the handler")
        say(
            f"the handler got a '{call['state']}' notification for {short(new_id)}…: "
            "the moment for a catch-up sync"
        )
        self.wait_handled(new_id, 1, "the new channel's sync")
        old_end = sim.channel(old_id).expiration_ms
        new_end = sim.channel(new_id).expiration_ms
        if new_end <= old_end:
            raise RuntimeError("the new channel does not outlive the old one")
        sim.clock.freeze()
        sim.clock.set_ms(old_end + min(1000, (new_end - old_end) // 2))
        old, new = sim.channel(old_id), sim.channel(new_id)
        say(
            f"Google's clock (the simulator's) jumps {DEMO_TTL // 60} minutes, past the old channel's "
            f"end: it is {'expired' if old.expired else 'NOT expired'}"
            f"{' (and was stopped)' if old.stopped else ''}; the new one, made later with "
            f"the same lifetime, is {'live' if new.live else 'NOT live'}"
        )
        number = sim.change("drive", "files", fileId=DEMO_FILE, state="update", changed=["content"])
        if set(number) != {new_id}:
            raise RuntimeError(f"the change went to {sorted(number)}, expected only {new_id}")
        call = self.wait_handled(new_id, number[new_id], "the change through the new channel")
        say(
            f"the next change reaches the handler through {short(new_id)}…: "
            f"message #{call['messageNumber']}, same subscription ({call['subscriptionId']})"
        )

        step(5, "Stop")
        self.cli("stop", new_id)
        live = [c.id for c in sim.live_channels()]
        state = self.channel_json(new_id)["status"]
        say(f"channel {short(new_id)}… is {state}; channels live at Google: {len(live)}")
        if live:
            raise RuntimeError(f"channels still live at Google: {live}")

        calls = self.handled()
        listing = ", ".join(
            "{}… #{} {}".format(short(c["channelId"]), c["messageNumber"], c["state"]) for c in calls
        )
        step(6, f"Done: the handler ran {len(calls)} times, once per message ({listing})")


def step(number: int, text: str) -> None:
    print(f"\n[{number}] {text}", flush=True)


def say(text: str) -> None:
    print(f"    {text}", flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/run-local",
        description="Run channelkit locally: the Firestore emulator (or SQLite), the webhook and renew "
        "functions under functions-framework, and Google's push side played by the "
        "simulator. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run the whole job once, narrated (subscribe, sync, changes, renewal "
        "across an expiry, stop), then stop everything",
    )
    parser.add_argument(
        "--store",
        choices=("auto", "firestore", "sqlite"),
        default="auto",
        help="auto (default): the Firestore emulator if gcloud can start it, else SQLite",
    )
    parser.add_argument("--project", default="channelkit-local", help="project id in the emulator")
    parser.add_argument("--webhook-port", type=int, default=8080)
    parser.add_argument("--renew-port", type=int, default=8081)
    parser.add_argument("--simulator-port", type=int, default=8090)
    parser.add_argument("--firestore-port", type=int, default=8085)
    parser.add_argument("--free-ports", action="store_true", help="pick free ports instead")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="notifications the webhook serves at once, as gunicorn threads (default: "
        f"CHANNELKIT_CONCURRENCY, else {config.DEFAULT_WEBHOOK_CONCURRENCY}, as deploy.sh deploys it)",
    )
    args = parser.parse_args(argv)
    try:
        args.concurrency = config.webhook_concurrency(args.concurrency)
    except ValueError as exc:  # ConfigError
        parser.error(str(exc))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    run = LocalRun(args)
    failed = True  # until it ends as it should: then what it wrote is removed
    try:
        # Our own handlers, whatever we inherited: started in the background (``nohup … &``)
        # SIGINT arrives ignored, and Cloud Run, containers and service managers send SIGTERM.
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        run.start()
        if args.demo:
            print(f"channelkit demo: store = {run.store_note}", flush=True)
            run.run_demo()
            print("\nThe demo is complete; stopping everything.", flush=True)
            failed = False
            return 0
        run.banner()
        # Until SIGINT or SIGTERM raises Stop. Not signal.pause(): the signal may land on
        # another thread, and Python runs the handler in the main thread only once it
        # returns to Python code; a short timed wait guarantees that it does.
        idle = threading.Event()
        while True:
            idle.wait(0.25)
    except Stop as stop:
        print(f"\n{stop}: stopping everything…", flush=True)
        failed = False
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"\nrun-local: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.stop()
        run.clean_up(failed)
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())

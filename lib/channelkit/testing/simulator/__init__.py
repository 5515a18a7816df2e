"""A local HTTP server that plays Google's side of push notifications.

It answers the ``watch`` and ``channels.stop`` calls of Drive v3, Calendar v3,
Admin SDK Directory and Reports on the very paths google-api-python-client
builds from its bundled discovery documents, when the client's endpoint is the
simulator's root URL plus the API's service path. It then POSTs notifications to
each channel's address the way Google does: a ``sync`` message first, then one
message per change of the watched resource, with Google's headers, message
numbers that grow with gaps, retries with backoff on 5xx, and nothing after a
channel is stopped or expired. It also plays Google's OAuth token endpoint
(``sim.token_uri``): users added with ``sim.add_user`` refresh access tokens
there, and a watch of a resource given an owner (``sim.set_owner``) needs a
valid token of that owner. A test controls it from Python or over HTTP::

    with Simulator() as sim:
        drive = build("drive", "v3", static_discovery=True, http=httplib2.Http(),
                      client_options={"api_endpoint": sim.url + "drive/v3/"})
        drive.files().watch(fileId="F", body={...}).execute()
        sim.change("drive", "files", fileId="F", state="update", changed=["content"])
        sim.wait_idle()
        assert [d.state for d in sim.deliveries] == ["sync", "update"]

A watched resource is named by the API, the watch kind (the discovery resource
whose ``watch`` was called) and the parameters that identify it, spelled as in
the watch call: ``Resource.of("drive", "files", fileId="F")``. See
``docs/simulator.md`` for the whole picture.

Only the standard library is used. Notifications are sent only to loopback
addresses (127.0.0.0/8, ``localhost``, ``::1``); any other address is accepted
at watch time, like Google would, but its notifications are recorded as
``undeliverable`` and never sent.

It also keeps Drive files and Calendar calendars, each collection with a change
log, and answers the reads a sync makes after a notification (``changes.list``,
``files.get``, ``files.list``, ``events.list`` with sync tokens, …); a test
changes them with ``sim.drive`` and ``sim.calendar``, which log and push each change.

The modules: ``server`` (``Simulator``), ``resources`` (what can be watched),
``routes`` (the Google API), ``api_errors`` (Google's error body), ``oauth``
(the token endpoint, users, owners), ``notifications``, ``faults``,
``refusals`` (the named refusals a test injects), ``delivery``, ``control``
(the HTTP control API), ``http_server``, ``state``, ``clock``, ``records``
(what a test reads back), ``cli``; for the feeds ``feed_log`` (a change log),
``drive_data`` and ``calendar_data`` (the state), ``feed_routes``,
``drive_routes``, ``calendar_routes`` and ``paging`` (the reads) and
``feed_control`` (their control API).
"""

# ``__all__`` is the documented API; the names imported ``as`` themselves are
# public too (constants and helpers that tests and users import by name).
from channelkit._loopback import is_loopback_host
from channelkit.testing.simulator.cli import main
from channelkit.testing.simulator.clock import Clock
from channelkit.testing.simulator.control import CONTROL_PREFIX as CONTROL_PREFIX
from channelkit.testing.simulator.delivery import RETRY_STATUSES as RETRY_STATUSES
from channelkit.testing.simulator.faults import StandingRefusal
from channelkit.testing.simulator.notifications import USER_AGENT as USER_AGENT
from channelkit.testing.simulator.notifications import http_date as http_date
from channelkit.testing.simulator.oauth import INVALID_GRANT as INVALID_GRANT
from channelkit.testing.simulator.oauth import TOKEN_PATH as TOKEN_PATH
from channelkit.testing.simulator.records import CANCELLED as CANCELLED
from channelkit.testing.simulator.records import DELIVERED as DELIVERED
from channelkit.testing.simulator.records import DROPPED as DROPPED
from channelkit.testing.simulator.records import FAILED as FAILED
from channelkit.testing.simulator.records import RETRY as RETRY
from channelkit.testing.simulator.records import UNDELIVERABLE as UNDELIVERABLE
from channelkit.testing.simulator.records import ApiCall, ChannelInfo, Delivery, TokenRequest
from channelkit.testing.simulator.refusals import REASONS as REASONS
from channelkit.testing.simulator.refusals import REFUSALS, Refusal
from channelkit.testing.simulator.resources import ADMIN as ADMIN
from channelkit.testing.simulator.resources import DAY as DAY
from channelkit.testing.simulator.resources import DRIVE_CHANGED as DRIVE_CHANGED
from channelkit.testing.simulator.resources import GOOGLEAPIS as GOOGLEAPIS
from channelkit.testing.simulator.resources import HOUR as HOUR
from channelkit.testing.simulator.resources import STOP_PATHS as STOP_PATHS
from channelkit.testing.simulator.resources import WATCH_KINDS, Resource, WatchKind
from channelkit.testing.simulator.resources import watch_kind as watch_kind
from channelkit.testing.simulator.routes import ApiError as ApiError
from channelkit.testing.simulator.routes import google_error as google_error
from channelkit.testing.simulator.server import Simulator

__all__ = [
    "REFUSALS",
    "WATCH_KINDS",
    "ApiCall",
    "ChannelInfo",
    "Clock",
    "Delivery",
    "Refusal",
    "Resource",
    "Simulator",
    "StandingRefusal",
    "TokenRequest",
    "WatchKind",
    "is_loopback_host",
    "main",
]

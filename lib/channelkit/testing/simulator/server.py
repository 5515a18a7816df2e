"""``Simulator``: the object a test holds. It starts the HTTP server and the delivery worker.

The work is done by its parts, which share one ``State``: ``ApiRoutes`` (the
Google API), ``OAuth`` (the token endpoint, users and owners), ``Notifier``
(building notifications), ``Faults``, ``DeliveryScheduler`` (sending) and the
control API.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, overload

from channelkit.testing.simulator.calendar_data import CalendarData
from channelkit.testing.simulator.clock import Clock
from channelkit.testing.simulator.control import handle_control
from channelkit.testing.simulator.delivery import DeliveryScheduler
from channelkit.testing.simulator.drive_data import DriveData
from channelkit.testing.simulator.faults import Faults, StandingRefusal
from channelkit.testing.simulator.feed_routes import FeedRoutes
from channelkit.testing.simulator.http_server import HttpServer
from channelkit.testing.simulator.notifications import Notifier
from channelkit.testing.simulator.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, TOKEN_PATH, OAuth
from channelkit.testing.simulator.records import DELIVERED, ApiCall, ChannelInfo, Delivery, TokenRequest
from channelkit.testing.simulator.resources import Resource, check_changed, check_state
from channelkit.testing.simulator.routes import ApiRoutes
from channelkit.testing.simulator.state import Settings, State

__all__ = ["Simulator"]

T = TypeVar("T")


class _Setting(Generic[T]):
    """A ``Simulator`` attribute that reads and writes the shared ``Settings``: the parts see each change."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, sim: None, owner: type | None = None) -> _Setting[T]: ...
    @overload
    def __get__(self, sim: Simulator, owner: type | None = None) -> T: ...
    def __get__(self, sim: Simulator | None, owner: type | None = None) -> T | _Setting[T]:
        if sim is None:
            return self
        value: T = getattr(sim._settings, self._name)
        return value

    def __set__(self, sim: Simulator, value: T) -> None:
        setattr(sim._settings, self._name, value)


class Simulator:
    # Over 200 lines on purpose: it is the public face, one documented entry point per
    # thing a test does (lifecycle, changes, faults, records, waits), each handing over
    # in a few lines to one part (see the module docstring), where the work is done.
    """Google's push side on a local port. Thread-safe; use as a context manager.

    Arguments:
        host, port: where to listen; port 0 picks a free one (see ``url``).
        sync_before_response: deliver each new channel's ``sync`` message before
            answering its watch call (otherwise it is queued and races the answer,
            as with Google).
        retry_base, max_attempts: a notification answered 500/502/503/504 or not
            answered is sent again after ``retry_base * 2**(attempt-1)`` seconds,
            at most ``max_attempts`` times in all.
        delivery_timeout: seconds to wait for a receiver's answer.
        latency: seconds added before every API answer (watch, stop and feed reads).
        max_page_size: the most items a feed listing puts on one page, whatever
            the request asks (None: the API's own limits), so tests cross pages.
        seed: seeds message-number gaps and generated ids, for repeatable runs.
        ssl_context: used for notifications to ``https://`` loopback addresses.
        token_lifetime: seconds an access token from the token endpoint is valid
            (its ``expires_in``), on the simulator clock.

    The settings above (but host, port, seed and ssl_context) may be changed
    while it runs, e.g. ``sim.latency = 0.05``.
    """

    sync_before_response = _Setting[bool]()
    retry_base = _Setting[float]()
    max_attempts = _Setting[int]()
    delivery_timeout = _Setting[float]()
    latency = _Setting[float]()
    token_lifetime = _Setting[int]()
    max_page_size = _Setting["int | None"]()

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sync_before_response: bool = False,
        retry_base: float = 0.01,
        max_attempts: int = 6,
        delivery_timeout: float = 5.0,
        latency: float = 0.0,
        seed: int | None = None,
        ssl_context: Any = None,
        token_lifetime: int = 3600,
        max_page_size: int | None = None,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if token_lifetime < 1:
            raise ValueError("token_lifetime must be at least 1 second")
        if max_page_size is not None and max_page_size < 1:
            raise ValueError("max_page_size must be at least 1 (or None)")
        self.host, self._port = host, port
        self._settings = Settings(
            sync_before_response,
            retry_base,
            max_attempts,
            delivery_timeout,
            latency,
            token_lifetime,
            max_page_size,
        )
        self._state = State(self._settings, seed)
        self.clock: Clock = self._state.clock
        self._faults = Faults(self._state.cond)
        self._delivery = DeliveryScheduler(self._state, ssl_context)
        self._notifier = Notifier(self._state, self._faults, self._delivery)
        self._oauth = OAuth(self._state, self._faults, lambda: self.token_uri)
        notify = self._notify_change
        #: Drive files and change logs: ``sim.drive.create_file(…)``, ``update_file``, ``trash_file``, …
        self.drive: DriveData = DriveData(self._state, notify)
        #: Calendar collections: ``sim.calendar.insert_event(…)``, ``delete_event``, ``set_acl_rule``, …
        self.calendar: CalendarData = CalendarData(self._state, notify)
        feeds = FeedRoutes(self.drive, self.calendar, lambda: self._settings.max_page_size)
        self._routes = ApiRoutes(self._state, self._faults, self._notifier, self._oauth, feeds)
        self._server: HttpServer | None = None
        self._http_thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> Simulator:
        """Listen and start the delivery worker; returns self."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = HttpServer(
            self.host,
            self._port,
            routes=self._routes,
            control=functools.partial(handle_control, self),
            state=self._state,
            oauth=self._oauth,
        )
        self._http_thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),  # quick shutdown
            name="simulator-http",
            daemon=True,
        )
        self._http_thread.start()
        self._delivery.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering. Notifications still queued are dropped."""
        if self._server is None:
            return
        self._delivery.stop_soon()
        self._server.shutdown()
        self._server.server_close()
        if self._http_thread is not None:
            self._http_thread.join(timeout=self.delivery_timeout + 1)
        self._delivery.join(timeout=self.delivery_timeout + 1)
        self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Root URL with a trailing slash, e.g. ``http://127.0.0.1:PORT/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def token_uri(self) -> str:
        """The OAuth token endpoint, e.g. ``http://127.0.0.1:PORT/token``."""
        return self.url + TOKEN_PATH.lstrip("/")

    def reset(self) -> None:
        """Forget channels, records, queued notifications, pending faults, users, tokens, owners, files and calendars."""
        with self._state.cond:
            self._delivery.clear()
            self._faults.clear()
            self._oauth.clear()
            self._state.clear()
            self.drive.clear()
            self.calendar.clear()

    # users, tokens and owners

    def add_user(
        self,
        user: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        refresh_token: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Register a grant of ``user``: an OAuth client and a refresh token, as consent leaves them.

        Returns the "authorized_user" info (``type``, ``client_id``,
        ``client_secret``, ``refresh_token``, ``token_uri``; ``scopes`` when
        given) that a client stores. Each call adds a grant (a reconnect is a
        new refresh token; ``refresh_token`` None generates one). With
        ``scopes``, a refresh may ask for those only (``invalid_scope``
        otherwise). ValueError for a refresh token already registered, or a
        ``client_id`` registered before with another secret. The simulator must
        be started (the info names its ``token_uri``).
        """
        return self._oauth.add_user(
            user, client_id=client_id, client_secret=client_secret, refresh_token=refresh_token, scopes=scopes
        )

    def users(self) -> list[str]:
        """Every user ``add_user`` registered, first added first."""
        return self._oauth.users()

    def revoke(self, target: str, *, access_tokens: bool = True) -> int:
        """Revoke a grant (``target`` a refresh token) or every grant of a user (``target`` a user).

        A refresh with a revoked grant answers 400 ``invalid_grant`` ("Token has
        been expired or revoked."). The access tokens already issued from it
        stop working too (the API answers 401 where a token is needed), unless
        ``access_tokens`` is False. Returns how many grants this revoked;
        ValueError when ``target`` names neither.
        """
        return self._oauth.revoke(target, access_tokens=access_tokens)

    def set_owner(self, resource: Resource, user: str | None) -> None:
        """Make ``user`` (registered by ``add_user``) the owner of ``resource``; None makes it unowned.

        A watch of an owned resource needs a valid access token of its owner:
        401 (``authError``) without a token or with an unknown, expired or
        revoked one; 403 (``insufficientPermissions``) with another user's.
        """
        self._oauth.set_owner(resource, user)

    def owner(self, resource: Resource) -> str | None:
        """The owner of ``resource`` (``set_owner``); None when unowned."""
        return self._oauth.owner(resource)

    def refreshes(self, user: str | None = None, *, all_attempts: bool = False) -> int:
        """How many access tokens the token endpoint issued (to ``user``, when given).

        With ``all_attempts``, every request naming that user's grants counts,
        refused ones too (all requests when ``user`` is None).
        """
        return self._oauth.refreshes(user, all_attempts=all_attempts)

    # changing resources

    def change(
        self,
        target: Resource | str,
        kind: str | None = None,
        /,
        *,
        state: str,
        changed: list[str] | tuple[str, ...] | None = None,
        body: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> dict[str, int]:
        """Change a watched resource; notify every live channel that watches it.

        ``target`` is a ``Resource``, or an api name followed by the kind and the
        resource's parameters: ``change("drive", "files", fileId="F", state="update")``.
        ``state`` must be valid for the API (ValueError otherwise). ``changed``
        (Drive files only) becomes ``X-Goog-Changed``. ``body`` (Drive changes,
        Directory, Reports) is merged over the generated notification body.
        Returns ``{channel id: message number}`` of the notifications queued.

        It changes no state, but for a Drive file ``sim.drive`` keeps: ``update``,
        ``trash``, ``untrash`` and ``remove`` then change it as ``sim.drive``'s
        methods do (its drive's ``changes.watch`` channels are told too).
        """
        if isinstance(target, Resource):
            if kind is not None or params:
                raise TypeError("give either a Resource or api, kind and parameters")
            resource = target
        else:
            if kind is None:
                raise TypeError("change() needs the watch kind after the api name")
            resource = Resource.of(target, kind, **params)
        if (resource.api, resource.kind) == ("drive", "files") and body is None:
            check_state(resource.spec, state)
            values = check_changed(resource.spec, changed)
            queued = self.drive.apply_change(dict(resource.params)["fileId"], state, values)
            if queued is not None:
                return queued
        return self._notifier.change(resource, state, changed, body)

    def _notify_change(self, resource: Resource, state: str, changed: tuple[str, ...]) -> dict[str, int]:
        return self._notifier.change(resource, state, changed or None)

    def change_channel_resource(self, channel_id: str, **kwargs: Any) -> dict[str, int]:
        """``change()`` the resource that ``channel_id`` watches (KeyError if unknown)."""
        with self._state.cond:
            channel = self._state.channels.get(channel_id)
            if channel is None:
                raise KeyError(f"no channel {channel_id!r}")
            resource = channel.resource
        return self.change(resource, **kwargs)

    # faults

    def fail_next(
        self,
        operation: str,
        status: int = 503,
        count: int = 1,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Make the next ``count`` ``watch``, ``stop``, ``read`` or ``token`` calls fail with ``status``.

        ``read`` is any feed read (``changes.list``, ``files.get``, ``events.list``, …).

        ``reason`` (``error.errors[0].reason``) defaults to the one Google most
        often gives with that status (``REASONS``). A ``token`` failure is a
        refresh answered ``{"error": reason, "error_description": message}``;
        its reason defaults to ``internal_failure`` for 5xx. google-auth itself
        retries such a refresh (408, 429, 500, 503, 504, or that error), 3
        attempts in all, about 1 and 2 seconds apart.
        """
        self._faults.fail_next(operation, status, count, message, reason)

    def refuse_next(
        self, refusal: str, operation: str = "watch", count: int = 1, *, status: int | None = None
    ) -> None:
        """Make the next ``count`` ``watch`` (or ``stop``, or ``read``) calls answer a named refusal.

        ``refusal`` is a name in ``REFUSALS`` (``"permission"``, ``"not_found"``, …);
        ``status`` replaces its HTTP status. ValueError for an unknown name.
        """
        self._faults.refuse_next(refusal, operation, count, status)

    def refuse(
        self,
        refusal: str,
        match: Mapping[str, Any] | None = None,
        operation: str = "watch",
        *,
        status: int | None = None,
    ) -> StandingRefusal:
        """Answer a named refusal to every matching call until it is lifted.

        ``match`` names the calls: a watch matches when its path and query
        parameters (and its channel ``address``) include every item, e.g.
        ``{"fileId": "F1"}``; a stop, by the ``id`` and ``resourceId`` of its body.
        An empty or missing ``match`` refuses every call of ``operation``.
        ``unrefuse()``, ``clear_faults()`` and ``reset()`` lift it; a ``fail_next``
        or ``refuse_next`` failure still pending is answered first.
        """
        return self._faults.refuse(refusal, match, operation, status)

    def unrefuse(
        self,
        refusal: str | None = None,
        match: Mapping[str, Any] | None = None,
        operation: str | None = None,
    ) -> int:
        """Lift the standing refusals of this name, exact ``match`` and operation; how many were lifted.

        Each argument left None matches any: ``unrefuse()`` lifts them all.
        """
        return self._faults.unrefuse(refusal, match, operation)

    def refusals(self) -> list[StandingRefusal]:
        """The standing refusals (``refuse``), oldest first."""
        return self._faults.standing()

    def clear_faults(self) -> dict[str, int]:
        """Drop the failures not used yet and lift every standing refusal.

        Returns how many ``fail_next``/``refuse_next`` failures were left per
        operation (``watch``, ``stop``, ``read``, ``token``).
        """
        return self._faults.clear_failures()

    def drop_next(self, count: int = 1) -> None:
        """Lose the next ``count`` change notifications: never sent, recorded as ``dropped``.

        The change itself stays listed, so a sync's catch-up (not a push) must find it.
        """
        self._faults.drop_next(count)

    def duplicate_next(self, count: int = 1) -> None:
        """Send each of the next ``count`` notifications twice (same number, same headers)."""
        self._faults.duplicate_next(count)

    def reorder_next(self, count: int) -> None:
        """Hold the next ``count`` change notifications, then send them in reverse order.

        ``sync`` messages are never held. ``release_held()`` sends early.
        """
        self._faults.reorder_next(count)

    def release_held(self) -> int:
        """Queue the held notifications, newest first; returns how many."""
        return self._notifier.release_held()

    # records and waiting

    @property
    def calls(self) -> list[ApiCall]:
        """Every API request so far, oldest first."""
        with self._state.cond:
            return list(self._state.calls)

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every request to the token endpoint so far, oldest first."""
        with self._state.cond:
            return list(self._state.token_requests)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery attempt (and decision not to send) so far, oldest first."""
        with self._state.cond:
            return list(self._state.deliveries)

    def channel(self, channel_id: str) -> ChannelInfo:
        """Snapshot of a channel, live or not (KeyError if never created)."""
        with self._state.cond:
            return self._state.channels[channel_id].info(self.clock.now_ms())

    def channels(self) -> list[ChannelInfo]:
        """Every channel ever created, live or not."""
        with self._state.cond:
            now = self.clock.now_ms()
            return [c.info(now) for c in self._state.channels.values()]

    def live_channels(self) -> list[ChannelInfo]:
        """Channels neither stopped nor expired on the simulator clock."""
        return [c for c in self.channels() if c.live]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy and return it; TimeoutError after ``timeout``."""
        return self._state.wait_for(predicate, timeout)

    def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        channel_id: str | None = None,
        state: str | None = None,
        outcome: str | None = DELIVERED,
        timeout: float = 5.0,
    ) -> list[Delivery]:
        """Wait for at least ``count`` matching delivery records; return all that match."""

        def matching() -> list[Delivery]:
            return [
                d
                for d in self._state.deliveries
                if (channel_id is None or d.channel_id == channel_id)
                and (state is None or d.state == state)
                and (outcome is None or d.outcome == outcome)
            ]

        if count <= 0:
            with self._state.cond:
                return matching()
        return self.wait_for(lambda: len(matching()) >= count and matching(), timeout)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until nothing is queued, being sent or waiting to be retried.

        Notifications held by ``reorder_next`` do not count until released.
        """
        self.wait_for(self._delivery.idle, timeout)

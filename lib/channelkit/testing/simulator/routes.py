"""The Google API side: ``watch`` and ``channels.stop`` on each API's paths, answered as Google does.

A watch is checked as Google checks it (channel id, type, HTTPS address or a
loopback ``http://`` one, token, the kind's required query parameters) and its
expiration is clamped to the kind's maximum; errors have Google's JSON shape.

Each request's bearer token is resolved to the user it was issued to (``OAuth``).
A watch of a resource with an owner needs a valid token of that owner (401
without one, 403 with another user's); a channel created with a valid token can
be stopped only with a valid token of the same user. Unowned resources, and
channels created without a token, accept any caller.
"""

from __future__ import annotations

import dataclasses
import re
import time
import urllib.parse
from typing import Any

from channelkit._loopback import is_loopback_host
from channelkit.testing.simulator.api_errors import ApiAnswer, ApiError, FinishedAnswer, google_error
from channelkit.testing.simulator.faults import Faults
from channelkit.testing.simulator.feed_routes import FeedRoute, FeedRoutes
from channelkit.testing.simulator.notifications import Notifier
from channelkit.testing.simulator.oauth import Identity, OAuth
from channelkit.testing.simulator.refusals import REFUSALS, describe_target
from channelkit.testing.simulator.resources import (
    STOP_PATHS,
    WATCH_KINDS,
    Resource,
    WatchKind,
    check_state,
)
from channelkit.testing.simulator.state import Channel, State

__all__ = ["INVALID_JSON", "ApiAnswer", "ApiError", "ApiRoutes", "google_error"]

#: The body of a request that is not JSON (told apart from an empty body, None).
INVALID_JSON = object()

_CHANNEL_ID = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")
_WATCH_ROUTES = [(k.pattern, k) for k in WATCH_KINDS]


class ApiRoutes:
    """Answers the API requests: routes a path to its watch kind, stop or feed read (``feeds``),
    applies injected failures and the owners' authorization."""

    def __init__(self, state: State, faults: Faults, notifier: Notifier, oauth: OAuth, feeds: FeedRoutes):
        self._state = state
        self._faults = faults
        self._notifier = notifier
        self._oauth = oauth
        self._feeds = feeds

    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any, authorization: str | None = None
    ) -> ApiAnswer:
        """The answer to one API request; errors in Google's shape.

        ``authorization`` is the request's ``Authorization`` header.
        """
        identity = self._oauth.identify(authorization)
        answer = self._answer(method, path, query, body, identity)
        return dataclasses.replace(answer, user=identity.user, auth=identity.auth)

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: Any, identity: Identity
    ) -> ApiAnswer:
        try:
            return self._route(method, path, query, body, identity)
        except ApiError as exc:
            return ApiAnswer(exc.status, exc.body())
        except FinishedAnswer as answer:
            return answer.answer
        except Exception as exc:  # noqa: BLE001 - a simulator bug: answer like Google's backend would
            return ApiAnswer(500, google_error(500, f"Simulator error: {exc!r}"))

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, identity: Identity
    ) -> ApiAnswer:
        spec, path_params, stop_api = None, {}, STOP_PATHS.get(path)
        for pattern, candidate in _WATCH_ROUTES:
            match = pattern.fullmatch(path)
            if match:
                spec = candidate
                path_params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                break
        if spec:
            operation, kind = f"{spec.api}.{spec.kind}.watch", "watch"
        elif stop_api:
            operation, kind = f"{stop_api}.channels.stop", "stop"
        else:
            feed = self._feeds.match(method, path)
            if feed:
                return self._read(*feed, query, identity)
            raise FinishedAnswer(ApiAnswer(404, google_error(404, f"Method not found: {path}", "notFound")))
        resource = _named_resource(spec, path_params, query) if spec else None
        if method != "POST":
            error = google_error(404, f"{method} not found: {path}", "notFound")
            raise FinishedAnswer(ApiAnswer(404, error, operation, resource))
        try:
            self._before_answer(kind, operation, _call_params(kind, path_params, query, body), resource)
            if spec:
                self._authorize(identity, self._oauth.owner(resource), describe_target(resource))
            if body is INVALID_JSON:
                raise ApiError(400, "parseError", "Parse Error")
            if spec:
                answer = self._watch(spec, path_params, query, body, identity)
                return ApiAnswer(200, answer, operation, resource)
            self._stop(STOP_PATHS[path], body, identity)
            return ApiAnswer(204, None, operation)
        except ApiError as exc:
            error = exc.body()
            raise FinishedAnswer(ApiAnswer(exc.status, error, operation, resource, exc.refusal)) from None

    def _read(
        self, route: FeedRoute, path_params: dict[str, str], query: dict[str, str], identity: Identity
    ) -> ApiAnswer:
        """A feed read (``changes.list``, ``events.list``, …): latency, faults and owners as for a watch."""
        resource = route.resource(path_params, query)
        try:
            self._before_answer("read", route.operation, {**query, **path_params}, resource)
            if resource:
                self._authorize(identity, self._oauth.owner(resource), describe_target(resource))
            return ApiAnswer(200, self._feeds.answer(route, path_params, query), route.operation, resource)
        except ApiError as exc:
            raise FinishedAnswer(
                ApiAnswer(exc.status, exc.body(), route.operation, resource, exc.refusal)
            ) from None

    def _before_answer(
        self, kind: str, operation: str, params: dict[str, str], resource: Resource | None
    ) -> None:
        """The configured latency, then an injected failure or refusal if one applies."""
        latency = self._state.settings.latency
        if latency > 0:
            time.sleep(latency)
        failure = self._faults.take_failure(kind, params)
        if failure:
            target = describe_target(resource, params.get("id") if kind == "stop" else None)
            message = failure.message_for(address=params.get("address"), target=target)
            error = google_error(failure.status, message, failure.reason, failure.domain)
            raise FinishedAnswer(ApiAnswer(failure.status, error, operation, resource, failure.name))

    @staticmethod
    def _authorize(identity: Identity, owner: str | None, target: str) -> None:
        """Nothing when ``owner`` is None or the caller holds a valid token of ``owner``.

        Otherwise the ``unauthorized`` refusal (no valid token: 401) or the
        ``permission`` one (another user's token: 403).
        """
        if owner is None:
            return
        if not identity.valid:
            refused = REFUSALS["unauthorized"]
        elif identity.user != owner:
            refused = REFUSALS["permission"]
        else:
            return
        message = refused.message_for(address=None, target=target)
        raise ApiError(refused.status, refused.reason, message, refused.name)

    def _watch(
        self,
        spec: WatchKind,
        path_params: dict[str, str],
        query: dict[str, str],
        body: Any,
        identity: Identity,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "required", "Required: channel in the request body")
        channel_id = body.get("id")
        if not channel_id:
            raise ApiError(400, "required", "Required: id")
        if not isinstance(channel_id, str) or not _CHANNEL_ID.fullmatch(channel_id):
            raise ApiError(400, "invalid", f"Invalid channel id: {channel_id!r}")
        if str(body.get("type", "")).lower() not in ("web_hook", "webhook"):
            raise ApiError(400, "invalid", f"Invalid channel type: {body.get('type')!r}")
        address = body.get("address")
        if not isinstance(address, str) or not address:
            raise ApiError(400, "required", "Required: address")
        parts = urllib.parse.urlsplit(address)
        host = parts.hostname
        if not host or not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
            raise ApiError(400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}")
        token = body.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            raise ApiError(400, "invalid", "Invalid channel token: at most 256 characters")
        channel_params = body.get("params") or {}
        if not isinstance(channel_params, dict):
            raise ApiError(400, "invalid", "Invalid channel params: must be an object")
        for name in spec.required_query:
            if not query.get(name):
                raise ApiError(400, "required", f"Required parameter: {name}")
        if spec.one_of_query and not any(query.get(n) for n in spec.one_of_query):
            raise ApiError(
                400, "badRequest", f"Bad Request: one of {', '.join(spec.one_of_query)} is required"
            )
        watch_filter = query.get(spec.filter_query) if spec.filter_query else None
        if watch_filter:
            try:
                check_state(spec, watch_filter)
            except ValueError as exc:
                raise ApiError(400, "invalid", f"Invalid value for {spec.filter_query}: {exc}") from None
        key = {**path_params, **{n: query[n] for n in spec.key_query if query.get(n)}}
        resource = Resource.of(spec.api, spec.kind, **key)
        uri_query = [
            (n, query[n])
            for n in (
                *spec.key_query,
                *spec.required_query,
                *((spec.filter_query,) if spec.filter_query else ()),
            )
            if query.get(n)
        ]
        resource_uri = spec.uri.format(**{k: urllib.parse.quote(v, safe="") for k, v in path_params.items()})
        resource_uri += "?" + urllib.parse.urlencode([*uri_query, ("alt", "json")])

        with self._state.cond:
            now = self._state.clock.now_ms()
            expiration = _expiration(spec, body.get("expiration"), channel_params.get("ttl"), now)
            existing = self._state.channels.get(channel_id)
            if existing is not None and existing.live(now):
                raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
            channel = Channel(
                channel_id,
                resource,
                resource_uri,
                address,
                token or None,
                expiration,
                {str(k): str(v) for k, v in channel_params.items()},
                bool(body.get("payload")),
                watch_filter or None,
                is_loopback_host(host),
                user=identity.user if identity.valid else None,
            )
            self._state.channels[channel_id] = channel
            sync = self._notifier.sync(channel)
        if self._state.settings.sync_before_response:
            sync.done.wait(self._state.settings.sync_wait())
        response = {
            "kind": "api#channel",
            "id": channel_id,
            "resourceId": resource.resource_id,
            "resourceUri": resource_uri,
            "expiration": str(expiration),
        }
        if token:
            response["token"] = token
        return response

    def _stop(self, api: str, body: Any, identity: Identity) -> None:
        if not isinstance(body, dict) or not body.get("id"):
            raise ApiError(400, "required", "Required: id")
        channel_id = body["id"]
        with self._state.cond:
            channel = self._state.channels.get(channel_id) if isinstance(channel_id, str) else None
            if channel is not None and channel.resource.api == api:
                self._authorize(identity, channel.user, f"channel {channel_id}")
            if (
                channel is None
                or channel.resource.api != api
                or not channel.live(self._state.clock.now_ms())
                or body.get("resourceId") != channel.resource.resource_id
            ):
                raise ApiError(404, "notFound", f"Channel '{channel_id}' not found for project")
            channel.stopped = True
            self._state.cond.notify_all()


def _named_resource(spec: WatchKind, path_params: dict[str, str], query: dict[str, str]) -> Resource | None:
    """The resource a watch call names; None when the call does not name one (it is then refused)."""
    key = {**path_params, **{n: query[n] for n in spec.key_query if query.get(n)}}
    try:
        return Resource.of(spec.api, spec.kind, **key)
    except ValueError:
        return None


def _call_params(kind: str, path_params: dict[str, str], query: dict[str, str], body: Any) -> dict[str, str]:
    """What a standing refusal's ``match`` is compared with.

    A watch: its query and path parameters, and the channel's ``address``; a
    stop: the ``id`` and ``resourceId`` of its body.
    """
    fields = ("address",) if kind == "watch" else ("id", "resourceId")
    params = {**query, **path_params} if kind == "watch" else {}
    if isinstance(body, dict):
        params.update({f: body[f] for f in fields if isinstance(body.get(f), str)})
    return params


def _expiration(spec: WatchKind, requested: Any, ttl: Any, now_ms: int) -> int:
    """The channel's expiration in ms: requested (or ``params.ttl``), clamped to the maximum.

    A missing, zero or past expiration gets the kind's default life.
    """
    latest = now_ms + spec.max_ttl * 1000
    if requested not in (None, "", 0, "0"):
        if isinstance(requested, bool) or not str(requested).isdigit():
            raise ApiError(400, "invalid", f"Invalid expiration: {requested!r}")
        wanted = int(requested)
    elif ttl not in (None, ""):
        if not str(ttl).isdigit():
            raise ApiError(400, "invalid", f"Invalid params.ttl: {ttl!r}")
        wanted = now_ms + int(ttl) * 1000
    else:
        wanted = 0
    if wanted <= now_ms:
        wanted = now_ms + spec.default_ttl * 1000
    return min(wanted, latest)

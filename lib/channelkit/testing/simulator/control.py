"""The control API over HTTP, under ``/_simulator/``: what a test does from Python, from any language.

Each endpoint takes and returns JSON and calls the ``Simulator`` method of the
same name (see docs/simulator.md for the list); a bad argument is a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from channelkit.testing.simulator.feed_control import FEED_CONTROL_ROUTES
from channelkit.testing.simulator.resources import Resource
from channelkit.testing.simulator.routes import INVALID_JSON

if TYPE_CHECKING:
    from channelkit.testing.simulator.server import Simulator

__all__ = ["CONTROL_PREFIX", "handle_control"]

CONTROL_PREFIX = "/_simulator/"


def handle_control(
    sim: Simulator, method: str, name: str, query: dict[str, str], body: Any
) -> tuple[int, Any]:
    """(status, JSON) for ``method`` on ``CONTROL_PREFIX + name``."""
    if body is INVALID_JSON or (body is not None and not isinstance(body, dict)):
        return 400, {"error": {"message": "body must be a JSON object"}}
    body = body or {}
    route = _CONTROL_ROUTES.get((method, name))
    if route is None:
        return 404, {"error": {"message": f"no control endpoint {method} {CONTROL_PREFIX}{name}"}}
    try:
        return 200, route(sim, body, query)
    except (ValueError, TypeError, KeyError) as exc:
        return 400, {"error": {"message": str(exc).strip("'\"")}}
    except TimeoutError as exc:
        return 504, {"error": {"message": str(exc)}}


def _resource(body: dict) -> Resource:
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("params must be an object")
    return Resource.of(str(body.get("api")), str(body.get("kind")), **params)


def _control_change(sim: Simulator, body: dict, query: dict) -> Any:
    state, changed, payload = body.get("state"), body.get("changed"), body.get("body")
    if not state:
        raise ValueError("state is required")
    if body.get("channelId"):
        queued = sim.change_channel_resource(body["channelId"], state=state, changed=changed, body=payload)
    else:
        queued = sim.change(_resource(body), state=state, changed=changed, body=payload)
    return {"messages": [{"channelId": c, "messageNumber": n} for c, n in queued.items()]}


def _control_clock(sim: Simulator, body: dict, query: dict) -> Any:
    if "advanceSeconds" in body:
        sim.clock.advance(float(body["advanceSeconds"]))
    if "nowMs" in body:
        sim.clock.set_ms(int(body["nowMs"]))
    return {"nowMs": sim.clock.now_ms()}


def _control_config(sim: Simulator, body: dict, query: dict) -> Any:
    if "latency" in body:
        sim.latency = float(body["latency"])
    if "syncBeforeResponse" in body:
        sim.sync_before_response = bool(body["syncBeforeResponse"])
    if "tokenLifetime" in body:
        lifetime = int(body["tokenLifetime"])
        if lifetime < 1:
            raise ValueError("tokenLifetime must be at least 1 second")
        sim.token_lifetime = lifetime
    if "maxPageSize" in body:
        size = body["maxPageSize"]
        sim.max_page_size = None if size is None else _page_size(size)
    return {
        "latency": sim.latency,
        "syncBeforeResponse": sim.sync_before_response,
        "tokenLifetime": sim.token_lifetime,
        "maxPageSize": sim.max_page_size,
    }


def _page_size(value: Any) -> int:
    size = int(value)
    if size < 1:
        raise ValueError("maxPageSize must be at least 1 (or null)")
    return size


def _control_add_user(sim: Simulator, body: dict, query: dict) -> Any:
    if not body.get("user"):
        raise ValueError("user is required")
    scopes = body.get("scopes")
    if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes)):
        raise ValueError("scopes must be a list of strings")
    optional = {
        "client_id": body.get("clientId"),
        "client_secret": body.get("clientSecret"),
        "refresh_token": body.get("refreshToken"),
    }
    return sim.add_user(
        str(body["user"]), scopes=scopes, **{k: str(v) for k, v in optional.items() if v is not None}
    )


def _control_revoke(sim: Simulator, body: dict, query: dict) -> Any:
    targets = [body[k] for k in ("user", "refreshToken") if body.get(k)]
    if len(targets) != 1:
        raise ValueError("give either user or refreshToken")
    return {"revoked": sim.revoke(str(targets[0]), access_tokens=bool(body.get("accessTokens", True)))}


def _control_owner(sim: Simulator, body: dict, query: dict) -> Any:
    resource = _resource(body)
    user = body.get("user")
    sim.set_owner(resource, None if user is None else str(user))
    return {"resource": resource.to_json(), "user": sim.owner(resource)}


def _control_refreshes(sim: Simulator, body: dict, query: dict) -> Any:
    all_attempts = query.get("all") in ("1", "true")
    return {"refreshes": sim.refreshes(query.get("user") or None, all_attempts=all_attempts)}


def _control_fail_next(sim: Simulator, body: dict, query: dict) -> Any:
    sim.fail_next(
        str(body.get("operation")),
        int(body.get("status", 503)),
        int(body.get("count", 1)),
        body.get("message"),
        body.get("reason"),
    )
    return {}


def _control_refuse_next(sim: Simulator, body: dict, query: dict) -> Any:
    sim.refuse_next(
        _refusal_name(body),
        str(body.get("operation", "watch")),
        int(body.get("count", 1)),
        status=_optional_status(body),
    )
    return {}


def _control_refuse(sim: Simulator, body: dict, query: dict) -> Any:
    standing = sim.refuse(
        _refusal_name(body),
        body.get("match"),
        str(body.get("operation", "watch")),
        status=_optional_status(body),
    )
    return standing.to_json()


def _control_unrefuse(sim: Simulator, body: dict, query: dict) -> Any:
    return {"lifted": sim.unrefuse(body.get("refusal"), body.get("match"), body.get("operation"))}


def _refusal_name(body: dict) -> str:
    if not body.get("refusal"):
        raise ValueError("refusal is required")
    return str(body["refusal"])


def _optional_status(body: dict) -> int | None:
    return None if body.get("status") is None else int(body["status"])


def _control_wait_idle(sim: Simulator, body: dict, query: dict) -> Any:
    sim.wait_idle(float(body.get("timeout", 5.0)))
    return {"idle": True}


def _control_duplicate_next(sim: Simulator, body: dict, query: dict) -> Any:
    sim.duplicate_next(int(body.get("count", 1)))
    return {}


def _control_drop_next(sim: Simulator, body: dict, query: dict) -> Any:
    sim.drop_next(int(body.get("count", 1)))
    return {}


def _control_reorder_next(sim: Simulator, body: dict, query: dict) -> Any:
    sim.reorder_next(int(body.get("count", 0)))
    return {}


def _control_reset(sim: Simulator, body: dict, query: dict) -> Any:
    sim.reset()
    return {}


def _control_channels(sim: Simulator, body: dict, query: dict) -> Any:
    listed = sim.channels() if query.get("all") in ("1", "true") else sim.live_channels()
    return {"channels": [c.to_json() for c in listed]}


_CONTROL_ROUTES: dict[tuple[str, str], Callable[[Simulator, dict, dict], Any]] = {
    ("POST", "change"): _control_change,
    ("GET", "clock"): lambda sim, body, query: {"nowMs": sim.clock.now_ms()},
    ("POST", "clock"): _control_clock,
    ("POST", "config"): _control_config,
    ("POST", "users"): _control_add_user,
    ("GET", "users"): lambda sim, body, query: {"users": sim.users()},
    ("POST", "revoke"): _control_revoke,
    ("POST", "owner"): _control_owner,
    ("GET", "refreshes"): _control_refreshes,
    ("GET", "token_requests"): lambda sim, body, query: {
        "tokenRequests": [r.to_json() for r in sim.token_requests]
    },
    ("POST", "fail_next"): _control_fail_next,
    ("POST", "refuse_next"): _control_refuse_next,
    ("POST", "refuse"): _control_refuse,
    ("POST", "unrefuse"): _control_unrefuse,
    ("GET", "refusals"): lambda sim, body, query: {"refusals": [r.to_json() for r in sim.refusals()]},
    ("POST", "clear_faults"): lambda sim, body, query: {"left": sim.clear_faults()},
    ("POST", "drop_next"): _control_drop_next,
    ("POST", "duplicate_next"): _control_duplicate_next,
    ("POST", "reorder_next"): _control_reorder_next,
    ("POST", "release_held"): lambda sim, body, query: {"released": sim.release_held()},
    ("POST", "wait_idle"): _control_wait_idle,
    ("POST", "reset"): _control_reset,
    ("GET", "channels"): _control_channels,
    ("GET", "calls"): lambda sim, body, query: {"calls": [c.to_json() for c in sim.calls]},
    ("GET", "deliveries"): lambda sim, body, query: {"deliveries": [d.to_json() for d in sim.deliveries]},
    **FEED_CONTROL_ROUTES,
}

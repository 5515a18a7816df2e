"""Property tests: whatever arrives, the webhook never answers 500 and never calls the
handler for anything but a valid notification.

Through functions-framework's test client on the Firestore emulator, with an
oracle that computes the expected status from how each request was built; and
on the library directly (where header names keep their case: WSGI folds it).
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from channelkit.errors import ChannelkitError
from channelkit.receive import Receiver, status_for
from channelkit.store import open_store
from support.webhook_testing import new_channel

MAX_BODY = 64
ALLOWED = {200, 400, 403, 404, 405, 410, 413, 503}
REQUIRED = ("Channel-ID", "Message-Number", "Resource-ID", "Resource-State", "Resource-URI")
OPTIONAL = ("Channel-Token", "Channel-Expiration", "Changed")
RESERVED = {"content-length", "content-type", "host", "transfer-encoding", "connection", "expect"}

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Header text as HTTP carries it: printable ASCII, tab, and Latin-1 (no line breaks).
header_text = st.text(
    alphabet=st.characters(codec="latin-1", exclude_categories=("Cc",), include_characters="\t"),
    max_size=40,
)
blank = st.sampled_from(["", " ", "\t", "  \t "])


@st.composite
def name_case(draw, name: str) -> str:
    """``name`` with each letter's case chosen independently."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(name, flips))


valid_numbers = st.integers(min_value=1, max_value=2**63 - 1)
invalid_numbers = st.one_of(
    st.sampled_from(
        [
            "0",
            "-1",
            "+4",
            "٣",
            "1.0",
            "1e3",
            "0x1f",
            "9223372036854775808",
            "99999999999999999999",
            "1 2",
            "NaN",
        ]
    ),
    st.integers(max_value=0).map(str),
    st.integers(min_value=2**63).map(str),
    header_text.filter(lambda s: not (s.strip().isascii() and s.strip().isdigit())),
)


class World:
    """The stored channels a request may aim at, and the messages already handled."""

    def __init__(self, store):
        self.live = new_channel(resource_id="res-live")
        self.stopped = new_channel(status="stopped", resource_id="res-stopped")
        store.create(self.live)
        store.create(self.stopped)
        self.handled: set[tuple[str, int]] = set()


@st.composite
def requests(draw, world: World):
    """(method, headers, body, expected status, message key if it must reach the handler)."""
    target = draw(st.sampled_from(["live"] * 6 + ["stopped"] * 2 + ["unknown"] * 2))
    channel = {"live": world.live, "stopped": world.stopped}.get(target)
    values: dict[str, str | None] = {}
    broken_400 = False

    # Channel id: the target's, or (for "unknown") something no stored channel has.
    if target == "unknown":
        values["Channel-ID"] = draw(st.one_of(header_text, st.uuids().map(str)))
        if not values["Channel-ID"].strip():
            broken_400 = True
    else:
        values["Channel-ID"] = channel.id

    number_valid = draw(st.sampled_from([True] * 6 + [False]))
    number = draw(valid_numbers) if number_valid else None
    values["Message-Number"] = str(number) if number_valid else draw(invalid_numbers)
    if not number_valid:
        broken_400 = True
    values["Resource-ID"] = draw(
        st.sampled_from([channel.resource_id if channel else "res-live"] * 6 + ["res-other"])
    )
    values["Resource-State"] = draw(st.sampled_from(["sync", "update", "add", "exists"]))
    values["Resource-URI"] = "https://www.googleapis.com/drive/v3/files/F"
    token_kind = draw(st.sampled_from(["right"] * 8 + ["wrong", "missing"]))
    if token_kind == "right":
        values["Channel-Token"] = channel.token if channel else "tok-guess"
    elif token_kind == "wrong":
        values["Channel-Token"] = draw(header_text)
        if channel and values["Channel-Token"] == channel.token:
            token_kind = "right"
    if draw(st.booleans()):
        values["Channel-Expiration"] = draw(st.one_of(st.just("Tue, 19 Nov 2030 01:13:52 GMT"), header_text))
    if draw(st.booleans()):
        values["Changed"] = draw(st.one_of(st.just("content, properties"), header_text))

    # Sometimes break required headers: drop some, blank others.
    if draw(st.sampled_from([False] * 3 + [True])):
        for name in draw(st.lists(st.sampled_from(REQUIRED), min_size=1, max_size=3, unique=True)):
            if draw(st.booleans()):
                values.pop(name)
            else:
                values[name] = draw(blank)
            broken_400 = True

    headers = {}
    for name, value in values.items():
        headers[draw(name_case("X-Goog-" + name))] = value
    extra = draw(
        st.dictionaries(
            st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=20).filter(
                lambda n: n.lower() not in RESERVED and not n.lower().startswith("x-goog")
            ),
            header_text,
            max_size=3,
        )
    )
    headers.update(extra)
    method = draw(st.sampled_from(["POST"] * 16 + ["GET", "PUT", "DELETE", "PATCH"]))
    if draw(st.sampled_from([False] * 9 + [True])):
        body = draw(st.binary(min_size=MAX_BODY + 1, max_size=2 * MAX_BODY))
    else:
        body = draw(st.binary(max_size=MAX_BODY))

    key = None
    if method != "POST":
        expected = 405
    elif len(body) > MAX_BODY:
        expected = 413
    elif broken_400:
        expected = 400
    elif channel is None:
        expected = 404
    elif token_kind != "right" or values["Resource-ID"].strip() != channel.resource_id:
        expected = 403
    elif channel.status == "stopped":
        expected = 410
    else:
        expected = 200
        key = (channel.id, number)
    return method, headers, body, expected, key


@pytest.fixture
def world(store):
    return World(store)


@pytest.fixture
def ff_client(make_app):
    return make_app(CHANNELKIT_MAX_BODY=MAX_BODY)


@given(data=st.data())
@SETTINGS
def test_every_request_gets_its_status_and_only_valid_ones_reach_the_handler(
    data, ff_client, world, recording
):
    method, headers, body, expected, key = data.draw(requests(world))
    event(f"expected {expected}")
    calls_before = len(recording.ok())

    response = ff_client.open("/", method=method, headers=headers, data=body)

    assert response.status_code in ALLOWED
    assert response.status_code == expected, (method, headers, len(body))
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and world.live.token not in text
    new_calls = recording.ok()[calls_before:]
    if key is not None and key not in world.handled:
        assert [(c["channelId"], c["messageNumber"]) for c in new_calls] == [key]
        world.handled.add(key)
    else:
        assert new_calls == []


arbitrary_headers = st.dictionaries(
    st.one_of(
        st.sampled_from([f"X-Goog-{n}" for n in REQUIRED + OPTIONAL]).flatmap(name_case),
        st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=30),
    ).filter(lambda n: n.lower() not in RESERVED),
    header_text,
    max_size=12,
)


@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    headers=arbitrary_headers,
    body=st.binary(max_size=2 * MAX_BODY),
)
@SETTINGS
def test_arbitrary_requests_never_500_and_never_reach_the_handler(
    method, headers, body, ff_client, world, recording
):
    response = ff_client.open("/", method=method, headers=headers, data=body)
    assert response.status_code in ALLOWED
    assert response.status_code != 200
    assert recording.calls() == []


# --- the library directly: header names keep their case here ---------------------------------


@pytest.fixture
def sqlite_receiver():
    store = open_store("sqlite:///:memory:")
    calls: list = []
    receiver = Receiver(
        store=store,
        dispatcher=lambda n, c: calls.append((n.channel_id, n.message_number)),
        max_body=MAX_BODY,
        grace=0,
    )
    yield World(store), receiver, calls
    store.close()


@given(data=st.data())
@settings(SETTINGS, max_examples=200)
def test_the_library_judges_headers_of_any_case_like_the_oracle(data, sqlite_receiver):
    world, receiver, calls = sqlite_receiver
    method, headers, body, expected, key = data.draw(requests(world))
    event(f"expected {expected}")
    before = len(calls)
    try:
        status = receiver.receive(method, headers, body).status
    except ChannelkitError as exc:
        status = status_for(exc)
    assert status == expected, (method, headers, len(body))
    if key is not None and key not in world.handled:
        assert calls[before:] == [key]
        world.handled.add(key)
    else:
        assert calls[before:] == []

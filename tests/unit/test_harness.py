"""The shared test harness (channelkit.testing.harness): headers, post, wait, receiver, ports."""

from __future__ import annotations

import pytest

from channelkit.channel import Channel
from channelkit.testing.harness import (
    FAR_EXPIRATION,
    LoopbackReceiver,
    free_port,
    notification_headers,
    port_open,
    post,
    wait_until,
)

URI = "https://www.googleapis.com/drive/v3/files/F?alt=json"


def channel(token: str | None = "tok-1") -> Channel:
    return Channel(
        "web_hook", "chan-1", token, "https://hook.example/", resource_id="res-9", resource_uri=URI
    )


def test_notification_headers_are_those_google_sends_for_the_channel():
    assert notification_headers(channel(), 7, changed=("content", "properties")) == {
        "X-Goog-Channel-ID": "chan-1",
        "X-Goog-Message-Number": "7",
        "X-Goog-Resource-ID": "res-9",
        "X-Goog-Resource-State": "update",
        "X-Goog-Resource-URI": URI,
        "X-Goog-Channel-Expiration": FAR_EXPIRATION,
        "X-Goog-Channel-Token": "tok-1",
        "X-Goog-Changed": "content,properties",
    }
    assert "X-Goog-Channel-Token" not in notification_headers(channel(token=None), 1, "sync")


def test_notification_header_overrides_replace_or_leave_out_a_header():
    headers = notification_headers(channel(), 1, "sync", Channel_Token="wrong", Resource_URI=None)
    assert headers["X-Goog-Channel-Token"] == "wrong"
    assert "X-Goog-Resource-URI" not in headers
    assert notification_headers(channel(token=None), 1, Channel_Token="")["X-Goog-Channel-Token"] == ""


def test_post_reaches_a_loopback_receiver_around_any_proxy(monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    answers = iter([200, 503])
    with LoopbackReceiver(lambda headers, body: next(answers)) as hook:
        assert post(hook.url, {"X-Goog-Channel-ID": "c"}, b"hello") == (200, b"")
        assert post(hook.url, {}, b"") == (503, b"")  # an error status is an answer, not an exception
        (headers, body), _ = hook.requests
        assert headers["x-goog-channel-id"] == "c" and body == b"hello"  # case-insensitive, as a server's


def test_port_open_tells_a_listening_port_from_a_free_one():
    with LoopbackReceiver() as hook:
        port = int(hook.url.split(":")[2].split("/")[0])
        assert port_open(port)
    assert not port_open(free_port())


def test_wait_until_returns_the_first_truthy_value_or_names_what_it_waited_for():
    values = iter([0, None, "ready"])
    assert wait_until(lambda: next(values), 10, 0) == "ready"
    with pytest.raises(TimeoutError, match="waiting for the moon"):
        wait_until(lambda: False, 0, 0, "the moon")

"""channelkit.dispatch: loading the app's handler, calling it, and the Pub/Sub message shape."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from channelkit.channel import Channel, Notification
from channelkit.config import Settings
from channelkit.dispatch import (
    Dispatcher,
    clear_handler_cache,
    load_dispatcher,
    load_handler,
    pubsub_attributes,
    pubsub_payload,
)
from channelkit.errors import ConfigError, HandlerConfigError, HandlerError

TOKEN = "tok-never-in-output-93b1"


@pytest.fixture(autouse=True)
def fresh_handler_cache():
    clear_handler_cache()
    yield
    clear_handler_cache()


@pytest.fixture
def handler_dir(tmp_path, monkeypatch):
    """A directory on sys.path to write handler modules into; each test gets new module names."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        created.append(name)
        return name

    yield write
    for name in created:
        sys.modules.pop(name, None)


def notification(number=5, state="update"):
    return Notification(
        number,
        state,
        "https://www.googleapis.com/drive/v3/files/F",
        "res-1",
        channel_id="chan-1",
        token=TOKEN,
        changed=("content",),
        body=b'{"a":1}',
    )


def channel():
    return Channel(
        "web_hook",
        "chan-1",
        TOKEN,
        "https://hook.example/",
        expiration=123,
        resource_id="res-1",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id="sub-9",
        status="active",
    )


def test_a_handler_path_is_imported_once_and_called_with_notification_and_channel(handler_dir):
    handler_dir(
        "app_handler_once",
        """
        IMPORTS = []
        IMPORTS.append(1)
        CALLS = []
        def handle(notification, channel):
            CALLS.append((notification.message_number, channel.subscription_id))
    """,
    )
    dispatcher = load_dispatcher(handler="app_handler_once:handle")
    dispatcher.dispatch(notification(1), channel())
    load_dispatcher(handler="app_handler_once:handle").dispatch(notification(2), channel())
    module = sys.modules["app_handler_once"]
    assert module.IMPORTS == [1]
    assert module.CALLS == [(1, "sub-9"), (2, "sub-9")]
    assert dispatcher.targets == ["handler"]
    assert load_handler("app_handler_once:handle") is module.handle


def test_a_dotted_attribute_path_is_resolved(handler_dir):
    handler_dir(
        "app_handler_nested",
        """
        class App:
            seen = []
            @staticmethod
            def handle(notification, channel):
                App.seen.append(notification.state)
    """,
    )
    Dispatcher(handler="app_handler_nested:App.handle").dispatch(notification(), channel())
    assert sys.modules["app_handler_nested"].App.seen == ["update"]


@pytest.mark.parametrize(
    "path, words",
    [
        ("no_colon_here", "package.module:function"),
        ("app_missing_module_xyz:handle", "cannot import module"),
        ("json:no_such_function", "has no attribute"),
        ("json:__doc__", "not callable"),
        (":handle", "package.module:function"),
        ("json:", "package.module:function"),
    ],
)
def test_a_misconfigured_handler_fails_loudly_once(path, words, log_lines):
    for _ in range(3):
        with pytest.raises(HandlerConfigError) as info:
            load_dispatcher(handler=path)
        assert words in str(info.value)
    loud = [line for line in log_lines() if line["severity"] == "CRITICAL"]
    assert len(loud) == 1
    assert path in loud[0]["message"] and "503" in loud[0]["message"]


def test_a_handler_module_that_raises_on_import_is_a_config_error(handler_dir):
    handler_dir("app_handler_broken", "raise RuntimeError('bad deploy')\n")
    with pytest.raises(HandlerConfigError, match="RuntimeError: bad deploy"):
        load_handler("app_handler_broken:handle")


def test_an_unprepared_dispatcher_reports_a_bad_path_at_first_dispatch():
    dispatcher = load_dispatcher(handler="app_missing_module_abc:handle", prepare=False)
    with pytest.raises(HandlerConfigError):
        dispatcher.dispatch(notification(), channel())


def test_a_raising_handler_becomes_a_handler_error_with_its_cause():
    def handle(n, c):
        raise ValueError("app is down")

    with pytest.raises(HandlerError) as info:
        Dispatcher(handler=handle).dispatch(notification(), channel())
    assert isinstance(info.value.__cause__, ValueError)
    assert "ValueError: app is down" in str(info.value)


def test_with_nothing_configured_the_notification_is_logged_without_its_token(log_lines):
    dispatcher = load_dispatcher()
    assert dispatcher.targets == ["log"]
    dispatcher.dispatch(notification(77), channel())
    [line] = log_lines()
    assert line["outcome"] == "logged" and line["notification"]["messageNumber"] == 77
    assert line["subscriptionId"] == "sub-9"
    assert TOKEN not in json.dumps(line)


def test_the_environment_chooses_the_targets(monkeypatch, handler_dir):
    handler_dir("app_handler_env", "def handle(n, c):\n    pass\n")
    monkeypatch.setenv("CHANNELKIT_HANDLER", "app_handler_env:handle")
    monkeypatch.setenv("CHANNELKIT_PUBSUB_TOPIC", "projects/p/topics/t")
    dispatcher = load_dispatcher()
    assert dispatcher.targets == ["pubsub", "handler"] and dispatcher.topic == "projects/p/topics/t"
    monkeypatch.setenv("CHANNELKIT_PUBSUB_TOPIC", "not-a-topic")
    with pytest.raises(ConfigError):
        load_dispatcher()


def test_resolved_settings_choose_the_targets_without_reading_the_environment(monkeypatch, handler_dir):
    handler_dir("app_handler_settings", "def handle(n, c):\n    pass\n")
    monkeypatch.setenv("CHANNELKIT_HANDLER", "not_this_one:handle")
    monkeypatch.setenv("CHANNELKIT_PUBSUB_TOPIC", "not-a-topic")  # would be a ConfigError if read
    settings = Settings(handler="app_handler_settings:handle", pubsub_topic="projects/p/topics/t")
    dispatcher = load_dispatcher(settings=settings)
    assert dispatcher.targets == ["pubsub", "handler"] and dispatcher.topic == "projects/p/topics/t"
    assert load_dispatcher(settings=Settings()).targets == ["log"]
    assert load_dispatcher(settings=settings, topic="projects/p/topics/u").topic == "projects/p/topics/u"
    with pytest.raises(ConfigError, match="CHANNELKIT_PUBSUB_TOPIC"):
        load_dispatcher(settings=settings, topic="bad")


def test_a_bad_handler_path_fails_before_anything_is_published(monkeypatch):
    from channelkit.testing.harness import free_port

    # A publish would go to a dead port and fail with PublishError after the timeout.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    dispatcher = Dispatcher(
        handler="app_missing_module_def:handle", topic="projects/p/topics/t", publish_timeout=1
    )
    with pytest.raises(HandlerConfigError):
        dispatcher.dispatch(notification(), channel())
    assert dispatcher._publisher is None  # no client was even created


def test_the_pubsub_message_carries_the_notification_and_subscription_but_no_token():
    payload = pubsub_payload(notification(), channel())
    assert payload["channelId"] == "chan-1" and payload["messageNumber"] == 5
    assert payload["state"] == "update" and payload["changed"] == ["content"]
    assert payload["resourceId"] == "res-1" and payload["body"] == '{"a":1}'
    assert payload["subscriptionId"] == "sub-9" and payload["api"] == "drive"
    assert payload["methodParams"] == {"fileId": "F"}
    assert TOKEN not in json.dumps(payload)
    attributes = pubsub_attributes(notification(), channel())
    assert attributes == {
        "type": "notification",
        "channelId": "chan-1",
        "messageNumber": "5",
        "state": "update",
        "subscriptionId": "sub-9",
    }
    assert pubsub_attributes(notification(), None) == {
        "type": "notification",
        "channelId": "chan-1",
        "messageNumber": "5",
        "state": "update",
    }

"""channelkit.channel fixes googleapiclient.channel's defects.

Each defect test runs against both modules: it passes on channelkit and is a
strict xfail on googleapiclient, which proves the test catches the old bug.
"""

import datetime

import pytest
from googleapiclient import channel as google_channel

from channelkit import channel as ck
from channelkit.errors import (
    ChannelMismatchError,
    InvalidMessageNumberError,
    InvalidNotificationError,
    MissingHeaderError,
    ResourceMismatchError,
    TokenMismatchError,
)

UTC = datetime.UTC
OLD = pytest.param(
    google_channel,
    marks=pytest.mark.xfail(strict=True, reason="defect of googleapiclient.channel"),
    id="googleapiclient",
)
BOTH = pytest.mark.parametrize("module", [pytest.param(ck, id="channelkit"), OLD])

HEADERS = {
    "X-Goog-Channel-ID": "chan-1",
    "X-Goog-Message-Number": "12",
    "X-Goog-Resource-ID": "res-1",
    "X-Goog-Resource-State": "update",
    "X-Goog-Resource-URI": "https://www.googleapis.com/drive/v3/files/F",
    "X-Goog-Channel-Token": "tok",
    "X-Goog-Channel-Expiration": "Tue, 19 Nov 2013 01:13:52 GMT",
    "X-Goog-Changed": "content, properties",
}


def channel(module=ck, token="tok", resource_id=""):
    return module.Channel("web_hook", "chan-1", token, "https://x/h", resource_id=resource_id)


# --- expiration is an int of ms everywhere ----------------------------------


@BOTH
def test_new_webhook_channel_expiration_is_int_ms(module):
    c = module.new_webhook_channel("https://x", expiration=datetime.datetime(2030, 1, 1, 0, 0, 0, 500_000))
    assert type(c.expiration) is int
    assert c.expiration == 1_893_456_000_500


@BOTH
def test_update_with_googles_string_expiration_gives_int(module):
    c = channel(module)
    c.update({"expiration": "1426325213000"})
    assert c.expiration == 1_426_325_213_000 and type(c.expiration) is int
    assert c.body()["expiration"] == 1_426_325_213_000


@BOTH
def test_timezone_aware_datetime_is_accepted(module):
    tz = datetime.timezone(datetime.timedelta(hours=2))
    c = module.new_webhook_channel("https://x", expiration=datetime.datetime(2030, 1, 1, 2, tzinfo=tz))
    assert c.expiration == 1_893_456_000_000


def test_naive_datetime_is_read_as_utc():
    naive = ck.new_webhook_channel("https://x", expiration=datetime.datetime(2030, 1, 1))
    aware = ck.new_webhook_channel("https://x", expiration=datetime.datetime(2030, 1, 1, tzinfo=UTC))
    assert naive.expiration == aware.expiration == 1_893_456_000_000


def test_expires_at_is_an_aware_datetime_or_none():
    c = ck.new_webhook_channel("https://x", expiration=1_893_456_000_000)
    assert c.expires_at == datetime.datetime(2030, 1, 1, tzinfo=UTC)
    assert ck.new_webhook_channel("https://x").expires_at is None


def test_past_expiration_is_clamped_to_zero_and_omitted_from_body():
    c = ck.new_webhook_channel("https://x", expiration=datetime.datetime(1960, 1, 1))
    assert c.expiration == 0
    assert "expiration" not in c.body()


def test_expiration_rejects_garbage():
    with pytest.raises(ValueError):
        channel().update({"expiration": "soon"})
    with pytest.raises(TypeError):
        ck.Channel("web_hook", "a", None, "https://x", expiration=True)


# --- headers ----------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(
    "missing",
    [
        "X-Goog-Message-Number",
        "X-Goog-Resource-ID",
        "X-Goog-Resource-State",
        "X-Goog-Resource-URI",
        "X-Goog-Channel-ID",
    ],
)
def test_missing_header_raises_invalid_notification_naming_it(module, missing):
    headers = {k: v for k, v in HEADERS.items() if k != missing}
    with pytest.raises(InvalidNotificationError) as info:
        module.notification_from_headers(channel(module, token=None), headers)
    assert missing.upper() in str(info.value).upper()


def test_missing_header_is_a_typed_error_that_names_the_header_unquoted():
    headers = {k: v for k, v in HEADERS.items() if k != "X-Goog-Resource-ID"}
    with pytest.raises(MissingHeaderError) as info:
        ck.notification_from_headers(channel(), headers)
    assert isinstance(info.value, InvalidNotificationError)
    assert info.value.header == ck.X_GOOG_RESOURCE_ID
    assert str(info.value) == "missing required header X-GOOG-RESOURCE-ID"  # not KeyError's repr quoting


@BOTH
@pytest.mark.parametrize("number", ["0", "-3", "+4", "1 2", "1.5", "٣", "99999999999999999999"])
def test_message_number_must_be_a_positive_integer(module, number):
    with pytest.raises(InvalidMessageNumberError):
        module.notification_from_headers(
            channel(module, token=None), dict(HEADERS, **{"X-Goog-Message-Number": number})
        )


def test_invalid_message_number_is_a_value_error():
    assert issubclass(InvalidMessageNumberError, ValueError)


@BOTH
@pytest.mark.parametrize("given", [None, "wrong", "tok ", ""])
def test_token_is_checked(module, given):
    headers = {k: v for k, v in HEADERS.items() if k != "X-Goog-Channel-Token"}
    if given is not None:
        headers["X-Goog-Channel-Token"] = given
    with pytest.raises(TokenMismatchError):
        module.notification_from_headers(channel(module), headers)


def test_token_comparison_is_constant_time(monkeypatch):
    calls = []
    real = ck.hmac.compare_digest
    monkeypatch.setattr(ck.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    ck.notification_from_headers(channel(), HEADERS)
    assert ("tok", "tok") in calls


@pytest.mark.parametrize(
    "stored, given, ok",
    [
        ("tök", "tök", True),
        ("tök", "tok", False),
        ("tok", "tök", False),
        ("tök", "tök ", False),
    ],
)
def test_non_ascii_tokens_are_compared_in_constant_time(monkeypatch, stored, given, ok):
    calls = []
    real = ck.hmac.compare_digest
    monkeypatch.setattr(ck.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    headers = dict(HEADERS, **{"X-Goog-Channel-Token": given})
    if ok:
        assert ck.notification_from_headers(channel(token=stored), headers).token == given
    else:
        with pytest.raises(TokenMismatchError):
            ck.notification_from_headers(channel(token=stored), headers)
    assert (stored.encode(), given.encode()) in calls


def test_optional_headers_are_parsed_on_first_use_and_kept():
    n = ck.notification_from_headers(channel(), dict(HEADERS, **{"X-Goog-Changed": "a, b"}))
    assert n.changed is n.changed == ("a", "b")
    n.changed = ["c"]
    assert n.changed == ("c",)
    n.channel_expiration = None
    assert n.channel_expiration is None


def test_channel_without_token_accepts_any_token():
    n = ck.notification_from_headers(channel(token=None), HEADERS)
    assert n.token == "tok"


def test_mismatched_channel_and_resource_ids_are_invalid():
    with pytest.raises(ChannelMismatchError):
        ck.notification_from_headers(channel(), dict(HEADERS, **{"X-Goog-Channel-ID": "other"}))
    with pytest.raises(ResourceMismatchError):
        ck.notification_from_headers(channel(resource_id="res-2"), HEADERS)
    assert ck.notification_from_headers(channel(resource_id="res-1"), HEADERS).resource_id == "res-1"


@BOTH
def test_notification_keeps_the_extra_headers_and_body(module):
    n = module.notification_from_headers(channel(module), HEADERS, b'{"kind":"drive#changes"}')
    assert n.channel_id == "chan-1"
    assert n.token == "tok"
    assert n.channel_expiration == datetime.datetime(2013, 11, 19, 1, 13, 52, tzinfo=UTC)
    assert n.changed == ("content", "properties")
    assert n.body == b'{"kind":"drive#changes"}'


@pytest.mark.parametrize(
    "value,expected",
    [
        ("content,properties", ("content", "properties")),
        ("content, properties , parents", ("content", "properties", "parents")),
        ("content", ("content",)),
        ("", ()),
    ],
)
def test_changed_header_parses_with_or_without_spaces(value, expected):
    n = ck.notification_from_headers(channel(), dict(HEADERS, **{"X-Goog-Changed": value}))
    assert n.changed == expected


def test_unreadable_expiration_header_gives_none():
    n = ck.notification_from_headers(channel(), dict(HEADERS, **{"X-Goog-Channel-Expiration": "never"}))
    assert n.channel_expiration is None


def test_header_names_are_case_insensitive_and_lists_of_pairs_work():
    pairs = [(k.lower(), v) for k, v in HEADERS.items()]
    n = ck.notification_from_headers(channel(), pairs)
    assert (n.message_number, n.state) == (12, "update")


def test_is_sync_and_resource_state_alias():
    n = ck.notification_from_headers(
        channel(), dict(HEADERS, **{"X-Goog-Resource-State": "sync", "X-Goog-Message-Number": "1"})
    )
    assert n.is_sync and n.resource_state == "sync"


def test_new_header_constants():
    assert ck.X_GOOG_CHANNEL_TOKEN == "X-GOOG-CHANNEL-TOKEN"
    assert ck.X_GOOG_CHANNEL_EXPIRATION == "X-GOOG-CHANNEL-EXPIRATION"
    assert ck.X_GOOG_CHANGED == "X-GOOG-CHANGED"


def test_notification_dict_and_repr_never_show_the_token():
    n = ck.notification_from_headers(channel(), HEADERS)
    assert "tok" not in repr(n)
    assert "tok" not in str(n.to_dict())
    c = channel(token="very-secret-token")
    assert "very-secret-token" not in repr(c)


def test_module_docstring_uses_the_real_attribute_name():
    assert "n.resource_state" not in ck.__doc__
    assert "n.state" in ck.__doc__


@pytest.mark.parametrize("good", ["a", "A-z_0+9/=", "x" * 64])
def test_valid_channel_ids(good):
    assert ck.validate_channel_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "é", "a.b"])
def test_invalid_channel_ids(bad):
    with pytest.raises(ValueError):
        ck.validate_channel_id(bad)


def test_token_limits():
    assert ck.validate_token("t" * 256)
    with pytest.raises(ValueError):
        ck.validate_token("t" * 257)
    assert len(ck.new_token()) <= 256 and ck.new_token() != ck.new_token()


def test_copy_replaces_fields_and_rejects_unknown_ones():
    c = channel().copy(status="active", expiration="5")
    assert (c.status, c.expiration, c.token) == ("active", 5, "tok")
    with pytest.raises(TypeError):
        channel().copy(colour="red")


# --- the short path for dicts judges exactly like the general one ----------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_NAMES = list(HEADERS) + ["X-Goog-Channel-Expiration", "X-Goog-Changed", "Host", "Content-Length"]
_SPELL = st.sampled_from([str, str.upper, str.lower, str.title])
_VALUE = st.one_of(
    st.sampled_from(["chan-1", "12", " 12 ", "0", "tok", "res-1", "", "  ", "sync"]),
    st.text(max_size=8),
    st.binary(max_size=6),
)


def _outcome(make):
    try:
        n = make()
    except Exception as exc:  # the error's type is the outcome
        return type(exc)
    return {f: getattr(n, f) for f in ck.Notification._FIELDS}


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(_NAMES), _SPELL, _VALUE), max_size=10),
    st.booleans(),
    st.sampled_from(["tok", None]),
    st.sampled_from(["res-1", ""]),
)
def test_dict_short_path_matches_the_general_path(entries, start_valid, token, resource_id):
    headers = dict(HEADERS) if start_valid else {}
    for name, spell, value in entries:
        headers[spell(name)] = value
    chan = channel(token=token, resource_id=resource_id)
    fast = _outcome(lambda: ck.notification_from_headers(chan, headers))
    general = _outcome(lambda: ck.from_header_map(chan, ck.header_map(headers)))
    assert fast == general


def _werkzeug_headers(headers: dict, **extra_environ):
    from werkzeug.datastructures import EnvironHeaders

    environ = {"REQUEST_METHOD": "POST", "HTTP_HOST": "example.com", **extra_environ}
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return EnvironHeaders(environ)


@pytest.mark.parametrize("drop", [None, "X-Goog-Resource-ID", "X-Goog-Channel-Token", "X-Goog-Changed"])
def test_werkzeug_request_headers_are_read_from_the_environ_with_the_same_result(drop):
    headers = dict(HEADERS, **{"X-Goog-Changed": "content"})
    if drop:
        del headers[drop]
    wsgi = _werkzeug_headers(headers, CONTENT_LENGTH="0")
    general = {name: value for name, value in wsgi.items()}  # what iterating them yields
    assert ck.header_map(wsgi) == ck.header_map(general)
    assert _outcome(lambda: ck.notification_from_headers(channel(), wsgi)) == _outcome(
        lambda: ck.from_header_map(channel(), ck.header_map(general))
    )


_BASE = {
    "X-GOOG-CHANNEL-ID": "ch-1",
    "X-GOOG-MESSAGE-NUMBER": "7",
    "X-GOOG-RESOURCE-ID": "res-1",
    "X-GOOG-RESOURCE-STATE": "update",
    "X-GOOG-RESOURCE-URI": "https://example.com/r",
    "X-GOOG-CHANNEL-TOKEN": "tok",
    "X-GOOG-CHANGED": "content",
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"X-GOOG-CHANNEL-TOKEN": "wrong"},
        {"X-GOOG-CHANNEL-TOKEN": None},
        {"X-GOOG-RESOURCE-ID": "res-2"},
        {"X-GOOG-CHANNEL-ID": "ch-2"},
        {"X-GOOG-MESSAGE-NUMBER": "0"},
        {"X-GOOG-MESSAGE-NUMBER": "x"},
        {"X-GOOG-RESOURCE-STATE": None},
        {"X-GOOG-RESOURCE-URI": "  "},
        {"X-GOOG-CHANNEL-ID": " ch-1 ", "X-GOOG-CHANNEL-TOKEN": b"tok"},
    ],
)
def test_parsing_once_then_checking_decides_as_parsing_against_the_channel(change):
    """The webhook's split (parse_header_map, then check_against_channel) says what from_header_map says."""
    channel = ck.Channel("web_hook", "ch-1", "tok", "https://x", resource_id="res-1")
    upper = {k: v for k, v in {**_BASE, **change}.items() if v is not None}

    def outcome(run):
        try:
            n = run()
        except ck.InvalidNotificationError as exc:
            return type(exc)
        return (n.channel_id, n.message_number, n.resource_id, n.state, n.token, n.changed)

    whole = outcome(lambda: ck.from_header_map(channel, upper))
    split = outcome(lambda: ck.check_against_channel(channel, ck.parse_header_map(upper)))
    assert split == whole
    if not isinstance(whole, type):
        assert whole[1] == 7

"""A program written for googleapiclient.channel keeps catching what it caught.

googleapiclient let the headers' ``KeyError`` escape for a missing header and
``int()``'s ``ValueError`` for a blank or non-numeric message number. channelkit
raises its own ``InvalidNotificationError`` subclasses, which are also those
built-in errors, so a legacy ``except KeyError:`` / ``except ValueError:`` still
works. Each case runs against both modules.
"""

import pytest
from googleapiclient import channel as google_channel

from channelkit import channel as ck
from channelkit.errors import InvalidMessageNumberError, InvalidNotificationError, MissingHeaderError

BOTH = pytest.mark.parametrize(
    "module", [pytest.param(ck, id="channelkit"), pytest.param(google_channel, id="googleapiclient")]
)

HEADERS = {
    "X-Goog-Channel-ID": "chan-1",
    "X-Goog-Message-Number": "7",
    "X-Goog-Resource-ID": "res-1",
    "X-Goog-Resource-State": "update",
    "X-Goog-Resource-URI": "https://www.googleapis.com/drive/v3/files/F",
}


def _channel(module):
    return module.Channel("web_hook", "chan-1", None, "https://example.com/hook")


def _legacy_outcome(module, headers) -> str:
    """What a legacy caller observes: which of its except clauses ran."""
    try:
        module.notification_from_headers(_channel(module), headers)
    except KeyError:
        return "KeyError"
    except ValueError:
        return "ValueError"
    return "parsed"


@BOTH
@pytest.mark.parametrize("missing", sorted(HEADERS))
def test_a_missing_header_is_caught_as_key_error(module, missing):
    headers = {name: value for name, value in HEADERS.items() if name != missing}
    assert _legacy_outcome(module, headers) == "KeyError"


@BOTH
@pytest.mark.parametrize("number", ["", "abc", "1.5"])
def test_a_blank_or_non_numeric_message_number_is_caught_as_value_error(module, number):
    assert _legacy_outcome(module, {**HEADERS, "X-Goog-Message-Number": number}) == "ValueError"


@pytest.mark.parametrize("number", ["", "   ", "abc"])
def test_a_bad_message_number_stays_an_invalid_notification(number):
    with pytest.raises(InvalidMessageNumberError) as info:
        ck.notification_from_headers(_channel(ck), {**HEADERS, "X-Goog-Message-Number": number})
    assert isinstance(info.value, InvalidNotificationError) and isinstance(info.value, ValueError)


def test_a_missing_header_stays_an_invalid_notification():
    headers = {name: value for name, value in HEADERS.items() if name != "X-Goog-Resource-State"}
    with pytest.raises(MissingHeaderError) as info:
        ck.notification_from_headers(_channel(ck), headers)
    assert isinstance(info.value, InvalidNotificationError) and isinstance(info.value, KeyError)
    assert info.value.header == "X-GOOG-RESOURCE-STATE"

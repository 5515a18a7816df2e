"""channelkit's InvalidNotificationError is googleapiclient's, whichever is imported first.

Each case runs in a fresh interpreter, since what matters is import order.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


CATCH = """
    from googleapiclient.errors import InvalidNotificationError
    from channelkit import channel
    ch = channel.Channel("web_hook", "c1", "tok", "https://x")
    headers = {"X-Goog-Channel-ID": "c1", "X-Goog-Message-Number": "x",
               "X-Goog-Resource-ID": "r", "X-Goog-Resource-State": "sync",
               "X-Goog-Resource-URI": "u", "X-Goog-Channel-Token": "tok"}
    try:
        channel.notification_from_headers(ch, headers)
    except InvalidNotificationError as exc:
        print("caught", type(exc).__name__, isinstance(exc, ValueError))
"""


@pytest.mark.parametrize("first", ["import channelkit", "import googleapiclient.errors", ""])
def test_googleapiclient_code_catches_our_error_in_any_import_order(first):
    assert _run(first + "\n" + textwrap.dedent(CATCH)) == "caught InvalidMessageNumberError True"


def test_importing_channelkit_does_not_import_googleapiclient():
    out = _run("""
        import sys
        import channelkit, channelkit.errors, channelkit.receive, channelkit.dispatch
        print(sorted(m for m in sys.modules if m.startswith("googleapiclient")))
    """)
    assert out == "[]"


def test_every_notification_error_gains_the_base():
    out = _run("""
        import channelkit.errors as ck
        import googleapiclient.errors as g
        kinds = [ck.MissingHeaderError, ck.InvalidMessageNumberError, ck.ChannelMismatchError,
                 ck.TokenMismatchError, ck.ResourceMismatchError]
        print(all(issubclass(k, g.InvalidNotificationError) and issubclass(k, ck.ChannelkitError)
                  for k in kinds))
    """)
    assert out == "True"

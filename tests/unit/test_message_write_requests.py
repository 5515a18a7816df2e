"""The message writes' requests are the ones google-cloud-firestore builds for the same writes.

Pure: the library's side is a ``WriteBatch`` on a client with anonymous
credentials, which encodes without connecting to anything.
"""

from __future__ import annotations

import datetime

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.protobuf import timestamp_pb2
from proto.datetime_helpers import DatetimeWithNanoseconds as ProtoDatetimeWithNanoseconds

from channelkit.store.message_writes import (
    CommitRequest,
    create_request,
    encode_fields,
    status_request,
    timestamp,
)

UTC = datetime.UTC


@pytest.fixture(scope="module")
def client():
    return firestore.Client(project="p", credentials=AnonymousCredentials(), database="db-1")


def library_request(client, build) -> CommitRequest:
    """The CommitRequest ``WriteBatch.commit`` would send for what ``build(batch)`` added."""
    batch = client.batch()
    build(batch)
    return CommitRequest(database=client._database_string, writes=[w._pb for w in batch._write_pbs])


@pytest.mark.parametrize(
    "value",
    [
        "in_progress",
        "",
        "ünïcode ✓",
        True,
        False,
        0,
        -(2**63),
        2**63 - 1,
        None,
        datetime.datetime(2026, 12, 3, 9, 41, 5, 123456, tzinfo=UTC),
        datetime.datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC),  # before the epoch
        datetime.datetime(
            2026, 12, 3, 10, 41, 5, 999999, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
        ),
        datetime.datetime(2026, 12, 3, 9, 41, 5, 7),  # naive: UTC, as the library reads it
        DatetimeWithNanoseconds(2026, 12, 3, 9, 41, 5, nanosecond=123456789, tzinfo=UTC),
    ],
    ids=repr,
)
def test_each_value_is_encoded_as_the_library_encodes_it(value):
    assert encode_fields({"f": value})["f"] == _helpers.encode_value(value)._pb


@pytest.mark.parametrize("value", [1.5, b"raw", [1], {"a": 1}, object()], ids=repr)
def test_a_value_a_message_record_never_holds_is_refused(value):
    with pytest.raises(TypeError, match="message record"):
        encode_fields({"f": value})


def test_a_timestamp_passes_through_and_anything_else_is_refused():
    stamp = timestamp_pb2.Timestamp(seconds=1_800_000_000, nanos=5)
    assert timestamp(stamp) is stamp
    with pytest.raises(TypeError, match="not a timestamp"):
        timestamp("2026-12-03T09:41:05Z")


def test_the_claim_is_the_request_document_create_sends(client):
    now = datetime.datetime(2026, 12, 3, 9, 41, 5, 250000, tzinfo=UTC)
    record = {
        "status": "in_progress",
        "claimedAt": now,
        "expireAt": now + datetime.timedelta(days=7),
        "claimId": "0123456789abcdef0123456789abcdef",
    }
    ref = (
        client.collection("channelkit-channels").document("ck1-abc%2Fd").collection("messages").document("42")
    )
    expected = library_request(client, lambda batch: batch.create(ref, record))
    ours = create_request(client._database_string, f"{client._database_string}/documents/{ref.path}", record)
    assert ours == expected
    assert CommitRequest.FromString(ours.SerializeToString()) == expected


_API_CORE_NANOS = DatetimeWithNanoseconds(2026, 12, 3, 9, 41, 5, nanosecond=123456789, tzinfo=UTC)
_SNAPSHOT_NANOS = ProtoDatetimeWithNanoseconds(2026, 12, 3, 9, 41, 5, nanosecond=123456789, tzinfo=UTC)


@pytest.mark.parametrize(
    ("version", "as_given_to_the_library"),
    [
        (timestamp_pb2.Timestamp(seconds=1_800_000_000, nanos=123_456_789),) * 2,
        (datetime.datetime(2026, 12, 3, 9, 41, 5, 123456, tzinfo=UTC),) * 2,
        # What a snapshot's update_time is (proto-plus's class): the same on both sides.
        (_SNAPSHOT_NANOS,) * 2,
        # api_core's class: ours keeps its nanoseconds, where the library's marshal would cut
        # them to microseconds, so the library is given the Timestamp it stands for.
        (_API_CORE_NANOS, _API_CORE_NANOS.timestamp_pb()),
    ],
    ids=["Timestamp", "datetime", "snapshot DatetimeWithNanoseconds", "api_core DatetimeWithNanoseconds"],
)
def test_done_is_the_request_update_with_a_last_update_time_sends(client, version, as_given_to_the_library):
    ref = client.collection("channelkit-channels").document("c").collection("messages").document("7")
    option = client.write_option(last_update_time=as_given_to_the_library)
    expected = library_request(client, lambda batch: batch.update(ref, {"status": "done"}, option=option))
    name = f"{client._database_string}/documents/{ref.path}"
    assert status_request(client._database_string, name, "done", version) == expected


def test_a_naive_version_is_refused():
    # The library would read it as local time where a field value is read as UTC: no version is naive.
    with pytest.raises(TypeError, match="naive"):
        status_request(
            "projects/p/databases/d",
            "projects/p/databases/d/documents/c/m",
            "done",
            datetime.datetime(2026, 1, 1),
        )

"""The two Firestore writes of every notification, as Commit RPCs on the client's own channel.

Each accepted notification claims its message (a create-only write) and marks
it done (an update of one field with a ``last_update_time`` precondition).
Through ``DocumentReference.create`` and ``.update`` each write builds a
``WriteBatch``, converts a dict to proto-plus messages, and passes through
api_core's wrapper and the transport's logging interceptor. Sent as here, the
two writes take about 420 µs less CPU per notification (docs/benchmarks.md).
Skipped with that machinery: the library's debug logging of each request and
api_core's tracing spans. Here the same ``CommitRequest`` is built as a plain protobuf message and sent
on the gRPC channel the client already holds (its credentials, its emulator
settings, the same metadata), with the timeout the store passes. What reaches
Firestore is the request the library would have sent; a test compares them.

``MessageWrites.of(client)`` returns None when the client does not expose what
this needs (another version of google-cloud-firestore, a client that is not
the gRPC one); the store then writes through the library, as before. The
requests are tested equal to the library's on the version requirements.txt pins.

Errors come out as the library's would: ``grpc.RpcError`` becomes the
``google.api_core.exceptions`` class of its status code (``from`` the gRPC
error), so the store's handling of AlreadyExists, FailedPrecondition and
ServiceUnavailable is the same on both paths.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.api_core import gapic_v1
from google.protobuf import struct_pb2, timestamp_pb2

__all__ = [
    "MessageWrites",
    "create_request",
    "encode_fields",
    "status_request",
    "timestamp",
]

_COMMIT = "/google.firestore.v1.Firestore/Commit"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _pb_classes() -> tuple[Any, ...]:
    from google.cloud.firestore_v1.types import common, document, firestore, write

    return (
        firestore.CommitRequest.pb(),
        firestore.CommitResponse.pb(),
        write.Write.pb(),
        document.Document.pb(),
        document.Value.pb(),
        common.Precondition.pb(),
        common.DocumentMask.pb(),
    )


CommitRequest, CommitResponse, _Write, _Document, _Value, _Precondition, _Mask = _pb_classes()


def timestamp(value: Any) -> timestamp_pb2.Timestamp:
    """A version or a datetime as a protobuf ``Timestamp`` (naive datetimes are UTC)."""
    if isinstance(value, timestamp_pb2.Timestamp):
        return value
    to_pb = getattr(value, "timestamp_pb", None)  # api_core's DatetimeWithNanoseconds keeps its nanos
    if to_pb is not None:
        return to_pb()
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"not a timestamp: {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    delta = value - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000
    )


def _value(value: Any) -> Any:
    # The types a message record holds; bool before int, as Firestore's encoder does.
    if isinstance(value, str):
        return _Value(string_value=value)
    if isinstance(value, datetime.datetime):
        return _Value(timestamp_value=timestamp(value))
    if isinstance(value, bool):
        return _Value(boolean_value=value)
    if isinstance(value, int):
        return _Value(integer_value=value)
    if value is None:
        return _Value(null_value=struct_pb2.NULL_VALUE)
    raise TypeError(f"a message record holds no {type(value).__name__}")


def encode_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """A flat record as Firestore ``Value`` messages: str, datetime, bool, int and None."""
    return {key: _value(value) for key, value in record.items()}


def create_request(database: str, name: str, record: Mapping[str, Any]) -> Any:
    """The commit ``DocumentReference(name).create(record)`` sends."""
    return CommitRequest(
        database=database,
        writes=[
            _Write(
                update=_Document(name=name, fields=encode_fields(record)),
                current_document=_Precondition(exists=False),
            )
        ],
    )


def status_request(database: str, name: str, status: str, version: Any) -> Any:
    """The commit ``.update({"status": status}, option=write_option(last_update_time=version))`` sends.

    A version is the server's update time: a ``Timestamp`` or an aware datetime. A
    naive one is refused (the library would read it as local time, a field value as UTC).
    """
    if isinstance(version, datetime.datetime) and version.tzinfo is None:
        raise TypeError("a version is an aware datetime or a Timestamp, not a naive datetime")
    return CommitRequest(
        database=database,
        writes=[
            _Write(
                update=_Document(name=name, fields={"status": _Value(string_value=status)}),
                update_mask=_Mask(field_paths=["status"]),
                current_document=_Precondition(update_time=timestamp(version)),
            )
        ],
    )


class MessageWrites:
    """Create a message record, and set its status at a version, in one Commit RPC each."""

    def __init__(self, channel: Any, database: str, metadata: tuple[tuple[str, str], ...]):
        self.database = database
        self.documents = f"{database}/documents/"
        self._metadata = metadata
        self._commit = channel.unary_unary(
            _COMMIT,
            request_serializer=CommitRequest.SerializeToString,
            response_deserializer=CommitResponse.FromString,
        )

    @classmethod
    def of(cls, client: Any) -> MessageWrites | None:
        """The writer on ``client``'s channel, or None if this client does not offer one.

        Reads the client's channel, database path and call metadata (its resource
        prefix and, on the emulator, its owner token), all of which the library
        keeps on the client; the routing and client-info headers are the ones the
        library's Commit adds (its transport's ``DEFAULT_CLIENT_INFO``).
        """
        try:
            from google.cloud.firestore_v1.services.firestore.transports.base import DEFAULT_CLIENT_INFO

            channel = client._firestore_api.transport.grpc_channel
            database = client._database_string
            metadata = tuple(client._rpc_metadata)
        except (AttributeError, ImportError):
            return None
        if not isinstance(database, str) or not hasattr(channel, "unary_unary"):
            return None
        routing = gapic_v1.routing_header.to_grpc_metadata((("database", database),))
        return cls(channel, database, (*metadata, routing, DEFAULT_CLIENT_INFO.to_grpc_metadata()))

    def _call(self, request: Any, timeout: float) -> Any:
        try:
            return self._commit(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise gexc.from_grpc_error(exc) from exc

    def create(self, path: str, record: Mapping[str, Any], *, timeout: float) -> timestamp_pb2.Timestamp:
        """Create the document at ``path`` (below ``documents/``); its update time.

        Raises ``AlreadyExists`` if it exists, as ``DocumentReference.create`` does.
        """
        response = self._call(create_request(self.database, self.documents + path, record), timeout)
        return response.write_results[0].update_time

    def set_status(self, path: str, status: str, version: Any, *, timeout: float) -> None:
        """Set the document's ``status`` iff its update time is still ``version``.

        Raises ``FailedPrecondition`` if it changed and ``NotFound`` if it is gone.
        """
        self._call(status_request(self.database, self.documents + path, status, version), timeout)

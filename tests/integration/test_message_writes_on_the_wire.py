"""The direct message writes against a gRPC server that records what reaches it.

The server plays Firestore's Commit (it is not the emulator: it records each
request with its metadata, and answers or fails as a test tells it) and serves
reads of the documents a test puts in it, so the same write sent by the library
and by ``MessageWrites`` can be compared as received, headers included, and
each failure mode checked at the store.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import queue
import threading

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.types import document as document_types
from google.cloud.firestore_v1.types import firestore as firestore_types
from google.protobuf import timestamp_pb2

from channelkit.errors import StoreUnavailable
from channelkit.store import ClaimOutcome
from channelkit.store.firestore import FirestoreStore
from channelkit.store.message_writes import CommitRequest, CommitResponse, MessageWrites, encode_fields

UTC = datetime.UTC
NOW_MS = 1_900_000_000_000


BatchGetRequest = firestore_types.BatchGetDocumentsRequest.pb()
BatchGetResponse = firestore_types.BatchGetDocumentsResponse.pb()
Document = document_types.Document.pb()
STORED_AT = timestamp_pb2.Timestamp(seconds=1_800_000_000, nanos=1000)


class CommitRecorder:
    """A Firestore endpoint: Commit records (request, metadata) and answers from ``script``,
    else OK; BatchGetDocuments serves ``documents`` (path below documents/ -> fields)."""

    def __init__(self):
        self.received: list[tuple[CommitRequest, dict[str, str]]] = []
        self.script: queue.Queue = queue.Queue()
        self.documents: dict[str, dict] = {}
        self.reads = 0
        self._lock = threading.Lock()
        self._server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        commit = grpc.unary_unary_rpc_method_handler(
            self._commit,
            request_deserializer=CommitRequest.FromString,
            response_serializer=CommitResponse.SerializeToString,
        )
        batch_get = grpc.unary_stream_rpc_method_handler(
            self._batch_get,
            request_deserializer=BatchGetRequest.FromString,
            response_serializer=BatchGetResponse.SerializeToString,
        )
        self._server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "google.firestore.v1.Firestore", {"Commit": commit, "BatchGetDocuments": batch_get}
                )
            ]
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def _batch_get(self, request, context):
        with self._lock:
            self.reads += 1
        for name in request.documents:
            fields = self.documents.get(name.split("/documents/", 1)[1])
            if fields is None:
                yield BatchGetResponse(missing=name, read_time=STORED_AT)
            else:
                found = Document(
                    name=name, fields=encode_fields(fields), create_time=STORED_AT, update_time=STORED_AT
                )
                yield BatchGetResponse(found=found, read_time=STORED_AT)

    def _commit(self, request, context):
        metadata = {
            k: v for k, v in context.invocation_metadata() if k not in ("user-agent", "grpc-accept-encoding")
        }
        with self._lock:
            self.received.append((request, metadata))
        try:
            code = self.script.get_nowait()
        except queue.Empty:
            code = None
        if code is not None:
            context.abort(code, f"scripted {code.name}")
        stamp = timestamp_pb2.Timestamp(seconds=1_900_000_000, nanos=len(self.received) * 1000)
        response = CommitResponse(commit_time=stamp)
        for _ in request.writes:
            response.write_results.add(update_time=stamp)
        return response

    def __enter__(self):
        self._server.start()
        return self

    def __exit__(self, *exc):
        self._server.stop(grace=None)


@pytest.fixture
def recorder(monkeypatch):
    with CommitRecorder() as server:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{server.port}")
        yield server


@pytest.fixture
def client(recorder):
    c = firestore.Client(project="recorded")
    yield c
    c.close()


RECORD = {
    "status": "in_progress",
    "claimedAt": datetime.datetime(2026, 12, 3, 9, 41, 5, 250000, tzinfo=UTC),
    "expireAt": datetime.datetime(2026, 12, 10, 9, 41, 5, 250000, tzinfo=UTC),
    "claimId": "0123456789abcdef0123456789abcdef",
}


def test_a_claim_reaches_firestore_as_the_library_sends_it_headers_included(recorder, client):
    ref = client.collection("chans").document("ck1-x").collection("messages").document("9")
    ref.create(RECORD, retry=None, timeout=5)
    writes = MessageWrites.of(client)
    assert writes is not None
    version = writes.create(ref.path, RECORD, timeout=5)
    (library, library_md), (ours, our_md) = recorder.received
    assert ours == library
    assert our_md == library_md
    assert {"google-cloud-resource-prefix", "x-goog-request-params", "x-goog-api-client"} <= set(our_md)
    assert version == timestamp_pb2.Timestamp(seconds=1_900_000_000, nanos=2000)


def test_done_reaches_firestore_as_the_library_sends_it(recorder, client):
    ref = client.collection("chans").document("c").collection("messages").document("3")
    version = timestamp_pb2.Timestamp(seconds=1_900_000_000, nanos=7000)
    ref.update(
        {"status": "done"}, option=client.write_option(last_update_time=version), retry=None, timeout=5
    )
    MessageWrites.of(client).set_status(ref.path, "done", version, timeout=5)
    (library, library_md), (ours, our_md) = recorder.received
    assert ours == library and our_md == library_md


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.ALREADY_EXISTS, gexc.AlreadyExists),
        (grpc.StatusCode.FAILED_PRECONDITION, gexc.FailedPrecondition),
        (grpc.StatusCode.NOT_FOUND, gexc.NotFound),
        (grpc.StatusCode.UNAVAILABLE, gexc.ServiceUnavailable),
        (grpc.StatusCode.PERMISSION_DENIED, gexc.PermissionDenied),
    ],
)
def test_a_failed_commit_raises_the_api_core_error_of_its_status(recorder, client, code, error):
    recorder.script.put(code)
    with pytest.raises(error) as raised:
        MessageWrites.of(client).create("chans/c/messages/1", RECORD, timeout=5)
    assert isinstance(raised.value.__cause__, grpc.RpcError)


def test_the_store_sends_its_message_writes_direct_and_settles_them(recorder, client, monkeypatch):
    store = FirestoreStore(client=client, collection="chans", timeout=5)
    direct = store._direct_writes()
    assert direct is not None
    sent = []
    monkeypatch.setattr(
        direct,
        "_call",
        lambda request, timeout, _call=direct._call: sent.append(1) or _call(request, timeout),
    )
    claim = store.claim_message("ck1-a/b", 5, now_ms=NOW_MS, timeout_seconds=60)
    assert claim.claimed and store.finish_message(claim)
    assert len(sent) == 2  # both through MessageWrites, not the library
    (create, _), (done, _) = recorder.received
    assert create.writes[0].update.name.endswith("/documents/chans/ck1-a%2Fb/messages/5")
    assert create.writes[0].current_document.exists is False
    assert done.writes[0].current_document.update_time == claim.version
    assert list(done.writes[0].update_mask.field_paths) == ["status"]


def _message(status: str, claim_id: str) -> dict:
    claimed = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    return {"status": status, "claimId": claim_id, "claimedAt": claimed, "expireAt": claimed}


def test_a_claim_refused_as_existing_reads_the_record_and_finds_it_done(recorder, client):
    store = FirestoreStore(client=client, collection="chans", timeout=5)
    recorder.documents["chans/c/messages/1"] = _message("done", "someone-else")
    recorder.script.put(grpc.StatusCode.ALREADY_EXISTS)
    assert store.claim_message("c", 1, now_ms=NOW_MS, timeout_seconds=60).outcome is ClaimOutcome.DONE
    assert len(recorder.received) == 1 and recorder.reads == 1


def test_a_refused_done_reads_the_record_and_settles_false_when_taken_over(recorder, client):
    store = FirestoreStore(client=client, collection="chans", timeout=5)
    claim = store.claim_message("c", 4, now_ms=NOW_MS, timeout_seconds=60)
    recorder.documents["chans/c/messages/4"] = _message("in_progress", "the-taker")
    recorder.script.put(grpc.StatusCode.FAILED_PRECONDITION)
    assert store.finish_message(claim) is False
    assert len(recorder.received) == 2 and recorder.reads == 1


def test_a_refused_done_whose_record_is_ours_settles_at_the_version_read(recorder, client):
    store = FirestoreStore(client=client, collection="chans", timeout=5)
    claim = store.claim_message("c", 6, now_ms=NOW_MS, timeout_seconds=60)
    recorder.documents["chans/c/messages/6"] = _message("in_progress", claim.claim_id)
    recorder.script.put(grpc.StatusCode.FAILED_PRECONDITION)
    assert store.finish_message(claim) is True
    (_, _), (_, _), (again, _) = recorder.received  # the claim, the refused done, the done again
    assert again.writes[0].current_document.update_time == STORED_AT


def test_unavailable_is_retried_within_the_store_timeout(recorder, client):
    store = FirestoreStore(client=client, collection="chans", timeout=5)
    recorder.script.put(grpc.StatusCode.UNAVAILABLE)
    recorder.script.put(grpc.StatusCode.UNAVAILABLE)
    claim = store.claim_message("c", 2, now_ms=NOW_MS, timeout_seconds=60)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert len(recorder.received) == 3


def test_an_outage_becomes_store_unavailable_with_no_grpc_error_leaking(recorder, client):
    store = FirestoreStore(client=client, collection="chans", timeout=0.3)
    for _ in range(100):
        recorder.script.put(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(StoreUnavailable, match="ServiceUnavailable") as raised:
        store.claim_message("c", 3, now_ms=NOW_MS, timeout_seconds=60)
    assert isinstance(raised.value.__cause__, gexc.ServiceUnavailable)
    assert 2 <= len(recorder.received) < 100


def test_a_client_without_the_parts_gets_no_direct_writer():
    class NotTheGrpcClient:
        pass

    assert MessageWrites.of(NotTheGrpcClient()) is None

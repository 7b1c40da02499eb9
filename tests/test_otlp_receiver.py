"""The loopback OTLP receiver: real exporters in, decoded spans out; JSON, gzip; fault switches."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_bot.testing import OTLPReceiver, ReceivedSpan
from otel_bot.testing.otlp import parse_json_request

TRACE_ID = "5b8efff798038103d269b633813fc60c"
ROOT_ID = "eee19b7ec3c1b174"
CHILD_ID = "eee19b7ec3c1b173"


def _emit(exporter: SpanExporter) -> list[ReadableSpan]:
    """Two real SDK spans (SERVER root with a CLIENT child) through ``exporter``."""
    provider = TracerProvider(resource=Resource.create({"service.name": "receiver-test", "deploy": "ci"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.receiver", "1.2.3")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        root.set_attributes({"s": "text", "b": True, "i": 42, "f": 1.5, "seq": ["a", "b"], "ints": [1, 2, 3]})
        root.add_event("checkpoint", {"step": "guard", "n": 2})
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    root_ctx, child_ctx = root.get_span_context(), child.get_span_context()
    assert root_ctx is not None and child_ctx is not None
    return [root, child]  # type: ignore[list-item]


def _assert_decoded(spans: list[ReceivedSpan], sdk_spans: list[ReadableSpan], transport: str) -> None:
    by_name = {s.name: s for s in spans}
    assert sorted(by_name) == ["child", "root"]
    root, child = by_name["root"], by_name["child"]
    sdk_root, sdk_child = sdk_spans
    assert root.trace_id == format(sdk_root.context.trace_id, "032x")
    assert root.span_id == format(sdk_root.context.span_id, "016x")
    assert child.span_id == format(sdk_child.context.span_id, "016x")
    assert root.parent_span_id is None
    assert child.trace_id == root.trace_id
    assert child.parent_span_id == root.span_id
    assert root.kind is SpanKind.SERVER and child.kind is SpanKind.CLIENT
    assert root.attributes == {
        "s": "text",
        "b": True,
        "i": 42,
        "f": 1.5,
        "seq": ("a", "b"),
        "ints": (1, 2, 3),
    }
    assert [type(v) for v in root.attributes.values()] == [str, bool, int, float, tuple, tuple]
    assert [(e.name, e.attributes) for e in root.events] == [("checkpoint", {"step": "guard", "n": 2})]
    assert root.event("checkpoint").time_unix_nano >= root.start_time_unix_nano
    assert root.status.code is StatusCode.UNSET and root.status.description == ""
    assert child.status.code is StatusCode.ERROR and child.status.description == "boom"
    assert root.resource["service.name"] == "receiver-test" and root.resource["deploy"] == "ci"
    assert root.scope_name == "tests.receiver" and root.scope_version == "1.2.3"
    assert 0 <= root.duration_ms < 60_000
    assert root.transport == transport


def test_grpc_export_decodes(otlp_receiver: OTLPReceiver) -> None:
    exporter = GrpcExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True, headers={"x-tenant": "t1"})
    sdk_spans = _emit(exporter)
    spans = otlp_receiver.wait_for_spans(2, timeout=10)
    _assert_decoded(spans, sdk_spans, "grpc")
    req = otlp_receiver.requests[0]
    assert req.transport == "grpc" and req.accepted and req.span_count == 1
    assert req.headers["x-tenant"] == "t1"
    assert otlp_receiver.export_requests == 2


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_http_protobuf_export_decodes(otlp_receiver: OTLPReceiver, compression: Compression) -> None:
    exporter = HttpExporter(endpoint=otlp_receiver.http_traces_url, compression=compression)
    sdk_spans = _emit(exporter)
    spans = otlp_receiver.wait_for_spans(2, timeout=10)
    _assert_decoded(spans, sdk_spans, "http")
    req = otlp_receiver.requests[0]
    assert req.content_type == "application/x-protobuf"
    assert req.content_encoding == ("gzip" if compression is Compression.Gzip else "")


def _json_body() -> dict[str, object]:
    """An OTLP/JSON request exactly as the spec writes it: hex ids, camelCase, int64 as strings."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "json-scope", "version": "0.1"},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": ROOT_ID,
                                "parentSpanId": "",
                                "name": "json-root",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "7"}},
                                    {"key": "ok", "value": {"boolValue": True}},
                                    {"key": "d", "value": {"doubleValue": 0.25}},
                                    {
                                        "key": "arr",
                                        "value": {"arrayValue": {"values": [{"stringValue": "x"}]}},
                                    },
                                    {
                                        "key": "kv",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [{"key": "k", "value": {"stringValue": "v"}}]
                                            }
                                        },
                                    },
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": "1544712660500000000",
                                        "name": "ev",
                                        "attributes": [{"key": "a", "value": {"stringValue": "b"}}],
                                    }
                                ],
                                "status": {},
                            },
                            {
                                "traceId": TRACE_ID,
                                "spanId": CHILD_ID,
                                "parentSpanId": ROOT_ID,
                                "name": "json-child",
                                "kind": "SPAN_KIND_PRODUCER",
                                "startTimeUnixNano": "1544712660100000000",
                                "endTimeUnixNano": "1544712660200000000",
                                "status": {"code": 2, "message": "failed"},
                                "links": [{"traceId": TRACE_ID, "spanId": ROOT_ID}],
                                "unknownFutureField": 1,
                            },
                        ],
                    }
                ],
            }
        ]
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def _assert_json_spans(spans: list[ReceivedSpan]) -> None:
    root, child = spans
    assert (root.name, root.trace_id, root.span_id, root.parent_span_id) == (
        "json-root",
        TRACE_ID,
        ROOT_ID,
        None,
    )
    assert (child.name, child.parent_span_id, child.trace_id) == ("json-child", ROOT_ID, TRACE_ID)
    assert root.kind is SpanKind.SERVER and child.kind is SpanKind.PRODUCER
    assert root.attributes == {"n": 7, "ok": True, "d": 0.25, "arr": ("x",), "kv": {"k": "v"}}
    assert root.events[0].name == "ev" and root.events[0].attributes == {"a": "b"}
    assert root.events[0].time_unix_nano == 1544712660500000000
    assert root.duration_ms == 1000.0
    assert child.status.code is StatusCode.ERROR and child.status.description == "failed"
    assert child.links[0].trace_id == TRACE_ID and child.links[0].span_id == ROOT_ID
    assert root.resource == {"service.name": "json-svc"}
    assert (root.scope_name, root.scope_version) == ("json-scope", "0.1")


@pytest.mark.parametrize("gzipped", [False, True])
def test_http_json_decodes(otlp_receiver: OTLPReceiver, gzipped: bool) -> None:
    body = json.dumps(_json_body()).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    status, resp_headers, resp_body = _post(otlp_receiver.http_traces_url, body, headers)
    assert status == 200
    assert resp_headers["Content-Type"] == "application/json" and json.loads(resp_body) == {}
    _assert_json_spans(otlp_receiver.wait_for_spans(2, timeout=5))
    assert otlp_receiver.requests[0].content_encoding == ("gzip" if gzipped else "")


def test_parse_json_rejects_non_hex_ids() -> None:
    body = _json_body()
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "not-hex"  # type: ignore[index]
    with pytest.raises(ValueError, match="hex"):
        parse_json_request(json.dumps(body))


def test_http_rejects_bad_requests(otlp_receiver: OTLPReceiver) -> None:
    url = otlp_receiver.http_traces_url
    assert (
        _post(otlp_receiver.http_endpoint + "/v1/metrics", b"", {"Content-Type": "application/json"})[0]
        == 404
    )
    assert _post(url, b"{}", {"Content-Type": "text/plain"})[0] == 415
    assert _post(url, b"\xff\x00garbage", {"Content-Type": "application/x-protobuf"})[0] == 400
    assert _post(url, b"not json", {"Content-Type": "application/json"})[0] == 400
    assert otlp_receiver.export_requests == 0 and otlp_receiver.spans == []


def _grpc_export(endpoint: str, timeout: float = 5) -> None:
    with grpc.insecure_channel(endpoint.removeprefix("http://")) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        stub.Export(trace_service_pb2.ExportTraceServiceRequest(), timeout=timeout)


def test_fault_errors_grpc_and_http(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.fail(grpc_code=grpc.StatusCode.UNAVAILABLE, http_status=429, retry_after=3, times=2)
    with pytest.raises(grpc.RpcError) as info:
        _grpc_export(otlp_receiver.grpc_endpoint)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    status, headers, _ = _post(
        otlp_receiver.http_traces_url, json.dumps(_json_body()).encode(), {"Content-Type": "application/json"}
    )
    assert status == 429 and headers["Retry-After"] == "3"
    # times=2 is used up: the next requests succeed.
    _grpc_export(otlp_receiver.grpc_endpoint)
    assert [r.accepted for r in otlp_receiver.requests] == [False, False, True]
    assert otlp_receiver.spans == []  # rejected requests' spans are not kept

    otlp_receiver.fail(http_status=500)
    for _ in range(2):
        assert _post(otlp_receiver.http_traces_url, b"{}", {"Content-Type": "application/json"})[0] == 500
    otlp_receiver.clear_faults()
    assert _post(otlp_receiver.http_traces_url, b"{}", {"Content-Type": "application/json"})[0] == 200
    assert otlp_receiver.export_requests == 6


def test_fault_down_and_up_keeps_ports(otlp_receiver: OTLPReceiver) -> None:
    grpc_endpoint, http_endpoint = otlp_receiver.grpc_endpoint, otlp_receiver.http_endpoint
    otlp_receiver.down()
    assert not otlp_receiver.is_up
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(otlp_receiver.http_traces_url, data=b"{}", timeout=5)
    with pytest.raises(grpc.RpcError) as info:
        _grpc_export(grpc_endpoint, timeout=2)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    otlp_receiver.up()
    assert (otlp_receiver.grpc_endpoint, otlp_receiver.http_endpoint) == (grpc_endpoint, http_endpoint)
    _grpc_export(grpc_endpoint)
    assert _post(otlp_receiver.http_traces_url, b"{}", {"Content-Type": "application/json"})[0] == 200
    assert otlp_receiver.export_requests == 2


def _export_in_thread(endpoint: str) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            _grpc_export(endpoint, 60)
            outcome.append("ok")
        except grpc.RpcError as err:
            outcome.append(err.code())

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, outcome


@pytest.mark.parametrize("release", ["set_delay(0)", "stop()"])
def test_fault_delay_holds_the_export(otlp_receiver: OTLPReceiver, release: str) -> None:
    otlp_receiver.set_delay(30)
    worker, outcome = _export_in_thread(otlp_receiver.grpc_endpoint)
    otlp_receiver.wait_for(lambda r: r.in_flight == 1, timeout=5, what="an export in flight")
    assert otlp_receiver.export_requests == 0  # not answered yet
    if release == "set_delay(0)":
        otlp_receiver.set_delay(0)  # applies to the export already waiting
        worker.join(10)
        assert outcome == ["ok"]
    else:
        otlp_receiver.stop()  # the collector dies: the waiting export ends at once
        worker.join(10)
        assert outcome in (["ok"], [grpc.StatusCode.UNAVAILABLE], [grpc.StatusCode.CANCELLED])
    assert not worker.is_alive()
    assert otlp_receiver.in_flight == 0 and otlp_receiver.export_requests == 1


def test_wait_for_spans_times_out_with_details(otlp_receiver: OTLPReceiver) -> None:
    with pytest.raises(TimeoutError, match=r"1 spans.*0 spans"):
        otlp_receiver.wait_for_spans(1, timeout=0.2)


async def test_async_context_manager_and_wait() -> None:
    async with OTLPReceiver() as receiver:
        body = json.dumps(_json_body()).encode()
        status = await asyncio.to_thread(
            _post, receiver.http_traces_url, body, {"Content-Type": "application/json"}
        )
        assert status[0] == 200
        spans = await receiver.wait_for_spans_async(2, timeout=5)
        _assert_json_spans(spans)
        assert len(await receiver.wait_for_requests_async(1, timeout=5)) == 1
        receiver.clear()
        assert receiver.spans == [] and receiver.export_requests == 0
    assert not receiver.is_up

"""A real OTLP trace receiver on loopback, for tests: gRPC and HTTP, with fault switches.

::

    with OTLPReceiver() as receiver:
        configure_tracing(endpoint=receiver.grpc_endpoint, protocol="grpc")
        ...
        spans = receiver.wait_for_spans(3, timeout=10)
        assert spans[0].name == "/queue"

* gRPC ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on ``grpc_endpoint``.
* HTTP ``POST /v1/traces`` on ``http_endpoint``: ``application/x-protobuf`` or ``application/json``
  (OTLP/JSON: lowerCamelCase keys, hex trace and span ids, enums as integers or names), optionally
  ``Content-Encoding: gzip`` or ``deflate``.
* Everything received is decoded into :class:`ReceivedSpan` objects (python values, hex ids, the
  API's :class:`~opentelemetry.trace.SpanKind` and :class:`~opentelemetry.trace.StatusCode`).
* Fault switches: :meth:`OTLPReceiver.down` / :meth:`OTLPReceiver.up` (servers stopped and restarted
  on the same ports), :meth:`OTLPReceiver.set_delay` (slow exports), :meth:`OTLPReceiver.fail`
  (gRPC status codes, HTTP 500 / 429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

try:
    import grpc
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
except ImportError as exc:  # pragma: no cover - test extra
    raise ImportError(
        "otel_bot.testing.otlp needs grpcio and opentelemetry-proto: pip install 'otel-bot[test]'"
    ) from exc

from opentelemetry.trace import SpanKind, StatusCode

__all__ = [
    "OTLPReceiver",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedRequest",
    "ReceivedSpan",
    "ReceivedStatus",
    "decode_request",
    "parse_json_request",
]

_KINDS = {
    0: SpanKind.INTERNAL,  # SPAN_KIND_UNSPECIFIED: the spec says treat it as INTERNAL
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}


# --------------------------------------------------------------------------------------------------
# Decoded shapes


@dataclass(frozen=True)
class ReceivedStatus:
    """A span's status: the API's StatusCode and the description ('' when none)."""

    code: StatusCode
    description: str = ""


@dataclass(frozen=True)
class ReceivedEvent:
    """A span event."""

    name: str
    attributes: dict[str, Any]
    time_unix_nano: int = 0


@dataclass(frozen=True)
class ReceivedLink:
    """A span link (hex ids)."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector saw it. Ids are lowercase hex; ``parent_span_id`` is None for
    a root. Attribute values are python values (arrays as tuples, kvlists as dicts)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: SpanKind
    attributes: dict[str, Any]
    events: tuple[ReceivedEvent, ...]
    status: ReceivedStatus
    resource: dict[str, Any]
    scope_name: str
    scope_version: str = ""
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    links: tuple[ReceivedLink, ...] = ()
    trace_state: str = ""
    transport: str = ""

    @property
    def duration_ms(self) -> float:
        """End minus start, in milliseconds."""
        return (self.end_time_unix_nano - self.start_time_unix_nano) / 1e6

    def event(self, name: str) -> ReceivedEvent:
        """The one event called ``name`` (AssertionError when there is not exactly one)."""
        found = [e for e in self.events if e.name == name]
        if len(found) != 1:
            raise AssertionError(f"span {self.name!r}: expected one event {name!r}, got {len(found)}")
        return found[0]


@dataclass(frozen=True)
class ReceivedRequest:
    """One export request, accepted or answered with an injected error."""

    transport: str  # "grpc" or "http"
    span_count: int
    accepted: bool
    content_type: str = ""
    content_encoding: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lowercase names


# --------------------------------------------------------------------------------------------------
# Decoding


def _any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_any_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)


def _attributes(kvs: Sequence[KeyValue]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def decode_request(
    request: trace_service_pb2.ExportTraceServiceRequest, transport: str = ""
) -> list[ReceivedSpan]:
    """Flatten an ExportTraceServiceRequest into :class:`ReceivedSpan` objects, in order."""
    out: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                out.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
                        attributes=_attributes(span.attributes),
                        events=tuple(
                            ReceivedEvent(e.name, _attributes(e.attributes), e.time_unix_nano)
                            for e in span.events
                        ),
                        status=ReceivedStatus(
                            _STATUS.get(span.status.code, StatusCode.UNSET), span.status.message
                        ),
                        resource=resource,
                        scope_name=scope.name,
                        scope_version=scope.version,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        links=tuple(
                            ReceivedLink(
                                link.trace_id.hex(), link.span_id.hex(), _attributes(link.attributes)
                            )
                            for link in span.links
                        ),
                        trace_state=span.trace_state,
                        transport=transport,
                    )
                )
    return out


def _hex_to_b64(value: Any) -> Any:
    if isinstance(value, str) and value:
        try:
            return base64.b64encode(bytes.fromhex(value)).decode("ascii")
        except ValueError:
            raise ValueError(f"OTLP/JSON ids must be hex strings, got {value!r}") from None
    return value


def parse_json_request(body: bytes | str) -> trace_service_pb2.ExportTraceServiceRequest:
    """Parse an OTLP/JSON ExportTraceServiceRequest (hex ids, as the OTLP spec requires)."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("OTLP/JSON body must be a JSON object")
    for resource_spans in data.get("resourceSpans", data.get("resource_spans", [])) or []:
        for scope_spans in resource_spans.get("scopeSpans", resource_spans.get("scope_spans", [])) or []:
            for span in scope_spans.get("spans", []) or []:
                for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
                    if key in span:
                        span[key] = _hex_to_b64(span[key])
                for link in span.get("links", []) or []:
                    for key in ("traceId", "trace_id", "spanId", "span_id"):
                        if key in link:
                            link[key] = _hex_to_b64(link[key])
    request = trace_service_pb2.ExportTraceServiceRequest()
    json_format.ParseDict(data, request, ignore_unknown_fields=True)
    return request


# --------------------------------------------------------------------------------------------------
# The receiver


@dataclass
class _Fault:
    grpc_code: grpc.StatusCode | None
    http_status: int | None
    retry_after: float | None
    remaining: int | None  # None: until cleared


class OTLPReceiver:
    """A loopback OTLP/gRPC + OTLP/HTTP trace receiver. Thread-safe; use as a (async) context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._cond = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._requests: list[ReceivedRequest] = []
        self._in_flight = 0
        self._delay = 0.0
        self._fault: _Fault | None = None
        self._delay_cond = threading.Condition()  # notified on set_delay and stop
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc_port = 0
        self._http_port = 0
        self._running = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> OTLPReceiver:
        """Start both servers (ephemeral ports the first time, the same ports after :meth:`down`)."""
        if self._running:
            return self
        self._start_grpc()
        self._start_http()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop both servers; what was received stays readable."""
        if not self._running:
            return
        with self._delay_cond:
            self._running = False
            self._delay_cond.notify_all()  # a delayed export returns at once
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=0).wait(5)
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None

    def down(self) -> None:
        """Fault switch: the collector dies (connections refused) until :meth:`up`."""
        self.stop()

    def up(self) -> None:
        """The collector comes back, on the same ports."""
        self.start()

    @property
    def is_up(self) -> bool:
        return self._running

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> OTLPReceiver:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _start_grpc(self) -> None:
        server = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-receiver-grpc"))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self), server)
        address = f"{self.host}:{self._grpc_port}"
        deadline = time.monotonic() + 5
        while True:
            try:
                port = server.add_insecure_port(address)
            except RuntimeError:
                port = 0
            if port or not self._grpc_port or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # the old server is still releasing the port
        if not port:
            raise OSError(f"OTLPReceiver: cannot bind gRPC on {address}")
        self._grpc_port = port
        server.start()
        self._grpc_server = server

    def _start_http(self) -> None:
        receiver = self

        class Handler(_HTTPHandler):
            owner = receiver

        deadline = time.monotonic() + 5
        while True:
            try:
                server = ThreadingHTTPServer((self.host, self._http_port), Handler)
                break
            except OSError:
                if not self._http_port or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server.daemon_threads = True
        self._http_port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.name = "otlp-receiver-http"
        thread.start()
        self._http_server, self._http_thread = server, thread

    # -- addresses -------------------------------------------------------------------------------

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` for OTEL_EXPORTER_OTLP_ENDPOINT with protocol grpc."""
        return f"http://{self.host}:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (base URL; OTLP/HTTP posts to ``/v1/traces`` under it)."""
        return f"http://{self.host}:{self._http_port}"

    @property
    def http_traces_url(self) -> str:
        """The full OTLP/HTTP traces URL."""
        return self.http_endpoint + "/v1/traces"

    # -- fault switches --------------------------------------------------------------------------

    def set_delay(self, seconds: float) -> None:
        """Every export waits ``seconds`` before it is answered (0 to turn off). Changing it also
        applies to exports already waiting."""
        with self._delay_cond:
            self._delay = max(0.0, float(seconds))
            self._delay_cond.notify_all()

    def fail(
        self,
        *,
        grpc_code: grpc.StatusCode | None = grpc.StatusCode.UNAVAILABLE,
        http_status: int | None = 500,
        retry_after: float | None = None,
        times: int | None = None,
    ) -> None:
        """Answer exports with errors: gRPC ``grpc_code``, HTTP ``http_status`` (with a
        ``Retry-After`` header when ``retry_after`` is given, e.g. for 429). ``times``: only the next
        so many requests (None: until :meth:`clear_faults`)."""
        with self._cond:
            self._fault = _Fault(grpc_code, http_status, retry_after, times)

    def clear_faults(self) -> None:
        """No more delays or injected errors."""
        with self._cond:
            self._fault = None
        self.set_delay(0)

    def _take_fault(self) -> _Fault | None:
        with self._cond:
            fault = self._fault
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
            return fault

    # -- what was received -----------------------------------------------------------------------

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far (accepted requests only), in arrival order."""
        with self._cond:
            return list(self._spans)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every export request received, including those answered with an injected error."""
        with self._cond:
            return list(self._requests)

    @property
    def export_requests(self) -> int:
        """How many export requests arrived (accepted or not)."""
        with self._cond:
            return len(self._requests)

    @property
    def in_flight(self) -> int:
        """Exports being handled right now (e.g. waiting out :meth:`set_delay`)."""
        with self._cond:
            return self._in_flight

    def clear(self) -> None:
        """Forget received spans and requests."""
        with self._cond:
            self._spans.clear()
            self._requests.clear()

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]

    def wait_for(
        self, predicate: Callable[[OTLPReceiver], bool], timeout: float = 10.0, what: str = ""
    ) -> None:
        """Block until ``predicate(self)`` holds (re-checked on every request); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    names = sorted({s.name for s in self._spans})
                    raise TimeoutError(
                        f"OTLPReceiver: timed out after {timeout}s waiting for {what or predicate!r}; "
                        f"{len(self._spans)} spans ({names[:20]}), {len(self._requests)} requests received"
                    )
                self._cond.wait(min(left, 0.5))

    def wait_for_spans(self, n: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Block until at least ``n`` spans arrived; returns them all. TimeoutError otherwise."""
        self.wait_for(lambda r: len(r._spans) >= n, timeout, f"{n} spans")
        return self.spans

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Block until at least ``n`` export requests arrived (accepted or not)."""
        self.wait_for(lambda r: len(r._requests) >= n, timeout, f"{n} export requests")
        return self.requests

    async def wait_for_spans_async(self, n: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """:meth:`wait_for_spans` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for_spans, n, timeout)

    async def wait_for_requests_async(self, n: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """:meth:`wait_for_requests` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for_requests, n, timeout)

    # -- shared request handling ---------------------------------------------------------------

    def _begin(self) -> None:
        with self._cond:
            self._in_flight += 1
            self._cond.notify_all()
        start = time.monotonic()
        with self._delay_cond:
            while self._running:
                left = start + self._delay - time.monotonic()
                if left <= 0:
                    break
                self._delay_cond.wait(left)

    def _record(self, req: ReceivedRequest, spans: list[ReceivedSpan]) -> None:
        with self._cond:
            self._in_flight -= 1
            self._requests.append(req)
            if req.accepted:
                self._spans.extend(spans)
            self._cond.notify_all()


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, owner: OTLPReceiver) -> None:
        self.owner = owner

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        owner = self.owner
        owner._begin()
        spans = decode_request(request, "grpc")
        headers = {
            k.lower(): v if isinstance(v, str) else v.decode() for k, v in context.invocation_metadata()
        }
        fault = owner._take_fault()
        code = fault.grpc_code if fault is not None else None
        owner._record(
            ReceivedRequest(
                "grpc",
                len(spans),
                code is None,
                "application/grpc",
                headers.get("grpc-encoding", ""),
                headers,
            ),
            spans,
        )
        if code is not None:
            context.abort(code, "injected by OTLPReceiver.fail()")
        return trace_service_pb2.ExportTraceServiceResponse()


class _HTTPHandler(BaseHTTPRequestHandler):
    owner: OTLPReceiver
    server_version = "OTLPReceiver"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(
        self, status: int, body: bytes, content_type: str, extra: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/v1/traces":
            self._reply(404, b"not found", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        try:
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            elif encoding == "deflate":
                raw = zlib.decompress(raw)
            elif encoding not in ("", "identity"):
                self._reply(415, b"unsupported Content-Encoding", "text/plain")
                return
            if content_type == "application/json":
                request = parse_json_request(raw)
            elif content_type == "application/x-protobuf":
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(raw)
            else:
                self._reply(415, b"unsupported Content-Type", "text/plain")
                return
        except Exception as exc:  # malformed payload: 400, as a collector answers
            self._reply(400, f"bad request: {exc}".encode(), "text/plain")
            return
        owner = self.owner
        owner._begin()
        spans = decode_request(request, "http")
        fault = owner._take_fault()
        status = fault.http_status if fault is not None else None
        owner._record(
            ReceivedRequest(
                "http",
                len(spans),
                status is None,
                content_type,
                encoding,
                {k.lower(): v for k, v in self.headers.items()},
            ),
            spans,
        )
        if status is not None:
            assert fault is not None
            extra = {} if fault.retry_after is None else {"Retry-After": str(int(fault.retry_after))}
            self._reply(status, b"injected by OTLPReceiver.fail()", "text/plain", extra)
            return
        if content_type == "application/json":
            self._reply(200, b"{}", "application/json")
        else:
            body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self._reply(200, body, "application/x-protobuf")

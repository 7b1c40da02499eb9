"""``configure_tracing()``: an SDK TracerProvider, resource, sampler and exporters from OTEL_* env.

Optional: ``instrument_bot`` never calls it and works with any provider. What it builds::

    TracerProvider(resource, sampler)
      └─ one pipeline processor (swappable, so a second call never stacks)
           ├─ _CountingBatchSpanProcessor(OTLP gRPC / OTLP HTTP / console exporter)   one per exporter
           └─ WaterfallProcessor (``console=True``)

Export always runs on the batch processor's worker thread, never on the event loop. Spans dropped
because the queue is full and spans whose export failed are counted (:func:`export_stats`) and
reported in a rate-limited warning. Pending spans are flushed, within a bounded time, on
:func:`flush` (called from the instrumented ``Client.close``), at interpreter exit and on SIGTERM.

Spans in a batch the collector rejected or never answered are counted as failed and not retried
again later (the OTLP exporter already retried within ``export_timeout_millis``); spans still in
the queue when the collector returns are exported.

If your code later installs its own SIGTERM handler (``loop.add_signal_handler``), that handler
replaces ours: close the bot from it (the instrumented ``Client.close`` flushes).

**A second call reconfigures in place**: it returns the *same* provider object, replaces its
resource and sampler (also for tracers handed out before), and replaces the whole export pipeline;
the previous exporters are flushed and shut down within ``shutdown_timeout_s``. The OpenTelemetry
API refuses to replace a global provider once set, so keeping one provider is the only way a
second call can take effect for code that already holds a tracer.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as _sampling
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

logger = logging.getLogger("otel_bot")

# --------------------------------------------------------------------------------------------------
# Defaults

#: Spans held in memory while waiting for export, per exporter. A burst of 1,000 simultaneous
#: interactions with ~10 spans each is 10,000 spans; 16,384 holds that with 60 % headroom even when
#: the collector is down or slow for the whole burst. A finished span is ~1-3 KB, so the worst case
#: is a few tens of MB, and memory never grows beyond it (the SDK default of 2,048 would drop most
#: of such a burst).
DEFAULT_MAX_QUEUE_SIZE = 16_384
#: Spans per export request (the SDK default): well under the collector's default 4 MiB gRPC
#: message limit for ordinary spans, while a 10,000-span burst still ships in 20 requests.
DEFAULT_MAX_EXPORT_BATCH_SIZE = 512
#: How long a non-full queue waits before exporting. Shorter than the SDK's 5 s so traces appear
#: quickly and the queue stays short between bursts; a full batch is exported at once anyway.
DEFAULT_SCHEDULE_DELAY_MILLIS = 1_000
#: Time allowed for one export, retries included; it is passed to the OTLP exporter as its timeout
#: (unless OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT is set), so a dead collector costs at most this per
#: batch, on the worker thread.
DEFAULT_EXPORT_TIMEOUT_MILLIS = 10_000
#: Upper bound for flushing at exit, on SIGTERM and for a reconfiguring second call.
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0
#: At most one "spans dropped" warning per this many seconds (the rest is summed into the next).
WARN_INTERVAL_S = 10.0

PROTOCOLS = ("grpc", "http/protobuf")
EXPORTERS = ("otlp", "console", "none")
_EXPORTER_ALIASES = {"otlp_proto_grpc": ("otlp", "grpc"), "otlp_proto_http": ("otlp", "http/protobuf")}
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
_COMPRESSIONS = ("none", "gzip", "deflate")


# --------------------------------------------------------------------------------------------------
# Counting and reporting dropped spans


@dataclass(frozen=True)
class ExportStats:
    """What the export pipeline did since the process started (summed over exporters).

    ``exported``: spans the exporters accepted; ``dropped_queue_full``: spans discarded because the
    queue was full (the collector is down or too slow for the load); ``failed_export``: spans in
    batches the exporter gave up on; ``queue_size``: spans waiting now; ``max_queue_size``: the
    bound on ``queue_size`` (memory never holds more spans than that per exporter).
    """

    exported: int = 0
    dropped_queue_full: int = 0
    failed_export: int = 0
    queue_size: int = 0
    max_queue_size: int = 0

    @property
    def dropped(self) -> int:
        """Every span that will never reach the collector."""
        return self.dropped_queue_full + self.failed_export


class _DropReporter:
    """Sums drops and logs one warning per :data:`WARN_INTERVAL_S` (never one per span)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending_queue_full = 0
        self._pending_failed = 0
        self._last_warning = -float("inf")

    def note(self, queue_full: int = 0, failed: int = 0) -> None:
        now = time.monotonic()
        with self._lock:
            self._pending_queue_full += queue_full
            self._pending_failed += failed
            if now - self._last_warning < WARN_INTERVAL_S:
                return
            self._last_warning = now
            queued, failed_n = self._take()
        self._warn(queued, failed_n)

    def report_pending(self) -> None:
        """Log what was summed since the last warning (at flush and shutdown)."""
        with self._lock:
            queued, failed_n = self._take()
            if queued or failed_n:
                self._last_warning = time.monotonic()
        if queued or failed_n:
            self._warn(queued, failed_n)

    def reset(self) -> None:
        with self._lock:
            self._take()
            self._last_warning = -float("inf")

    def _take(self) -> tuple[int, int]:
        out = (self._pending_queue_full, self._pending_failed)
        self._pending_queue_full = self._pending_failed = 0
        return out

    @staticmethod
    def _warn(queue_full: int, failed: int) -> None:
        logger.warning(
            "otel_bot: %d span(s) dropped (%d because the export queue was full, %d because their "
            "export failed); totals in otel_bot.export_stats()",
            queue_full + failed,
            queue_full,
            failed,
        )


_REPORTER = _DropReporter()


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exported = 0
        self.dropped_queue_full = 0
        self.failed_export = 0


class _CountingExporter(SpanExporter):
    """Wraps the real exporter: counts exported and failed spans; an exception is a failure."""

    def __init__(self, inner: SpanExporter, counters: _Counters) -> None:
        self.inner = inner
        self._counters = counters

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            logger.debug("otel_bot: exporter %r raised", self.inner, exc_info=True)
            result = SpanExportResult.FAILURE
        n = len(spans)
        with self._counters.lock:
            if result is SpanExportResult.SUCCESS:
                self._counters.exported += n
            else:
                self._counters.failed_export += n
        if result is not SpanExportResult.SUCCESS:
            _REPORTER.note(failed=n)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _CountingBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's BatchSpanProcessor (export on its worker thread), plus drop accounting.

    When the queue is full the *new* span is dropped (counted, reported in a rate-limited warning)
    instead of the SDK's evict-oldest with a log record per span; memory stays bounded by
    ``max_queue_size`` either way.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int,
        schedule_delay_millis: float,
        max_export_batch_size: int,
        export_timeout_millis: float,
    ) -> None:
        self.counters = _Counters()
        self.max_queue_size = max_queue_size
        self.max_export_batch_size = max_export_batch_size
        self.schedule_delay_millis = schedule_delay_millis
        self.export_timeout_millis = export_timeout_millis
        self.exporter = exporter
        super().__init__(
            _CountingExporter(exporter, self.counters),
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout_millis,
        )
        # SDK >= 1.34 keeps the deque in a BatchProcessor; older versions on the processor itself.
        inner = getattr(self, "_batch_processor", self)
        queue = getattr(inner, "_queue", None)
        if queue is None:
            queue = getattr(inner, "queue", None)
        self._queue: Any = queue
        self._emit_lock = threading.Lock()

    def queue_size(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        if self._queue is None:
            super().on_end(span)
            return
        with self._emit_lock:  # check-then-append is atomic, so no span is evicted uncounted
            full = len(self._queue) >= self.max_queue_size
            if not full:
                super().on_end(span)
        if full:
            with self.counters.lock:
                self.counters.dropped_queue_full += 1
            _REPORTER.note(queue_full=1)

    def stats(self) -> ExportStats:
        with self.counters.lock:
            return ExportStats(
                exported=self.counters.exported,
                dropped_queue_full=self.counters.dropped_queue_full,
                failed_export=self.counters.failed_export,
                queue_size=self.queue_size(),
                max_queue_size=self.max_queue_size,
            )


class _Pipeline(SpanProcessor):
    """The one processor configure_tracing adds; its children are swapped, never stacked."""

    def __init__(self) -> None:
        self.processors: tuple[SpanProcessor, ...] = ()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for proc in self.processors:
            proc.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        for proc in self.processors:
            on_ending = getattr(proc, "_on_ending", None)
            if on_ending is not None:
                on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        for proc in self.processors:
            proc.on_end(span)

    def shutdown(self) -> None:
        for proc in self.processors:
            proc.shutdown()
        _REPORTER.report_pending()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        ok = True
        for proc in self.processors:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            ok = bool(proc.force_flush(left)) and ok
        _REPORTER.report_pending()
        return ok


class _Provider(TracerProvider):
    """The SDK TracerProvider, remembering its tracers so a second call can update them."""

    def __init__(self, *, sampler: _sampling.Sampler, resource: Resource) -> None:
        super().__init__(sampler=sampler, resource=resource, shutdown_on_exit=False)
        self.pipeline = _Pipeline()
        self.add_span_processor(self.pipeline)
        self._handed_out: weakref.WeakSet[Any] = weakref.WeakSet()
        # Replaced processors keep counting while they flush; their totals stay in export_stats().
        self._retired: list[_CountingBatchSpanProcessor] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        tracer = super().get_tracer(*args, **kwargs)
        try:
            self._handed_out.add(tracer)
        except TypeError:  # pragma: no cover - a tracer that cannot be weakly referenced
            pass
        return tracer

    def reconfigure(self, *, sampler: _sampling.Sampler, resource: Resource) -> None:
        self.sampler = sampler
        self._resource = resource
        for tracer in list(self._handed_out):
            if hasattr(tracer, "sampler"):
                tracer.sampler = sampler
            if hasattr(tracer, "resource"):
                tracer.resource = resource

    def stats(self) -> ExportStats:
        total = ExportStats()
        for old in self._retired:
            total = _add(total, old.stats())
        queue = cap = 0
        for proc in self.pipeline.processors:
            if isinstance(proc, _CountingBatchSpanProcessor):
                s = proc.stats()
                total = _add(total, s)
                queue += s.queue_size
                cap += s.max_queue_size
        return ExportStats(
            exported=total.exported,
            dropped_queue_full=total.dropped_queue_full,
            failed_export=total.failed_export,
            queue_size=queue,
            max_queue_size=cap,
        )

    def retire(self, procs: Sequence[SpanProcessor]) -> None:
        self._retired.extend(p for p in procs if isinstance(p, _CountingBatchSpanProcessor))


def _add(a: ExportStats, b: ExportStats) -> ExportStats:
    return ExportStats(
        exported=a.exported + b.exported,
        dropped_queue_full=a.dropped_queue_full + b.dropped_queue_full,
        failed_export=a.failed_export + b.failed_export,
    )


_provider: _Provider | None = None
_config_lock = threading.RLock()
_shutdown_timeout_s = DEFAULT_SHUTDOWN_TIMEOUT_S


# --------------------------------------------------------------------------------------------------
# Environment parsing


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _parse_kv_list(value: str, variable: str) -> dict[str, str]:
    """``key=value,key2=value2`` with percent-encoded values (W3C baggage style)."""
    out: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        key = urllib.parse.unquote(key.strip())
        if not sep or not key:
            raise ValueError(
                f"{variable}: expected comma-separated key=value pairs, got {item!r} in {value!r}"
            )
        out[key] = urllib.parse.unquote(val.strip())
    return out


def _int_setting(kwarg: int | float | None, variable: str, default: int, *, minimum: int) -> int:
    if kwarg is not None:
        source, raw = variable.lower().removeprefix("otel_bsp_"), str(kwarg)
        value: Any = kwarg
    else:
        raw_env = _env(variable)
        if raw_env is None:
            return default
        source, raw = variable, raw_env
        try:
            value = int(raw_env)
        except ValueError:
            raise ValueError(f"{variable}: expected an integer >= {minimum}, got {raw_env!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"{source}: expected an integer >= {minimum}, got {raw!r}")
    return int(value)


def _choice(value: str, variable: str, allowed: Sequence[str]) -> str:
    norm = value.strip().lower()
    if norm not in allowed:
        raise ValueError(f"{variable}: {value!r} is not one of {', '.join(allowed)}")
    return norm


def _resolve_protocol(protocol: str | None) -> str:
    if protocol is not None:
        return _choice(protocol, "protocol", PROTOCOLS)
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        raw = _env(var)
        if raw is not None:
            return _choice(raw, var, PROTOCOLS)
    return "grpc"


def _check_url(url: str, variable: str, *, need_scheme: bool) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return url
    if not need_scheme and "://" not in url and url.strip():
        return url  # gRPC "host:port"
    raise ValueError(f"{variable}: expected an http:// or https:// URL, got {url!r}")


def _resolve_endpoint(endpoint: str | None, protocol: str) -> str:
    grpc = protocol == "grpc"
    if endpoint is not None:
        url = _check_url(endpoint, "endpoint", need_scheme=not grpc)
        if not grpc and urllib.parse.urlsplit(url).path in ("", "/"):
            url = url.rstrip("/") + "/v1/traces"
        return url
    raw = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if raw is not None:
        return _check_url(raw, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", need_scheme=not grpc)
    raw = _env("OTEL_EXPORTER_OTLP_ENDPOINT")
    if raw is not None:
        url = _check_url(raw, "OTEL_EXPORTER_OTLP_ENDPOINT", need_scheme=not grpc)
        return url if grpc else url.rstrip("/") + "/v1/traces"
    return "http://localhost:4317" if grpc else "http://localhost:4318/v1/traces"


def _resolve_headers(headers: Mapping[str, str] | str | None) -> dict[str, str]:
    if headers is not None:
        if isinstance(headers, str):
            return _parse_kv_list(headers, "headers")
        return {str(k): str(v) for k, v in headers.items()}
    for var in ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        raw = _env(var)
        if raw is not None:
            return _parse_kv_list(raw, var)
    return {}


def _resolve_compression(compression: str | None) -> str | None:
    if compression is not None:
        return _choice(compression, "compression", _COMPRESSIONS)
    for var in ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        raw = _env(var)
        if raw is not None:
            return _choice(raw, var, _COMPRESSIONS)
    return None


def _resolve_sampler(
    sampler: str | _sampling.Sampler | None, sampler_arg: float | str | None
) -> _sampling.Sampler:
    if isinstance(sampler, _sampling.Sampler):
        return sampler
    if sampler is not None:
        name, name_var = _choice(sampler, "sampler", SAMPLERS), "sampler"
    else:
        raw = _env("OTEL_TRACES_SAMPLER")
        name, name_var = (
            (_choice(raw, "OTEL_TRACES_SAMPLER", SAMPLERS), "OTEL_TRACES_SAMPLER")
            if raw is not None
            else ("parentbased_always_on", "OTEL_TRACES_SAMPLER")
        )
    if name == "always_on":
        return _sampling.ALWAYS_ON
    if name == "always_off":
        return _sampling.ALWAYS_OFF
    if name == "parentbased_always_on":
        return _sampling.ParentBased(_sampling.ALWAYS_ON)
    if name == "parentbased_always_off":
        return _sampling.ParentBased(_sampling.ALWAYS_OFF)
    # a ratio sampler
    if sampler_arg is not None:
        arg_var, raw_arg = "sampler_arg", str(sampler_arg)
    else:
        arg_var, raw_arg = "OTEL_TRACES_SAMPLER_ARG", _env("OTEL_TRACES_SAMPLER_ARG") or "1.0"
    try:
        ratio = float(raw_arg)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(
            f"{arg_var}: the {name} sampler ({name_var}) needs a ratio between 0 and 1, got {raw_arg!r}"
        )
    if name == "traceidratio":
        return _sampling.TraceIdRatioBased(ratio)
    return _sampling.ParentBased(_sampling.TraceIdRatioBased(ratio))


def _resolve_resource(service_name: str | None, resource_attributes: Mapping[str, Any] | None) -> Resource:
    attrs: dict[str, Any] = {}
    raw = _env("OTEL_RESOURCE_ATTRIBUTES")
    if raw is not None:
        attrs.update(_parse_kv_list(raw, "OTEL_RESOURCE_ATTRIBUTES"))
    env_service = _env("OTEL_SERVICE_NAME")
    if env_service is not None:
        attrs["service.name"] = env_service
    if resource_attributes:
        attrs.update(resource_attributes)
    if service_name is not None:
        if not isinstance(service_name, str) or not service_name.strip():
            raise ValueError(f"service_name: expected a non-empty string, got {service_name!r}")
        attrs["service.name"] = service_name
    return Resource.create(attrs)


def _resolve_exporter_names(
    exporter: str | SpanExporter | Sequence[str | SpanExporter] | None,
) -> tuple[str, list[str | SpanExporter]]:
    if exporter is None:
        variable = "OTEL_TRACES_EXPORTER"
        raw = _env(variable) or "otlp"
        items: list[str | SpanExporter] = [p.strip() for p in raw.split(",") if p.strip()]
    else:
        variable = "exporter"
        if isinstance(exporter, (str, SpanExporter)):
            exporter = [exporter]
        items = []
        for item in exporter:
            if isinstance(item, str):
                items.extend(p.strip() for p in item.split(",") if p.strip())
            else:
                items.append(item)
    return variable, items


def _build_exporters(
    exporter: str | SpanExporter | Sequence[str | SpanExporter] | None,
    *,
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | str | None,
    compression: str | None,
    timeout_s: float | None,
) -> list[SpanExporter]:
    variable, items = _resolve_exporter_names(exporter)
    names = [i.lower() for i in items if isinstance(i, str)]
    allowed = (*EXPORTERS, *_EXPORTER_ALIASES)
    for name in names:
        if name not in allowed:
            raise ValueError(f"{variable}: {name!r} is not one of {', '.join(EXPORTERS)}")
    if "none" in names and len(items) > 1:
        raise ValueError(f"{variable}: 'none' cannot be combined with other exporters, got {items!r}")
    out: list[SpanExporter] = []
    for item in items:
        if isinstance(item, SpanExporter):
            out.append(item)
            continue
        name = item.lower()
        if name == "none":
            continue
        if name == "console":
            out.append(ConsoleSpanExporter())
            continue
        proto = _resolve_protocol(_EXPORTER_ALIASES[name][1] if name in _EXPORTER_ALIASES else protocol)
        out.append(
            _otlp_exporter(
                proto,
                _resolve_endpoint(endpoint, proto),
                _resolve_headers(headers),
                _resolve_compression(compression),
                timeout_s,
            )
        )
    return out


def _otlp_exporter(
    protocol: str, endpoint: str, headers: dict[str, str], compression: str | None, timeout_s: float | None
) -> SpanExporter:
    if protocol == "grpc":
        try:
            import grpc
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError as exc:  # pragma: no cover - dependency of otel-bot
            raise ImportError(
                "the OTLP gRPC exporter is missing: pip install opentelemetry-exporter-otlp-proto-grpc"
            ) from exc
        grpc_compression = {
            None: None,
            "none": grpc.Compression.NoCompression,
            "gzip": grpc.Compression.Gzip,
            "deflate": grpc.Compression.Deflate,
        }[compression]
        return GrpcExporter(
            endpoint=endpoint,
            headers=headers or None,
            timeout=timeout_s,
            compression=grpc_compression,
        )
    try:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    except ImportError as exc:  # pragma: no cover - dependency of otel-bot
        raise ImportError(
            "the OTLP HTTP exporter is missing: pip install opentelemetry-exporter-otlp-proto-http"
        ) from exc
    http_compression = {
        None: None,
        "none": Compression.NoCompression,
        "gzip": Compression.Gzip,
        "deflate": Compression.Deflate,
    }[compression]
    return HttpExporter(
        endpoint=endpoint, headers=headers or None, timeout=timeout_s, compression=http_compression
    )


def _waterfall_processor() -> SpanProcessor | None:
    try:
        from ._summary import WaterfallProcessor
    except ImportError:
        logger.warning(
            "otel_bot: console=True needs otel_bot._summary.WaterfallProcessor, which is unavailable"
        )
        return None
    proc: SpanProcessor = WaterfallProcessor()
    return proc


# --------------------------------------------------------------------------------------------------
# The public entry point


def configure_tracing(
    service_name: str | None = None,
    *,
    resource_attributes: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    compression: str | None = None,
    exporter: str | SpanExporter | Sequence[str | SpanExporter] | None = None,
    sampler: str | _sampling.Sampler | None = None,
    sampler_arg: float | str | None = None,
    ratio: float | None = None,
    console: bool = False,
    max_queue_size: int | None = None,
    max_export_batch_size: int | None = None,
    schedule_delay_millis: float | None = None,
    export_timeout_millis: float | None = None,
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    set_global: bool = True,
    handle_sigterm: bool = True,
) -> TracerProvider:
    """Build (first call) or reconfigure (later calls) otel_bot's SDK TracerProvider and return it.

    Every argument left ``None`` comes from the standard environment variable, then the default:

    ============================  =========================================  ======================
    argument                      environment variable                       default
    ============================  =========================================  ======================
    ``service_name``              ``OTEL_SERVICE_NAME``                      ``unknown_service``
    ``resource_attributes``       ``OTEL_RESOURCE_ATTRIBUTES`` (merged)      SDK attributes
    ``exporter``                  ``OTEL_TRACES_EXPORTER`` (otlp, console,   ``otlp``
                                  none; comma list)
    ``protocol``                  ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``   ``grpc``
                                  (grpc, http/protobuf)
    ``endpoint``                  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``     localhost:4317 (gRPC),
                                  (as is) / ``OTEL_EXPORTER_OTLP_ENDPOINT``  :4318/v1/traces (HTTP)
                                  (+ ``/v1/traces`` for HTTP)
    ``headers``                   ``OTEL_EXPORTER_OTLP_[TRACES_]HEADERS``    none
    ``compression``               ``OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION``none
    ``sampler``                   ``OTEL_TRACES_SAMPLER``                    parentbased_always_on
    ``sampler_arg`` / ``ratio``   ``OTEL_TRACES_SAMPLER_ARG``                1.0
    ``max_queue_size``            ``OTEL_BSP_MAX_QUEUE_SIZE``                16384
    ``max_export_batch_size``     ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``         512
    ``schedule_delay_millis``     ``OTEL_BSP_SCHEDULE_DELAY``                1000
    ``export_timeout_millis``     ``OTEL_BSP_EXPORT_TIMEOUT``                10000
    ============================  =========================================  ======================

    An ``endpoint`` argument for HTTP without a path gets ``/v1/traces`` appended. ``exporter`` may
    also be a :class:`SpanExporter` instance (or a list mixing names and instances). Each exporter
    gets its own batch processor (export on its worker thread, never on the event loop), whose
    queue holds ``max_queue_size`` spans; see :data:`DEFAULT_MAX_QUEUE_SIZE` for why 16,384.
    ``console=True`` adds the per-trace console waterfall. A bad value raises :class:`ValueError`
    naming the argument or variable and the allowed values.

    ``set_global`` installs the provider as the global one (refused, with a warning, when another
    provider is already global; pass the returned provider to ``instrument_bot`` then).
    ``handle_sigterm`` installs a SIGTERM handler (main thread only) that flushes for at most
    ``shutdown_timeout_s`` and then does what the previous handler would have done. Pending spans
    are also flushed at interpreter exit; ``provider.shutdown()`` flushes as well.

    Calling it again does not stack processors: the same provider is reconfigured in place (new
    resource, sampler and exporters; the old exporters are flushed and shut down).
    """
    global _provider, _shutdown_timeout_s
    if ratio is not None:
        if sampler_arg is not None:
            raise ValueError("ratio and sampler_arg are the same setting; pass only one")
        sampler_arg = ratio
        if sampler is None:
            sampler = "parentbased_traceidratio"
    if shutdown_timeout_s is None or shutdown_timeout_s < 0:
        raise ValueError(f"shutdown_timeout_s: expected a number >= 0, got {shutdown_timeout_s!r}")

    # Validate everything before touching the running pipeline.
    resource = _resolve_resource(service_name, resource_attributes)
    sampler_obj = _resolve_sampler(sampler, sampler_arg)
    queue = _int_setting(max_queue_size, "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE, minimum=1)
    batch = _int_setting(
        max_export_batch_size, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_EXPORT_BATCH_SIZE, minimum=1
    )
    delay = _int_setting(
        schedule_delay_millis, "OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MILLIS, minimum=0
    )
    timeout_ms = _int_setting(
        export_timeout_millis, "OTEL_BSP_EXPORT_TIMEOUT", DEFAULT_EXPORT_TIMEOUT_MILLIS, minimum=1
    )
    if batch > queue:
        raise ValueError(
            f"max_export_batch_size ({batch}, OTEL_BSP_MAX_EXPORT_BATCH_SIZE) must be <= "
            f"max_queue_size ({queue}, OTEL_BSP_MAX_QUEUE_SIZE)"
        )
    explicit_timeout = _env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or _env("OTEL_EXPORTER_OTLP_TIMEOUT")
    exporters = _build_exporters(
        exporter,
        endpoint=endpoint,
        protocol=protocol,
        headers=headers,
        compression=compression,
        timeout_s=None if explicit_timeout and export_timeout_millis is None else timeout_ms / 1000,
    )
    processors: list[SpanProcessor] = [
        _CountingBatchSpanProcessor(
            exp,
            max_queue_size=queue,
            schedule_delay_millis=max(delay, 1),
            max_export_batch_size=batch,
            export_timeout_millis=timeout_ms,
        )
        for exp in exporters
    ]
    if console:
        waterfall = _waterfall_processor()
        if waterfall is not None:
            processors.append(waterfall)

    with _config_lock:
        _shutdown_timeout_s = float(shutdown_timeout_s)
        if _provider is None:
            _provider = _Provider(sampler=sampler_obj, resource=resource)
            old: tuple[SpanProcessor, ...] = ()
        else:
            _provider.reconfigure(sampler=sampler_obj, resource=resource)
            old = _provider.pipeline.processors
        provider = _provider
        provider.pipeline.processors = tuple(processors)
        provider.retire(old)
    if old:

        def shutdown_old() -> None:
            for proc in old:
                proc.shutdown()

        _run_bounded(shutdown_old, _shutdown_timeout_s)

    if set_global:
        current = trace.get_tracer_provider()
        if current is not provider:
            if isinstance(current, trace.ProxyTracerProvider):
                trace.set_tracer_provider(provider)
            else:
                logger.warning(
                    "otel_bot: a global TracerProvider (%s) is already installed and OpenTelemetry does not "
                    "allow replacing it; configure_tracing's provider is not global. Pass it to "
                    "instrument_bot(bot, tracer_provider=...) instead.",
                    type(current).__name__,
                )
    _install_exit_hooks(handle_sigterm)
    return provider


def export_stats(tracer_provider: Any = None) -> ExportStats:
    """Counts from configure_tracing's export pipeline (of ``tracer_provider`` if given).

    Zeros when configure_tracing was not called (a provider you built yourself is not counted).
    """
    provider = tracer_provider if tracer_provider is not None else _provider
    if isinstance(provider, _Provider):
        return provider.stats()
    return ExportStats()


def _run_bounded(func: Callable[[], object], timeout_s: float) -> bool:
    """Run ``func`` on a helper thread; wait at most ``timeout_s``. True when it finished in time.

    The helper thread means a flush never deadlocks on a lock the interrupted thread holds (a signal
    handler runs on the main thread, maybe in the middle of an export) and never waits longer than
    asked, whatever the exporter does.
    """
    result: list[bool] = []

    def run() -> None:
        try:
            value = func()
            result.append(value is not False)
        except Exception:
            logger.debug("otel_bot: flush/shutdown raised", exc_info=True)
            result.append(False)

    worker = threading.Thread(target=run, name="otel_bot-flush", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    return bool(result and result[0])


def flush(timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S, tracer_provider: Any = None) -> bool:
    """Export every pending span now; wait at most ``timeout_s`` seconds. True when all went out.

    Flushes ``tracer_provider`` if given, else configure_tracing's provider, else the global
    provider (when it can flush). Blocks the calling thread (bounded); from a coroutine use
    :func:`flush_async`, which keeps the event loop free.
    """
    return _run_bounded(_flusher(timeout_s, tracer_provider), timeout_s)


def _flusher(timeout_s: float, tracer_provider: Any) -> Callable[[], object]:
    provider = tracer_provider if tracer_provider is not None else _provider
    if provider is None:
        provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is None:
        return lambda: True
    millis = int(max(timeout_s, 0.0) * 1000)
    return lambda: force_flush(millis)


async def flush_async(timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S, tracer_provider: Any = None) -> bool:
    """:func:`flush` for coroutines (e.g. an instrumented ``Client.close``): the export runs on a
    helper thread (not the loop's executor, so no executor span) and the loop keeps running."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    func = _flusher(timeout_s, tracer_provider)

    def settle(ok: bool) -> None:
        if not done.done():
            done.set_result(ok)

    def run() -> None:
        try:
            ok = func() is not False
        except Exception:
            logger.debug("otel_bot: flush raised", exc_info=True)
            ok = False
        try:
            loop.call_soon_threadsafe(settle, ok)
        except RuntimeError:  # the loop closed meanwhile
            pass

    threading.Thread(target=run, name="otel_bot-flush", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(done), max(timeout_s, 0.0))
    except asyncio.TimeoutError:
        return False


def shutdown(timeout_s: float | None = None) -> bool:
    """Flush and shut down configure_tracing's pipeline within ``timeout_s`` (default: the
    configured ``shutdown_timeout_s``). Spans ended afterwards are not exported until the next
    configure_tracing call."""
    provider = _provider
    if provider is None:
        return True
    return _run_bounded(provider.shutdown, _shutdown_timeout_s if timeout_s is None else timeout_s)


def _reset_for_tests(timeout_s: float = 5.0) -> None:
    """Shut down and forget configure_tracing's provider (tests only; a global one stays global)."""
    global _provider
    shutdown(timeout_s)
    with _config_lock:
        _provider = None
    _REPORTER.reset()


# --------------------------------------------------------------------------------------------------
# Interpreter exit and SIGTERM

_atexit_registered = False
_previous_sigterm: Any = None
_sigterm_installed = False
_in_sigterm = False


def _at_exit() -> None:
    shutdown()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Flush (bounded), then behave exactly as the handler we replaced would have."""
    global _in_sigterm
    if not _in_sigterm:  # a second SIGTERM during the flush skips straight to the default
        _in_sigterm = True
        try:
            flush(_shutdown_timeout_s)
        finally:
            _in_sigterm = False
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    # SIG_DFL (or a handler not installed from Python): terminate by the signal, as the default does.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_exit_hooks(handle_sigterm: bool) -> None:
    global _atexit_registered, _previous_sigterm, _sigterm_installed
    with _config_lock:
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
        if not handle_sigterm or _sigterm_installed or not hasattr(signal, "SIGTERM"):
            return
        if threading.current_thread() is not threading.main_thread():
            logger.debug("otel_bot: not on the main thread; SIGTERM flush handler not installed")
            return
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm:
            _sigterm_installed = True
            return
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True


__all__ = [
    "DEFAULT_MAX_QUEUE_SIZE",
    "ExportStats",
    "configure_tracing",
    "export_stats",
    "flush",
    "flush_async",
    "shutdown",
]

"""The bounded, counting export pipeline behind ``configure_tracing()``, and its defaults.

Holds the pieces a configured provider is made of: :class:`ExportStats` / :func:`export_stats`, the
rate-limited drop warning (``_DropReporter``), the batch processor that counts exported, failed and
queue-full spans (``_CountingBatchSpanProcessor``), the swappable ``_Pipeline`` processor and the
``_Provider`` that can be reconfigured in place. ``_provider`` (the one configure_tracing built)
and ``_config_lock`` live here; :mod:`otel_bot._setup` builds and swaps, :mod:`otel_bot._shutdown`
flushes.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as _sampling
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
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


def export_stats(tracer_provider: Any = None) -> ExportStats:
    """Counts from configure_tracing's export pipeline (of ``tracer_provider`` if given).

    Zeros when configure_tracing was not called (a provider you built yourself is not counted).
    """
    provider = tracer_provider if tracer_provider is not None else _provider
    if isinstance(provider, _Provider):
        return provider.stats()
    return ExportStats()


__all__ = [
    "DEFAULT_EXPORT_TIMEOUT_MILLIS",
    "DEFAULT_MAX_EXPORT_BATCH_SIZE",
    "DEFAULT_MAX_QUEUE_SIZE",
    "DEFAULT_SCHEDULE_DELAY_MILLIS",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "WARN_INTERVAL_S",
    "ExportStats",
    "export_stats",
]

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

Layout: this module holds the entry point; the counting pipeline and :func:`export_stats` are in
:mod:`otel_bot._export`, OTEL_* parsing and exporter construction in :mod:`otel_bot._otel_env`,
flushing / atexit / SIGTERM in :mod:`otel_bot._shutdown` (:func:`export_stats`, :func:`flush`
and :func:`flush_async` are re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as _sampling
from opentelemetry.sdk.trace.export import SpanExporter

from . import _export, _shutdown
from ._export import (
    DEFAULT_EXPORT_TIMEOUT_MILLIS,
    DEFAULT_MAX_EXPORT_BATCH_SIZE,
    DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_SCHEDULE_DELAY_MILLIS,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    ExportStats,
    _config_lock,
    _CountingBatchSpanProcessor,
    _Provider,
    export_stats,
)
from ._otel_env import _build_exporters, _env, _int_setting, _resolve_resource, _resolve_sampler
from ._shutdown import _install_exit_hooks, _run_bounded

# Defined here before the split into _export / _shutdown; tests import them from here.
from ._shutdown import _reset_for_tests as _reset_for_tests  # isort: skip
from ._shutdown import flush as flush  # isort: skip
from ._shutdown import flush_async as flush_async  # isort: skip

logger = logging.getLogger("otel_bot")


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
        _shutdown._shutdown_timeout_s = float(shutdown_timeout_s)
        if _export._provider is None:
            _export._provider = _Provider(sampler=sampler_obj, resource=resource)
            old: tuple[SpanProcessor, ...] = ()
        else:
            _export._provider.reconfigure(sampler=sampler_obj, resource=resource)
            old = _export._provider.pipeline.processors
        provider = _export._provider
        provider.pipeline.processors = tuple(processors)
        provider.retire(old)
    if old:

        def shutdown_old() -> None:
            for proc in old:
                proc.shutdown()

        _run_bounded(shutdown_old, _shutdown._shutdown_timeout_s)

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


__all__ = [
    "DEFAULT_MAX_QUEUE_SIZE",
    "ExportStats",
    "configure_tracing",
    "export_stats",
    "flush",
    "flush_async",
]

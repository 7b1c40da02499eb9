"""otel_bot: OpenTelemetry distributed tracing for discord.py bots."""

from __future__ import annotations

from ._config import SeverityBounds
from ._db import trace_db_adapter, untrace_db_adapter
from ._flow import FlowTracker, checkpoint, measure, measure_time
from ._instrument import DiscordBotInstrumentor, instrument_bot, uninstrument_bot
from ._logs import TraceContextFilter, instrument_logging
from ._setup import ExportStats, configure_tracing, export_stats
from ._sla import Severity
from ._summary import WaterfallProcessor
from ._version import __version__

__all__ = [
    "DiscordBotInstrumentor",
    "ExportStats",
    "FlowTracker",
    "Severity",
    "SeverityBounds",
    "TraceContextFilter",
    "WaterfallProcessor",
    "__version__",
    "checkpoint",
    "configure_tracing",
    "export_stats",
    "instrument_bot",
    "instrument_logging",
    "measure",
    "measure_time",
    "trace_db_adapter",
    "uninstrument_bot",
    "untrace_db_adapter",
]

"""otel_bot: OpenTelemetry distributed tracing for discord.py bots."""

from __future__ import annotations

from ._config import SeverityBounds
from ._version import __version__

__all__ = [
    "SeverityBounds",
    "__version__",
]

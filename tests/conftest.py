"""Shared fixtures. Each fixture family lives in its own plugin module."""

from __future__ import annotations

import os

# Internal telemetry errors re-raise under the test suite, so our bugs surface.
os.environ.setdefault("OTEL_BOT_STRICT", "1")

pytest_plugins = [
    "tests.fixtures_otel",
    "tests.fixtures_discord",
    "tests.fixtures_pg",
]

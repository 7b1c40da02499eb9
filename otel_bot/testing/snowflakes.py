"""Discord snowflake ids and timestamps, as documented at
https://discord.com/developers/docs/reference#snowflakes."""

from __future__ import annotations

import datetime
import itertools
import os
import threading
import time

__all__ = [
    "DISCORD_EPOCH_MS",
    "iso_timestamp",
    "snowflake",
    "snowflake_time_ms",
    "wall_ms",
]

#: Discord's epoch: the first millisecond of 2015, in Unix milliseconds.
DISCORD_EPOCH_MS = 1420070400000

_counter = itertools.count()
_lock = threading.Lock()
_PROCESS = os.getpid() & 0x1F


def wall_ms() -> int:
    """The current Unix time in whole milliseconds."""
    return time.time_ns() // 1_000_000


def snowflake(at_ms: float | None = None, *, worker: int = 1) -> int:
    """A new unique snowflake whose timestamp is ``at_ms`` (Unix ms; default: now).

    The low 12 bits are a process-wide increment, so ids made in the same millisecond differ.
    """
    ms = wall_ms() if at_ms is None else int(at_ms)
    if ms < DISCORD_EPOCH_MS:
        raise ValueError(f"snowflake time {ms} is before Discord's epoch {DISCORD_EPOCH_MS}")
    with _lock:
        increment = next(_counter) & 0xFFF
    return ((ms - DISCORD_EPOCH_MS) << 22) | ((worker & 0x1F) << 17) | (_PROCESS << 12) | increment


def snowflake_time_ms(snowflake_id: int | str) -> int:
    """The creation time of ``snowflake_id`` in Unix milliseconds."""
    return (int(snowflake_id) >> 22) + DISCORD_EPOCH_MS


def iso_timestamp(at_ms: float | None = None) -> str:
    """An ISO 8601 timestamp as Discord sends it (``2026-01-01T12:00:00.123000+00:00``)."""
    ms = wall_ms() if at_ms is None else at_ms
    return datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc).isoformat()

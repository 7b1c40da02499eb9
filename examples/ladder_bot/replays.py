"""Replay files: a small binary format, and its parser (run in a process pool).

A replay is ``b"LDRP"``, a version byte, then a zlib-compressed stream of fixed-size action records
``(tick: u32, player: u8, action: u8, x: u16, y: u16)``. :func:`parse_replay` is a module-level,
picklable function: the bot hands it to a ``ProcessPoolExecutor`` because decompressing and
walking tens of thousands of records would otherwise block the event loop.
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from dataclasses import dataclass

MAGIC = b"LDRP"
VERSION = 1
TICKS_PER_SECOND = 24
_RECORD = struct.Struct("<IBBHH")
REPLAY_SUFFIXES = (".ldrp", ".replay")


class ReplayError(ValueError):
    """The upload is not a replay this bot can read."""


@dataclass(frozen=True)
class ReplaySummary:
    duration_s: float
    actions: int
    apm: float
    players: int
    checksum: str
    match_hint: int | None


def parse_replay(data: bytes) -> ReplaySummary:
    """Decode and summarise one replay file (CPU-bound; meant for a process pool)."""
    if len(data) < 14 or data[:4] != MAGIC:
        raise ReplayError("not a replay file (bad magic)")
    if data[4] != VERSION:
        raise ReplayError(f"unsupported replay version {data[4]}")
    (match_hint,) = struct.unpack_from("<Q", data, 5)
    try:
        body = zlib.decompress(data[13:])
    except zlib.error as exc:
        raise ReplayError("corrupt replay body") from exc
    if len(body) % _RECORD.size:
        raise ReplayError("truncated replay body")
    last_tick = 0
    players: set[int] = set()
    actions = 0
    heat = 0
    for tick, player, action, x, y in _RECORD.iter_unpack(body):
        if tick < last_tick:
            raise ReplayError("replay ticks go backwards")
        last_tick = tick
        players.add(player)
        if action:
            actions += 1
        heat = (heat * 31 + x * 7 + y * 13 + action) % 1_000_000_007
    duration = last_tick / TICKS_PER_SECOND
    apm = actions / (duration / 60.0) if duration > 0 else 0.0
    checksum = hashlib.sha256(body).hexdigest()[:16] + f"{heat:08x}"[-8:]
    return ReplaySummary(
        duration_s=round(duration, 2),
        actions=actions,
        apm=round(apm, 1),
        players=len(players),
        checksum=checksum,
        match_hint=match_hint or None,
    )


def make_replay(rng: random.Random, *, match_id: int | None = None, seconds: float = 600.0) -> bytes:
    """Build a plausible replay (the demo's simulated players upload these)."""
    out = bytearray()
    tick = 0
    end = int(seconds * TICKS_PER_SECOND)
    while tick < end:
        tick += rng.randint(1, 12)
        out += _RECORD.pack(
            tick, rng.randint(0, 1), rng.randint(0, 9), rng.randint(0, 4095), rng.randint(0, 4095)
        )
    return MAGIC + bytes([VERSION]) + struct.pack("<Q", match_id or 0) + zlib.compress(bytes(out), 6)

"""The in-memory matchmaking queue: players wait per region and are paired by MMR."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class QueueEntry:
    """A player waiting for a match, with the interaction whose message we edit when matched."""

    player_id: int
    name: str
    mmr: int
    region: str
    interaction: Any = None  # the Join click's discord.Interaction (its message is the player's)
    channel_id: int | None = None
    joined_at: float = field(default_factory=time.monotonic)

    def waited(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.joined_at


class Matchmaker:
    """Players waiting per region. The window of acceptable MMR difference widens with waiting."""

    def __init__(self, *, base_window: int = 100, widen_per_second: int = 50, max_window: int = 800) -> None:
        self.base_window = base_window
        self.widen_per_second = widen_per_second
        self.max_window = max_window
        self._waiting: dict[int, QueueEntry] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, player_id: object) -> bool:
        return player_id in self._waiting

    def add(self, entry: QueueEntry) -> bool:
        """Queue a player; False when already waiting (the entry is refreshed)."""
        fresh = entry.player_id not in self._waiting
        self._waiting[entry.player_id] = entry
        return fresh

    def remove(self, player_id: int) -> QueueEntry | None:
        return self._waiting.pop(player_id, None)

    def window(self, entry: QueueEntry, now: float) -> float:
        return min(self.max_window, self.base_window + self.widen_per_second * entry.waited(now))

    def pair(self, now: float | None = None) -> list[tuple[QueueEntry, QueueEntry]]:
        """Take every pair that can play now (same region, MMR within both windows)."""
        now = time.monotonic() if now is None else now
        pairs: list[tuple[QueueEntry, QueueEntry]] = []
        by_region: dict[str, list[QueueEntry]] = {}
        for entry in self._waiting.values():
            by_region.setdefault(entry.region, []).append(entry)
        for entries in by_region.values():
            entries.sort(key=lambda e: e.mmr)
            i = 0
            while i + 1 < len(entries):
                a, b = entries[i], entries[i + 1]
                gap = abs(a.mmr - b.mmr)
                if gap <= min(self.window(a, now), self.window(b, now)):
                    pairs.append((a, b))
                    i += 2
                else:
                    i += 1
        for a, b in pairs:
            self._waiting.pop(a.player_id, None)
            self._waiting.pop(b.player_id, None)
        return pairs

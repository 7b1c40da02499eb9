"""The ladder bot example: a competitive ladder (queue, matchmaking, results, replays), traced.

Run it against Discord with ``DISCORD_TOKEN=... python -m otel_bot_examples.ladder_bot``, or
offline with ``otel-bot demo``.
"""

from __future__ import annotations

from .bot import THRESHOLDS, JoinButton, LadderBot, LadderCog, LadderConfig, ReportModal, create_bot
from .replays import ReplayError, ReplaySummary, make_replay, parse_replay

__all__ = [
    "THRESHOLDS",
    "JoinButton",
    "LadderBot",
    "LadderCog",
    "LadderConfig",
    "ReplayError",
    "ReplaySummary",
    "ReportModal",
    "create_bot",
    "main",
    "make_replay",
    "parse_replay",
]


def main() -> int:
    """Run the bot against Discord: ``DISCORD_TOKEN`` required; tracing from OTEL_* variables."""
    from .__main__ import main as _main

    return _main()

"""``otel-bot demo``: the ladder example bot against the offline Discord, with simulated players.

The entry points are :func:`add_arguments` / :func:`main` (the CLI) and :func:`run_demo`.
"""

from __future__ import annotations

from .runner import DemoOptions, add_arguments, main, run_demo

__all__ = ["DemoOptions", "add_arguments", "main", "run_demo"]

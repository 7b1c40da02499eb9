"""``python -m otel_bot_examples.ladder_bot``: run the ladder bot against Discord.

Environment: ``DISCORD_TOKEN`` (required), ``DATABASE_URL`` (PostgreSQL; else SQLite in
``LADDER_SQLITE_PATH``, default ``ladder.sqlite3``), ``LADDER_SYNC_GUILD_ID`` (sync the slash
commands to this guild on start), ``LADDER_MATCH_CHANNEL_ID``, and the standard ``OTEL_*``
variables for the exporter (``OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317`` with
``collector-config/`` up).
"""

from __future__ import annotations

import logging
import os
import sys

from otel_bot import configure_tracing

from .bot import LadderConfig, create_bot


def main() -> int:
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        print(
            "DISCORD_TOKEN is not set. To run the ladder bot offline, with simulated players, "
            "use: otel-bot demo",
            file=sys.stderr,
        )
        return 2
    exporting = any(
        os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    # With a collector configured, traces go there; without one, a waterfall per trace on the console.
    configure_tracing(
        service_name=os.environ.get("OTEL_SERVICE_NAME", "ladder-bot"),
        exporter=None if exporting or os.environ.get("OTEL_TRACES_EXPORTER") else "none",
        console=not exporting,
    )
    bot = create_bot(LadderConfig.from_env())
    bot.run(token, log_level=logging.INFO)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``otel-bot`` console script and ``python -m otel_bot``.

* ``otel-bot version``: print the version.
* ``otel-bot demo``: run the ladder example bot offline with simulated players and print the
  waterfalls and a per-flow summary (``otel-bot demo --help`` for the options).
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """The command line parser (one subcommand per job)."""
    from ._demo import add_arguments

    parser = argparse.ArgumentParser(prog="otel-bot", description="otel_bot command line")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("version", help="print the version")
    demo = sub.add_parser(
        "demo",
        help="run the ladder example bot offline with simulated players; print traces and a summary",
        description=(
            "Run the ladder example bot, unmodified, against an offline Discord (REST + gateway on "
            "127.0.0.1) with simulated players. Prints a waterfall per trace and a per-flow summary. "
            "No token, database server or collector needed; set OTEL_EXPORTER_OTLP_ENDPOINT to also "
            "export the traces, DATABASE_URL (or --database-url) to use PostgreSQL."
        ),
    )
    add_arguments(demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "version":
        from ._version import __version__

        print(__version__)
        return 0
    if args.command == "demo":
        from ._demo import main as demo_main

        return demo_main(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())

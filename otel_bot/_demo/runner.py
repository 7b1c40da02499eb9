"""``otel-bot demo``: the ladder bot, unmodified, against the offline Discord with simulated players.

What runs, all in this process and on 127.0.0.1:

* the offline Discord (REST API v10 + gateway websocket) with per-route latency, a few 429s and
  one interaction that arrives too late to acknowledge;
* a loopback attachment CDN for replay uploads;
* the ladder bot from ``otel_bot_examples.ladder_bot`` started with ``bot.start(token)`` exactly as
  in production (it logs in over REST and IDENTIFYs over the fake gateway);
* simulated players (seeded) dispatching gateway events.

Tracing is set up with :func:`otel_bot.configure_tracing` (so ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the
other ``OTEL_*`` variables work as for any bot); the demo adds one span processor that groups spans
per trace for the waterfalls and the summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan

from .._privacy import install_log_redaction
from .progress import BarAwareHandler
from .stats import DemoCollector, TraceInfo, summarize

log = logging.getLogger("otel_bot.demo")
install_log_redaction(log)  # the demo's own lines go through the same token redaction

#: Runs up to this many actions print every trace; longer runs print a sample and a progress bar.
SHORT_RUN_ACTIONS = 60
SAMPLE_CAP = 14


@dataclass
class DemoOptions:
    """Everything ``otel-bot demo`` can be told."""

    interactions: int | None = 200
    duration: float | None = None
    players: int = 12
    seed: int = 7
    database_url: str | None = None
    ascii: bool = False
    waterfalls: str = "auto"  # auto, all, sample, none
    progress: str = "auto"  # auto, on, off
    json_path: str | None = None
    matchmaker_interval: float = 0.5

    @property
    def long_run(self) -> bool:
        return self.duration is not None or (self.interactions or 0) > SHORT_RUN_ACTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` subcommand's options."""
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--interactions",
        "-n",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after N simulated user actions (slash commands, clicks, modal submits, "
        "messages); default 200",
    )
    size.add_argument(
        "--duration", "-d", type=_positive_float, default=None, metavar="S", help="run for S seconds instead"
    )
    parser.add_argument("--players", "-p", type=_players, default=12, help="simulated players (default 12)")
    parser.add_argument("--seed", type=int, default=7, help="RNG seed for the players' choices (default 7)")
    parser.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="PostgreSQL URL for the bot's storage (default: $DATABASE_URL; unset: SQLite in a "
        "temporary directory). Tables go into a throwaway schema that is dropped at the end.",
    )
    parser.add_argument("--ascii", action="store_true", help="ASCII symbols instead of emoji")
    parser.add_argument(
        "--waterfalls",
        choices=("auto", "all", "sample", "none"),
        default="auto",
        help="which traces to print: all (short runs), a sample (long runs), or none",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="progress bar on stderr (auto: long runs, when stderr is a terminal)",
    )
    parser.add_argument(
        "--json",
        dest="json_path",
        default=None,
        metavar="FILE",
        help="also write the summary as JSON to FILE",
    )


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    interactions = args.interactions
    if interactions is None and args.duration is None:
        interactions = 200
    return DemoOptions(
        interactions=interactions,
        duration=args.duration,
        players=args.players,
        seed=args.seed,
        database_url=args.database_url
        if args.database_url is not None
        else (os.environ.get("DATABASE_URL") or None),
        ascii=args.ascii,
        waterfalls=args.waterfalls,
        progress=args.progress,
        json_path=args.json_path,
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _players(text: str) -> int:
    value = int(text)
    if not 2 <= value <= 500:
        raise argparse.ArgumentTypeError("between 2 and 500 players")
    return value


def main(args: argparse.Namespace) -> int:
    """Entry point of ``otel-bot demo``."""
    options = options_from_args(args)
    try:
        return asyncio.run(run_demo(options))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `otel-bot demo | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except DemoError as exc:
        print(f"otel-bot demo: error: {exc}", file=sys.stderr)
        return 1


class DemoError(Exception):
    """The demo could not start (e.g. the database in --database-url is unreachable)."""


# --- output ---------------------------------------------------------------------------------------
class _Printer:
    """Formats sampled traces; prints them as they finish (short runs) or holds them (long runs)."""

    def __init__(self, out: TextIO, *, ascii_only: bool, live: bool) -> None:
        self.out = out
        self.ascii_only = ascii_only
        self.live = live
        self.printed = 0
        self._pending: deque[str] = deque()
        self._lock = threading.Lock()

    def sink(self, spans: Sequence[ReadableSpan]) -> None:
        from .._summary import format_trace

        text, _level = format_trace(spans, ascii=self.ascii_only)
        if text:
            with self._lock:
                self._pending.append(text)

    def drain(self) -> None:
        with self._lock:
            blocks = list(self._pending)
            self._pending.clear()
        for block in blocks:
            self.out.write(block + "\n\n")
            self.printed += 1
        if blocks:
            self.out.flush()


class _Sampler:
    """Which finished traces get a waterfall.

    ``all``: every unit of bot work except idle matchmaker iterations (nothing to pair). ``sample``:
    the first trace of each flow, every error, breach or missed acknowledgement (one per flow and
    kind), capped at :data:`SAMPLE_CAP` blocks.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seen: set[tuple[str, str]] = set()
        self.taken = 0
        self._lock = threading.Lock()

    def __call__(self, info: TraceInfo) -> bool:
        if self.mode == "none":
            return False
        idle = len(info.spans) == 1 and not info.error
        if self.mode == "all":
            return not idle
        if idle:
            return False
        kind = "ack" if info.ack_missed else "error" if info.error else "breach" if info.breach else "first"
        with self._lock:
            if self.taken >= SAMPLE_CAP or (info.flow, kind) in self.seen:
                return False
            self.seen.add((info.flow, kind))
            self.taken += 1
            return True


# --- the run ----------------------------------------------------------------------------------------
async def run_demo(options: DemoOptions, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the demo; returns the process exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    ascii_only = options.ascii or _needs_ascii(out)
    log_handler = _configure_logging(err)

    from otel_bot import configure_tracing

    from ..testing import OfflineDiscord, World
    from .cdn import FakeCDN
    from .players import Budget, Simulation
    from .progress import ProgressBar

    ladder = _import_ladder_bot()

    mode = options.waterfalls
    if mode == "auto":
        mode = "sample" if options.long_run else "all"
    live = not options.long_run
    printer = _Printer(out, ascii_only=ascii_only, live=live)
    collector = DemoCollector(sink=printer.sink, sample=_Sampler(mode))

    exporting = _otlp_configured()
    provider = configure_tracing(
        service_name=os.environ.get("OTEL_SERVICE_NAME") or "ladder-bot",
        exporter=None if exporting or os.environ.get("OTEL_TRACES_EXPORTER") else "none",
        console=False,
        handle_sigterm=False,
    )
    provider.add_span_processor(collector)

    tmpdir = tempfile.mkdtemp(prefix="otel-bot-demo-")
    schema = f"otel_bot_demo_{secrets.token_hex(4)}" if options.database_url else None
    storage = (
        f"PostgreSQL ({_redact_dsn(options.database_url)}, schema {schema}, dropped at exit)"
        if options.database_url
        else "SQLite (temporary file, through the executor)"
    )
    budget_text = f"{options.interactions} actions" if options.interactions else f"{options.duration:g} s"
    out.write(
        f"otel-bot demo: ladder bot vs {options.players} simulated players (seed {options.seed}), "
        f"{budget_text}; storage: {storage}\n"
        f"export: {_export_text(exporting)}\n\n"
    )
    out.flush()

    world = World(guild_name="Ladder League", channel_name="ladder")
    discord = OfflineDiscord(world, default_latency_ms=70.0)
    cdn = FakeCDN()
    bot: Any = None
    start_task: asyncio.Task[None] | None = None
    started = time.monotonic()
    report = None
    interrupted = False
    bar: ProgressBar | None = None
    try:
        await discord.start()
        await cdn.start()
        config = ladder.LadderConfig(
            database_url=options.database_url,
            db_schema=schema,
            sqlite_path=os.path.join(tmpdir, "ladder.sqlite3"),
            matchmaker_interval=options.matchmaker_interval,
            leaderboard_ttl=3.0,
            match_channel_id=world.channel_id,
            # discord.py waits 2 s for more GUILD_CREATEs before READY; the offline gateway sends
            # its one guild at once
            client_options={"guild_ready_timeout": 0.05},
        )
        bot = ladder.create_bot(config, tracer_provider=provider)
        start_task = asyncio.create_task(bot.start(f"offline.{secrets.token_urlsafe(24)}"), name="ladder-bot")
        try:
            await _wait_ready(bot, start_task, timeout=20.0)
        except (OSError, RuntimeError, ValueError, ImportError) as exc:
            where = f" (database {_redact_dsn(options.database_url)})" if options.database_url else ""
            raise DemoError(f"the ladder bot did not start{where}: {type(exc).__name__}: {exc}") from exc

        budget = Budget(actions=options.interactions, duration_s=options.duration)
        show_bar = options.progress == "on" or (options.progress == "auto" and options.long_run)
        bar = (
            ProgressBar(
                budget.total,
                unit="actions" if options.interactions else "s",
                stream=err,
                ascii_only=ascii_only,
                enabled=None if options.progress != "on" else True,
            )
            if show_bar
            else None
        )

        if log_handler is not None:
            log_handler.bar = bar

        def on_action() -> None:
            if bar is not None:
                bar.update(budget.progress, actions=budget.used)

        sim = Simulation(
            discord, cdn, players=options.players, seed=options.seed, budget=budget, on_action=on_action
        )
        drainer = asyncio.create_task(_drain_loop(printer)) if live else None
        ticker = asyncio.create_task(_tick(bar, budget)) if bar is not None and bar.enabled else None
        try:
            try:
                report = await sim.run()
            except asyncio.CancelledError:  # Ctrl-C: stop the players, still show what ran
                interrupted = True
                report = sim.report
            await _settle(collector, timeout=6.0)
        finally:
            for task in (drainer, ticker):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if bar is not None:
                bar.update(budget.progress, actions=budget.used, force=True)
                bar.close()
    finally:
        if bot is not None:
            await bot.close()
        if start_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(start_task, 10.0)
        if options.database_url and schema:
            try:
                await _drop_schema(options.database_url, schema)
            except Exception as exc:  # the demo's own housekeeping; say so, do not fail the run
                log.warning("could not drop the demo schema %s: %s", schema, exc)
        await _settle(collector, timeout=2.0)
        await cdn.stop()
        await discord.stop()
        shutil.rmtree(tmpdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    provider.force_flush()
    printer.drain()

    assert report is not None
    rate_limited = sum(1 for r in discord.requests if r.status == 429)
    out.write(
        f"== summary{' (interrupted)' if interrupted else ''}: {report.actions} actions by {options.players} players in {elapsed:.1f} s, "
        f"{collector.traces} traces, {collector.spans} spans ==\n"
    )
    out.write(collector.table(ascii_only=ascii_only) + "\n\n")
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.by_kind.items(), key=lambda kv: (-kv[1], kv[0])))
    out.write(f"players: {kinds}\n")
    out.write(
        f"ladder: {report.matches_found // 2 if report.matches_found else 0} matches found, "
        f"{report.results_reported} result forms submitted, {report.replays_uploaded} replays uploaded\n"
    )
    out.write(
        f"injected: {report.rate_limits_injected} rate limits ({rate_limited} x 429 answered, retried by "
        f"discord.py), {report.late_interactions} interaction delivered 3.5 s late (Discord answers 10062)\n"
    )
    out.write(f"export: {_export_result(provider, exporting)}\n")
    if mode == "sample":
        out.write(
            f"waterfalls: {printer.printed} sampled of {collector.traces} traces (--waterfalls all prints every one)\n"
        )
    out.flush()

    if options.json_path:
        data = summarize(collector)
        data.update(
            actions=report.actions,
            by_kind=report.by_kind,
            matches_found=report.matches_found // 2,
            results_reported=report.results_reported,
            replays_uploaded=report.replays_uploaded,
            late_interactions=report.late_interactions,
            rate_limited_responses=rate_limited,
            waterfalls_printed=printer.printed,
            elapsed_s=round(elapsed, 3),
            storage="postgresql" if options.database_url else "sqlite",
        )
        with open(options.json_path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
    return 130 if interrupted else 0


async def _tick(bar: Any, budget: Any) -> None:
    """Keep the bar moving between actions (the clock runs in --duration mode)."""
    while True:
        await asyncio.sleep(0.25)
        bar.update(budget.progress, actions=budget.used)


async def _drain_loop(printer: _Printer) -> None:
    while True:
        await asyncio.sleep(0.05)
        printer.drain()


async def _wait_ready(bot: Any, start_task: asyncio.Task[None], timeout: float) -> None:
    ready = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait({ready, start_task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if start_task in done:
            start_task.result()  # raises the start-up error
            raise RuntimeError("the bot stopped before it was ready")
        raise RuntimeError(f"the bot was not ready after {timeout:.0f} s")


async def _settle(collector: DemoCollector, timeout: float) -> None:
    """Let in-flight work finish: wait until no root span is open (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while collector.open_roots() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def _drop_schema(url: str, schema: str) -> None:
    """Drop the throwaway schema (not traced: it is the demo's housekeeping, not the bot's work)."""
    try:
        import asyncpg
    except ImportError:
        return  # then the bot could not have created it either
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


def _import_ladder_bot() -> Any:
    """``otel_bot_examples.ladder_bot``: installed with the package; in a source checkout that was
    installed some other way, loaded from ``examples/`` next to the package."""
    try:
        import otel_bot_examples.ladder_bot as ladder
    except ImportError:
        import importlib.util

        examples = os.path.join(
            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples"
        )
        init = os.path.join(examples, "__init__.py")
        if not os.path.exists(init):
            raise
        spec = importlib.util.spec_from_file_location(
            "otel_bot_examples", init, submodule_search_locations=[examples]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["otel_bot_examples"] = module
        spec.loader.exec_module(module)
        import otel_bot_examples.ladder_bot as ladder
    return ladder


def _configure_logging(err: TextIO) -> BarAwareHandler | None:
    """Warnings from the bot and discord.py go to stderr, one line each; the summary goes to stdout."""
    root = logging.getLogger()
    handler: BarAwareHandler | None = None
    if not root.handlers:
        handler = BarAwareHandler(err)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_no_voice_warnings)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("otel_bot.waterfall").propagate = False
    return handler


def _no_voice_warnings(record: logging.LogRecord) -> bool:
    """discord.py warns at start-up that PyNaCl/davey are missing; the demo has no voice."""
    return not (record.name == "discord.client" and "voice will NOT be supported" in record.getMessage())


def _needs_ascii(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return True
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "├─🐢█".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return True
    return False


def _otlp_configured() -> bool:
    return any(
        os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _export_text(exporting: bool) -> str:
    if exporting:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "grpc"
        )
        return f"OTLP ({protocol}) to {endpoint}"
    if os.environ.get("OTEL_TRACES_EXPORTER"):
        return f"OTEL_TRACES_EXPORTER={os.environ['OTEL_TRACES_EXPORTER']}"
    return "none (set OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://localhost:4317 with collector-config/ up)"


def _export_result(provider: Any, exporting: bool) -> str:
    if not exporting:
        return "not exported (no OTEL_EXPORTER_OTLP_ENDPOINT)"
    from otel_bot import export_stats

    stats = export_stats(provider)
    text = f"{stats.exported} spans exported over OTLP"
    if stats.dropped:
        text += f", {stats.dropped} dropped"
    return text


def _redact_dsn(url: str | None) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user@host/db``."""
    if not url:
        return ""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))

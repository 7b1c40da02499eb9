"""Shared pieces of the otel_bot benchmarks: the workload bot, the offline Discord on its own
thread, the database, CPU / RSS probes and machine info.

The offline Discord (``otel_bot.testing.OfflineDiscord``) runs in the *same process* as the bot,
on a dedicated thread with its own event loop, so its CPU time can be measured separately
(``time.pthread_getcpuclockid``) and reported next to the whole-process figure. The bot runs on
the main thread's loop, exactly as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

DSN = os.environ.get("OTEL_BOT_BENCH_DSN", os.environ.get("OTEL_BOT_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test"))
PLAYERS_TABLE = "otel_bot_bench_players"
POOL_SIZE = 10

# --------------------------------------------------------------------------------------------------
# Probes


def process_cpu_s() -> float:
    """User + system CPU seconds of this process (all threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def rss_bytes() -> int:
    """Resident set size now (Linux ``/proc/self/statm``; falls back to the peak on other OSes)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, OS, Python and the versions of every package the numbers depend on."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        affinity = os.cpu_count() or 0
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover
        load = []
    packages = {
        name: _version(name)
        for name in (
            "otel-bot",
            "discord.py",
            "opentelemetry-api",
            "opentelemetry-sdk",
            "opentelemetry-exporter-otlp-proto-grpc",
            "opentelemetry-instrumentation-asyncpg",
            "opentelemetry-instrumentation-discordpy",
            "grpcio",
            "aiohttp",
            "asyncpg",
        )
    }
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "load_average_at_start": [round(x, 2) for x in load],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": packages,
    }


# --------------------------------------------------------------------------------------------------
# The offline Discord on its own thread


class FakeDiscordThread:
    """``OfflineDiscord`` served from a dedicated thread + event loop inside this process."""

    def __init__(self) -> None:
        from otel_bot.testing import OfflineDiscord

        # A huge bucket: the fake advertises X-RateLimit-Remaining and discord.py would otherwise
        # (correctly) wait for the window to reset after 50 messages per second in one channel.
        self.fake = OfflineDiscord(bucket_limit=10**9, bucket_window_s=1.0)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="offline-discord", daemon=True)
        self._thread.start()
        self.call(self.fake.start())
        assert self._thread.ident is not None
        self._clock = time.pthread_getcpuclockid(self._thread.ident)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def cpu_s(self) -> float:
        """CPU seconds the fake's thread has used."""
        return time.clock_gettime(self._clock)

    def trim(self) -> None:
        """Forget what the fake recorded (requests, interactions, messages, buckets) so that its
        memory does not grow with the number of interactions."""

        async def clear() -> None:
            f = self.fake
            f.requests.clear()
            f.interactions.clear()
            f._by_token.clear()
            f.messages.clear()
            f._buckets.clear()

        self.call(clear())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self.fake.stop(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


# --------------------------------------------------------------------------------------------------
# Span sinks


def null_exporter() -> Any:
    """A SpanExporter that drops everything and counts what it got."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        def __init__(self) -> None:
            self.count = 0
            self.roots = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.count += len(spans)
            self.roots += sum(1 for s in spans if s.parent is None)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return NullExporter()


# --------------------------------------------------------------------------------------------------
# The database


class Database:
    """PostgreSQL through an asyncpg pool when reachable, else SQLite (in memory)."""

    def __init__(self) -> None:
        self.kind = "none"
        self.pool: Any = None
        self.sqlite: sqlite3.Connection | None = None

    async def open(self, pool_size: int = POOL_SIZE, prefer: str = "postgresql") -> None:
        if prefer == "postgresql":
            try:
                import asyncpg

                self.pool = await asyncpg.create_pool(DSN, min_size=pool_size, max_size=pool_size, timeout=5)
                async with self.pool.acquire() as con:
                    await con.execute(
                        f"CREATE UNLOGGED TABLE IF NOT EXISTS {PLAYERS_TABLE} "
                        "(id integer PRIMARY KEY, mmr integer NOT NULL, games integer NOT NULL DEFAULT 0)"
                    )
                    await con.execute(
                        f"INSERT INTO {PLAYERS_TABLE} (id, mmr) SELECT g, 1000 + (g * 37) % 800 "
                        "FROM generate_series(1, 1000) AS g ON CONFLICT (id) DO NOTHING"
                    )
                self.kind = "postgresql"
                return
            except Exception as exc:
                print(f"[bench] PostgreSQL unavailable ({type(exc).__name__}: {exc}); using SQLite", file=sys.stderr)
                if self.pool is not None:
                    await self.pool.close()
                    self.pool = None
        con = sqlite3.connect(":memory:", check_same_thread=False)
        con.execute(f"CREATE TABLE {PLAYERS_TABLE} (id INTEGER PRIMARY KEY, mmr INTEGER NOT NULL, games INTEGER NOT NULL DEFAULT 0)")
        con.executemany(
            f"INSERT INTO {PLAYERS_TABLE} (id, mmr) VALUES (?, ?)", [(g, 1000 + (g * 37) % 800) for g in range(1, 1001)]
        )
        con.commit()
        self.sqlite = con
        self.kind = "sqlite"

    async def top_players(self, around: int) -> list[tuple[int, int]]:
        """Query 1: ten players near ``around``."""
        if self.pool is not None:
            rows = await self.pool.fetch(
                f"SELECT id, mmr FROM {PLAYERS_TABLE} WHERE id BETWEEN $1 AND $1 + 9 ORDER BY mmr DESC", around
            )
            return [(r[0], r[1]) for r in rows]
        assert self.sqlite is not None
        cur = self.sqlite.execute(
            f"SELECT id, mmr FROM {PLAYERS_TABLE} WHERE id BETWEEN ? AND ? + 9 ORDER BY mmr DESC", (around, around)
        )
        return list(cur.fetchall())

    async def record_game(self, player: int) -> None:
        """Query 2: count a game for one player."""
        if self.pool is not None:
            await self.pool.execute(f"UPDATE {PLAYERS_TABLE} SET games = games + 1 WHERE id = $1", player)
            return
        assert self.sqlite is not None
        self.sqlite.execute(f"UPDATE {PLAYERS_TABLE} SET games = games + 1 WHERE id = ?", (player,))

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self.sqlite is not None:
            self.sqlite.close()


# --------------------------------------------------------------------------------------------------
# The workload bot


def compute_mmr(rows: list[tuple[int, int]]) -> int:
    """The executor offload: a little pure-Python work on the rows."""
    if not rows:
        return 0
    total = 0
    for _, mmr in rows:
        total += mmr * mmr
    return int((total / len(rows)) ** 0.5)


@contextlib.contextmanager
def _no_checkpoint(name: str, **attributes: Any) -> Iterator[None]:
    yield None


#: Config R: the spans otel_bot records for one interaction, written by hand with the raw SDK
#: (same names, kinds and attribute counts / types as a real B interaction; values are stand-ins).
RAW_SPANS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "root": ("/queue", "SERVER", {
        "discord.interaction.type": "application_command", "discord.interaction.created_at": 1796114123960,
        "discord.gateway.lag_ms": 1.0, "discord.locale": "en-US", "discord.guild.locale": "en-US",
        "discord.shard.id": 0, "discord.command.type": "chat_input", "discord.command.name": "queue",
        "discord.interaction.id": "1577241695580557331", "discord.guild.id": "1577241694959800322",
        "discord.channel.id": "1577241694959800323", "discord.user.id": "1577241694959800324",
        "discord.interaction.ack_ms": 1.8, "discord.interaction.acknowledged": True,
        "discord.interaction.ack_deadline_missed": False, "discord.interaction.response.type": "deferred",
        "discord.command.outcome": "success", "bot.flow.severity": "FAST", "bot.flow.threshold_ms": 1000.0,
        "bot.flow.threshold_exceeded": False}),
    "guard_checks": ("guard_checks", "INTERNAL", {"players": 1, "bot.checkpoint": True}),
    "callback": ("POST /interactions/{interaction_id}/{interaction_token}/callback", "CLIENT", {
        "http.request.method": "POST", "url.template": "/interactions/{interaction_id}/{interaction_token}/callback",
        "server.address": "127.0.0.1",
        "url.full": "http://127.0.0.1:35445/api/v10/interactions/1577241695580557331/{interaction_token}/callback?with_response=1",
        "server.port": 35445, "discord.rest.webhook": True, "http.response.status_code": 200,
        "discord.ratelimit.bucket": "6a06feaf5ec524aaa35fbef61a6da27e", "discord.ratelimit.limit": 1000000000,
        "discord.ratelimit.remaining": 999999999, "discord.ratelimit.reset_after": 1.0}),
    "acquire": ("asyncpg.pool.acquire", "INTERNAL", {
        "db.system.name": "postgresql", "bot.db.pool.size": 10, "bot.db.pool.max_size": 10, "bot.db.pool.idle": 10,
        "db.client.connection.pool.name": "asyncpg.Pool@7f3160231220", "bot.db.pool.wait_ms": 0.04}),
    "select": ("SELECT otel_bot_bench_players", "CLIENT", {
        "db.system.name": "postgresql", "db.namespace": "test", "server.address": "127.0.0.1", "server.port": 5432,
        "network.transport": "tcp",
        "db.query.text": "SELECT id, mmr FROM otel_bot_bench_players WHERE id BETWEEN $1 AND $1 + 9 ORDER BY mmr DESC",
        "db.operation.name": "SELECT", "db.collection.name": "otel_bot_bench_players"}),
    "load_players": ("load_players", "INTERNAL", {"bot.checkpoint": True}),
    "executor": ("executor compute_mmr", "INTERNAL", {
        "bot.executor.kind": "thread", "bot.executor.class": "ThreadPoolExecutor",
        "code.function.name": "_harness.compute_mmr", "bot.executor.queue_wait_ms": 0.05, "thread.name": "asyncio_0",
        "thread.id": 139850080474816, "bot.executor.worker": "asyncio_0", "bot.executor.run_ms": 0.02}),
    "compute_mmr": ("compute_mmr", "INTERNAL", {"bot.checkpoint": True}),
    "update": ("UPDATE otel_bot_bench_players", "CLIENT", {
        "db.system.name": "postgresql", "db.namespace": "test", "server.address": "127.0.0.1", "server.port": 5432,
        "network.transport": "tcp", "db.query.text": "UPDATE otel_bot_bench_players SET games = games + 1 WHERE id = $1",
        "db.operation.name": "UPDATE", "db.collection.name": "otel_bot_bench_players"}),
    "message": ("POST /channels/{channel_id}/messages", "CLIENT", {
        "http.request.method": "POST", "url.template": "/channels/{channel_id}/messages", "server.address": "127.0.0.1",
        "url.full": "http://127.0.0.1:35445/api/v10/channels/1577241694959800323/messages", "server.port": 35445,
        "http.response.status_code": 200, "discord.ratelimit.bucket": "f7636bd717b6c7b28a00ec39bb138eb5",
        "discord.ratelimit.limit": 1000000000, "discord.ratelimit.remaining": 999999996,
        "discord.ratelimit.reset_after": 0.989}),
}


def raw_span_factory(tracer: Any) -> Callable[..., Any]:
    """``span("select")``: a raw SDK ``start_as_current_span`` with the stand-in name/kind/attributes;
    ``span("root")`` starts a new trace (explicit empty parent, as otel_bot's roots)."""
    from opentelemetry import context as otel_context
    from opentelemetry.trace import SpanKind

    kinds = {"SERVER": SpanKind.SERVER, "CLIENT": SpanKind.CLIENT, "INTERNAL": SpanKind.INTERNAL}
    specs = {k: (name, kinds[kind], attrs) for k, (name, kind, attrs) in RAW_SPANS.items()}

    def span(key: str) -> Any:
        name, kind, attrs = specs[key]
        if key == "root":
            return tracer.start_as_current_span(name, context=otel_context.Context(), kind=kind, attributes=attrs)
        return tracer.start_as_current_span(name, kind=kind, attributes=attrs)

    return span


@dataclass
class Workload:
    """A logged-in, READY ``commands.Bot`` with the benchmark's ``/queue`` slash command.

    One interaction = 3 checkpoints, 2 DB queries, 1 executor offload, 2 REST calls
    (the interaction callback through discord.py's webhook adapter, a channel message through
    ``HTTPClient.request``).
    """

    fake_thread: FakeDiscordThread
    db: Database
    use_checkpoints: bool
    raw_tracer: Any = None  # config R: write the same spans by hand with this SDK tracer
    bot: Any = None
    completed: int = 0
    errors: list[str] = field(default_factory=list)
    _waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)
    _counter: int = 0

    async def start(self) -> None:
        import discord
        from discord.ext import commands

        from otel_bot import checkpoint as otel_checkpoint

        checkpoint: Callable[..., Any] = otel_checkpoint if self.use_checkpoints else _no_checkpoint
        fake = self.fake_thread.fake
        intents = discord.Intents.default()
        intents.members = True
        bot = commands.Bot(command_prefix="!", intents=intents, application_id=fake.application_id)
        db = self.db
        loop = asyncio.get_running_loop()

        if self.raw_tracer is not None:
            span = raw_span_factory(self.raw_tracer)

            @bot.tree.command(name="queue", description="Join the ranked queue")
            async def queue_raw(interaction: discord.Interaction, player: int) -> None:
                try:
                    with span("root"):
                        with span("guard_checks"):
                            if player <= 0:
                                raise ValueError("bad player")
                        with span("callback"):
                            await interaction.response.defer()
                        with span("load_players"):
                            with span("acquire"):
                                pass
                            with span("select"):
                                rows = await db.top_players(player)
                        with span("compute_mmr"), span("executor"):
                            mmr = await loop.run_in_executor(None, compute_mmr, rows)
                        with span("acquire"):
                            pass
                        with span("update"):
                            await db.record_game(player)
                        channel = interaction.channel
                        assert channel is not None
                        with span("message"):
                            await channel.send(f"queued with {mmr}")  # type: ignore[union-attr]
                except Exception as exc:
                    if len(self.errors) < 20:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                    raise
                finally:
                    self._done()

            self.bot = bot
            await fake.login(bot)
            await fake.dispatch_ready(bot)
            return

        @bot.tree.command(name="queue", description="Join the ranked queue")
        async def queue(interaction: discord.Interaction, player: int) -> None:
            try:
                with checkpoint("guard_checks", players=1):
                    if player <= 0:
                        raise ValueError("bad player")
                await interaction.response.defer()  # REST 1: interaction callback (webhook adapter)
                with checkpoint("load_players"):
                    rows = await db.top_players(player)  # DB 1
                with checkpoint("compute_mmr"):
                    mmr = await loop.run_in_executor(None, compute_mmr, rows)  # executor offload
                await db.record_game(player)  # DB 2
                channel = interaction.channel
                assert channel is not None
                await channel.send(f"queued with {mmr}")  # type: ignore[union-attr]  # REST 2: HTTPClient.request
            except Exception as exc:
                if len(self.errors) < 20:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                raise
            finally:
                self._done()

        self.bot = bot
        await fake.login(bot)
        await fake.dispatch_ready(bot)

    def _done(self) -> None:
        self.completed += 1
        while self._waiters and self._waiters[0][0] <= self.completed:
            _, fut = self._waiters.pop(0)
            if not fut.done():
                fut.set_result(None)

    async def _wait_completed(self, n: int, timeout: float = 120.0) -> None:
        if self.completed >= n:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        self._waiters.sort(key=lambda item: item[0])
        await asyncio.wait_for(fut, timeout)

    def inject_one(self) -> None:
        fake = self.fake_thread.fake
        self._counter += 1
        payload = fake.payloads.slash_command("queue", {"player": 1 + self._counter % 990})
        fake.inject(self.bot, "INTERACTION_CREATE", payload)

    async def run(self, m: int, window: int, inject_context: Callable[[], Any] | None = None) -> None:
        """Run ``m`` interactions with at most ``window`` in flight; returns when all handlers
        finished and the tasks they created are done."""
        base = self.completed
        target = base + m
        sent = 0
        ctx = inject_context or contextlib.nullcontext
        baseline = set(asyncio.all_tasks())
        while sent < m:
            in_flight = sent - (self.completed - base)
            room = window - in_flight
            if room <= 0:
                await self._wait_completed(self.completed + 1)
                continue
            with ctx():
                for _ in range(min(room, m - sent)):
                    self.inject_one()
                    sent += 1
            await asyncio.sleep(0)
        await self._wait_completed(target)
        await settle(baseline)

    async def burst(self, n: int, inject_context: Callable[[], Any] | None = None, timeout: float = 300.0) -> float:
        """Inject ``n`` interactions at once; returns the seconds until all handlers finished."""
        ctx = inject_context or contextlib.nullcontext
        baseline = set(asyncio.all_tasks())
        target = self.completed + n
        t0 = time.perf_counter()
        with ctx():
            for _ in range(n):
                self.inject_one()
        await self._wait_completed(target, timeout)
        elapsed = time.perf_counter() - t0
        await settle(baseline)
        return elapsed

    async def close(self) -> None:
        if self.bot is not None:
            await self.bot.close()


async def settle(baseline: set[asyncio.Task[Any]], max_wait_s: float = 10.0) -> None:
    """Wait until every task created since ``baseline`` is done (root spans end when the last task
    their interaction created ends, a few loop iterations after the handler returns)."""
    deadline = time.monotonic() + max_wait_s
    while True:
        others = [t for t in asyncio.all_tasks() if t not in baseline and not t.done()]
        if not others:
            break
        if time.monotonic() > deadline:
            print(f"[bench] settle: {len(others)} tasks still running: {sorted({t.get_name() for t in others})[:5]}", file=sys.stderr)
            break
        await asyncio.sleep(0.001)
    for _ in range(5):
        await asyncio.sleep(0)


def rounded(value: float, digits: int = 2) -> float:
    return float(round(value, digits))


def dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def full_gc() -> None:
    gc.collect()
    gc.collect()


# --------------------------------------------------------------------------------------------------
# Does uninstrumenting restore discord.py exactly?


def _patchable_classes() -> list[type]:
    import asyncio.base_events
    import inspect as _inspect


    seen: dict[int, type] = {}
    modules = [m for name, m in sorted(sys.modules.items()) if name == "discord" or name.startswith("discord.")]
    modules.append(asyncio.base_events)
    for module in modules:
        for _, obj in _inspect.getmembers(module, _inspect.isclass):
            seen.setdefault(id(obj), obj)
    return list(seen.values())


def class_snapshot(classes: list[type]) -> dict[tuple[str, str, str], Any]:
    """Every attribute in the ``__dict__`` of ``classes``."""
    snap: dict[tuple[str, str, str], Any] = {}
    for cls in classes:
        for name, value in list(vars(cls).items()):
            snap[(cls.__module__, cls.__qualname__, name)] = value
    return snap


def snapshot_diff(before: dict[tuple[str, str, str], Any], after: dict[tuple[str, str, str], Any]) -> list[str]:
    """Attributes added, removed or replaced (compared with ``is``)."""
    out: list[str] = []
    for key in sorted(set(before) | set(after)):
        label = f"{key[0]}.{key[1]}.{key[2]}"
        if key not in after:
            out.append(f"removed {label}")
        elif key not in before:
            out.append(f"added {label}")
        elif before[key] is not after[key]:
            out.append(f"replaced {label}")
    return out


def check_uninstrument() -> dict[str, Any]:
    """Instrument and uninstrument otel_bot and opentelemetry-instrumentation-discordpy in turn and
    report what each leaves behind (``[]`` = exact originals restored)."""
    import discord

    import otel_bot
    from otel_bot import _instrument

    result: dict[str, Any] = {}
    client = discord.Client(intents=discord.Intents.default())  # (its constructor sets VoiceClient flags)
    for patch in _instrument.patch_table():  # import every patch target first
        patch.owner()
    with contextlib.suppress(ImportError):
        import opentelemetry_instrumentation_discordpy  # noqa: F401
    classes = _patchable_classes()  # the same classes before and after
    before = class_snapshot(classes)
    otel_bot.instrument_bot(client)
    patched = snapshot_diff(before, class_snapshot(classes))
    otel_bot.uninstrument_bot(client)
    result["otel_bot"] = {"patched_attributes": len(patched), "left_behind": snapshot_diff(before, class_snapshot(classes))}
    try:
        from opentelemetry_instrumentation_discordpy import DiscordPyInstrumentor
    except ImportError as exc:
        result["opentelemetry-instrumentation-discordpy"] = {"error": f"not installed: {exc}"}
        return result
    before = class_snapshot(classes)
    inst = DiscordPyInstrumentor()
    inst.instrument(**D_OPTIONS)
    patched = snapshot_diff(before, class_snapshot(classes))
    inst.uninstrument()
    result["opentelemetry-instrumentation-discordpy"] = {
        "patched_attributes": len(patched),
        "left_behind": snapshot_diff(before, class_snapshot(classes)),
    }
    return result


#: opentelemetry-instrumentation-discordpy 0.1.33 with every option it has switched on (these are
#: all the keyword arguments its ``DiscordPyInstrumentor._instrument`` reads; all default to True).
D_OPTIONS: dict[str, Any] = {
    "collect_metrics": True,
    "instrument_event_listeners": True,
    "instrument_message_operations": True,
    "instrument_commands": True,
    "instrument_http": True,
    "instrument_voice": True,
}

"""What tracing costs a discord.py bot: otel_bot against no instrumentation, the raw SDK and
opentelemetry-instrumentation-discordpy.

Usage::

    .venv/bin/python benchmarks/overhead.py            # full run (~5-8 min on 2 cores)
    .venv/bin/python benchmarks/overhead.py --quick    # CI smoke run (seconds; asserts no timings)
    .venv/bin/python benchmarks/soak.py                # 50,000 interactions, RSS / leak check
    .venv/bin/python benchmarks/burst.py               # 1,000 interactions in flight at once

Workload: M slash-command interactions through the offline Discord (``otel_bot.testing``, zero
injected latency), each with 3 checkpoints, 2 DB queries (PostgreSQL through an asyncpg pool of 10
when reachable, else SQLite), 1 executor offload and 2 REST calls (the interaction callback and a
channel message), at most ``--window`` in flight.

Configurations, interleaved in rounds A B C D E R A B C D E R ... so that machine drift cancels:

* A  no instrumentation (the command's checkpoints are no-op context managers)
* B  otel_bot, ``configure_tracing`` with a null exporter behind its BatchSpanProcessor
* C  otel_bot, ``configure_tracing`` exporting OTLP/gRPC to ``otel_bot.testing.otlp.OTLPReceiver``
  (the receiver runs in this coordinator process, so decoding is not billed to the bot)
* D  opentelemetry-instrumentation-discordpy 0.1.33, every option on (metrics into an SDK
  MeterProvider), spans into the same configure_tracing pipeline + null exporter as B
* E  otel_bot instrumented as in B but switched off: every interaction is dispatched inside
  ``suppress_instrumentation()``
* R  no otel_bot: the command writes the same 11 spans (names, kinds, 81 attributes) by hand with
  the raw SDK (``tracer.start_as_current_span``), into the same pipeline as B: the SDK floor in
  the real workload, for "cost per span" comparisons (B vs R)

opentelemetry-instrumentation-discordpy cannot be uninstrumented cleanly (it leaves wrappers on
``Client.dispatch``, ``HTTPClient.request``, the voice client and class attributes on every
``Messageable``; see ``uninstrument_check`` in the results). So each configuration runs in its own
long-lived worker process (same code, same warm-up); the coordinator tells them in turn to run one
round, A B C D E A B C D E ..., so only one worker runs at a time.

CPU is the worker's process CPU (all threads: the bot's loop, the BatchSpanProcessor's export
thread, the executor, *and* the offline Discord's thread). The offline Discord's own thread CPU is
measured separately and also reported subtracted ("bot CPU").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as H

CONFIGS = ("A", "B", "C", "D", "E", "R")
LABELS = {
    "A": "no instrumentation",
    "B": "otel_bot, BatchSpanProcessor + null exporter",
    "C": "otel_bot, OTLP/gRPC to the test receiver",
    "D": "opentelemetry-instrumentation-discordpy 0.1.33, all options on",
    "E": "otel_bot installed, switched off (suppress_instrumentation)",
    "R": "raw SDK by hand: the same 11 spans and 81 attributes, no otel_bot",
    "P": "B with a patched copy of otel_bot (--proto-path)",
}
#: ``--ablation``: B with one feature switched off, to see what each feature costs (per span).
ABLATIONS: dict[str, tuple[dict[str, Any], bool]] = {
    "B-rest": ({"trace_rest": False}, True),
    "B-db": ({"trace_db": False}, True),
    "B-executor": ({"trace_executor": False}, True),
    "B-loopwatch": ({"blocking_threshold_ms": None}, True),
    "B-sla": ({"default_threshold_ms": None}, True),
    "B-checkpoints": ({}, False),
}
LABELS.update({
    "B-rest": "B without REST spans (trace_rest=False)",
    "B-db": "B without DB spans (trace_db=False)",
    "B-executor": "B without executor spans (trace_executor=False)",
    "B-loopwatch": "B without the blocked-loop detector (blocking_threshold_ms=None)",
    "B-sla": "B without the default threshold verdict (default_threshold_ms=None)",
    "B-checkpoints": "B without the 3 checkpoint() calls",
})
NOTES = [
    "Each configuration runs in its own worker process, all started the same way and warmed up alike; the "
    "coordinator asks them for one round each in turn (A B C D E R, A B C D E R, ...). One process per "
    "configuration because opentelemetry-instrumentation-discordpy 0.1.33 cannot be uninstrumented: see "
    "uninstrument_check (otel_bot restores the exact originals).",
    "CPU is the worker's whole-process CPU time (getrusage: every thread, the offline Discord's included); "
    "'bot CPU' subtracts the offline Discord thread's own CPU clock. Throughput is interactions per second of "
    "wall time with --window interactions in flight.",
    "D records 3 spans per interaction (AppCommand.invoke_namespace root with option values and user names, "
    "TextChannel.send, the HTTPClient request); it sees neither the interaction callback (webhook adapter), "
    "the DB queries, the executor nor the steps. Its metrics go to an SDK MeterProvider with an in-memory reader.",
    "R is the SDK floor inside the real workload: the command creates the same 11 spans with the same names, "
    "kinds and 81 attributes by hand (tracer.start_as_current_span, attributes at start), into the same "
    "configure_tracing pipeline as B. 'per span' = (config - A) / spans per interaction.",
]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MARK = "@@"  # worker -> coordinator result lines start with this


# ==================================================================================================
# Worker: one configuration, one process


class _Worker:
    def __init__(self, config: str, otlp_endpoint: str | None, db_prefer: str) -> None:
        self.options, self.use_checkpoints = ABLATIONS.get(config, ({}, config in ("B", "C", "E", "P")))
        config = "B" if config == "P" else config[0]
        self.config = config
        self.otlp_endpoint = otlp_endpoint
        self.db_prefer = db_prefer
        self.provider: Any = None
        self.exporter: Any = None
        self.inject_context: Any = None
        self.fake: H.FakeDiscordThread | None = None
        self.db = H.Database()
        self.workload: H.Workload | None = None

    def _tracing(self) -> None:
        from otel_bot import configure_tracing

        if self.config == "A":
            return
        if self.config == "C":
            assert self.otlp_endpoint, "config C needs --otlp-endpoint"
            self.provider = configure_tracing(
                service_name="bench", exporter="otlp", protocol="grpc", endpoint=self.otlp_endpoint, handle_sigterm=False
            )
        else:
            self.exporter = H.null_exporter()
            self.provider = configure_tracing(service_name="bench", exporter=self.exporter, handle_sigterm=False)

    def _instrument(self) -> None:
        assert self.workload is not None
        if self.config in ("B", "C", "E"):
            from otel_bot import instrument_bot

            instrument_bot(self.workload.bot, tracer_provider=self.provider, **self.options)
        if self.config == "E":
            from opentelemetry.instrumentation.utils import suppress_instrumentation

            self.inject_context = suppress_instrumentation

    async def setup(self, warmup: int, window: int) -> dict[str, Any]:
        self._tracing()
        if self.config == "D":  # its wrappers must be in place before the bot and its commands exist
            self._instrument_d_early()
        self.fake = H.FakeDiscordThread()
        await self.db.open(prefer=self.db_prefer)
        raw = self.provider.get_tracer("bench.raw") if self.config == "R" else None
        self.workload = H.Workload(self.fake, self.db, use_checkpoints=self.use_checkpoints, raw_tracer=raw)
        await self.workload.start()
        if self.config != "D":
            self._instrument()
        left = warmup
        while left > 0:  # in chunks, so that the offline Discord's records stay small
            await self.workload.run(min(left, 1000), window, self.inject_context)
            self.fake.trim()
            left -= 1000
        self._flush()
        H.full_gc()
        import otel_bot

        return {"ready": True, "otel_bot_file": otel_bot.__file__, "db": self.db.kind, "rss_after_warmup": H.rss_bytes(), "warmup_errors": self.workload.errors[:5]}

    def _instrument_d_early(self) -> None:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry_instrumentation_discordpy import DiscordPyInstrumentor

        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
        DiscordPyInstrumentor().instrument(tracer_provider=self.provider, **H.D_OPTIONS)

    def _flush(self) -> None:
        if self.provider is not None:
            self.provider.force_flush()

    def _counts(self) -> tuple[int, int, int]:
        """(spans exported, root spans exported (null exporter only, else -1), spans dropped)."""
        from otel_bot import export_stats

        stats = export_stats(self.provider) if self.provider is not None else None
        exported = stats.exported if stats is not None else 0
        dropped = stats.dropped if stats is not None else 0
        roots = self.exporter.roots if self.exporter is not None else -1
        return exported, roots, dropped

    async def round(self, m: int, window: int) -> dict[str, Any]:
        assert self.workload is not None and self.fake is not None
        H.full_gc()
        errors_before = len(self.workload.errors)
        exported0, roots0, dropped0 = self._counts()
        cpu0 = H.process_cpu_s()
        fake0 = self.fake.cpu_s()
        t0 = time.perf_counter()
        await self.workload.run(m, window, self.inject_context)
        wall = time.perf_counter() - t0
        self._flush()
        cpu = H.process_cpu_s() - cpu0
        fake_cpu = self.fake.cpu_s() - fake0
        exported1, roots1, dropped1 = self._counts()
        self.fake.trim()
        return {
            "m": m,
            "wall_s": wall,
            "cpu_s": cpu,
            "fake_cpu_s": fake_cpu,
            "spans": exported1 - exported0,
            "roots": (roots1 - roots0) if roots0 >= 0 else None,
            "dropped": dropped1 - dropped0,
            "errors": len(self.workload.errors) - errors_before,
            "rss": H.rss_bytes(),
        }

    def final(self) -> dict[str, Any]:
        H.full_gc()
        return {"rss_end": H.rss_bytes(), "leaks": leak_report(), "errors_sample": self.workload.errors[:5] if self.workload else []}

    async def close(self) -> None:
        if self.workload is not None:
            await self.workload.close()
        await self.db.close()
        if self.fake is not None:
            self.fake.stop()
        if self.provider is not None:
            self.provider.shutdown()


def leak_report() -> dict[str, int]:
    """Objects that would grow with the number of interactions if something leaked."""
    import gc

    counts: dict[str, int] = {"asyncio_tasks": 0}
    with contextlib.suppress(RuntimeError):
        counts["asyncio_tasks"] = len(asyncio.all_tasks())
    names = {
        "opentelemetry.sdk.trace._Span": "sdk_spans_alive",
        "otel_bot._state.WorkUnit": "work_units_alive",
        "otel_bot._roots.Root": "roots_alive",
        "discord.interactions.Interaction": "interactions_alive",
    }
    for key in names.values():
        counts[key] = 0
    for obj in gc.get_objects():
        t = type(obj)
        found = names.get(f"{t.__module__}.{t.__qualname__}")
        if found is not None:
            counts[found] += 1
    mod = sys.modules.get("otel_bot._interactions")
    if mod is not None and hasattr(mod, "_BY_ID"):
        counts["otel_bot_interactions_by_id"] = len(mod._BY_ID)
    return counts


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str]) -> None:
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line.strip())
    loop.call_soon_threadsafe(queue.put_nowait, "quit")


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _worker_main(args: argparse.Namespace) -> None:
    worker = _Worker(args.worker, args.otlp_endpoint, args.db)
    try:
        _emit(await worker.setup(args.warmup, args.window))
        queue: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=_stdin_lines, args=(loop, queue), name="bench-stdin", daemon=True).start()
        while True:
            cmd = await queue.get()
            if cmd == "run":
                _emit(await worker.round(args.interactions, args.window))
            elif cmd == "quit":
                _emit(worker.final())
                break
    finally:
        await worker.close()


# ==================================================================================================
# Coordinator


class _Proc:
    def __init__(self, config: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.config = config
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env)

    def read(self, timeout: float = 600.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.config} exited with {self.proc.wait()}")
            if line.startswith(MARK):
                return dict(json.loads(line[len(MARK):]))
            sys.stderr.write(f"[worker {self.config}] {line}")
        raise TimeoutError(f"worker {self.config} did not answer")

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def summarise(rounds: dict[str, list[dict[str, Any]]], finals: dict[str, dict[str, Any]],
              ready: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cfg, rs in rounds.items():
        cpu_us = [r["cpu_s"] / r["m"] * 1e6 for r in rs]
        bot_us = [(r["cpu_s"] - r["fake_cpu_s"]) / r["m"] * 1e6 for r in rs]
        fake_us = [r["fake_cpu_s"] / r["m"] * 1e6 for r in rs]
        tput = [r["m"] / r["wall_s"] for r in rs]
        spans = sum(r["spans"] for r in rs)
        m_total = sum(r["m"] for r in rs)
        roots = [r["roots"] for r in rs if r["roots"] is not None]
        out[cfg] = {
            "label": LABELS[cfg],
            "rounds": len(rs),
            "interactions": m_total,
            "cpu_us_per_interaction": _median(cpu_us),
            "cpu_us_per_interaction_rounds": [H.rounded(x, 1) for x in cpu_us],
            "bot_cpu_us_per_interaction": _median(bot_us),
            "fake_discord_cpu_us_per_interaction": _median(fake_us),
            "throughput_per_s": _median(tput),
            "spans_per_interaction": spans / m_total if m_total else 0.0,
            "spans_total": spans,
            "root_spans_total": sum(roots) if roots else None,
            "dropped_spans": sum(r["dropped"] for r in rs),
            "handler_errors": sum(r["errors"] for r in rs),
            "rss_after_warmup_mb": ready[cfg]["rss_after_warmup"] / 2**20,
            "rss_end_mb": finals[cfg]["rss_end"] / 2**20,
            "rss_growth_mb": (finals[cfg]["rss_end"] - ready[cfg]["rss_after_warmup"]) / 2**20,
            "rss_growth_pct": 100.0 * (finals[cfg]["rss_end"] - ready[cfg]["rss_after_warmup"]) / ready[cfg]["rss_after_warmup"],
            "leaks": finals[cfg]["leaks"],
            "db": ready[cfg]["db"],
        }
    return out


def ratios(per: dict[str, Any]) -> dict[str, Any]:
    r: dict[str, Any] = {}
    if "A" not in per:
        return r
    a = per["A"]
    for cfg in ("B", "C", "D", "E", "R"):
        if cfg in per:
            r[f"{cfg}/A cpu"] = per[cfg]["cpu_us_per_interaction"] / a["cpu_us_per_interaction"]
            r[f"{cfg}/A bot cpu"] = per[cfg]["bot_cpu_us_per_interaction"] / a["bot_cpu_us_per_interaction"]
            r[f"{cfg}-A cpu us per interaction"] = per[cfg]["cpu_us_per_interaction"] - a["cpu_us_per_interaction"]
    for cfg in ABLATIONS:
        if cfg in per and "B" in per:
            dcpu = per["B"]["cpu_us_per_interaction"] - per[cfg]["cpu_us_per_interaction"]
            dspans = per["B"]["spans_per_interaction"] - per[cfg]["spans_per_interaction"]
            r[f"{cfg}: cpu us per interaction saved"] = dcpu
            r[f"{cfg}: spans per interaction saved"] = dspans
            if dspans > 0:
                r[f"{cfg}: cpu us per span of the feature"] = dcpu / dspans
    for cfg in ("B", "C", "D", "R"):
        if cfg in per and per[cfg]["spans_per_interaction"] > 0:
            r[f"{cfg} cpu us per span"] = (per[cfg]["cpu_us_per_interaction"] - a["cpu_us_per_interaction"]) / per[cfg]["spans_per_interaction"]
    if "B cpu us per span" in r and "D cpu us per span" in r:
        r["B/D cpu per span"] = r["B cpu us per span"] / r["D cpu us per span"]
    if "B cpu us per span" in r and "R cpu us per span" in r:
        r["B/R cpu per span"] = r["B cpu us per span"] / r["R cpu us per span"]
    return r


def run_rounds(args: argparse.Namespace) -> dict[str, Any]:
    from otel_bot.testing.otlp import OTLPReceiver

    configs = [c for c in CONFIGS if c in args.configs]
    if args.ablation:
        configs += [c for c in ABLATIONS if c not in configs]
    if args.proto_path:
        configs.append("P")
    notes: list[str] = []
    if "D" in configs and not _have_d():
        configs.remove("D")
        notes.append("config D skipped: opentelemetry-instrumentation-discordpy is not installed "
                     "(pip install -e '.[bench]')")
        print(f"[bench] {notes[-1]}", file=sys.stderr)
    receiver = OTLPReceiver().start() if "C" in configs else None
    script = str(Path(__file__).resolve())
    procs: dict[str, _Proc] = {}
    rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    ready: dict[str, dict[str, Any]] = {}
    finals: dict[str, dict[str, Any]] = {}
    received_roots = 0
    received_spans = 0
    try:
        for cfg in configs:  # start them one after the other (warm-up is CPU heavy)
            argv = [sys.executable, script, "--worker", cfg, "-m", str(args.interactions), "--window", str(args.window),
                    "--warmup", str(args.warmup), "--db", args.db]
            if receiver is not None:
                argv += ["--otlp-endpoint", receiver.grpc_endpoint]
            env = None
            if cfg == "P":
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(args.proto_path), os.environ.get("PYTHONPATH", "")) if p)}
            procs[cfg] = _Proc(cfg, argv, env)
            ready[cfg] = procs[cfg].read()
            if receiver is not None:
                receiver.clear()
            print(f"[bench] worker {cfg} ready ({ready[cfg]['db']}, {ready[cfg]['otel_bot_file']})", file=sys.stderr)
        for n in range(args.rounds):
            for cfg in configs:
                procs[cfg].send("run")
                result = procs[cfg].read()
                if cfg == "C" and receiver is not None:
                    got = receiver.spans
                    receiver.clear()
                    result["roots"] = sum(1 for s in got if s.parent_span_id is None)
                    received_roots += result["roots"]
                    received_spans += len(got)
                rounds[cfg].append(result)
                print(f"[bench] round {n + 1}/{args.rounds} {cfg}: {result['cpu_s'] / result['m'] * 1e6:8.1f} us/interaction, "
                      f"{result['m'] / result['wall_s']:7.1f}/s, {result['spans'] / result['m']:.2f} spans", file=sys.stderr)
        for cfg in configs:
            procs[cfg].send("quit")
            finals[cfg] = procs[cfg].read()
    finally:
        for p in procs.values():
            p.close()
        if receiver is not None:
            receiver.stop()
    per = summarise(rounds, finals, ready)
    if "C" in per:
        per["C"]["received_by_receiver"] = received_spans
    return {"configs": per, "ratios": ratios(per), "raw_rounds": rounds, "notes": notes}


def _have_d() -> bool:
    import importlib.util

    return importlib.util.find_spec("opentelemetry_instrumentation_discordpy") is not None


def _run_json_script(name: str, extra: list[str]) -> dict[str, Any]:
    script = str(Path(__file__).resolve().parent / name)
    out = subprocess.run([sys.executable, script, "--json", *extra], check=True, stdout=subprocess.PIPE, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith(MARK)]
    return dict(json.loads(lines[-1][len(MARK):]))


def _uninstrument_check() -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--check-uninstrument"], check=True,
                         stdout=subprocess.PIPE, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith(MARK)]
    return dict(json.loads(lines[-1][len(MARK):]))


# ==================================================================================================
# Output


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    t: list[dict[str, Any]] = []
    micro = result.get("micro") or {}
    cp = micro.get("checkpoint_vs_sdk")
    if cp:
        t.append({"target": "otel_bot cost per span <= 1.25 x raw SDK span (checkpoint vs start_as_current_span)",
                  "measured": f"{cp['ratio']:.2f} x", "met": cp["ratio"] <= 1.25})
    br = result.get("ratios", {}).get("B/R cpu per span")
    if br is not None:
        rr = result["ratios"]
        t.append({"target": "otel_bot cost per span <= 1.25 x raw SDK span, in the bot (B vs the same spans by hand, R)",
                  "measured": f"{rr['B cpu us per span']:.1f} us / {rr['R cpu us per span']:.1f} us = {br:.2f} x",
                  "met": br <= 1.25})
    off = micro.get("off_path")
    if off:
        worst = max(v["overhead_us"] for v in off.values())
        t.append({"target": "off path <= 2 us per wrapped call", "measured": f"worst {worst:.2f} us", "met": worst <= 2.0})
    bd = result.get("ratios", {}).get("B/D cpu per span")
    per = result.get("configs", {})
    if bd is not None:
        more = per["B"]["spans_per_interaction"] > per["D"]["spans_per_interaction"]
        t.append({"target": "per span cheaper than opentelemetry-instrumentation-discordpy while recording more",
                  "measured": f"B/D per span {bd:.2f}; spans {per['B']['spans_per_interaction']:.1f} vs {per['D']['spans_per_interaction']:.1f}",
                  "met": bd < 1.0 and more})
    burst = result.get("burst")
    if burst:
        for b in [burst, *burst.get("variants", [])]:
            ok = b["completed"] == b["n"] and b["roots_received"] == b["n"] and b["dropped"] == 0
            setting = f"{b.get('queue_setting', 'configure_tracing default')}, collector delay {b.get('collector_delay_s', 0)} s"
            informational = b.get("queue_setting", "").startswith("max_queue_size")
            t.append({"target": (f"burst of {b['n']} in flight (pool {b['pool_size']}), {setting}: "
                                 + ("drops counted (SDK-default queue, for comparison)" if informational
                                    else "all complete, all traced, no drops")),
                      "measured": (f"{b['completed']} completed, {b['roots_received']} roots received, "
                                   f"{b['dropped']} dropped (counted), peak queue {b['peak_queue_size']}"),
                      "met": (b["dropped"] == b["dropped_queue_full"] + b["failed_export"]) if informational else ok})
    soak = result.get("soak")
    if soak:
        t.append({"target": f"RSS stable within 5% after {soak['interactions']} interactions",
                  "measured": f"{soak['rss_growth_pct']:+.2f} %", "met": abs(soak["rss_growth_pct"]) <= 5.0})
    return t


def markdown(result: dict[str, Any]) -> str:
    per = result.get("configs", {})
    r = result.get("ratios", {})
    mi = result["machine"]
    lines = [
        f"# otel_bot overhead benchmark ({result['mode']} run, {result['started_at']})",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {mi['cpu_model']}, {mi['cpus_usable']} usable cores, {mi['os']}, Python {mi['python']}; "
        + ", ".join(f"{k} {v}" for k, v in mi["packages"].items() if v),
        "",
        f"Workload: {result['params']['interactions']} interactions per round x {result['params']['rounds']} rounds per "
        f"configuration, interleaved {' '.join(per)}; window {result['params']['window']} in flight; "
        f"DB: {next(iter(per.values()))['db'] if per else '?'}. Each interaction: 3 checkpoints, 2 DB queries, 1 executor "
        "offload, 2 REST calls. Medians over rounds.",
        "",
        "| config | CPU us / interaction | bot CPU us / interaction | throughput / s | spans / interaction | RSS growth (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for cfg, v in per.items():
        lines.append(
            f"| {cfg}: {v['label']} | {v['cpu_us_per_interaction']:.0f} | {v['bot_cpu_us_per_interaction']:.0f} | "
            f"{v['throughput_per_s']:.0f} | {v['spans_per_interaction']:.2f} | {v['rss_growth_mb']:+.1f} |"
        )
    if r:
        lines += ["", "| ratio | value |", "|---|---:|"]
        for k, v in r.items():
            lines.append(f"| {k} | {v:.3f} |")
    micro = result.get("micro")
    if micro:
        lines += ["", "## Microbenchmarks (median ns per call)", "", "| what | ns / call |", "|---|---:|"]
        for k, v in micro.get("table", {}).items():
            lines.append(f"| {k} | {v:.0f} |")
        off = micro.get("off_path", {})
        if off:
            lines += ["", "| off path (suppress_instrumentation), per wrapped call | wrapped ns | bare ns | overhead us |", "|---|---:|---:|---:|"]
            for k, v in off.items():
                lines.append(f"| {k} | {v['wrapped_ns']:.0f} | {v['bare_ns']:.0f} | {v['overhead_us']:.2f} |")
    burst = result.get("burst")
    if burst:
        lines += ["", "## Burst (OTLP/gRPC to the test receiver, asyncpg pool of 10)", "",
                  "| queue | collector delay per export | completed | roots received | spans exported | dropped (queue full / failed) | peak queue |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for b in [burst, *burst.get("variants", [])]:
            lines.append(f"| {b.get('queue_setting', 'configure_tracing default')} (max {b['max_queue_size']}) | "
                         f"{b.get('collector_delay_s', 0)} s | {b['completed']} / {b['n']} | {b['roots_received']} | "
                         f"{b['spans_exported']} | {b['dropped_queue_full']} / {b['failed_export']} | {b['peak_queue_size']} |")
    notes = result.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    t = result.get("targets")
    if t:
        lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
        for item in t:
            lines.append(f"| {item['target']} | {item['measured']} | {'yes' if item['met'] else 'NO'} |")
    u = result.get("uninstrument_check")
    if u:
        lines += ["", "## Uninstrument check", ""]
        for name, v in u.items():
            left = v.get("left_behind", [])
            lines.append(f"- {name}: {v.get('patched_attributes')} attributes patched; "
                         + ("exact originals restored" if not left else f"{len(left)} left behind: " + ", ".join(left[:8]) + (" ..." if len(left) > 8 else "")))
    return "\n".join(lines) + "\n"


def print_table(result: dict[str, Any]) -> None:
    print(markdown(result))


def write(result: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    jp = out_dir / f"{stem}.json"
    mp = out_dir / f"{stem}.md"
    jp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    mp.write_text(markdown(result), encoding="utf-8")
    return jp, mp


# ==================================================================================================


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="CI smoke run: tiny M, 1 round; asserts nothing about timings")
    p.add_argument("-m", "--interactions", type=int, default=None, help="interactions per round (full: 1500)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per configuration (full: 8)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up interactions per worker (full: 2000)")
    p.add_argument("--window", type=int, default=16, help="interactions in flight (default 16)")
    p.add_argument("--configs", default="ABCDER")
    p.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql", help="postgresql falls back to sqlite")
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    p.add_argument("--stem", default=None, help="output file name stem (default: overhead or overhead-quick)")
    p.add_argument("--no-micro", action="store_true")
    p.add_argument("--no-burst", action="store_true")
    p.add_argument("--burst", type=int, default=None, help="burst size (full: 1000)")
    p.add_argument("--ablation", action="store_true", help="add B variants with one feature off each")
    p.add_argument("--proto-path", type=Path, default=None,
                   help="add config P: B with otel_bot imported from this directory (a patched copy)")
    p.add_argument("--worker", choices=(*CONFIGS, *ABLATIONS, "P"), help=argparse.SUPPRESS)
    p.add_argument("--otlp-endpoint", help=argparse.SUPPRESS)
    p.add_argument("--check-uninstrument", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        defaults = {"interactions": 40, "rounds": 1, "warmup": 10, "burst": 100}
    else:
        defaults = {"interactions": 1500, "rounds": 8, "warmup": 2000, "burst": 1000}
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        asyncio.run(_worker_main(args))
        return 0
    if args.check_uninstrument:
        _emit(H.check_uninstrument())
        return 0
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.perf_counter()
    command = "python benchmarks/overhead.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started_at": started,
        "command": command.strip(),
        "machine": H.machine_info(),
        "params": {"interactions": args.interactions, "rounds": args.rounds, "warmup": args.warmup,
                   "window": args.window, "configs": args.configs, "burst": args.burst},
    }
    result.update(run_rounds(args))
    if not args.no_micro:
        result["micro"] = _run_json_script("micro.py", ["--quick"] if args.quick else [])
    if not args.no_burst:
        result["burst"] = _run_json_script("burst.py", ["-n", str(args.burst), *([] if args.quick else ["--variants"])])
    result["uninstrument_check"] = _uninstrument_check()
    result.setdefault("notes", []).extend(NOTES)
    result["targets"] = targets(result)
    result["elapsed_s"] = time.perf_counter() - t0
    stem = args.stem or ("overhead-quick" if args.quick else "overhead")
    jp, mp = write(result, args.out, stem)
    print_table(result)
    print(f"wrote {jp} and {mp} in {result['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

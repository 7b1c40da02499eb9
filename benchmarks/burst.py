"""Burst: N interactions (default 1,000) in flight at once, a PostgreSQL pool of 10, exported over
OTLP/gRPC with the queue settings ``configure_tracing`` picks by default.

Checks that every interaction completes, that every one is traced (root spans counted at the
receiver, which runs in this coordinator process), and counts any span the export pipeline
dropped (``otel_bot.export_stats()``: queue full or failed export). The peak queue length seen
during the burst is sampled every 5 ms.

    .venv/bin/python benchmarks/burst.py [-n 1000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as H

MARK = "@@"


async def _worker(n: int, endpoint: str, warmup: int, max_queue_size: int | None) -> dict[str, Any]:
    from otel_bot import configure_tracing, export_stats, instrument_bot

    provider = configure_tracing(service_name="bench-burst", exporter="otlp", protocol="grpc", endpoint=endpoint,
                                 max_queue_size=max_queue_size, handle_sigterm=False)
    fake = H.FakeDiscordThread()
    db = H.Database()
    await db.open(pool_size=H.POOL_SIZE)
    workload = H.Workload(fake, db, use_checkpoints=True)
    await workload.start()
    instrument_bot(workload.bot, tracer_provider=provider)
    await workload.run(warmup, 16)
    provider.force_flush()
    fake.trim()
    before = export_stats(provider)
    errors_before = len(workload.errors)
    peak = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, export_stats(provider).queue_size)
            await asyncio.sleep(0.005)

    sampler = asyncio.get_running_loop().create_task(sample(), name="bench-sampler")
    completed_before = workload.completed
    cpu0 = H.process_cpu_s()
    elapsed = await workload.burst(n)
    stop.set()
    await sampler
    t0 = time.perf_counter()
    flushed = provider.force_flush(60_000)
    flush_s = time.perf_counter() - t0
    cpu = H.process_cpu_s() - cpu0
    after = export_stats(provider)
    result = {
        "n": n,
        "pool_size": H.POOL_SIZE,
        "db": db.kind,
        "completed": workload.completed - completed_before,
        "handler_errors": len(workload.errors) - errors_before,
        "error_samples": workload.errors[errors_before:errors_before + 5],
        "burst_wall_s": elapsed,
        "flush_s": flush_s,
        "flushed": flushed,
        "cpu_s": cpu,
        "spans_exported": after.exported - before.exported,
        "dropped_queue_full": after.dropped_queue_full - before.dropped_queue_full,
        "failed_export": after.failed_export - before.failed_export,
        "dropped": after.dropped - before.dropped,
        "max_queue_size": after.max_queue_size,
        "peak_queue_size": peak,
    }
    await workload.close()
    await db.close()
    fake.stop()
    provider.shutdown()
    return result


def run(n: int, warmup: int = 50, collector_delay_s: float = 0.0, max_queue_size: int | None = None) -> dict[str, Any]:
    """One burst; ``collector_delay_s`` makes the receiver answer every export that much later (a
    slow collector); ``max_queue_size`` overrides configure_tracing's queue (None: its default)."""
    from otel_bot.testing.otlp import OTLPReceiver

    receiver = OTLPReceiver().start()
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "-n", str(n), "--warmup", str(warmup),
                "--endpoint", receiver.grpc_endpoint]
        if max_queue_size is not None:
            argv += ["--max-queue-size", str(max_queue_size)]
        if collector_delay_s:
            receiver.set_delay(collector_delay_s)
        proc = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True, timeout=900)
        lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
        result: dict[str, Any] = json.loads(lines[-1][len(MARK):])
        spans = receiver.spans
        roots = [s for s in spans if s.parent_span_id is None and s.name == "/queue"]
        # the warm-up's spans arrived too: count the burst's roots by trace, after the warm-up
        result["spans_received"] = len(spans)
        result["roots_received_total"] = len(roots)
        result["roots_received"] = len(roots) - warmup
        result["receiver_export_requests"] = receiver.export_requests
        result["collector_delay_s"] = collector_delay_s
        result["queue_setting"] = "configure_tracing default" if max_queue_size is None else f"max_queue_size={max_queue_size}"
    finally:
        receiver.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="otel_bot burst benchmark")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.add_argument("--collector-delay", type=float, default=0.0, help="seconds the receiver waits before answering each export")
    p.add_argument("--max-queue-size", type=int, default=None, help="override configure_tracing's queue size")
    p.add_argument("--variants", action="store_true",
                   help="also run: slow collector (0.5 s per export); SDK-default queue (2048) + slow collector")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        sys.stdout.write(MARK + json.dumps(asyncio.run(_worker(args.n, args.endpoint, args.warmup, args.max_queue_size))) + "\n")
        return 0
    result = run(args.n, args.warmup, args.collector_delay, args.max_queue_size)
    if args.variants:
        result["variants"] = [run(args.n, args.warmup, 0.5, None), run(args.n, args.warmup, 0.5, 2048)]
    if args.json:
        sys.stdout.write(MARK + json.dumps(result) + "\n")
    else:
        print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

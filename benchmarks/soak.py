"""Soak: 50,000 interactions through one instrumented bot; is memory stable?

RSS is read after a warm-up (default 10,000 interactions: otel_bot's largest bounded cache, the
8,192 recent interaction-token hashes in ``_routes``, is full by then, as it is in any bot that
has run for a while) and then every ``--every`` interactions until the end; the target is end vs
warm-up within 5 %. Alongside, what would grow if spans,
tasks or per-interaction state leaked: live SDK spans, WorkUnits, Roots, Interaction objects,
asyncio tasks and otel_bot's per-interaction registry. The offline Discord forgets what it
recorded every 1,000 interactions (its own stores would otherwise grow, and the allocator would
keep that peak as RSS).

    .venv/bin/python benchmarks/soak.py [-n 50000] [--warmup 10000] [--config B|C|E] [--json]
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
import overhead

MARK = "@@"


async def _run(n: int, warmup: int, every: int, config: str, window: int, endpoint: str | None) -> dict[str, Any]:
    worker = overhead._Worker(config, endpoint, "postgresql")
    try:
        ready = await worker.setup(warmup, window)
        assert worker.workload is not None and worker.fake is not None
        rss_warm = ready["rss_after_warmup"]
        leaks_warm = overhead.leak_report()
        samples: list[dict[str, Any]] = []
        done = 0
        t0 = time.perf_counter()
        cpu0 = H.process_cpu_s()
        spans = 0
        while done < n:
            step = min(every, n - done)
            left = step
            while left > 0:  # rounds of 1,000: the offline Discord forgets its records after each
                r = await worker.round(min(left, 1000), window)
                spans += r["spans"]
                left -= 1000
            done += step
            H.full_gc()
            samples.append({"interactions": done, "rss_mb": H.rss_bytes() / 2**20, "elapsed_s": time.perf_counter() - t0})
            print(f"[soak] {done:6d} interactions, RSS {samples[-1]['rss_mb']:.1f} MB", file=sys.stderr)
        cpu = H.process_cpu_s() - cpu0
        final = worker.final()
        return {
            "config": config,
            "label": overhead.LABELS[config],
            "interactions": n,
            "warmup": warmup,
            "db": worker.db.kind,
            "rss_after_warmup_mb": rss_warm / 2**20,
            "rss_end_mb": final["rss_end"] / 2**20,
            "rss_growth_pct": 100.0 * (final["rss_end"] - rss_warm) / rss_warm,
            "rss_max_mb": max(s["rss_mb"] for s in samples),
            # from the sample nearest half-way to the end: is it still growing, or has it levelled off?
            "rss_growth_pct_second_half": 100.0 * (samples[-1]["rss_mb"] - samples[len(samples) // 2 - 1]["rss_mb"])
            / samples[len(samples) // 2 - 1]["rss_mb"] if len(samples) >= 2 else 0.0,
            "rss_second_half_from": samples[len(samples) // 2 - 1]["interactions"] if len(samples) >= 2 else 0,
            "samples": samples,
            "leaks_after_warmup": leaks_warm,
            "leaks_end": final["leaks"],
            "spans": spans,
            "handler_errors": len(worker.workload.errors),
            "cpu_us_per_interaction": cpu / n * 1e6,
            "wall_s": time.perf_counter() - t0,
        }
    finally:
        await worker.close()


def run(n: int, warmup: int, every: int, config: str, window: int) -> dict[str, Any]:
    receiver = None
    endpoint = None
    if config == "C":
        from otel_bot.testing.otlp import OTLPReceiver

        receiver = OTLPReceiver().start()
        endpoint = receiver.grpc_endpoint
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "-n", str(n), "--warmup", str(warmup),
                "--every", str(every), "--config", config, "--window", str(window)]
        if endpoint:
            argv += ["--endpoint", endpoint]
        if receiver is None:
            proc = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True)
            out = proc.stdout
        else:  # keep the receiver's memory flat too
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            while p.poll() is None:
                time.sleep(1.0)
                receiver.clear()
            out = p.stdout.read() if p.stdout else ""
        lines = [line for line in out.splitlines() if line.startswith(MARK)]
        return dict(json.loads(lines[-1][len(MARK):]))
    finally:
        if receiver is not None:
            receiver.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="otel_bot soak / RSS stability")
    p.add_argument("-n", type=int, default=50_000)
    p.add_argument("--warmup", type=int, default=10_000,
                   help="warm-up interactions (default 10,000: past the largest bounded per-interaction cache, "
                        "otel_bot._routes' 8,192 interaction-token hashes)")
    p.add_argument("--every", type=int, default=5_000)
    p.add_argument("--window", type=int, default=16)
    p.add_argument("--config", choices=("B", "C", "E"), default="B")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path, default=overhead.RESULTS_DIR)
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        result = asyncio.run(_run(args.n, args.warmup, args.every, args.config, args.window, args.endpoint))
        sys.stdout.write(MARK + json.dumps(result) + "\n")
        return 0
    result = run(args.n, args.warmup, args.every, args.config, args.window)
    result["machine"] = H.machine_info()
    result["command"] = "python benchmarks/soak.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.json:
        sys.stdout.write(MARK + json.dumps(result) + "\n")
    else:
        print(json.dumps({k: v for k, v in result.items() if k not in ("samples", "machine")}, indent=1, sort_keys=True))
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "soak.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        lines = [
            f"# Soak: {result['interactions']} interactions, config {result['config']} ({result['label']})",
            "",
            f"Command: `{result['command']}`",
            "",
            f"RSS after {result['warmup']} warm-up interactions: {result['rss_after_warmup_mb']:.1f} MB; at the end: "
            f"{result['rss_end_mb']:.1f} MB ({result['rss_growth_pct']:+.2f} %); max {result['rss_max_mb']:.1f} MB; "
            f"from {result['rss_second_half_from']} interactions to the end: {result['rss_growth_pct_second_half']:+.2f} %.",
            "",
            "| interactions | RSS MB |",
            "|---:|---:|",
            *[f"| {s['interactions']} | {s['rss_mb']:.1f} |" for s in result["samples"]],
            "",
            f"Leak check after warm-up: {result['leaks_after_warmup']}",
            "",
            f"Leak check at the end: {result['leaks_end']}",
            "",
        ]
        (args.out / "soak.md").write_text("\n".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

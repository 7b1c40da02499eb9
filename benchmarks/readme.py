"""Render the README's "Overhead" section from ``benchmarks/results/overhead.json`` (and
``soak.json`` when present), quoting the command that produced each table.

    .venv/bin/python benchmarks/readme.py [--results benchmarks/results] > section.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _f(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def section(result: dict[str, Any], soak: dict[str, Any] | None) -> str:
    per = result["configs"]
    r = result["ratios"]
    mi = result["machine"]
    p = result["params"]
    pk = mi["packages"]
    out = [
        "## Overhead",
        "",
        "What tracing costs a bot, measured with `benchmarks/overhead.py`: M slash-command interactions through the",
        "offline Discord (`otel_bot.testing`, zero injected latency), each with 3 `checkpoint()`s, 2 PostgreSQL queries",
        "(asyncpg pool of 10), 1 executor offload and 2 REST calls (the interaction callback and a channel message).",
        "Each configuration runs in its own worker process; the workers take turns, one round each, "
        + " ".join(per) + " ... , so machine drift hits all of them alike. CPU is the worker's process CPU (all threads,",
        "the in-process offline Discord included; \"bot CPU\" subtracts the offline Discord's own thread). Medians over rounds.",
        "",
        f"Full run ({result['started_at']}, {p['interactions']} interactions x {p['rounds']} rounds per configuration):",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"Machine: {mi['cpu_model']}, {mi['cpus_usable']} cores (shared with other work while this ran: load average "
        f"{', '.join(str(x) for x in mi.get('load_average_at_start', []))} at the start), Python {mi['python']}, "
        f"discord.py {pk.get('discord.py')}, opentelemetry-sdk {pk.get('opentelemetry-sdk')}, "
        f"opentelemetry-instrumentation-discordpy {pk.get('opentelemetry-instrumentation-discordpy')}.",
        "",
        "| configuration | CPU µs / interaction | bot CPU µs / interaction | interactions / s | spans / interaction |",
        "|---|---:|---:|---:|---:|",
    ]
    for cfg, v in per.items():
        out.append(
            f"| **{cfg}** {v['label']} | {_f(v['cpu_us_per_interaction'])} | {_f(v['bot_cpu_us_per_interaction'])} | "
            f"{_f(v['throughput_per_s'])} | {v['spans_per_interaction']:.2f} |"
        )
    out += ["", "| ratio | value |", "|---|---:|"]
    names = {
        "B/A cpu": "B / A (CPU per interaction)",
        "C/A cpu": "C / A",
        "D/A cpu": "D / A",
        "E/A cpu": "E / A (installed, switched off)",
        "R/A cpu": "R / A (the same spans by hand)",
        "B cpu us per span": "B: extra CPU per span (µs)",
        "C cpu us per span": "C: extra CPU per span (µs)",
        "D cpu us per span": "D: extra CPU per span (µs)",
        "R cpu us per span": "R: extra CPU per span (µs)",
        "B/R cpu per span": "otel_bot per span / raw SDK per span (B / R)",
        "B/D cpu per span": "otel_bot per span / opentelemetry-instrumentation-discordpy per span (B / D)",
    }
    for key, label in names.items():
        if key in r:
            out.append(f"| {label} | {r[key]:.2f} |")
    micro = result.get("micro")
    if micro:
        cp = micro["checkpoint_vs_sdk"]
        out += [
            "",
            "Microbenchmarks (same run, median ns per call):",
            "",
            "| | ns / call |",
            "|---|---:|",
        ]
        for k, v in micro["table"].items():
            out.append(f"| {k} | {_f(v)} |")
        out.append(f"| checkpoint() / raw SDK span | {cp['ratio']:.2f} x |")
        out += ["", "| off path (inside `suppress_instrumentation()`), per wrapped call | overhead µs |", "|---|---:|"]
        for k, v in micro["off_path"].items():
            out.append(f"| {k} | {v['overhead_us']:.2f} |")
    burst = result.get("burst")
    if burst:
        out += [
            "",
            f"Burst (`benchmarks/burst.py -n {burst['n']} --variants`, part of the run above): {burst['n']} interactions injected at once,",
            f"asyncpg pool of {burst['pool_size']}, exported over OTLP/gRPC to the test receiver with `configure_tracing()`'s queue settings:",
            "",
            "| queue | collector delay per export | completed | traced (roots received) | dropped (counted) | peak queue |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for b in [burst, *burst.get("variants", [])]:
            out.append(
                f"| {b.get('queue_setting', 'configure_tracing default')} (max {b['max_queue_size']:,}) | "
                f"{b.get('collector_delay_s', 0)} s | {b['completed']} | {b['roots_received']} | {b['dropped']} | "
                f"{b['peak_queue_size']:,} |"
            )
    if soak:
        out += [
            "",
            f"Memory (`{soak['command'].strip()}`): {soak['interactions']:,} interactions through config {soak['config']}; RSS "
            f"{soak['rss_after_warmup_mb']:.1f} MB after {soak['warmup']:,} warm-up interactions, "
            f"{soak['rss_end_mb']:.1f} MB at the end ({soak['rss_growth_pct']:+.2f} %; from "
            f"{soak.get('rss_second_half_from', 0):,} interactions to the end {soak.get('rss_growth_pct_second_half', 0.0):+.2f} %). Live SDK spans, WorkUnits, "
            f"Roots and asyncio tasks stay flat (after warm-up: {soak['leaks_after_warmup']}; at the end: {soak['leaks_end']}).",
        ]
    targets = result.get("targets")
    if targets:
        out += ["", "Targets:", "", "| target | measured | met |", "|---|---|---|"]
        for t in targets:
            out.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
        if soak:
            ok = abs(soak["rss_growth_pct"]) <= 5.0
            out.append(f"| RSS stable within 5 % after {soak['interactions']:,} interactions (soak run) | "
                       f"{soak['rss_growth_pct']:+.2f} % after warm-up; {soak.get('rss_growth_pct_second_half', 0.0):+.2f} % "
                       f"over the second half | {'yes' if ok else '**no**'} |")
    out += [
        "",
        "Reproduce: `pip install -e '.[bench]'`, PostgreSQL on 127.0.0.1:5432 (else SQLite is used), then the",
        "command above; `--quick` is the CI smoke run (it asserts nothing about timings). Results land in",
        "`benchmarks/results/` as JSON and Markdown; `benchmarks/soak.py` is the 50,000-interaction memory run.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--stem", default="overhead")
    args = ap.parse_args(argv)
    result = json.loads((args.results / f"{args.stem}.json").read_text(encoding="utf-8"))
    soak_path = args.results / "soak.json"
    soak = json.loads(soak_path.read_text(encoding="utf-8")) if soak_path.exists() else None
    sys.stdout.write(section(result, soak))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

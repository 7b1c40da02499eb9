"""``otel-bot demo``: the ladder bot against the offline Discord, its output and its exported traces."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _attributes as A
from otel_bot._demo.progress import ProgressBar
from otel_bot._demo.runner import _redact_dsn, _Sampler
from otel_bot._demo.stats import DemoCollector, TraceInfo, percentile, render_table
from otel_bot.testing.otlp import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent

#: The flows every demo run goes through (root span names), and the table's columns.
EXPECTED_FLOWS = ("/queue", "button JoinButton", "task matchmaker")
COLUMNS = ("flow", "count", "errors", "p50 ms", "p95 ms", "max ms", "threshold", "breaches", "ack misses")


def _demo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "DATABASE_URL"}
    env["OTEL_BOT_STRICT"] = "1"  # a bug in our telemetry code fails the run instead of being logged
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def _run_demo(
    tmp_path: Path, *args: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    summary = tmp_path / "summary.json"
    raw = subprocess.run(
        [sys.executable, "-m", "otel_bot", "demo", *args, "--json", str(summary)],
        capture_output=True,
        timeout=90,
        env=env,
        cwd=tmp_path,
    )
    # decoded by hand: text mode would turn the progress bar's \r into \n
    proc = subprocess.CompletedProcess(
        raw.args, raw.returncode, raw.stdout.decode("utf-8"), raw.stderr.decode("utf-8")
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(summary.read_text(encoding="utf-8"))


def _assert_complete(spans: list[Any]) -> dict[str, list[Any]]:
    """Every span's parent arrived in the same trace; roots have none; span ids are unique."""
    by_trace: dict[str, list[Any]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    assert len({s.span_id for s in spans}) == len(spans)
    for trace_id, members in by_trace.items():
        ids = {s.span_id for s in members}
        roots = [s for s in members if s.parent_span_id is None]
        assert len(roots) == 1, (trace_id, [s.name for s in roots])
        for s in members:
            assert s.parent_span_id is None or s.parent_span_id in ids, (trace_id, s.name)
    return by_trace


def _table(stdout: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The summary's rows by flow, and each flow's slowest-steps line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("== summary:"))
    header = lines[start + 1]
    assert re.split(r"\s{2,}", header.strip()) == list(COLUMNS)
    rows: dict[str, list[str]] = {}
    i = start + 3
    while lines[i].strip() and not lines[i].startswith("("):
        cells = re.split(r"\s{2,}", lines[i].strip())
        rows[cells[0]] = cells
        i += 1
    while not lines[i].startswith("slowest steps"):
        i += 1
    steps: dict[str, str] = {}
    for line in lines[i + 1 :]:
        if not line.startswith("  "):
            break
        flow, text = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        steps[flow] = text
    assert set(steps) == set(rows)
    return rows, steps


def test_demo_prints_waterfalls_and_summary_and_exports_complete_traces(tmp_path: Path) -> None:
    with OTLPReceiver() as receiver:
        env = _demo_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        proc, data = _run_demo(tmp_path, "--interactions", "40", "--seed", "3", env=env)
        spans = receiver.wait_for_spans(data["spans"], timeout=20)
    out = proc.stdout
    assert out.startswith(
        "otel-bot demo: ladder bot vs 12 simulated players (seed 3), 40 actions; storage: SQLite"
    )
    assert f"export: OTLP (http/protobuf) to {receiver.http_endpoint}" in out
    # waterfalls: a header per trace, the tree, the checkpoint / DB / executor / REST rows
    headers = re.findall(r"^\S+ (/queue|button JoinButton|/leaderboard|/profile)  [\d.]+ ms  \w+", out, re.M)
    assert "/queue" in headers and "button JoinButton" in headers
    assert re.search(r"^└─ \S+ queue_flow\s+[\d.]+ ms", out, re.M)
    assert re.search(r"^   ├─ \S+ guard_checks\s+[\d.]+ ms", out, re.M)
    assert "executor sqlite_fetch_one" in out and "SELECT players" in out
    assert "POST /interactions/{interaction_id}/" in out
    assert "ACK DEADLINE MISSED" in out
    # the summary table
    rows, steps = _table(out)
    assert "POST /interactions/{…}/{…}/callback" in steps["/queue"]
    if data["replays_uploaded"]:  # the listener's trace: download, parse in the process pool, store
        assert (
            "download_replay" in steps["event on_message"]
            or "executor parse_replay" in steps["event on_message"]
        )
    for flow in EXPECTED_FLOWS:
        assert flow in rows, (flow, sorted(rows))
        assert rows[flow][1] == str(data["flows"][flow]["count"])
    assert rows["/queue"][6] == "800"  # the ladder bot's threshold for /queue
    assert sum(f["ack_misses"] for f in data["flows"].values()) == 1  # exactly one late interaction
    assert data["late_interactions"] == 1 and data["rate_limited_responses"] >= 1
    assert data["actions"] == 40 and data["storage"] == "sqlite"
    assert data["matches_found"] >= 1
    assert "injected: " in out and "1 interaction delivered 3.5 s late" in out
    assert f"export: {data['spans']} spans exported over OTLP" in out
    assert data["waterfalls_printed"] == len(re.findall(r"  trace [0-9a-f]{32}$", out, re.M))

    # every exported trace is complete; the units of bot work are SERVER roots
    by_trace = _assert_complete(spans)
    assert len(spans) == data["spans"]
    roots = [s for s in spans if s.parent_span_id is None]
    server_roots = [s for s in roots if s.kind is SpanKind.SERVER]
    assert len(server_roots) == data["traces"]
    assert {r.resource.get("service.name") for r in roots} == {"ladder-bot"}
    names = {s.name for s in server_roots}
    assert set(EXPECTED_FLOWS) <= names
    late = [r for r in server_roots if r.attributes.get(A.DISCORD_INTERACTION_ACK_DEADLINE_MISSED) is True]
    assert len(late) == 1 and late[0].status.code is StatusCode.ERROR
    limited = [s for s in spans if any(e.name == A.EVENT_RATE_LIMITED for e in s.events)]
    assert limited and all(s.kind is SpanKind.CLIENT for s in limited)
    assert all(s.attributes.get(A.HTTP_REQUEST_RESEND_COUNT, 0) >= 1 for s in limited)
    # SQLite: the bot's traced DB adapter, each query's span over the executor span that ran it
    db_spans = [s for s in spans if s.attributes.get(A.DB_SYSTEM_NAME) is not None]
    assert db_spans and {s.attributes[A.DB_SYSTEM_NAME] for s in db_spans} == {"sqlite"}
    assert all(s.kind is SpanKind.CLIENT and s.parent_span_id is not None for s in db_spans)
    db_ids = {s.span_id for s in db_spans}
    sqlite_exec = [
        s for s in spans if s.name.startswith("executor sqlite_") and s.name != "executor sqlite_transaction"
    ]
    assert sqlite_exec and all(s.parent_span_id in db_ids for s in sqlite_exec)
    # the deliberate N+1: a repeated-query event wherever /leaderboard ran its per-player query 5+ times
    span_by_id = {s.span_id: s for s in spans}
    for root in (r for r in server_roots if r.name == "/leaderboard"):
        repeated = any(e.name == A.EVENT_REPEATED_QUERY for e in root.events)
        form = [
            s
            for s in by_trace[root.trace_id]
            if s.name == "SELECT matches" and span_by_id[s.parent_span_id].name == "load_form"
        ]
        assert repeated == (len(form) >= 5)
    # the matchmaker edits both players' queue messages inside its own trace
    match_traces = [
        by_trace[r.trace_id]
        for r in server_roots
        if r.name == "task matchmaker" and any(s.name == "create_match" for s in by_trace[r.trace_id])
    ]
    assert match_traces
    edits = [s for s in match_traces[0] if s.name.startswith("PATCH /webhooks/")]
    assert len(edits) >= 2


def test_demo_on_postgresql_uses_asyncpg_spans_and_cleans_up(tmp_path: Path, pg_dsn: str) -> None:
    import asyncio

    import asyncpg

    with OTLPReceiver() as receiver:
        env = _demo_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_BSP_SCHEDULE_DELAY="200",
            DATABASE_URL=pg_dsn,
        )
        proc, data = _run_demo(tmp_path, "--interactions", "30", "--players", "8", "--ascii", env=env)
        spans = receiver.wait_for_spans(data["spans"], timeout=20)
    assert data["storage"] == "postgresql"
    assert f"storage: PostgreSQL ({_redact_dsn(pg_dsn)}, schema otel_bot_demo_" in proc.stdout
    proc.stdout.encode("ascii")  # --ascii: no emoji, no box drawing
    _assert_complete(spans)
    db_spans = [s for s in spans if s.attributes.get(A.DB_SYSTEM_NAME) is not None]
    assert db_spans
    assert {s.attributes[A.DB_SYSTEM_NAME] for s in db_spans} == {"postgresql"}
    queries = [s for s in db_spans if s.name != "asyncpg.pool.acquire"]
    acquires = [s for s in db_spans if s.name == "asyncpg.pool.acquire"]
    assert {s.scope_name for s in queries} == {"opentelemetry.instrumentation.asyncpg"}
    assert all(s.kind is SpanKind.CLIENT for s in queries)
    assert acquires and all(s.kind is SpanKind.INTERNAL for s in acquires)
    assert not [s for s in spans if s.name.startswith("executor sqlite_")]
    selects = [s for s in db_spans if s.name == "SELECT players"]
    assert selects and all(isinstance(s.attributes[A.DB_QUERY_TEXT], str) for s in selects)
    assert all(
        "$1" in s.attributes[A.DB_QUERY_TEXT] for s in selects if "WHERE id" in s.attributes[A.DB_QUERY_TEXT]
    )
    schema = re.search(r"schema (otel_bot_demo_[0-9a-f]{8})", proc.stdout)
    assert schema is not None

    async def schema_exists(name: str) -> bool:
        con = await asyncpg.connect(pg_dsn)
        try:
            return bool(await con.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", name))
        finally:
            await con.close()

    assert asyncio.run(schema_exists(schema.group(1))) is False


def test_demo_duration_samples_waterfalls_and_draws_the_progress_bar(tmp_path: Path) -> None:
    proc, data = _run_demo(tmp_path, "--duration", "2", "--players", "6", "--progress", "on", env=_demo_env())
    assert "2 s; storage: SQLite" in proc.stdout.splitlines()[0]
    assert data["actions"] >= 5 and data["late_interactions"] == 1
    # a sample: at most one block per flow and kind, capped; the rest only in the table
    assert 1 <= data["waterfalls_printed"] <= 14
    assert data["waterfalls_printed"] == len(re.findall(r"  trace [0-9a-f]{32}$", proc.stdout, re.M))
    assert f"waterfalls: {data['waterfalls_printed']} sampled of {data['traces']} traces" in proc.stdout
    frames = [f for f in proc.stderr.split("\r") if f.startswith("[")]
    assert frames and re.match(r"\[█+\]\s+2\.0/2 s  \d+ actions", frames[-1])
    # log lines never land in the middle of the bar: the line is cleared first, the bar redrawn after
    for line in proc.stderr.replace("\r", "\n").splitlines():
        assert not re.search(r"\d s(WARNING|ERROR)", line), line
    # without --progress on, a pipe gets no bar
    quiet, _ = _run_demo(tmp_path, "--interactions", "8", "--players", "4", env=_demo_env())
    assert "\r" not in quiet.stderr


def test_cli_help_and_version() -> None:
    from otel_bot.__main__ import build_parser, main

    help_text = build_parser()._subparsers._group_actions[0].choices["demo"].format_help()  # type: ignore[union-attr]
    for option in ("--interactions", "--duration", "--players", "--seed", "--database-url", "--ascii"):
        assert option in help_text
    with pytest.raises(SystemExit):
        main(["demo", "--interactions", "5", "--duration", "3"])  # one or the other
    with pytest.raises(SystemExit):
        main(["demo", "--players", "1"])
    proc = subprocess.run(
        [sys.executable, "-m", "otel_bot", "version"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_demo_env(),
        cwd=ROOT,
    )
    from otel_bot import __version__

    assert proc.stdout.strip() == __version__


# --- the pieces, in process ---------------------------------------------------------------------------
def _spans_for_table() -> DemoCollector:
    collector = DemoCollector()
    provider = TracerProvider()
    provider.add_span_processor(collector)
    tracer = provider.get_tracer("test")
    for i in range(20):
        with tracer.start_as_current_span("/queue", kind=SpanKind.SERVER) as root:
            root.set_attribute(A.BOT_FLOW_THRESHOLD_MS, 500.0)
            root.set_attribute(A.BOT_FLOW_THRESHOLD_EXCEEDED, i == 19)
            for _ in range(3):
                with tracer.start_as_current_span("SELECT players"):
                    pass
            with tracer.start_as_current_span("guard_checks"):
                pass
    with tracer.start_as_current_span("task matchmaker", kind=SpanKind.SERVER) as root:
        root.set_attribute(A.DISCORD_TASK_LOOP_NAME, "LadderCog.matchmaker")
    with tracer.start_as_current_span("GET /users/@me", kind=SpanKind.CLIENT):
        pass
    return collector


def test_collector_table_counts_flows_steps_and_idle_iterations() -> None:
    collector = _spans_for_table()
    assert collector.traces == 21 and collector.other_roots == 1 and collector.spans == 20 * 5 + 2
    assert collector.idle == {"task matchmaker": 1}
    flow = collector.flows["/queue"]
    assert flow.count == 20 and flow.breaches == 1 and flow.errors == 0 and flow.threshold_ms == 500.0
    step = flow.steps["SELECT players"]
    assert (step.traces, step.calls, step.calls_per_trace) == (20, 60, 3.0)
    table = collector.table()
    header, rule, row, footnote, blank, steps_title, steps = table.splitlines()
    assert re.split(r"\s{2,}", header) == list(COLUMNS)
    assert set(rule) == {"─"}
    cells = re.split(r"\s{2,}", row.strip())
    assert cells == ["/queue", "20", "0", *cells[3:6], "500", "1", "0"]
    assert footnote == "(not in the table: loop iterations with nothing to do: 1 x task matchmaker)"
    assert blank == "" and steps_title.startswith("slowest steps (self time")
    assert re.fullmatch(r"  /queue  SELECT players x3 [\d.]+ · guard_checks [\d.]+", steps) or re.fullmatch(
        r"  /queue  guard_checks [\d.]+ · SELECT players x3 [\d.]+", steps
    ), steps
    assert collector.open_roots() == 0 and collector.wait_idle(0.1)
    ascii_table = render_table(list(collector.flows.values()), ascii_only=True)
    ascii_table.encode("ascii")


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (
        percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0 and percentile(values, 100) == 100.0
    )
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_sampler_all_skips_idle_and_sample_takes_one_per_flow_and_kind() -> None:
    collector = _spans_for_table()
    root = next(iter(collector.flows.values()))
    del root

    def info(flow: str, n: int, *, error: bool = False, ack: bool = False) -> TraceInfo:
        return TraceInfo(flow, [object()] * n, object(), error, False, ack)  # type: ignore[list-item,arg-type]

    everything = _Sampler("all")
    assert (
        everything(info("/queue", 3)) and everything(info("/queue", 3)) and not everything(info("task x", 1))
    )
    sample = _Sampler("sample")
    assert sample(info("/queue", 3)) and not sample(info("/queue", 3))
    assert sample(info("/queue", 3, error=True)) and sample(info("/queue", 3, ack=True))
    assert not sample(info("/queue", 3, error=True))
    assert not _Sampler("none")(info("/queue", 3))


def test_progress_bar_renders_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    bar = ProgressBar(200, stream=quiet)
    bar.update(50, force=True)
    bar.close()
    assert quiet.getvalue() == ""  # StringIO is not a TTY
    shown = io.StringIO()
    bar = ProgressBar(200, stream=shown, enabled=True, ascii_only=True, width=10)
    bar.update(50, force=True)
    bar.close()
    text = shown.getvalue()
    assert text == "\r[##........]  50/200 actions      -/s    0.0 s\n"
    timed = ProgressBar(30, unit="s", stream=shown, enabled=True, width=10)
    assert timed.render(45, actions=12).startswith("[██████████]  30.0/30 s  12 actions")


def test_dsn_is_shown_without_password() -> None:
    assert _redact_dsn("postgresql://bob:secret@db.example:6432/ladder?sslmode=require") == (
        "postgresql://bob@db.example:6432/ladder"
    )

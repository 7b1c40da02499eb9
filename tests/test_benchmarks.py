"""Smoke test of the overhead benchmark: ``benchmarks/overhead.py --quick`` runs, writes JSON and
Markdown with the expected keys, and every interaction of every traced configuration is traced.

Asserts no timings (the numbers are only checked to be present and positive).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "overhead.py"

CONFIG_KEYS = {
    "label",
    "rounds",
    "interactions",
    "cpu_us_per_interaction",
    "cpu_us_per_interaction_rounds",
    "bot_cpu_us_per_interaction",
    "fake_discord_cpu_us_per_interaction",
    "throughput_per_s",
    "spans_per_interaction",
    "spans_total",
    "root_spans_total",
    "dropped_spans",
    "handler_errors",
    "rss_after_warmup_mb",
    "rss_end_mb",
    "rss_growth_mb",
    "rss_growth_pct",
    "leaks",
    "db",
}
#: root + 3 checkpoints + 2 DB queries + 1 executor offload + 2 REST calls
MIN_OTEL_BOT_SPANS = 9


def _have_discordpy_instrumentation() -> bool:
    import importlib.util

    return importlib.util.find_spec("opentelemetry_instrumentation_discordpy") is not None


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ)
    env.setdefault("OTEL_BOT_STRICT", "1")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads((out / "overhead-quick.json").read_text(encoding="utf-8"))
    md = (out / "overhead-quick.md").read_text(encoding="utf-8")
    return data, md, proc.stdout


@pytest.mark.timeout(120)
def test_quick_run_writes_json_with_machine_info(quick_run: tuple[dict[str, Any], str, str]) -> None:
    data, _, _ = quick_run
    assert data["mode"] == "quick"
    assert data["command"].startswith("python benchmarks/overhead.py --quick")
    machine = data["machine"]
    for key in ("cpu_model", "cpu_count", "cpus_usable", "os", "python", "packages"):
        assert key in machine, key
    assert isinstance(machine["cpu_model"], str) and machine["cpu_model"]
    assert isinstance(machine["cpus_usable"], int) and machine["cpus_usable"] >= 1
    assert machine["packages"]["otel-bot"]
    assert machine["packages"]["opentelemetry-sdk"]
    assert machine["packages"]["discord.py"]
    assert set(data["params"]) >= {"interactions", "rounds", "warmup", "window", "configs", "burst"}


@pytest.mark.timeout(120)
def test_every_configuration_reports_every_figure(quick_run: tuple[dict[str, Any], str, str]) -> None:
    data, _, _ = quick_run
    expected = {"A", "B", "C", "E", "R"} | ({"D"} if _have_discordpy_instrumentation() else set())
    configs = data["configs"]
    assert set(configs) == expected
    m = data["params"]["interactions"] * data["params"]["rounds"]
    for name, cfg in configs.items():
        assert CONFIG_KEYS <= set(cfg), (name, CONFIG_KEYS - set(cfg))
        assert cfg["interactions"] == m
        assert cfg["handler_errors"] == 0, name
        assert cfg["cpu_us_per_interaction"] > 0
        assert cfg["throughput_per_s"] > 0
        assert isinstance(cfg["leaks"], dict) and "asyncio_tasks" in cfg["leaks"]
        assert len(cfg["cpu_us_per_interaction_rounds"]) == data["params"]["rounds"]
    assert len(data["raw_rounds"]["A"]) == data["params"]["rounds"]


@pytest.mark.timeout(120)
def test_all_interactions_traced(quick_run: tuple[dict[str, Any], str, str]) -> None:
    data, _, _ = quick_run
    configs = data["configs"]
    m = data["params"]["interactions"] * data["params"]["rounds"]
    for name in ("B", "C", "R"):
        cfg = configs[name]
        assert cfg["root_spans_total"] == m, name  # one root per interaction (C: counted at the receiver)
        assert cfg["spans_per_interaction"] >= MIN_OTEL_BOT_SPANS, name
        assert cfg["dropped_spans"] == 0, name
    assert configs["R"]["spans_per_interaction"] == 11  # the hand-written copy of one B interaction
    assert configs["C"]["received_by_receiver"] == configs["C"]["spans_total"]
    assert configs["B"]["spans_total"] == configs["C"]["spans_total"]
    assert configs["A"]["spans_total"] == 0
    assert configs["E"]["spans_total"] == 0  # switched off: nothing recorded
    if "D" in configs:
        assert configs["D"]["spans_per_interaction"] > 0
    for key in ("B/A cpu", "C/A cpu", "E/A cpu", "R/A cpu", "B cpu us per span", "C cpu us per span",
                "R cpu us per span", "B/R cpu per span"):
        assert key in data["ratios"], key


@pytest.mark.timeout(120)
def test_micro_burst_targets_and_uninstrument_check(quick_run: tuple[dict[str, Any], str, str]) -> None:
    data, _, _ = quick_run
    micro = data["micro"]
    assert set(micro["checkpoint_vs_sdk"]) == {"sdk_ns", "checkpoint_ns", "ratio", "ratio_of_medians"}
    assert micro["checkpoint_vs_sdk"]["ratio"] > 0
    assert set(micro["rest_wrapper"]) == {"http_overhead_us", "adapter_overhead_us"}
    assert {"checkpoint()", "HTTPClient.request", "AsyncWebhookAdapter.request", "loop.run_in_executor"} <= set(micro["off_path"])
    for v in micro["off_path"].values():
        assert set(v) == {"bare_ns", "wrapped_ns", "overhead_us"}
    assert micro["spans_dropped"] == 0

    burst = data["burst"]
    assert burst["completed"] == burst["n"] == data["params"]["burst"]
    assert burst["roots_received"] == burst["n"]
    assert burst["handler_errors"] == 0
    assert burst["dropped"] == 0
    assert burst["pool_size"] == 10

    targets = data["targets"]
    assert all(set(t) == {"target", "measured", "met"} and isinstance(t["met"], bool) for t in targets)
    assert any("off path" in t["target"] for t in targets)
    assert any("burst" in t["target"] for t in targets)

    check = data["uninstrument_check"]
    assert check["otel_bot"]["left_behind"] == []
    assert check["otel_bot"]["patched_attributes"] > 0


@pytest.mark.timeout(120)
def test_markdown_has_the_table(quick_run: tuple[dict[str, Any], str, str]) -> None:
    data, md, stdout = quick_run
    header = "| config | CPU us / interaction | bot CPU us / interaction | throughput / s | spans / interaction | RSS growth (MB) |"
    assert header in md
    assert header in stdout  # the table is printed too
    for name in data["configs"]:
        assert f"| {name}: " in md
    assert "## Targets" in md
    assert "## Microbenchmarks" in md
    assert f"Command: `{data['command']}`" in md

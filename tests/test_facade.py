"""The public surface: the facade's ``__all__``, its shape, packaging metadata and lazy imports.

DESIGN.md habit 1 (thin facade, ``__all__`` pinned), 10 (optional dependencies load lazily) and
11 (``py.typed``). Changing the public API means changing the pinned lists here on purpose.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from importlib.metadata import distribution, entry_points
from pathlib import Path
from typing import Any

import pytest

import otel_bot
import otel_bot.testing

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "otel_bot"

PUBLIC_API = [
    "DiscordBotInstrumentor",
    "ExportStats",
    "FlowTracker",
    "Severity",
    "SeverityBounds",
    "TraceContextFilter",
    "WaterfallProcessor",
    "__version__",
    "checkpoint",
    "configure_tracing",
    "export_stats",
    "instrument_bot",
    "instrument_logging",
    "measure",
    "measure_time",
    "trace_db_adapter",
    "uninstrument_bot",
    "untrace_db_adapter",
]

TESTING_API = [
    "CALLBACK",
    "CHANNEL_MESSAGE",
    "CHANNEL_MESSAGES",
    "DISCORD_EPOCH_MS",
    "FOLLOWUP",
    "FOLLOWUP_MESSAGE",
    "ORIGINAL",
    "TYPING",
    "FakeGateway",
    "Fault",
    "GatewaySession",
    "InteractionRecord",
    "MultipartPart",
    "OTLPReceiver",
    "OfflineDiscord",
    "Payloads",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedRequest",
    "ReceivedSpan",
    "ReceivedStatus",
    "RecordedRequest",
    "World",
    "inject",
    "iso_timestamp",
    "option",
    "snowflake",
    "snowflake_time_ms",
]

# Importing ``otel_bot`` must not import these: optional extras, exporters (only configure_tracing
# needs them), the test support and the demo. A prefix matches the package and its submodules.
MUST_BE_LAZY = [
    "aiohttp",
    "asyncpg",
    "google.protobuf",
    "grpc",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation.asyncpg",
    "opentelemetry.instrumentation.dbapi",
    "opentelemetry.instrumentation.logging",
    "opentelemetry.instrumentation.psycopg2",
    "opentelemetry.instrumentation.sqlite3",
    "opentelemetry.proto",
    "otel_bot._demo",
    "otel_bot.testing",
    "psycopg2",
    "sqlite3",
    "yaml",
]


def _pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package supports 3.10 too
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data


def _isort_key(name: str) -> tuple[int, str]:
    """ruff RUF022's "isort-style" order: SCREAMING_CASE, then CamelCase, then the rest."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def _imported_after(statement: str) -> list[str]:
    """The modules in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT
    ).stdout
    loaded: list[str] = json.loads(out.strip().splitlines()[-1])
    return loaded


def _eager(loaded: list[str], prefixes: list[str]) -> list[str]:
    return sorted(m for m in loaded for p in prefixes if m == p or m.startswith(p + "."))


# --- __all__ ---------------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert otel_bot.__all__ == PUBLIC_API


def test_testing_api_is_pinned() -> None:
    assert otel_bot.testing.__all__ == TESTING_API


@pytest.mark.parametrize("module", [otel_bot, otel_bot.testing], ids=["otel_bot", "otel_bot.testing"])
def test_all_is_sorted_and_unique(module: object) -> None:
    names: list[str] = module.__all__  # type: ignore[attr-defined]
    assert len(set(names)) == len(names)
    assert names == sorted(names, key=_isort_key)


@pytest.mark.parametrize("module", [otel_bot, otel_bot.testing], ids=["otel_bot", "otel_bot.testing"])
def test_every_name_is_importable(module: object) -> None:
    mod = importlib.import_module(module.__name__)  # type: ignore[attr-defined]
    for name in mod.__all__:
        assert getattr(mod, name, None) is not None, name
    namespace: dict[str, object] = {}
    exec(f"from {mod.__name__} import *", namespace)
    assert set(mod.__all__) <= set(namespace)


def test_public_callables_and_classes_have_docstrings() -> None:
    for name in otel_bot.__all__:
        obj = getattr(otel_bot, name)
        if isinstance(obj, str):
            continue
        assert (getattr(obj, "__doc__", None) or "").strip(), f"otel_bot.{name} has no docstring"


def test_public_names_come_from_private_modules() -> None:
    for name in otel_bot.__all__:
        obj = getattr(otel_bot, name)
        if isinstance(obj, str):
            continue
        module = getattr(obj, "__module__", "")
        assert module.startswith("otel_bot._"), f"otel_bot.{name} is defined in {module!r}"


# --- the facade's shape ----------------------------------------------------------------------


def test_init_holds_only_docstring_imports_and_all() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    body = tree.body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    assert isinstance(body[0].value.value, str) and body[0].value.value.strip(), "module docstring"
    assert isinstance(body[1], ast.ImportFrom) and body[1].module == "__future__"
    assert [a.name for a in body[1].names] == ["annotations"]

    imported: list[str] = []
    all_nodes = 0
    for node in body[2:]:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1, f"line {node.lineno}: import from a private sibling (from ._x import a)"
            assert node.module and node.module.startswith("_"), f"line {node.lineno}: {node.module}"
            for alias in node.names:
                assert alias.name != "*", f"line {node.lineno}: star import"
                assert alias.asname is None, f"line {node.lineno}: renamed import {alias.name}"
                imported.append(alias.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assert [t.id for t in targets if isinstance(t, ast.Name)] == ["__all__"], (
                f"line {node.lineno}: only __all__ may be assigned"
            )
            assert isinstance(node.value, ast.List)
            assert all(isinstance(e, ast.Constant) for e in node.value.elts)
            all_nodes += 1
        else:
            raise AssertionError(f"line {node.lineno}: {type(node).__name__} does not belong in the facade")
    assert all_nodes == 1
    assert sorted(imported) == sorted(otel_bot.__all__), "import exactly what __all__ exports"


def test_py_typed_is_shipped() -> None:
    assert (PACKAGE / "py.typed").is_file()
    pyproject = _pyproject()
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["otel_bot"]


# --- packaging metadata ----------------------------------------------------------------------


def test_version_matches_pyproject_and_metadata() -> None:
    pyproject = _pyproject()
    assert otel_bot.__version__ == pyproject["project"]["version"]
    assert distribution("otel-bot").version == otel_bot.__version__


def test_instrumentor_entry_point_resolves() -> None:
    found = [
        ep
        for ep in entry_points(group="opentelemetry_instrumentor")
        if ep.value.startswith("otel_bot.") and ep.dist is not None and ep.dist.name == "otel-bot"
    ]
    assert [(ep.name, ep.value) for ep in found] == [
        ("discord_py", "otel_bot._instrument:DiscordBotInstrumentor")
    ]
    assert found[0].load() is otel_bot.DiscordBotInstrumentor


def test_console_script_resolves() -> None:
    found = [ep for ep in entry_points(group="console_scripts") if ep.name == "otel-bot"]
    assert [ep.value for ep in found] == ["otel_bot.__main__:main"]
    from otel_bot.__main__ import main

    assert found[0].load() is main


def test_console_script_prints_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "otel_bot", "version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    ).stdout
    assert out.strip() == otel_bot.__version__


# --- lazy imports ----------------------------------------------------------------------------


def test_import_does_not_load_optional_dependencies() -> None:
    loaded = _imported_after("import otel_bot")
    assert "otel_bot" in loaded
    assert _eager(loaded, MUST_BE_LAZY) == []


def test_import_does_not_load_discord() -> None:
    # discord.py is a hard dependency, but the facade (and the opentelemetry-instrument entry
    # point) stays cheap to import: discord is imported when a bot is instrumented.
    loaded = _imported_after("import otel_bot")
    assert _eager(loaded, ["discord"]) == []


def test_instrumentor_entry_point_is_lazy_too() -> None:
    # `opentelemetry-instrument` loads every entry point at start-up, before the bot imports.
    loaded = _imported_after("from otel_bot._instrument import DiscordBotInstrumentor")
    assert _eager(loaded, [*MUST_BE_LAZY, "discord"]) == []

"""Attribute keys: one home (``otel_bot/_attributes.py``), OpenTelemetry naming, a README table.

* An AST scan of every ``otel_bot`` module (but ``_attributes.py`` and ``testing/``) fails on a
  string literal used as an attribute key or event name: ``set_attribute("x.y", ...)``,
  ``add_event("name", ...)``, dict literal keys, ``attrs["x.y"]``, ``.get("x.y")``, ``"x.y" in attrs``,
  key tuples and module-level shadow constants. Docstrings, log messages, guard kinds and route
  templates are not in those positions, so they are not flagged.
* Every constant in ``_attributes.py`` is unique (but the listed event/attribute pairs), follows the
  OpenTelemetry attribute naming rules, and no key is also the namespace of another key.
* The README's attribute table equals ``scripts/attribute_table.py``'s output.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from otel_bot import _attributes as A

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "otel_bot"
README = ROOT / "README.md"
SCRIPT = ROOT / "scripts" / "attribute_table.py"

# Namespaces an attribute key of ours (or of the OpenTelemetry conventions we write) starts with.
NAMESPACES = (
    "bot",
    "code",
    "db",
    "discord",
    "enduser",
    "error",
    "exception",
    "http",
    "log",
    "messaging",
    "net",
    "network",
    "process",
    "rpc",
    "server",
    "service",
    "thread",
    "url",
    "user",
)
KEY_LIKE = re.compile(rf"^(?:{'|'.join(NAMESPACES)})\.[a-z0-9_]+(?:\.[a-z0-9_]+)*\.?$")

# Methods whose first positional argument is an attribute key (any literal there is flagged) ...
KEY_FIRST_ARG = {"set_attribute"}
# ... or an event name (any literal is flagged: event names live in _attributes.py too) ...
EVENT_FIRST_ARG = {"add_event"}
# ... or a key when the literal looks like one (mapping reads and writes).
MAPPING_METHODS = {"get", "pop", "setdefault", "__getitem__", "__contains__"}

# (module path relative to otel_bot/, literal) -> why a key-like literal in a flagged position is
# fine there. Empty today: module names passed to importlib (``_module("discord.http")``), guard
# kinds (``guard("db.parameters")``) and log messages are not in flagged positions to begin with.
ALLOWED: dict[tuple[str, str], str] = {}

# Found by the scan and not yet fixed (the coordinator moves them to _attributes.py / to the SDK's
# constants, then removes this list and the xfail below). Keep in sync with the scan's output.
# Without line numbers, so that edits elsewhere in those modules do not break the pin.
# The resource attribute key has a constant in the SDK: opentelemetry.sdk.resources.SERVICE_NAME.
KNOWN_VIOLATIONS: list[str] = []


def _without_line(finding: str) -> str:
    path, _line, rest = finding.split(":", 2)
    return f"{path}:{rest}"


def _modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "testing" or rel.as_posix() == "_attributes.py":
            continue
        yield path


def _literal_text(node: ast.expr) -> str | None:
    """The text of a str constant, or the constant prefix of an f-string (``f"db.x.{i}"``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.found: list[str] = []
        self._depth = 0  # 0 = module level, for shadow-constant assignments

    def _flag(self, node: ast.expr, text: str, where: str) -> None:
        if (self.rel, text) in ALLOWED:
            return
        self.found.append(f"{self.rel}:{node.lineno}: {text!r} ({where})")

    def _check_key(self, node: ast.expr, where: str) -> None:
        text = _literal_text(node)
        if text is not None and KEY_LIKE.match(text):
            self._flag(node, text, where)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if node.args:
            first = node.args[0]
            text = _literal_text(first)
            if text is not None:
                if name in KEY_FIRST_ARG:
                    self._flag(first, text, name)
                elif name in EVENT_FIRST_ARG:
                    self._flag(first, text, "event name")
                elif name in MAPPING_METHODS and KEY_LIKE.match(text):
                    self._flag(first, text, f"mapping .{name}")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key in node.keys:
            if key is not None:
                self._check_key(key, "dict key")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._check_key(node.slice, "subscript")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            self._check_key(node.left, "membership test")
        self.generic_visit(node)

    def visit_Tuple(self, node: ast.Tuple | ast.List | ast.Set) -> None:
        for elt in node.elts:
            self._check_key(elt, "key collection")
        self.generic_visit(node)

    visit_List = visit_Tuple  # type: ignore[assignment]
    visit_Set = visit_Tuple  # type: ignore[assignment]

    def visit_Assign(self, node: ast.Assign) -> None:
        if self._depth == 0 and any(isinstance(t, ast.Name) for t in node.targets):
            self._check_key(node.value, "shadow constant")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if self._depth == 0 and node.value is not None:
            self._check_key(node.value, "shadow constant")
        self.generic_visit(node)


def scan_literal_keys() -> list[str]:
    """Every string-literal attribute key or event name outside ``_attributes.py``."""
    found: list[str] = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        scanner = _Scanner(rel)
        scanner.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found.extend(scanner.found)
    return sorted(set(found), key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def _constants() -> dict[str, str]:
    return {k: v for k, v in vars(A).items() if k.isupper() and isinstance(v, str)}


def _keys() -> dict[str, str]:
    return {k: v for k, v in _constants().items() if not k.startswith("EVENT_")}


def _events() -> dict[str, str]:
    return {k: v for k, v in _constants().items() if k.startswith("EVENT_")}


# --- the scan itself ---------------------------------------------------------------------------


def test_scanner_finds_every_kind_of_literal_key(tmp_path: Path) -> None:
    source = (
        "K = 'discord.shadow'\n"
        "def f(span, attrs, i):\n"
        "    '''Docstring mentions discord.command.name and db.query.text.'''\n"
        "    log.warning('db.query.text is long: %s', 1)\n"
        "    guard('db.parameters')\n"
        "    route = 'POST /channels/{channel_id}/messages'\n"
        "    span.set_attribute('anything', 1)\n"
        "    span.add_event('some.event', {'http.request.method': 'GET'})\n"
        "    attrs['db.system.name'] = 'postgresql'\n"
        "    attrs.get('service.name')\n"
        "    x = 'error.type' in attrs\n"
        "    keys = ('thread.name', 'code.function.name')\n"
        "    span.set_attribute(f'db.query.parameter.{i}', 1)\n"
    )
    scanner = _Scanner("sample.py")
    scanner.visit(ast.parse(source))
    assert scanner.found == [
        "sample.py:1: 'discord.shadow' (shadow constant)",
        "sample.py:7: 'anything' (set_attribute)",
        "sample.py:8: 'some.event' (event name)",
        "sample.py:8: 'http.request.method' (dict key)",
        "sample.py:9: 'db.system.name' (subscript)",
        "sample.py:10: 'service.name' (mapping .get)",
        "sample.py:11: 'error.type' (membership test)",
        "sample.py:12: 'thread.name' (key collection)",
        "sample.py:12: 'code.function.name' (key collection)",
        "sample.py:13: 'db.query.parameter.' (set_attribute)",
    ]


def test_known_violations_list_is_current() -> None:
    # Keeps KNOWN_VIOLATIONS honest: a new violation fails here, with the full list to copy.
    assert [_without_line(f) for f in scan_literal_keys()] == KNOWN_VIOLATIONS


def test_no_literal_attribute_keys_outside_attributes_module() -> None:
    assert scan_literal_keys() == []


def test_allow_list_entries_are_still_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every allow-list entry must suppress a finding that the scan would report without it.
    allowed = set(ALLOWED)
    with_list = set(scan_literal_keys())
    monkeypatch.setattr(sys.modules[__name__], "ALLOWED", {})
    without = {f for f in scan_literal_keys() if f not in with_list}
    suppressed = {(f.split(":")[0], f.split("'")[1]) for f in without}
    assert suppressed == allowed


# --- _attributes.py ------------------------------------------------------------------------------

# An event name may equal the attribute key that carries the same fact on the span: the event
# says *when*, the attribute says *that*. These pairs are intentional; any other repeat is a bug.
INTENTIONAL_ALIASES = {
    frozenset({"DISCORD_INTERACTION_ACK_DEADLINE_MISSED", "EVENT_ACK_DEADLINE_MISSED"}),
    frozenset({"DISCORD_COMMAND_OUTCOME", "EVENT_COMMAND_OUTCOME"}),
    frozenset({"BOT_FLOW_THRESHOLD_EXCEEDED", "EVENT_THRESHOLD_EXCEEDED"}),
}

# Pre-stable keys from the OpenTelemetry conventions themselves (read/translated, never written),
# where the stable convention made the old key a namespace: not ours to rename.
LEGACY_NAMESPACE_CLASHES = {("db.system", "db.system.name"), ("db.statement", "db.statement.parameters")}

# Keys that end in "." are prefixes, suffixed at run time.
PREFIXES = {"DB_QUERY_PARAMETER_PREFIX"}

SEGMENT = re.compile(r"^[a-z][a-z0-9_]*$")


def test_constant_values_are_unique() -> None:
    by_value: dict[str, set[str]] = defaultdict(set)
    for name, value in _constants().items():
        by_value[value].add(name)
    repeats = {frozenset(names) for names in by_value.values() if len(names) > 1}
    assert repeats == INTENTIONAL_ALIASES


def test_attribute_keys_and_event_names_are_separately_unique() -> None:
    for group in (_keys(), _events()):
        assert len(set(group.values())) == len(group)


@pytest.mark.parametrize("name", sorted(_constants()))
def test_key_follows_opentelemetry_naming(name: str) -> None:
    value = _constants()[name]
    assert value == value.lower(), "lowercase"
    body = value[:-1] if name in PREFIXES else value
    if name in PREFIXES:
        assert value.endswith("."), "a prefix ends with the separator"
    segments = body.split(".")
    for segment in segments:
        assert SEGMENT.match(segment), f"{value!r}: segment {segment!r} is not snake_case"
    if not name.startswith("EVENT_"):
        # Event names may be one word ("exception", "log": the conventions' own); keys may not.
        assert len(segments) >= 2, f"{value!r} has no namespace"
    assert "__" not in value and ".." not in value


def test_constant_names_match_their_kind() -> None:
    for name in _constants():
        assert name.isupper() and re.match(r"^[A-Z][A-Z0-9_]*$", name), name


def test_event_names_use_our_or_conventional_namespaces() -> None:
    for value in _events().values():
        assert value in {"exception", "log"} or value.split(".")[0] in {"discord", "bot", "db"}, value


def _namespace_clashes() -> set[tuple[str, str]]:
    keys = [v for k, v in _keys().items() if k not in PREFIXES]
    return {(a, b) for a in keys for b in keys if b.startswith(a + ".")}


def test_no_key_is_the_namespace_of_another_key_but_legacy() -> None:
    # The OpenTelemetry naming rules: "names SHOULD NOT coincide with namespaces".
    clashes = _namespace_clashes() - LEGACY_NAMESPACE_CLASHES
    ours = {(a, b) for a, b in clashes if a != A.BOT_CHECKPOINT}
    assert ours == set()


def test_bot_checkpoint_is_not_a_namespace_clash() -> None:
    assert _namespace_clashes() - LEGACY_NAMESPACE_CLASHES == set()


# --- the README table ------------------------------------------------------------------------------


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("attribute_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["attribute_table"] = module
    spec.loader.exec_module(module)
    return module


def test_table_covers_every_constant() -> None:
    script = _load_script()
    table = script.render()
    for name, value in _constants().items():
        assert f"`{name}`" in table, name
        assert f"`{value}`" in table, value
    assert script.render() == table, "deterministic"


def test_table_has_a_description_and_type_for_every_key() -> None:
    script = _load_script()
    for row in script.rows():
        assert row.description.strip(), row.name
        if not row.is_event:
            assert row.value_type in script.VALUE_TYPES, (row.name, row.value_type)


def test_table_sees_where_keys_are_written() -> None:
    script = _load_script()
    where = {row.name: row.where for row in script.rows()}
    assert "REST" in where["HTTP_REQUEST_METHOD"]
    assert "root" in where["DISCORD_INTERACTION_ID"]


def test_check_mode_rejects_a_stale_table(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text("# x\n\n<!-- attributes:start -->\n| old |\n<!-- attributes:end -->\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(stale)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "out of date" in result.stderr

    script = _load_script()
    stale.write_text(
        f"# x\n\n<!-- attributes:start -->\n{script.render()}<!-- attributes:end -->\n", encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(stale)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_readme_table_is_current() -> None:
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    if "<!-- attributes:start -->" not in text or "<!-- attributes:end -->" not in text:
        pytest.skip("README.md has no <!-- attributes:start/end --> markers yet")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(README)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_every_writing_module_has_an_area_label() -> None:
    # A new module that writes keys needs an entry in scripts/attribute_table.py's AREAS (or
    # READERS, if it only reads them), so the README's "Where" column stays readable.
    script = _load_script()
    labels = {label for row in script.rows() for label in row.where.split(", ")}
    assert labels - {*script.AREA_ORDER, "(not written)"} == set()

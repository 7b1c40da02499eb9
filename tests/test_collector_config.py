"""Structural tests for ``collector-config/``: the collector pipelines, the compose stacks, Jaeger,
Tempo, Prometheus rules and the Grafana dashboard.

Neither Docker nor a collector binary runs here, so these tests check what would make the stack
fail or lie when a user starts it: YAML/JSON that does not parse, pipelines that name undefined or
unused components, component types the pinned otelcol-contrib release does not have (or only as
deprecated aliases), ports that do not line up between compose and the configs, PromQL that asks
for metric names or labels the span_metrics connector never emits, token-scrubbing rules that do
not scrub, and alert rules that ``promtool`` rejects.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_bot import _attributes

ROOT = Path(__file__).resolve().parent.parent / "collector-config"

# --------------------------------------------------------------------------------------------
# The pinned release and what it has.
# --------------------------------------------------------------------------------------------

PINNED_RELEASE = "0.162.0"
COLLECTOR_IMAGE = f"otel/opentelemetry-collector-contrib:{PINNED_RELEASE}"

# Component types of otelcol-contrib 0.162.0 that a bot stack may use, under their current
# (lower_snake_case) names. A subset of the distribution: add a type here, checked against the
# release's manifest, before using it in a config.
CONTRIB_COMPONENTS: dict[str, frozenset[str]] = {
    "receivers": frozenset(
        {"otlp", "prometheus", "filelog", "hostmetrics", "jaeger", "zipkin", "kafka", "nop"}
    ),
    "processors": frozenset(
        {
            "memory_limiter",
            "batch",
            "transform",
            "tail_sampling",
            "probabilistic_sampler",
            "filter",
            "attributes",
            "resource",
            "redaction",
        }
    ),
    "exporters": frozenset(
        {
            "otlp_grpc",
            "otlp_http",
            "debug",
            "nop",
            "prometheus",
            "prometheus_remote_write",
            "load_balancing",
            "file",
            "kafka",
        }
    ),
    "connectors": frozenset({"span_metrics", "signal_to_metrics", "forward", "count", "routing"}),
    "extensions": frozenset({"health_check", "pprof", "zpages"}),
}

# Jaeger v2 (jaegertracing/jaeger:2.22.0) is a collector distribution with its own components.
JAEGER_COMPONENTS: dict[str, frozenset[str]] = {
    "receivers": frozenset({"otlp", "jaeger", "zipkin", "kafka"}),
    "processors": frozenset({"batch", "memory_limiter", "adaptive_sampling", "tail_sampling"}),
    "exporters": frozenset({"jaeger_storage_exporter", "otlp_grpc", "otlp_http", "debug", "prometheus"}),
    "connectors": frozenset({"forward"}),
    "extensions": frozenset({"jaeger_storage", "jaeger_query", "remote_sampling", "healthcheckv2", "expvar"}),
}

# Old names that still load (with a warning) or no longer exist at all.
DEPRECATED_TYPES: dict[tuple[str, str], str] = {
    ("exporters", "otlp"): "otlp_grpc (renamed in 0.144.0, collector#14403)",
    ("exporters", "otlphttp"): "otlp_http (renamed in 0.144.0, collector#14397)",
    ("exporters", "logging"): "debug (logging was removed)",
    ("exporters", "loadbalancing"): "load_balancing (contrib#48533)",
    ("exporters", "prometheusremotewrite"): "prometheus_remote_write (contrib#48705)",
    ("exporters", "jaeger"): "otlp_grpc to Jaeger (the jaeger exporter was removed)",
    ("connectors", "spanmetrics"): "span_metrics (contrib#47963)",
    ("connectors", "signaltometrics"): "signal_to_metrics (contrib#45714)",
    ("processors", "spanmetrics"): "the span_metrics connector (the processor was removed)",
    ("extensions", "memory_ballast"): "memory_limiter alone (memory_ballast was removed)",
}

# Settings that are deprecated in the pinned release: (component type, key) -> replacement.
DEPRECATED_KEYS: dict[tuple[str, str], str] = {
    ("span_metrics", "dimensions_cache_size"): "aggregation_cardinality_limit (deprecated in 0.130.0)",
    ("prometheus", "add_metric_suffixes"): "translation_strategy",
    ("memory_limiter", "ballast_size_mib"): "nothing (ballast was removed)",
}

KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")

COLLECTOR_CONFIGS = {
    "otelcol.yaml": CONTRIB_COMPONENTS,
    "scale-out/otelcol-agent.yaml": CONTRIB_COMPONENTS,
    "scale-out/otelcol-sampler.yaml": CONTRIB_COMPONENTS,
    "jaeger.yaml": JAEGER_COMPONENTS,
}
CONTRIB_CONFIGS = [name for name, comps in COLLECTOR_CONFIGS.items() if comps is CONTRIB_COMPONENTS]
COMPOSE_FILES = ["docker-compose.yaml", "docker-compose.scale-out.yaml"]

# Where each kind of service reads its config inside the container.
CONFIG_TARGETS = {
    "/etc/otelcol-contrib/config.yaml": "collector",
    "/etc/jaeger/config.yaml": "jaeger",
    "/etc/tempo.yaml": "tempo",
    "/etc/prometheus/prometheus.yaml": "prometheus",
}


def load_yaml(rel: str) -> Any:
    with open(ROOT / rel, encoding="utf-8") as f:
        return yaml.safe_load(f)


def ctype(component_id: str) -> str:
    """``otlp_grpc/jaeger`` -> ``otlp_grpc``."""
    return component_id.split("/", 1)[0]


def port_of(endpoint: str) -> int:
    """Port of ``host:port``, ``:port`` or ``scheme://host:port/path``."""
    m = re.search(r":(\d+)(?:/|$)", endpoint)
    assert m, f"no port in {endpoint!r}"
    return int(m.group(1))


def host_of(endpoint: str) -> str:
    return re.sub(r"^[a-z]+://", "", endpoint).split("/", 1)[0].rsplit(":", 1)[0]


def duration_ms(value: str | int | float) -> float:
    """Go duration (``1500ms``, ``3s``, ``1m``) or a bare number of milliseconds."""
    if isinstance(value, (int, float)):
        return float(value)
    total = 0.0
    units = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"bad duration {value!r}"
    for number, unit in parts:
        total += float(number) * units[unit]
    return total


# --------------------------------------------------------------------------------------------
# Every file parses.
# --------------------------------------------------------------------------------------------


def all_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in ROOT.rglob("*") if p.is_file() and p.suffix in suffixes)


def test_directory_has_the_expected_files() -> None:
    expected = [
        "otelcol.yaml",
        "docker-compose.yaml",
        "docker-compose.scale-out.yaml",
        "jaeger.yaml",
        "tempo.yaml",
        "scale-out/otelcol-agent.yaml",
        "scale-out/otelcol-sampler.yaml",
        "scale-out/prometheus.yaml",
        "prometheus/prometheus.yaml",
        "prometheus/rules/otel-bot.rules.yaml",
        "prometheus/tests/otel-bot.rules.test.yaml",
        "grafana/provisioning/datasources/datasources.yaml",
        "grafana/provisioning/dashboards/dashboards.yaml",
        "grafana/dashboards/otel-bot.json",
        "README.md",
    ]
    missing = [rel for rel in expected if not (ROOT / rel).is_file()]
    assert missing == []


@pytest.mark.parametrize("path", all_files(".yaml", ".yml"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_parses(path: Path) -> None:
    with open(path, encoding="utf-8") as f:
        docs = list(yaml.safe_load_all(f))
    assert len(docs) == 1 and isinstance(docs[0], dict)


@pytest.mark.parametrize("path", all_files(".json"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_json_parses(path: Path) -> None:
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


# --------------------------------------------------------------------------------------------
# Collector configs: pipelines, components, names.
# --------------------------------------------------------------------------------------------


def pipeline_refs(cfg: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(pipeline, role, component id) for every reference in service.pipelines."""
    for name, pipe in cfg["service"]["pipelines"].items():
        for role in ("receivers", "processors", "exporters"):
            for cid in pipe.get(role) or []:
                yield name, role, cid


@pytest.mark.parametrize("rel", list(COLLECTOR_CONFIGS))
def test_pipelines_reference_only_defined_components(rel: str) -> None:
    cfg = load_yaml(rel)
    defined = {kind: set(cfg.get(kind) or {}) for kind in KINDS}
    undefined = []
    for pipeline, role, cid in pipeline_refs(cfg):
        allowed = defined[role] | (defined["connectors"] if role in ("receivers", "exporters") else set())
        if cid not in allowed:
            undefined.append((pipeline, role, cid))
    undefined += [
        ("service", "extensions", e)
        for e in cfg["service"].get("extensions", [])
        if e not in defined["extensions"]
    ]
    assert undefined == []


@pytest.mark.parametrize("rel", list(COLLECTOR_CONFIGS))
def test_every_defined_component_is_used(rel: str) -> None:
    cfg = load_yaml(rel)
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for _pipeline, role, cid in pipeline_refs(cfg):
        used[role].add(cid)
    used["extensions"] = set(cfg["service"].get("extensions", []))
    unused = []
    for kind in ("receivers", "processors", "exporters", "extensions"):
        unused += [(kind, cid) for cid in cfg.get(kind) or {} if cid not in used[kind]]
    for cid in cfg.get("connectors") or {}:
        # A connector is an exporter of one pipeline and a receiver of another.
        if cid not in used["exporters"] or cid not in used["receivers"]:
            unused.append(("connectors", cid))
    assert unused == []


@pytest.mark.parametrize("rel", list(COLLECTOR_CONFIGS))
def test_component_types_exist_in_pinned_release(rel: str) -> None:
    cfg = load_yaml(rel)
    known = COLLECTOR_CONFIGS[rel]
    unknown = [(kind, cid) for kind in KINDS for cid in cfg.get(kind) or {} if ctype(cid) not in known[kind]]
    assert unknown == []


@pytest.mark.parametrize("rel", CONTRIB_CONFIGS)
def test_no_deprecated_component_names_or_keys(rel: str) -> None:
    cfg = load_yaml(rel)
    found = []
    for kind in KINDS:
        for cid, body in (cfg.get(kind) or {}).items():
            if (kind, ctype(cid)) in DEPRECATED_TYPES:
                found.append(f"{kind}.{cid}: use {DEPRECATED_TYPES[(kind, ctype(cid))]}")
            for key in body or {}:
                if (ctype(cid), key) in DEPRECATED_KEYS:
                    found.append(f"{kind}.{cid}.{key}: use {DEPRECATED_KEYS[(ctype(cid), key)]}")
    telemetry = cfg["service"].get("telemetry", {})
    if "address" in telemetry.get("metrics", {}):
        found.append("service.telemetry.metrics.address: use readers")
    # The batch processor is on its way out (collector RFC "batching migration"): batch in the
    # exporters' sending_queue instead, which also propagates back-pressure.
    found += [
        f"processors.{cid}: batch in the exporter's sending_queue"
        for cid in cfg.get("processors") or {}
        if ctype(cid) == "batch"
    ]
    assert found == []


def test_deprecated_and_current_names_do_not_overlap() -> None:
    for (kind, name), _replacement in DEPRECATED_TYPES.items():
        assert name not in CONTRIB_COMPONENTS[kind]


def listen_endpoints(cfg: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, endpoint) for everything a collector config listens on."""
    for rid, body in (cfg.get("receivers") or {}).items():
        for proto, pbody in ((body or {}).get("protocols") or {}).items():
            yield f"receivers.{rid}.{proto}", (pbody or {}).get("endpoint", "<default>")
    for eid, body in (cfg.get("extensions") or {}).items():
        for key in ("endpoint",):
            if key in (body or {}):
                yield f"extensions.{eid}", body[key]
        for sub in ("http", "grpc"):
            if isinstance((body or {}).get(sub), dict) and "endpoint" in body[sub]:
                yield f"extensions.{eid}.{sub}", body[sub]["endpoint"]
    for xid, body in (cfg.get("exporters") or {}).items():
        if ctype(xid) == "prometheus":
            yield f"exporters.{xid}", body["endpoint"]
    for reader in cfg["service"].get("telemetry", {}).get("metrics", {}).get("readers", []):
        prom = reader.get("pull", {}).get("exporter", {}).get("prometheus")
        if prom:
            yield "service.telemetry", f"{prom['host']}:{prom['port']}"


def listen_ports(cfg: dict[str, Any]) -> set[int]:
    return {port_of(ep) for _where, ep in listen_endpoints(cfg)}


@pytest.mark.parametrize("rel", list(COLLECTOR_CONFIGS))
def test_everything_binds_explicitly_to_all_interfaces(rel: str) -> None:
    """Receivers default to localhost, which nothing outside the container can reach."""
    cfg = load_yaml(rel)
    wrong = [(where, ep) for where, ep in listen_endpoints(cfg) if not ep.startswith("0.0.0.0:")]
    assert wrong == []


@pytest.mark.parametrize("rel", CONTRIB_CONFIGS)
def test_memory_limiter_comes_first_in_every_pipeline(rel: str) -> None:
    cfg = load_yaml(rel)
    for name, pipe in cfg["service"]["pipelines"].items():
        assert pipe.get("processors"), name
        assert ctype(pipe["processors"][0]) == "memory_limiter", name


def test_span_metrics_see_every_span_and_backends_only_sampled_traces() -> None:
    for rel in ("otelcol.yaml", "scale-out/otelcol-sampler.yaml"):
        cfg = load_yaml(rel)
        pipes = cfg["service"]["pipelines"]
        feeding = [p for p in pipes.values() if "span_metrics" in p["exporters"]]
        assert len(feeding) == 1, rel
        (unsampled,) = feeding
        # Straight from the OTLP receiver, nothing that drops spans on the way.
        assert unsampled["receivers"] == ["otlp"]
        assert not {"tail_sampling", "probabilistic_sampler", "filter"} & {
            ctype(p) for p in unsampled["processors"]
        }
        assert "signal_to_metrics" in unsampled["exporters"]
        backends = [p for p in pipes.values() if any(ctype(x) == "otlp_grpc" for x in p["exporters"])]
        assert backends, rel
        for pipe in backends:
            assert "tail_sampling" in pipe["processors"], rel
            # Fed through a connector from the unsampled pipeline, i.e. after scrubbing.
            assert all(r in cfg["connectors"] and r in unsampled["exporters"] for r in pipe["receivers"])
        exported = {x for p in backends for x in p["exporters"]}
        assert exported == {"otlp_grpc/jaeger", "otlp_grpc/tempo"}
        metrics = [p for name, p in pipes.items() if name.split("/")[0] == "metrics"]
        assert [sorted(p["receivers"]) for p in metrics] == [["signal_to_metrics", "span_metrics"]]
        assert metrics[0]["exporters"] == ["prometheus"]


def test_single_collector_scrubs_before_anything_else() -> None:
    for rel in CONTRIB_CONFIGS:
        cfg = load_yaml(rel)
        for pipe in cfg["service"]["pipelines"].values():
            if pipe["receivers"] == ["otlp"]:
                assert pipe["processors"][:2] == ["memory_limiter", "transform/scrub"], rel


def test_sampler_tier_shares_the_single_collector_blocks() -> None:
    single = load_yaml("otelcol.yaml")
    sampler = load_yaml("scale-out/otelcol-sampler.yaml")
    agent = load_yaml("scale-out/otelcol-agent.yaml")
    for kind, cid in [
        ("processors", "transform/scrub"),
        ("processors", "tail_sampling"),
        ("processors", "memory_limiter"),
        ("connectors", "span_metrics"),
        ("connectors", "signal_to_metrics"),
        ("exporters", "prometheus"),
        ("exporters", "otlp_grpc/jaeger"),
        ("exporters", "otlp_grpc/tempo"),
    ]:
        assert sampler[kind][cid] == single[kind][cid], cid
    assert single["service"]["pipelines"] == sampler["service"]["pipelines"]
    assert agent["processors"]["transform/scrub"] == single["processors"]["transform/scrub"]
    assert agent["processors"]["memory_limiter"] == single["processors"]["memory_limiter"]


def test_agent_routes_by_trace_id_to_the_sampling_tier() -> None:
    agent = load_yaml("scale-out/otelcol-agent.yaml")
    assert not {"tail_sampling", "probabilistic_sampler"} & {ctype(p) for p in agent.get("processors", {})}
    assert "connectors" not in agent  # no span metrics at the edge: an agent sees only its bot's spans
    lb = agent["exporters"]["load_balancing"]
    assert lb["routing_key"] == "traceID"
    assert lb["protocol"]["otlp"]["tls"]["insecure"] is True
    assert "endpoint" not in lb["protocol"]["otlp"]  # the resolver supplies the endpoints
    assert lb["resolver"]["dns"]["hostname"] == "otel-sampler"
    sampler = load_yaml("scale-out/otelcol-sampler.yaml")
    assert port_of(sampler["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]) == int(
        lb["resolver"]["dns"]["port"]
    )


# --------------------------------------------------------------------------------------------
# Sampling policies, dimensions, buckets: keyed on the attributes otel_bot writes.
# --------------------------------------------------------------------------------------------

ATTRIBUTE_KEYS = {v for k, v in vars(_attributes).items() if k.isupper() and isinstance(v, str)}


def test_tail_sampling_keeps_what_the_issue_asks_for() -> None:
    ts = load_yaml("otelcol.yaml")["processors"]["tail_sampling"]
    policies: dict[str, list[dict[str, Any]]] = {p["type"]: [] for p in ts["policies"]}
    for p in ts["policies"]:
        policies[p["type"]].append(p)
    assert len({p["name"] for p in ts["policies"]}) == len(ts["policies"])
    assert any(p["status_code"]["status_codes"] == ["ERROR"] for p in policies["status_code"])
    assert [p["latency"]["threshold_ms"] for p in policies["latency"]] == [3000]
    booleans = {
        p["boolean_attribute"]["key"]: p["boolean_attribute"]["value"] for p in policies["boolean_attribute"]
    }
    assert booleans[_attributes.BOT_FLOW_THRESHOLD_EXCEEDED] is True
    assert booleans[_attributes.DISCORD_INTERACTION_ACK_DEADLINE_MISSED] is True
    (baseline,) = policies["probabilistic"]
    assert 0 < baseline["probabilistic"]["sampling_percentage"] < 100
    rate_limited = [p["numeric_attribute"] for p in policies.get("numeric_attribute", [])]
    assert {"key": _attributes.HTTP_RESPONSE_STATUS_CODE, "min_value": 429, "max_value": 429} in rate_limited
    # Interactions are acknowledged within 3 s; the decision must wait at least that long.
    assert duration_ms(ts["decision_wait"]) >= 3000
    for p in ts["policies"]:
        for body in p.values():
            if isinstance(body, dict) and "key" in body:
                assert body["key"] in ATTRIBUTE_KEYS, body["key"]


def span_metrics_cfg(rel: str = "otelcol.yaml") -> dict[str, Any]:
    return load_yaml(rel)["connectors"]["span_metrics"]


def test_span_metrics_dimensions_are_otel_bot_attributes() -> None:
    sm = span_metrics_cfg()
    names = [d["name"] for d in sm["dimensions"]]
    assert len(names) == len(set(names))
    assert set(names) <= ATTRIBUTE_KEYS
    for key in (
        _attributes.DISCORD_INTERACTION_TYPE,
        _attributes.DISCORD_COMMAND_NAME,
        _attributes.BOT_FLOW_SEVERITY,
        _attributes.BOT_FLOW_THRESHOLD_EXCEEDED,
        _attributes.DISCORD_INTERACTION_ACK_DEADLINE_MISSED,
        _attributes.HTTP_RESPONSE_STATUS_CODE,
        _attributes.URL_TEMPLATE,
        _attributes.HTTP_REQUEST_METHOD,
        _attributes.DB_SYSTEM_NAME,
        _attributes.DB_OPERATION_NAME,
        _attributes.DB_COLLECTION_NAME,
        _attributes.BOT_DB_SLOW,
        _attributes.BOT_EXECUTOR_KIND,
    ):
        assert key in names
    # High-cardinality values never become labels.
    for key in (
        _attributes.DISCORD_USER_ID,
        _attributes.DISCORD_GUILD_ID,
        _attributes.DISCORD_INTERACTION_ID,
        _attributes.URL_FULL,
        _attributes.DB_QUERY_TEXT,
        _attributes.DISCORD_MESSAGE_CONTENT,
    ):
        assert key not in names
    for entry in load_yaml("otelcol.yaml")["connectors"]["signal_to_metrics"]["spans"]:
        for attr in entry.get("attributes", []):
            assert attr["key"] in ATTRIBUTE_KEYS
        for cond in entry.get("conditions", []):
            assert set(re.findall(r'attributes\["([^"]+)"\]', cond)) <= ATTRIBUTE_KEYS


def test_histogram_buckets_are_sized_for_the_discord_deadline() -> None:
    sm = span_metrics_cfg()
    assert sm["histogram"]["unit"] == "ms"
    buckets = [duration_ms(b) for b in sm["histogram"]["explicit"]["buckets"]]
    assert buckets == sorted(set(buckets))
    assert 3000.0 in buckets and buckets[-1] > 3000.0
    assert len([b for b in buckets if b <= 3000.0]) >= 10  # resolution where it matters
    assert sm["aggregation_temporality"] == "AGGREGATION_TEMPORALITY_CUMULATIVE"  # what Prometheus needs


# --------------------------------------------------------------------------------------------
# Token scrubbing: apply the configured OTTL replace_pattern rules to real Discord URLs.
# --------------------------------------------------------------------------------------------

REPLACE = re.compile(
    r'^replace_pattern\((?P<target>.+?), "(?P<pattern>(?:[^"\\]|\\.)*)", "(?P<repl>(?:[^"\\]|\\.)*)"\)$'
)
SCRUBBED_TARGETS = [
    'span.attributes["url.full"]',
    'span.attributes["url.path"]',
    'span.attributes["url.original"]',
    'span.attributes["http.url"]',
    'span.attributes["http.target"]',
    "span.name",
]
TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTpTb21lUmFuZG9tVG9rZW5EYXRhX3dpdGgtZGFzaGVz"
WEBHOOK_TOKEN = "Xy3-kP9_qLmN2oR8sT4uV6wX0yZ1aB5cD7eF9gH2iJ4kL6mN8oP0qR2sT4uV6wX8yZ"


def scrub_rules(rel: str = "otelcol.yaml") -> dict[str, list[tuple[re.Pattern[str], str]]]:
    rules: dict[str, list[tuple[re.Pattern[str], str]]] = {}
    for stmt in load_yaml(rel)["processors"]["transform/scrub"]["trace_statements"]:
        m = REPLACE.match(stmt)
        if not m:
            continue
        # The collector's config loader turns `$$` into `$`; Go's Expand then reads `$1`.
        repl = m["repl"].replace("$$", "$")
        py_repl = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", repl)
        rules.setdefault(m["target"], []).append((re.compile(m["pattern"]), py_repl))
    return rules


def apply(rules: list[tuple[re.Pattern[str], str]], value: str) -> str:
    for pattern, repl in rules:
        value = pattern.sub(repl, value)
    return value


SCRUB_CASES = [
    (
        f"https://discord.com/api/v10/interactions/1234567890123456789/{TOKEN}/callback",
        "https://discord.com/api/v10/interactions/1234567890123456789/{interaction_token}/callback",
    ),
    (
        f"https://discord.com/api/v10/interactions/1234567890123456789/{TOKEN}/callback?with_response=true",
        "https://discord.com/api/v10/interactions/1234567890123456789/{interaction_token}/callback?with_response=true",
    ),
    (
        f"https://discord.com/api/v10/webhooks/987654321098765432/{TOKEN}/messages/@original",
        "https://discord.com/api/v10/webhooks/987654321098765432/{webhook_token}/messages/@original",
    ),
    (
        f"https://discord.com/api/v10/webhooks/987654321098765432/{WEBHOOK_TOKEN}?wait=true",
        "https://discord.com/api/v10/webhooks/987654321098765432/{webhook_token}?wait=true",
    ),
    (
        f"POST /api/v10/interactions/1234567890123456789/{TOKEN}/callback",
        "POST /api/v10/interactions/1234567890123456789/{interaction_token}/callback",
    ),
    (f"https://cdn.example.com/attachments/{TOKEN}", "https://cdn.example.com/attachments/{redacted}"),
    # Already templated or token-free: untouched.
    (
        "/interactions/{interaction_id}/{interaction_token}/callback",
        "/interactions/{interaction_id}/{interaction_token}/callback",
    ),
    ("POST /channels/{channel_id}/messages", "POST /channels/{channel_id}/messages"),
    (
        "https://discord.com/api/v10/channels/123456789012345678/messages/987654321098765432",
        "https://discord.com/api/v10/channels/123456789012345678/messages/987654321098765432",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), SCRUB_CASES)
@pytest.mark.parametrize("target", SCRUBBED_TARGETS)
def test_scrub_rules_remove_discord_tokens(target: str, raw: str, expected: str) -> None:
    rules = scrub_rules()[target]
    assert len(rules) == 3  # interactions, webhooks, generic long segment
    out = apply(rules, raw)
    assert out == expected
    assert TOKEN not in out and WEBHOOK_TOKEN not in out
    assert apply(rules, out) == out  # idempotent: a second collector tier changes nothing


def test_scrub_rules_cover_messages_and_the_auth_header() -> None:
    statements = load_yaml("otelcol.yaml")["processors"]["transform/scrub"]["trace_statements"]
    rules = scrub_rules()
    assert set(SCRUBBED_TARGETS) <= set(rules)
    for target in ("span.status.message", 'spanevent.attributes["exception.message"]'):
        assert (
            apply(rules[target], f"404 Not Found (error code: 10015): /webhooks/1/{TOKEN}")
            == "404 Not Found (error code: 10015): /webhooks/1/{webhook_token}"
        )
    assert 'delete_key(span.attributes, "http.request.header.authorization")' in statements
    assert all(REPLACE.match(s) or s.startswith("delete_key(") for s in statements)
    assert load_yaml("otelcol.yaml")["processors"]["transform/scrub"]["error_mode"] == "ignore"


# --------------------------------------------------------------------------------------------
# Compose: pinned images, loopback ports, and ports that agree with the configs.
# --------------------------------------------------------------------------------------------


def compose(rel: str) -> dict[str, Any]:
    doc = load_yaml(rel)
    assert set(doc) <= {"name", "services", "volumes", "networks"}
    return doc


def config_of(service: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, local path relative to ROOT) of the config file a service mounts."""
    for vol in service.get("volumes", []):
        src, _, rest = vol.partition(":")
        target = rest.split(":", 1)[0]
        if target in CONFIG_TARGETS:
            return CONFIG_TARGETS[target], os.path.normpath(src)
    return None


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    out = []
    for spec in service.get("ports", []):
        parts = str(spec).split(":")
        assert len(parts) == 3, f"{spec!r}: bind an address explicitly"
        out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


def service_listen_ports(doc: dict[str, Any], name: str) -> set[int]:
    service = doc["services"][name]
    found = config_of(service)
    if found is None:
        return {3000} if service["image"].startswith("grafana/grafana:") else set()
    kind, rel = found
    cfg = load_yaml(rel)
    if kind in ("collector", "jaeger"):
        return listen_ports(cfg)
    if kind == "tempo":
        ports = {cfg["server"]["http_listen_port"], cfg["server"]["grpc_listen_port"]}
        for proto in cfg["distributor"]["receivers"]["otlp"]["protocols"].values():
            ports.add(port_of(proto["endpoint"]))
        return ports
    assert kind == "prometheus"
    flags = [c for c in service.get("command", []) if c.startswith("--web.listen-address=")]
    return {port_of(flags[0].split("=", 1)[1])} if flags else {9090}


@pytest.mark.parametrize("rel", COMPOSE_FILES)
def test_images_are_pinned(rel: str) -> None:
    for name, service in compose(rel)["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", name
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image}"
        if repo == "otel/opentelemetry-collector-contrib":
            assert image == COLLECTOR_IMAGE
    images = {s["image"].rpartition(":")[0]: s["image"] for s in compose(rel)["services"].values()}
    assert images["jaegertracing/jaeger"].split(":")[1].startswith("2.")  # Jaeger v2
    assert images["prom/prometheus"].split(":")[1].startswith("v3.")  # Prometheus v3


@pytest.mark.parametrize("rel", COMPOSE_FILES)
def test_ports_are_bound_to_loopback_and_served(rel: str) -> None:
    doc = compose(rel)
    for name, service in doc["services"].items():
        listening = service_listen_ports(doc, name)
        for host_ip, host_port, container_port in published(service):
            assert host_ip == "127.0.0.1", f"{name}: {host_ip}"
            assert container_port in listening, (
                f"{name} publishes {container_port}, listens on {sorted(listening)}"
            )
            assert host_port == container_port


@pytest.mark.parametrize("rel", COMPOSE_FILES)
def test_mounted_files_exist_and_commands_read_them(rel: str) -> None:
    doc = compose(rel)
    named_volumes = set(doc.get("volumes") or {})
    for name, service in doc["services"].items():
        for vol in service.get("volumes", []):
            src = vol.partition(":")[0]
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name}: {src}"
            else:
                assert src in named_volumes, f"{name}: {src}"
        found = config_of(service)
        if found:
            target = next(t for t, k in CONFIG_TARGETS.items() if k == found[0])
            assert any(target in str(c) for c in service.get("command", [])), name


def test_receiver_ports_are_published_where_bots_connect() -> None:
    for rel, front in (
        ("docker-compose.yaml", "otel-collector"),
        ("docker-compose.scale-out.yaml", "otel-agent"),
    ):
        doc = compose(rel)
        kind, cfg_rel = config_of(doc["services"][front]) or ("", "")
        assert kind == "collector"
        cfg = load_yaml(cfg_rel)
        receiver_ports = {port_of(p["endpoint"]) for p in cfg["receivers"]["otlp"]["protocols"].values()}
        assert receiver_ports == {4317, 4318}
        assert receiver_ports <= {c for _ip, _h, c in published(doc["services"][front])}
    # Samplers are reached only through the agents.
    assert "ports" not in compose("docker-compose.scale-out.yaml")["services"]["otel-sampler"]


def assert_reaches(doc: dict[str, Any], endpoint: str, where: str) -> None:
    host, port = host_of(endpoint), port_of(endpoint)
    assert host in doc["services"], f"{where}: {host} is not a service"
    listening = service_listen_ports(doc, host)
    assert port in listening, f"{where}: {host} listens on {sorted(listening)}, not {port}"


@pytest.mark.parametrize("rel", COMPOSE_FILES)
def test_every_connection_between_services_lines_up(rel: str) -> None:
    doc = compose(rel)
    checked = 0
    for name, service in doc["services"].items():
        found = config_of(service)
        if not found:
            continue
        kind, cfg_rel = found
        cfg = load_yaml(cfg_rel)
        if kind == "collector":
            for xid, body in cfg["exporters"].items():
                if ctype(xid) in ("otlp_grpc", "otlp_http"):
                    assert_reaches(doc, body["endpoint"], f"{name} {xid}")
                    checked += 1
                if ctype(xid) == "load_balancing":
                    dns = body["resolver"]["dns"]
                    assert_reaches(doc, f"{dns['hostname']}:{dns['port']}", f"{name} {xid}")
                    checked += 1
        if kind == "jaeger":
            for backend in cfg["extensions"]["jaeger_storage"].get("metric_backends", {}).values():
                assert_reaches(doc, backend["prometheus"]["endpoint"], f"{name} metric backend")
                checked += 1
        if kind == "prometheus":
            for job in cfg["scrape_configs"]:
                for static in job.get("static_configs", []):
                    for target in static["targets"]:
                        if not target.startswith("localhost:"):
                            assert_reaches(doc, target, f"prometheus job {job['job_name']}")
                            checked += 1
                for sd in job.get("dns_sd_configs", []):
                    for dns_name in sd["names"]:
                        assert_reaches(doc, f"{dns_name}:{sd['port']}", f"prometheus job {job['job_name']}")
                        checked += 1
            for rule_file in cfg["rule_files"]:
                mounts = [v for v in service["volumes"] if rule_file.startswith(v.split(":")[1] + "/")]
                assert mounts, rule_file
    datasources = load_yaml("grafana/provisioning/datasources/datasources.yaml")["datasources"]
    for ds in datasources:
        assert_reaches(doc, ds["url"], f"grafana datasource {ds['name']}")
        checked += 1
    assert checked >= 8


def test_collector_scrape_targets_are_its_metric_endpoints() -> None:
    prom = load_yaml("prometheus/prometheus.yaml")
    targets = {
        t for job in prom["scrape_configs"] for s in job.get("static_configs", []) for t in s["targets"]
    }
    cfg = load_yaml("otelcol.yaml")
    assert f"otel-collector:{port_of(cfg['exporters']['prometheus']['endpoint'])}" in targets
    reader = cfg["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert f"otel-collector:{reader['port']}" in targets


# --------------------------------------------------------------------------------------------
# PromQL in rules, dashboard and datasources: only names and labels the connectors emit.
# --------------------------------------------------------------------------------------------

UNIT_SUFFIX = {"ms": "milliseconds", "s": "seconds", "us": "microseconds", "By": "bytes"}
SPAN_METRICS_DEFAULT_LABELS = {
    "service_name",
    "span_name",
    "span_kind",
    "status_code",
    # feature gate connector.spanmetrics.includeCollectorInstanceID is beta (on)
    "collector_instance_id",
}
SCRAPE_LABELS = {"job", "instance"}


def prom_name(otel_name: str) -> str:
    """OTel name -> Prometheus name part under translation_strategy UnderscoreEscapingWithSuffixes."""
    return re.sub(r"[^A-Za-z0-9_:]", "_", otel_name)


def emitted_metrics() -> dict[str, set[str]]:
    """Prometheus metric name -> label names, computed from otelcol.yaml's connectors."""
    cfg = load_yaml("otelcol.yaml")
    exporter = cfg["exporters"]["prometheus"]
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    prefix = prom_name(exporter["namespace"]) + "_" if exporter.get("namespace") else ""
    metrics: dict[str, set[str]] = {}

    sm = cfg["connectors"]["span_metrics"]
    ns = prom_name(sm.get("namespace", "traces.span.metrics"))
    labels = (
        (SPAN_METRICS_DEFAULT_LABELS - {prom_name(d) for d in sm.get("exclude_dimensions", [])})
        | {prom_name(d["name"]) for d in sm["dimensions"]}
        | SCRAPE_LABELS
    )
    metrics[f"{prefix}{ns}_calls_total"] = labels | {
        prom_name(d["name"]) for d in sm.get("calls_dimensions", [])
    }
    if not sm.get("histogram", {}).get("disable"):
        assert "exponential" not in sm["histogram"], "native histograms have no _bucket series"
        unit = UNIT_SUFFIX[sm["histogram"].get("unit", "ms")]
        hist_labels = labels | {prom_name(d["name"]) for d in sm["histogram"].get("dimensions", [])}
        metrics[f"{prefix}{ns}_duration_{unit}_bucket"] = hist_labels | {"le"}
        metrics[f"{prefix}{ns}_duration_{unit}_sum"] = hist_labels
        metrics[f"{prefix}{ns}_duration_{unit}_count"] = hist_labels
    if sm.get("events", {}).get("enabled"):
        metrics[f"{prefix}{ns}_events_total"] = labels | {
            prom_name(d["name"]) for d in sm["events"]["dimensions"]
        }

    for entry in cfg["connectors"].get("signal_to_metrics", {}).get("spans", []):
        base = prefix + prom_name(entry["name"])
        unit = entry.get("unit", "")
        if unit in UNIT_SUFFIX:
            base += "_" + UNIT_SUFFIX[unit]
        attrs = {prom_name(a["key"]) for a in entry.get("attributes", [])} | SCRAPE_LABELS
        if "histogram" in entry:
            metrics[base + "_bucket"] = attrs | {"le"}
            metrics[base + "_sum"] = attrs
            metrics[base + "_count"] = attrs
        elif "sum" in entry:
            metrics[base + "_total"] = attrs
        else:
            metrics[base] = attrs
    return metrics


KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "start",
    "end",
}


def parse_promql(expr: str) -> tuple[list[tuple[str | None, set[str]]], set[str]]:
    """Selectors ``(metric name or None, matcher label names)`` and the grouping label names."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = e.replace("$__tags", "")  # Grafana's trace-to-metrics tag matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # ranges and subqueries
    e = re.sub(r"\boffset\s+-?\w+", "", e)
    grouping: set[str] = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        grouping |= {lbl.strip() for lbl in m.group(1).split(",") if lbl.strip()}
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    selectors: list[tuple[str | None, set[str]]] = []

    def selector(m: re.Match[str]) -> str:
        labels = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2)))
        selectors.append((m.group(1), labels))
        return f" {m.group(1) or ''} "

    e = re.sub(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}", selector, e)
    named = {s for s, _ in selectors}
    for m in re.finditer(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:])(?!\s*\()", e):
        name = m.group(1)
        if name not in KEYWORDS and name not in named:
            selectors.append((name, set()))
            named.add(name)
    return selectors, grouping


def test_promql_parser_understands_what_we_write() -> None:
    sels, grouping = parse_promql(
        'histogram_quantile(0.95, sum by (le, span_name) (rate(a_bucket{x="1", y!~"a|b"}[$__rate_interval])))'
        " / on(span_name) group_left b_total offset 1d and sum(c) by (z) > 1e3"
    )
    assert sels == [("a_bucket", {"x", "y"}), ("b_total", set()), ("c", set())]
    assert grouping == {"le", "span_name", "z"}


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = load_yaml("prometheus/rules/otel-bot.rules.yaml")["groups"]
    return groups


def all_promql() -> list[tuple[str, str]]:
    """(where, PromQL) from the rules, the dashboard and the Grafana datasources."""
    out = [(r.get("record") or r["alert"], r["expr"]) for g in rule_groups() for r in g["rules"]]
    dash = json.loads((ROOT / "grafana/dashboards/otel-bot.json").read_text(encoding="utf-8"))
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r}", target["expr"]))
    for var in dash["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)", var["query"]["query"])
        assert m, var["name"]
        out.append((f"variable {var['name']}", f"count by ({m.group(2)}) ({m.group(1)})"))
    for ds in load_yaml("grafana/provisioning/datasources/datasources.yaml")["datasources"]:
        for query in ds.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
            out.append((f"datasource {ds['name']} {query['name']!r}", query["query"].replace("$$", "$")))
    return out


def recorded_metrics(emitted: dict[str, set[str]]) -> dict[str, set[str]]:
    recorded: dict[str, set[str]] = {}
    for group in rule_groups():
        for rule in group["rules"]:
            if "record" not in rule:
                continue
            sels, grouping = parse_promql(rule["expr"])
            labels = (
                grouping - {"le"}
                if grouping
                else set().union(
                    *(emitted.get(n or "", set()) | recorded.get(n or "", set()) for n, _ in sels)
                )
            )
            recorded[rule["record"]] = labels
    return recorded


def test_every_metric_in_promql_is_emitted() -> None:
    emitted = emitted_metrics()
    known = emitted | recorded_metrics(emitted)
    unknown = []
    for where, expr in all_promql():
        for name, _labels in parse_promql(expr)[0]:
            assert name, f"{where}: selector without a metric name"
            if name not in known:
                unknown.append((where, name))
    assert unknown == []


def test_every_label_in_promql_exists_on_its_metric() -> None:
    emitted = emitted_metrics()
    known = emitted | recorded_metrics(emitted)
    wrong = []
    for where, expr in all_promql():
        sels, grouping = parse_promql(expr)
        union: set[str] = set()
        for name, labels in sels:
            have = known.get(name or "", set())
            union |= have
            wrong += [(where, name, lbl) for lbl in labels - have]
        wrong += [(where, "by/on", lbl) for lbl in grouping - union]
    assert wrong == []


def test_alert_annotations_use_labels_the_expression_keeps() -> None:
    emitted = emitted_metrics()
    known = emitted | recorded_metrics(emitted)
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            sels, grouping = parse_promql(rule["expr"])
            kept = grouping or set().union(*(known[n or ""] for n, _ in sels))
            used = set(re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", json.dumps(rule["annotations"])))
            assert used <= kept, (rule["alert"], used - kept)


def test_jaeger_monitor_tab_reads_the_connector_metrics() -> None:
    sm = span_metrics_cfg()
    backend = load_yaml("jaeger.yaml")["extensions"]["jaeger_storage"]["metric_backends"]["promstore"][
        "prometheus"
    ]
    assert backend["metric_namespace"] == prom_name(sm["namespace"])
    assert backend["latency_unit"] == sm["histogram"]["unit"]
    assert backend["normalize_calls"] is True and backend["normalize_duration"] is True
    emitted = emitted_metrics()
    assert f"{backend['metric_namespace']}_calls_total" in emitted
    assert f"{backend['metric_namespace']}_duration_{UNIT_SUFFIX[backend['latency_unit']]}_bucket" in emitted
    query = load_yaml("jaeger.yaml")["extensions"]["jaeger_query"]["storage"]
    assert (
        query["metrics"] == "promstore"
        and query["traces"] in load_yaml("jaeger.yaml")["extensions"]["jaeger_storage"]["backends"]
    )


# --------------------------------------------------------------------------------------------
# Dashboard, datasources and rules: the content the issue lists.
# --------------------------------------------------------------------------------------------


def test_dashboard_has_the_panels_the_issue_lists() -> None:
    dash = json.loads((ROOT / "grafana/dashboards/otel-bot.json").read_text(encoding="utf-8"))
    titles = [p["title"] for p in dash["panels"]]
    for wanted in (
        "Rate per command",
        "Errors per command",
        "p50 / p95 / p99 latency per command",
        "Acknowledgement-deadline misses",
        "Slowest REST routes",
        "429",
        "DB time share",
        "Slow queries",
        "Executor queue wait",
    ):
        assert any(wanted in t for t in titles), wanted
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    uids = {ds["uid"] for ds in load_yaml("grafana/provisioning/datasources/datasources.yaml")["datasources"]}
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in uids and panel["targets"], panel["title"]
    latency = next(p for p in dash["panels"] if p["title"].startswith("p50 / p95 / p99"))
    assert [t["expr"].split("(")[1].split(",")[0] for t in latency["targets"]] == ["0.50", "0.95", "0.99"]
    provider = load_yaml("grafana/provisioning/dashboards/dashboards.yaml")["providers"][0]
    mounts = compose("docker-compose.yaml")["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_datasources_link_traces_to_metrics() -> None:
    datasources = {
        ds["uid"]: ds for ds in load_yaml("grafana/provisioning/datasources/datasources.yaml")["datasources"]
    }
    assert {ds["type"] for ds in datasources.values()} == {"prometheus", "tempo", "jaeger"}
    for uid in ("tempo", "jaeger"):
        t2m = datasources[uid]["jsonData"]["tracesToMetrics"]
        assert t2m["datasourceUid"] == "prometheus" and t2m["queries"]
        for tag in t2m["tags"]:
            assert tag["key"] in ATTRIBUTE_KEYS | {"service.name"}
            assert tag["value"] == prom_name(tag["key"])
            assert tag["value"] in emitted_metrics()["traces_span_metrics_calls_total"]
        for query in t2m["queries"]:
            assert "$$__tags" in query["query"]  # `$$` survives Grafana's env expansion as `$`
    exemplars = datasources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplars == [{"name": "trace_id", "datasourceUid": "tempo"}]
    assert load_yaml("otelcol.yaml")["connectors"]["span_metrics"]["exemplars"]["enabled"] is True
    assert load_yaml("otelcol.yaml")["exporters"]["prometheus"]["enable_open_metrics"] is True


def test_alert_rules_cover_the_issue() -> None:
    alerts = {r["alert"]: r for g in rule_groups() for r in g["rules"] if "alert" in r}
    latency = alerts["OtelBotCommandLatencyHigh"]
    assert latency["for"] == "5m" and "_p95:5m" in latency["expr"] and "> 2000" in latency["expr"]
    errors = alerts["OtelBotErrorRateHigh"]
    assert "> 0.05" in errors["expr"] and errors["for"] == "5m"
    ack = alerts["OtelBotAckDeadlineMissed"]
    assert 'discord_interaction_ack_deadline_missed="true"' in ack["expr"] and ack["expr"].strip().endswith(
        "> 0"
    )
    regression = alerts["OtelBotLatencyRegression"]
    assert "1.5 *" in regression["expr"] and "offset 1d" in regression["expr"]
    for rule in alerts.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# --------------------------------------------------------------------------------------------
# promtool
# --------------------------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "promtool is missing in CI (Debian's prometheus package ships it; .ci/run installs it)"
            )
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", str(ROOT / "prometheus/rules/otel-bot.rules.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rule_unit_tests() -> None:
    """The alerts fire on synthetic span metrics: ack misses, errors, slow p95, regression."""
    result = run_promtool("test", "rules", str(ROOT / "prometheus/tests/otel-bot.rules.test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rel", ["prometheus/prometheus.yaml", "scale-out/prometheus.yaml"])
def test_promtool_check_config(rel: str) -> None:
    result = run_promtool("check", "config", "--syntax-only", str(ROOT / rel))
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_documents_policies_alerts_and_ports() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for policy in load_yaml("otelcol.yaml")["processors"]["tail_sampling"]["policies"]:
        assert f"`{policy['name']}`" in readme, policy["name"]
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" in rule:
                assert f"`{rule['alert']}`" in readme, rule["alert"]
    for service in compose("docker-compose.yaml")["services"].values():
        for host_ip, host_port, _container in published(service):
            assert f"{host_ip}:{host_port}" in readme, host_port
    for image in {s["image"] for s in compose("docker-compose.yaml")["services"].values()}:
        assert f"`{image}`" in readme, image

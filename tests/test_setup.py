"""configure_tracing(): OTEL_* env, keyword overrides, validation, no stacking, export over gRPC/HTTP."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace import sampling as sdk_sampling
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_bot
from otel_bot import _setup
from otel_bot._setup import ExportStats, _CountingBatchSpanProcessor, configure_tracing, export_stats
from otel_bot.testing import OTLPReceiver

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("OTEL_") and key != "OTEL_BOT_STRICT":
            monkeypatch.delenv(key)
    yield
    _setup._reset_for_tests()


def _batch_processors(provider: TracerProvider) -> list[_CountingBatchSpanProcessor]:
    procs = provider.pipeline.processors  # type: ignore[attr-defined]
    assert all(isinstance(p, _CountingBatchSpanProcessor) for p in procs)
    return list(procs)


def _configure(**kwargs: object) -> TracerProvider:
    kwargs.setdefault("set_global", False)
    kwargs.setdefault("handle_sigterm", False)
    return configure_tracing(**kwargs)  # type: ignore[arg-type]


def _child_env(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    base["PYTHONPATH"] = REPO
    base.update(env)
    return base


def _run_child(code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


# A bot-shaped trace from the global provider, configured by the environment alone. The long
# schedule delay proves the spans arrive through the exit flush, not the timer.
_ENV_ONLY_CHILD = """
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind
    from otel_bot import configure_tracing

    provider = configure_tracing()
    assert trace.get_tracer_provider() is provider
    tracer = trace.get_tracer("env.only", "9.9")
    with tracer.start_as_current_span("/queue", kind=SpanKind.SERVER) as root:
        root.set_attribute("discord.command", "queue")
        with tracer.start_as_current_span("POST /interactions/{interaction_id}/{token}/callback", kind=SpanKind.CLIENT):
            pass
    print("done")
"""


def _assert_env_trace(receiver: OTLPReceiver, transport: str) -> None:
    spans = receiver.wait_for_spans(2, timeout=20)
    assert len(spans) == 2
    by_name = {s.name: s for s in spans}
    root = by_name["/queue"]
    child = by_name["POST /interactions/{interaction_id}/{token}/callback"]
    assert root.parent_span_id is None and child.parent_span_id == root.span_id
    assert child.trace_id == root.trace_id
    assert root.kind is SpanKind.SERVER and child.kind is SpanKind.CLIENT
    assert root.attributes == {"discord.command": "queue"}
    assert root.resource["service.name"] == "env-bot"
    assert root.resource["deployment.environment"] == "ci"
    assert root.resource["team"] == "bots core"  # percent-decoded
    assert root.resource["telemetry.sdk.language"] == "python"
    assert (root.scope_name, root.scope_version) == ("env.only", "9.9")
    assert {s.transport for s in spans} == {transport}
    assert all(r.headers.get("x-api-key") == "k=1" for r in receiver.requests)


def test_env_only_exports_over_grpc(otlp_receiver: OTLPReceiver) -> None:
    proc = _run_child(
        _ENV_ONLY_CHILD,
        OTEL_SERVICE_NAME="env-bot",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci,team=bots%20core,service.name=overridden",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.grpc_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=k%3D1",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    assert proc.stdout.strip() == "done"
    _assert_env_trace(otlp_receiver, "grpc")


def test_env_only_exports_over_http(otlp_receiver: OTLPReceiver) -> None:
    proc = _run_child(
        _ENV_ONLY_CHILD,
        OTEL_SERVICE_NAME="env-bot",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci,team=bots%20core",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.http_endpoint,  # base URL: /v1/traces is appended
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",  # the signal-specific one wins
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-api-key=k%3D1",
        OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    assert proc.stdout.strip() == "done"
    _assert_env_trace(otlp_receiver, "http")
    assert {r.content_encoding for r in otlp_receiver.requests} == {"gzip"}
    assert {r.content_type for r in otlp_receiver.requests} == {"application/x-protobuf"}


def test_twice_in_a_fresh_process_reconfigures_without_stacking(otlp_receiver: OTLPReceiver) -> None:
    _run_child(
        """
        from opentelemetry import trace
        from otel_bot import configure_tracing, export_stats
        from otel_bot._setup import flush

        first = configure_tracing("first")
        tracer = trace.get_tracer("twice")
        with tracer.start_as_current_span("before"):
            pass
        second = configure_tracing("second")
        assert second is first and trace.get_tracer_provider() is first
        assert len(first.pipeline.processors) == 1
        with tracer.start_as_current_span("after"):
            pass
        assert flush(10)
        stats = export_stats()
        assert stats.exported == 2, stats
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.grpc_endpoint,
    )
    spans = otlp_receiver.wait_for_spans(2, timeout=20)
    assert sorted((s.name, s.resource["service.name"]) for s in spans) == [
        ("after", "second"),  # a tracer from before the second call gets the new resource
        ("before", "first"),
    ]


# -- in-process: env parsing, keyword overrides, validation ----------------------------------------


def test_defaults() -> None:
    provider = _configure()
    [proc] = _batch_processors(provider)
    assert isinstance(proc.exporter, GrpcExporter)
    assert proc.max_queue_size == _setup.DEFAULT_MAX_QUEUE_SIZE == 16_384
    assert proc.max_export_batch_size == 512
    assert proc.schedule_delay_millis == 1_000
    assert proc.export_timeout_millis == 10_000
    assert isinstance(provider.sampler, sdk_sampling.ParentBased)
    assert provider.resource.attributes["service.name"].startswith("unknown_service")
    assert export_stats() == ExportStats(max_queue_size=16_384)


def test_env_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "300")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "30")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "250")
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "1500")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp, console")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    provider = _configure()
    otlp, console = _batch_processors(provider)
    assert isinstance(otlp.exporter, HttpExporter) and isinstance(console.exporter, ConsoleSpanExporter)
    assert (otlp.max_queue_size, otlp.max_export_batch_size) == (300, 30)
    assert (otlp.schedule_delay_millis, otlp.export_timeout_millis) == (250, 1500)
    assert isinstance(provider.sampler, sdk_sampling.TraceIdRatioBased)
    assert provider.sampler.rate == 0.25
    assert export_stats().max_queue_size == 600


@pytest.mark.parametrize(
    ("name", "arg", "expected"),
    [
        ("always_on", None, "AlwaysOnSampler"),
        ("always_off", None, "AlwaysOffSampler"),
        ("parentbased_always_on", None, "ParentBased{root:AlwaysOnSampler"),
        ("parentbased_always_off", None, "ParentBased{root:AlwaysOffSampler"),
        ("traceidratio", "0.5", "TraceIdRatioBased{0.5}"),
        ("parentbased_traceidratio", "0.1", "ParentBased{root:TraceIdRatioBased{0.1}"),
        ("TraceIdRatio", None, "TraceIdRatioBased{1.0}"),  # case-insensitive; the ratio defaults to 1
    ],
)
def test_env_samplers(monkeypatch: pytest.MonkeyPatch, name: str, arg: str | None, expected: str) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    if arg is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    provider = _configure(exporter="none")
    assert provider.sampler.get_description().startswith(expected)


def test_keywords_override_env(monkeypatch: pytest.MonkeyPatch, otlp_receiver: OTLPReceiver) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "env-name")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "region=env,keep=yes")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=env")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "10")
    provider = _configure(
        service_name="kw-name",
        resource_attributes={"region": "kw", "shard": 3},
        endpoint=otlp_receiver.http_endpoint,  # no path: /v1/traces is appended
        protocol="http/protobuf",
        headers={"x-api-key": "kw"},
        exporter="otlp",
        sampler="always_on",
        max_queue_size=2048,
    )
    [proc] = _batch_processors(provider)
    assert isinstance(proc.exporter, HttpExporter) and proc.max_queue_size == 2048
    with provider.get_tracer("kw").start_as_current_span("kw-span"):
        pass
    assert _setup.flush(10)
    [span] = otlp_receiver.wait_for_spans(1, timeout=10)
    assert span.name == "kw-span" and span.transport == "http"
    assert span.resource["service.name"] == "kw-name"
    assert (span.resource["region"], span.resource["keep"], span.resource["shard"]) == ("kw", "yes", 3)
    assert otlp_receiver.requests[0].headers["x-api-key"] == "kw"


def test_traces_endpoint_is_used_as_is(monkeypatch: pytest.MonkeyPatch, otlp_receiver: OTLPReceiver) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp_receiver.http_traces_url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    provider = _configure()
    with provider.get_tracer("t").start_as_current_span("as-is"):
        pass
    assert _setup.flush(10)
    assert [s.name for s in otlp_receiver.wait_for_spans(1, timeout=10)] == ["as-is"]


def test_ratio_keyword_and_sampler_instance() -> None:
    provider = _configure(exporter="none", ratio=0.0)
    assert (
        provider.sampler.get_description()
        == "ParentBased{root:TraceIdRatioBased{0.0},remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"
    )
    custom = sdk_sampling.TraceIdRatioBased(0.75)
    assert _configure(exporter="none", sampler=custom).sampler is custom


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "http/json",
            r"OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' is not one of grpc, http/protobuf",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "udp",
            r"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'udp' is not one of grpc",
        ),
        (
            "OTEL_TRACES_EXPORTER",
            "zipkin",
            r"OTEL_TRACES_EXPORTER: 'zipkin' is not one of otlp, console, none",
        ),
        ("OTEL_TRACES_EXPORTER", "none,console", r"OTEL_TRACES_EXPORTER: 'none' cannot be combined"),
        (
            "OTEL_TRACES_SAMPLER",
            "sometimes",
            r"OTEL_TRACES_SAMPLER: 'sometimes' is not one of always_on, always_off, traceidratio",
        ),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots", r"OTEL_BSP_MAX_QUEUE_SIZE: expected an integer >= 1, got 'lots'"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0", r"OTEL_BSP_MAX_QUEUE_SIZE: expected an integer >= 1, got '0'"),
        ("OTEL_BSP_SCHEDULE_DELAY", "-5", r"OTEL_BSP_SCHEDULE_DELAY: expected an integer >= 0"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "1.5s", r"OTEL_BSP_EXPORT_TIMEOUT: expected an integer"),
        (
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            "99999",
            r"max_export_batch_size \(99999, OTEL_BSP_MAX_EXPORT_BATCH_SIZE\) must be <= max_queue_size",
        ),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "novalue",
            r"OTEL_RESOURCE_ATTRIBUTES: expected comma-separated key=value pairs",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "a=1,broken",
            r"OTEL_EXPORTER_OTLP_HEADERS: expected comma-separated key=value",
        ),
        (
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "brotli",
            r"OTEL_EXPORTER_OTLP_COMPRESSION: 'brotli' is not one of none, gzip, deflate",
        ),
    ],
)
def test_bad_env_values_raise_clear_errors(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=message):
        _configure()


def test_bad_ratio_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1.5")
    with pytest.raises(ValueError, match=r"OTEL_TRACES_SAMPLER_ARG: .*between 0 and 1, got '1.5'"):
        _configure()
    monkeypatch.delenv("OTEL_TRACES_SAMPLER")
    with pytest.raises(ValueError, match=r"sampler_arg: the traceidratio sampler .* got 'half'"):
        _configure(sampler="traceidratio", sampler_arg="half")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
    with pytest.raises(ValueError, match=r"OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL"):
        _configure(protocol="http/protobuf")
    with pytest.raises(ValueError, match=r"protocol: 'thrift' is not one of grpc, http/protobuf"):
        _configure(protocol="thrift")
    with pytest.raises(ValueError, match=r"max_queue_size: expected an integer >= 1, got '-1'"):
        _configure(max_queue_size=-1)
    with pytest.raises(ValueError, match=r"service_name: expected a non-empty string"):
        _configure(service_name=" ")


def test_bad_values_leave_the_running_pipeline_alone() -> None:
    memory = InMemorySpanExporter()
    provider = _configure(exporter=memory)
    with pytest.raises(ValueError):
        _configure(exporter="bogus")
    assert [p.exporter for p in _batch_processors(provider)] == [memory]


def test_twice_does_not_stack_processors() -> None:
    first_memory, second_memory = InMemorySpanExporter(), InMemorySpanExporter()
    first = _configure(service_name="one", exporter=first_memory, sampler="always_on")
    tracer = first.get_tracer("twice")
    with tracer.start_as_current_span("one"):
        pass
    second = _configure(service_name="two", exporter=second_memory, sampler="always_off")
    assert second is first
    assert [p.exporter for p in _batch_processors(second)] == [second_memory]
    # The old pipeline was flushed on replacement, then shut down.
    assert [s.name for s in first_memory.get_finished_spans()] == ["one"]
    with tracer.start_as_current_span("off") as span:  # a tracer from before: new sampler applies
        assert not span.is_recording()
    third_memory = InMemorySpanExporter()  # a replaced pipeline shuts its exporters down
    _configure(service_name="three", exporter=third_memory, sampler="always_on")
    with tracer.start_as_current_span("three"):
        pass
    assert _setup.flush(5)
    assert second_memory.get_finished_spans() == ()
    [span_three] = third_memory.get_finished_spans()
    assert span_three.name == "three" and span_three.resource.attributes["service.name"] == "three"
    assert len(first_memory.get_finished_spans()) == 1  # nothing stacked onto the old exporter
    assert export_stats().exported == 2  # cumulative over both pipelines


def test_exporter_none_and_instances() -> None:
    assert _batch_processors(_configure(exporter="none")) == []
    memory = InMemorySpanExporter()
    procs = _batch_processors(_configure(exporter=["console", memory]))
    assert [type(p.exporter) for p in procs] == [ConsoleSpanExporter, InMemorySpanExporter]
    aliases = _batch_processors(_configure(exporter="otlp_proto_http,otlp_proto_grpc"))
    assert [type(p.exporter) for p in aliases] == [HttpExporter, GrpcExporter]


def test_shutdown_flushes_pending_spans(otlp_receiver: OTLPReceiver) -> None:
    provider = _configure(endpoint=otlp_receiver.grpc_endpoint, schedule_delay_millis=60_000)
    tracer = provider.get_tracer("shutdown")
    for i in range(5):
        with tracer.start_as_current_span(f"pending-{i}"):
            pass
    assert otlp_receiver.spans == []  # still queued: the timer is a minute away
    assert export_stats().queue_size == 5
    provider.shutdown()
    assert sorted(s.name for s in otlp_receiver.wait_for_spans(5, timeout=10)) == [
        f"pending-{i}" for i in range(5)
    ]
    assert export_stats().exported == 5 and export_stats().queue_size == 0


def test_set_global_refused_when_another_provider_is_global(caplog: pytest.LogCaptureFixture) -> None:
    existing = trace.get_tracer_provider()  # the test suite's provider (tests/fixtures_otel.py)
    assert isinstance(existing, TracerProvider)
    with caplog.at_level(logging.WARNING, logger="otel_bot"):
        provider = configure_tracing(exporter="none", set_global=True, handle_sigterm=False)
    assert provider is not existing and trace.get_tracer_provider() is existing
    assert "already installed" in caplog.text and "instrument_bot(bot, tracer_provider=...)" in caplog.text


def test_console_adds_the_waterfall(caplog: pytest.LogCaptureFixture) -> None:
    try:
        from otel_bot._summary import WaterfallProcessor
    except ImportError:
        with caplog.at_level(logging.WARNING, logger="otel_bot"):
            provider = _configure(exporter="none", console=True)
        assert provider.pipeline.processors == ()  # type: ignore[attr-defined]
        assert "WaterfallProcessor" in caplog.text
        return
    provider = _configure(exporter="none", console=True)
    [proc] = provider.pipeline.processors  # type: ignore[attr-defined]
    assert isinstance(proc, WaterfallProcessor)
    assert _configure(exporter="none").pipeline.processors == ()  # type: ignore[attr-defined]


def test_facade_exports() -> None:
    assert otel_bot.configure_tracing is configure_tracing
    assert otel_bot.export_stats is export_stats
    assert otel_bot.ExportStats is ExportStats

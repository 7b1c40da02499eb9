"""Thresholds and severities: classification boundaries, threshold lookup, span attributes."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_bot import _attributes as A
from otel_bot import _sla
from otel_bot._config import Settings, SeverityBounds
from otel_bot._sla import Severity, assess, breach_text, classify, evaluate


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0.0, Severity.FAST),
        (9.999, Severity.FAST),
        (10.0, Severity.OK),
        (499.9, Severity.OK),
        (500.0, Severity.OK),
        (999.999, Severity.OK),
        (1000.0, Severity.SLOW),
        (2999.0, Severity.SLOW),
        (3000.0, Severity.SLOW),
        (3000.001, Severity.CRITICAL),
        (60_000.0, Severity.CRITICAL),
    ],
)
def test_classify_default_bounds(ms: float, expected: Severity) -> None:
    assert classify(ms) is expected
    assert classify(ms, SeverityBounds()) is expected


def test_classify_custom_bounds() -> None:
    bounds = SeverityBounds(fast_ms=1, ok_ms=50, slow_ms=100, critical_ms=200)
    assert classify(0.5, bounds) is Severity.FAST
    assert classify(1, bounds) is Severity.OK
    assert classify(99, bounds) is Severity.OK
    assert classify(100, bounds) is Severity.SLOW
    assert classify(200, bounds) is Severity.SLOW
    assert classify(201, bounds) is Severity.CRITICAL


def test_severity_is_a_str_enum() -> None:
    assert [s.value for s in Severity] == list(A.SEVERITIES)
    assert Severity.SLOW == "SLOW"
    assert str(Severity.CRITICAL) == "CRITICAL"
    assert f"{Severity.OK}" == "OK"
    assert Severity.parse("slow") is Severity.SLOW
    assert Severity.parse("nope") is None
    assert Severity.parse(3) is None
    assert Severity.FAST.rank < Severity.OK.rank < Severity.SLOW.rank < Severity.CRITICAL.rank


def test_threshold_lookup_by_user_visible_names() -> None:
    s = Settings(thresholds={"/queue": 500, "ladder queue": 800}, default_threshold_ms=1000)
    assert assess("queue", 600, s).threshold_ms == 500.0
    assert assess("/queue", 600, s).threshold_ms == 500.0
    assert assess("!queue", 600, s).threshold_ms == 500.0
    assert assess("/ladder queue", 600, s).threshold_ms == 800.0
    assert assess("other", 600, s).threshold_ms == 1000.0
    assert assess("other", 600, Settings(default_threshold_ms=None)).threshold_ms is None
    # override beats settings; an explicit None switches the threshold off
    assert assess("queue", 600, s, threshold_ms=2000).threshold_ms == 2000.0
    assert assess("queue", 600, s, threshold_ms=None).threshold_ms is None


def test_assess_exceeded_boundaries() -> None:
    s = Settings(thresholds={"queue": 500})
    at = assess("queue", 500.0, s)
    assert at.exceeded is False and at.over_ms == 0.0 and at.over_percent == 0.0
    over = assess("queue", 3456.0, s)
    assert over.exceeded is True
    assert over.over_ms == pytest.approx(2956.0)
    assert over.over_percent == pytest.approx(591.2)
    assert over.severity is Severity.CRITICAL
    assert over.breach_text() == "queue took 3456 ms (threshold 500 ms, 591% over)"
    zero = assess("queue", 5.0, s, threshold_ms=0)
    assert zero.exceeded is True and zero.over_percent is None
    assert zero.breach_text() == "queue took 5 ms (threshold 0 ms, 5 ms over)"


def test_breach_text_format() -> None:
    assert breach_text("/queue", 3456.0, 500.0) == "/queue took 3456 ms (threshold 500 ms, 591% over)"
    assert breach_text("/ping", 2.5, 1.25) == "/ping took 2.5 ms (threshold 1.2 ms, 100% over)"


def test_evaluate_sets_attributes_and_event(span_exporter: InMemorySpanExporter) -> None:
    settings = Settings(thresholds={"queue": 500})
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("/queue", kind=trace.SpanKind.SERVER) as span:
        result = evaluate(span, "/queue", 3456.0, settings)
    assert result == "CRITICAL" and result is Severity.CRITICAL
    (finished,) = span_exporter.get_finished_spans()
    attrs = dict(finished.attributes or {})
    assert attrs[A.BOT_FLOW_SEVERITY] == "CRITICAL"
    assert attrs[A.BOT_FLOW_THRESHOLD_MS] == 500.0
    assert attrs[A.BOT_FLOW_THRESHOLD_EXCEEDED] is True
    (event,) = finished.events
    assert event.name == A.EVENT_THRESHOLD_EXCEEDED
    ev = dict(event.attributes or {})
    assert ev == {
        A.BOT_FLOW_NAME: "/queue",
        A.BOT_FLOW_DURATION_MS: 3456.0,
        A.BOT_FLOW_THRESHOLD_MS: 500.0,
        A.BOT_FLOW_OVER_MS: 2956.0,
        A.BOT_FLOW_OVER_PERCENT: 591.2,
    }
    assert all(isinstance(v, (float, str)) for v in ev.values())


def test_evaluate_under_threshold_has_no_event(span_exporter: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("/ping") as span:
        assert evaluate(span, "ping", 4.0, Settings()) == "FAST"
    (finished,) = span_exporter.get_finished_spans()
    attrs = dict(finished.attributes or {})
    assert attrs == {
        A.BOT_FLOW_SEVERITY: "FAST",
        A.BOT_FLOW_THRESHOLD_MS: 1000.0,
        A.BOT_FLOW_THRESHOLD_EXCEEDED: False,
    }
    assert finished.events == ()


def test_evaluate_without_threshold(span_exporter: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("on_message") as span:
        assert evaluate(span, "message", 1500.0, Settings(default_threshold_ms=None)) == "SLOW"
    (finished,) = span_exporter.get_finished_spans()
    assert dict(finished.attributes or {}) == {A.BOT_FLOW_SEVERITY: "SLOW"}


def test_evaluate_on_non_recording_span_returns_severity() -> None:
    assert evaluate(trace.INVALID_SPAN, "queue", 20.0, Settings()) == "OK"
    assert evaluate(None, "queue", 20.0, Settings()) == "OK"


def test_evaluate_never_raises_when_not_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_bot import _guard

    class Broken:
        def is_recording(self) -> bool:
            raise RuntimeError("boom")

    _guard.set_strict(False)
    try:
        assert evaluate(Broken(), "queue", 20.0, Settings()) == "OK"
    finally:
        _guard.set_strict(None)
        _guard.reset()
    assert _sla.Severity.OK == "OK"


@pytest.mark.parametrize(
    ("configured", "flow"),
    [
        ("queue", "/queue"),
        ("/ladder queue", "ladder queue"),
        ("!ping", "ping"),
        ("JoinButton", "button JoinButton"),
        ("button JoinButton", "button JoinButton"),
        ("on_message", "on_message"),
        ("event on_message", "on_message"),
        ("message", "on_message"),
        ("matchmaker", "matchmaker"),
        ("task matchmaker", "matchmaker"),
    ],
)
def test_threshold_names_as_users_see_them(configured: str, flow: str) -> None:
    settings = Settings(thresholds={configured: 123.0}, default_threshold_ms=999.0)
    assert settings.threshold_for(flow) == 123.0
    assert settings.threshold_for("something else") == 999.0

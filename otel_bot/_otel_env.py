"""OTEL_* environment variables and configure_tracing arguments → resource, sampler, exporters.

Pure parsing and validation (a bad value raises :class:`ValueError` naming the argument or
variable and the allowed values) plus building the OTLP gRPC / OTLP HTTP / console exporters; no
global state. Used by :func:`otel_bot._setup.configure_tracing`.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import sampling as _sampling
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

PROTOCOLS = ("grpc", "http/protobuf")
EXPORTERS = ("otlp", "console", "none")
_EXPORTER_ALIASES = {"otlp_proto_grpc": ("otlp", "grpc"), "otlp_proto_http": ("otlp", "http/protobuf")}
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
_COMPRESSIONS = ("none", "gzip", "deflate")

# --------------------------------------------------------------------------------------------------
# Environment parsing


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _parse_kv_list(value: str, variable: str) -> dict[str, str]:
    """``key=value,key2=value2`` with percent-encoded values (W3C baggage style)."""
    out: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        key = urllib.parse.unquote(key.strip())
        if not sep or not key:
            raise ValueError(
                f"{variable}: expected comma-separated key=value pairs, got {item!r} in {value!r}"
            )
        out[key] = urllib.parse.unquote(val.strip())
    return out


def _int_setting(kwarg: int | float | None, variable: str, default: int, *, minimum: int) -> int:
    if kwarg is not None:
        source, raw = variable.lower().removeprefix("otel_bsp_"), str(kwarg)
        value: Any = kwarg
    else:
        raw_env = _env(variable)
        if raw_env is None:
            return default
        source, raw = variable, raw_env
        try:
            value = int(raw_env)
        except ValueError:
            raise ValueError(f"{variable}: expected an integer >= {minimum}, got {raw_env!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"{source}: expected an integer >= {minimum}, got {raw!r}")
    return int(value)


def _choice(value: str, variable: str, allowed: Sequence[str]) -> str:
    norm = value.strip().lower()
    if norm not in allowed:
        raise ValueError(f"{variable}: {value!r} is not one of {', '.join(allowed)}")
    return norm


def _resolve_protocol(protocol: str | None) -> str:
    if protocol is not None:
        return _choice(protocol, "protocol", PROTOCOLS)
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        raw = _env(var)
        if raw is not None:
            return _choice(raw, var, PROTOCOLS)
    return "grpc"


def _check_url(url: str, variable: str, *, need_scheme: bool) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return url
    if not need_scheme and "://" not in url and url.strip():
        return url  # gRPC "host:port"
    raise ValueError(f"{variable}: expected an http:// or https:// URL, got {url!r}")


def _resolve_endpoint(endpoint: str | None, protocol: str) -> str:
    grpc = protocol == "grpc"
    if endpoint is not None:
        url = _check_url(endpoint, "endpoint", need_scheme=not grpc)
        if not grpc and urllib.parse.urlsplit(url).path in ("", "/"):
            url = url.rstrip("/") + "/v1/traces"
        return url
    raw = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if raw is not None:
        return _check_url(raw, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", need_scheme=not grpc)
    raw = _env("OTEL_EXPORTER_OTLP_ENDPOINT")
    if raw is not None:
        url = _check_url(raw, "OTEL_EXPORTER_OTLP_ENDPOINT", need_scheme=not grpc)
        return url if grpc else url.rstrip("/") + "/v1/traces"
    return "http://localhost:4317" if grpc else "http://localhost:4318/v1/traces"


def _resolve_headers(headers: Mapping[str, str] | str | None) -> dict[str, str]:
    if headers is not None:
        if isinstance(headers, str):
            return _parse_kv_list(headers, "headers")
        return {str(k): str(v) for k, v in headers.items()}
    for var in ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        raw = _env(var)
        if raw is not None:
            return _parse_kv_list(raw, var)
    return {}


def _resolve_compression(compression: str | None) -> str | None:
    if compression is not None:
        return _choice(compression, "compression", _COMPRESSIONS)
    for var in ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        raw = _env(var)
        if raw is not None:
            return _choice(raw, var, _COMPRESSIONS)
    return None


def _resolve_sampler(
    sampler: str | _sampling.Sampler | None, sampler_arg: float | str | None
) -> _sampling.Sampler:
    if isinstance(sampler, _sampling.Sampler):
        return sampler
    if sampler is not None:
        name, name_var = _choice(sampler, "sampler", SAMPLERS), "sampler"
    else:
        raw = _env("OTEL_TRACES_SAMPLER")
        name, name_var = (
            (_choice(raw, "OTEL_TRACES_SAMPLER", SAMPLERS), "OTEL_TRACES_SAMPLER")
            if raw is not None
            else ("parentbased_always_on", "OTEL_TRACES_SAMPLER")
        )
    if name == "always_on":
        return _sampling.ALWAYS_ON
    if name == "always_off":
        return _sampling.ALWAYS_OFF
    if name == "parentbased_always_on":
        return _sampling.ParentBased(_sampling.ALWAYS_ON)
    if name == "parentbased_always_off":
        return _sampling.ParentBased(_sampling.ALWAYS_OFF)
    # a ratio sampler
    if sampler_arg is not None:
        arg_var, raw_arg = "sampler_arg", str(sampler_arg)
    else:
        arg_var, raw_arg = "OTEL_TRACES_SAMPLER_ARG", _env("OTEL_TRACES_SAMPLER_ARG") or "1.0"
    try:
        ratio = float(raw_arg)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(
            f"{arg_var}: the {name} sampler ({name_var}) needs a ratio between 0 and 1, got {raw_arg!r}"
        )
    if name == "traceidratio":
        return _sampling.TraceIdRatioBased(ratio)
    return _sampling.ParentBased(_sampling.TraceIdRatioBased(ratio))


def _resolve_resource(service_name: str | None, resource_attributes: Mapping[str, Any] | None) -> Resource:
    attrs: dict[str, Any] = {}
    raw = _env("OTEL_RESOURCE_ATTRIBUTES")
    if raw is not None:
        attrs.update(_parse_kv_list(raw, "OTEL_RESOURCE_ATTRIBUTES"))
    env_service = _env("OTEL_SERVICE_NAME")
    if env_service is not None:
        attrs[SERVICE_NAME] = env_service
    if resource_attributes:
        attrs.update(resource_attributes)
    if service_name is not None:
        if not isinstance(service_name, str) or not service_name.strip():
            raise ValueError(f"service_name: expected a non-empty string, got {service_name!r}")
        attrs[SERVICE_NAME] = service_name
    return Resource.create(attrs)


def _resolve_exporter_names(
    exporter: str | SpanExporter | Sequence[str | SpanExporter] | None,
) -> tuple[str, list[str | SpanExporter]]:
    if exporter is None:
        variable = "OTEL_TRACES_EXPORTER"
        raw = _env(variable) or "otlp"
        items: list[str | SpanExporter] = [p.strip() for p in raw.split(",") if p.strip()]
    else:
        variable = "exporter"
        if isinstance(exporter, (str, SpanExporter)):
            exporter = [exporter]
        items = []
        for item in exporter:
            if isinstance(item, str):
                items.extend(p.strip() for p in item.split(",") if p.strip())
            else:
                items.append(item)
    return variable, items


def _build_exporters(
    exporter: str | SpanExporter | Sequence[str | SpanExporter] | None,
    *,
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | str | None,
    compression: str | None,
    timeout_s: float | None,
) -> list[SpanExporter]:
    variable, items = _resolve_exporter_names(exporter)
    names = [i.lower() for i in items if isinstance(i, str)]
    allowed = (*EXPORTERS, *_EXPORTER_ALIASES)
    for name in names:
        if name not in allowed:
            raise ValueError(f"{variable}: {name!r} is not one of {', '.join(EXPORTERS)}")
    if "none" in names and len(items) > 1:
        raise ValueError(f"{variable}: 'none' cannot be combined with other exporters, got {items!r}")
    out: list[SpanExporter] = []
    for item in items:
        if isinstance(item, SpanExporter):
            out.append(item)
            continue
        name = item.lower()
        if name == "none":
            continue
        if name == "console":
            out.append(ConsoleSpanExporter())
            continue
        proto = _resolve_protocol(_EXPORTER_ALIASES[name][1] if name in _EXPORTER_ALIASES else protocol)
        out.append(
            _otlp_exporter(
                proto,
                _resolve_endpoint(endpoint, proto),
                _resolve_headers(headers),
                _resolve_compression(compression),
                timeout_s,
            )
        )
    return out


def _otlp_exporter(
    protocol: str, endpoint: str, headers: dict[str, str], compression: str | None, timeout_s: float | None
) -> SpanExporter:
    if protocol == "grpc":
        try:
            import grpc
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError as exc:  # pragma: no cover - dependency of otel-bot
            raise ImportError(
                "the OTLP gRPC exporter is missing: pip install opentelemetry-exporter-otlp-proto-grpc"
            ) from exc
        return GrpcExporter(
            endpoint=endpoint,
            headers=headers or None,
            timeout=timeout_s,
            compression=_compression_member(grpc.Compression, compression),
        )
    try:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    except ImportError as exc:  # pragma: no cover - dependency of otel-bot
        raise ImportError(
            "the OTLP HTTP exporter is missing: pip install opentelemetry-exporter-otlp-proto-http"
        ) from exc
    return HttpExporter(
        endpoint=endpoint,
        headers=headers or None,
        timeout=timeout_s,
        compression=_compression_member(Compression, compression),
    )


def _compression_member(enum: Any, compression: str | None) -> Any:
    """The member of an exporter's compression enum (gRPC's and HTTP's share member names) for a
    name :func:`_resolve_compression` accepted; ``None`` stays ``None``."""
    if compression is None:
        return None
    return {"none": enum.NoCompression, "gzip": enum.Gzip, "deflate": enum.Deflate}[compression]


__all__ = ["EXPORTERS", "PROTOCOLS", "SAMPLERS"]

"""Scanning exported telemetry for secrets: shared by the token-canary tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from opentelemetry.sdk.trace import ReadableSpan


def strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)
    elif value is not None:
        yield str(value)


def exported_text(spans: Iterable[ReadableSpan]) -> list[str]:
    """Every string an exporter sends for these spans."""
    out: list[str] = []
    for span in spans:
        out.append(span.name)
        for key, value in (span.attributes or {}).items():
            out.append(key)
            out.extend(strings(value))
        for event in span.events:
            out.append(event.name)
            for key, value in (event.attributes or {}).items():
                out.append(key)
                out.extend(strings(value))
        for link in span.links:
            for value in (link.attributes or {}).values():
                out.extend(strings(value))
        if span.status.description:
            out.append(span.status.description)
        for value in span.resource.attributes.values():
            out.extend(strings(value))
        if span.instrumentation_scope is not None:
            out.append(span.instrumentation_scope.name)
            out.append(span.instrumentation_scope.version or "")
    return out


def fragments(secret: str) -> list[str]:
    """The secret, its URL-quoted form, and 16-char slices from its middle (a partial leak is a leak)."""
    mid = len(secret) // 2
    out = [secret, quote(secret, safe=""), secret[mid - 8 : mid + 8]]
    if len(secret) >= 32:
        out += [secret[:16], secret[-16:]]
    return out


def assert_no_secrets(texts: list[str], secrets: Iterable[str]) -> None:
    blob = "\n".join(texts)
    for secret in secrets:
        for fragment in fragments(secret):
            assert fragment not in blob, f"token fragment {fragment!r} leaked into telemetry"

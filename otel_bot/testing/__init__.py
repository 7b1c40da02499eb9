"""Test support: an offline Discord (REST + gateway) and a real OTLP receiver, for our tests,
our demo and our users' own test suites."""

from __future__ import annotations

__all__: list[str] = []

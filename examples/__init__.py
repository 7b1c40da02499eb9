"""Runnable example bots for otel_bot (installed as the ``otel_bot_examples`` package)."""

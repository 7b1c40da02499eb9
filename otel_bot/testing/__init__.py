"""Test support: an offline Discord (REST + gateway) and a real OTLP receiver, for our tests,
our demo and our users' own test suites."""

from __future__ import annotations

from otel_bot.testing.discord import (
    CALLBACK,
    CHANNEL_MESSAGE,
    CHANNEL_MESSAGES,
    FOLLOWUP,
    FOLLOWUP_MESSAGE,
    ORIGINAL,
    TYPING,
    Fault,
    InteractionRecord,
    MultipartPart,
    OfflineDiscord,
    RecordedRequest,
)
from otel_bot.testing.fake_gateway import FakeGateway, GatewaySession
from otel_bot.testing.gateway import Payloads, World, inject, option
from otel_bot.testing.otlp import (
    OTLPReceiver,
    ReceivedEvent,
    ReceivedLink,
    ReceivedRequest,
    ReceivedSpan,
    ReceivedStatus,
)
from otel_bot.testing.snowflakes import DISCORD_EPOCH_MS, iso_timestamp, snowflake, snowflake_time_ms

__all__ = [
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

"""Discord REST child spans: HTTPClient.request and the webhook adapter, through real discord.py."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discord.ext import commands
from discord.http import HTTPClient, handle_message_parameters
from discord.webhook.async_ import AsyncWebhookAdapter, interaction_response_params
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from otel_bot import _attributes as A
from otel_bot import _patching, _rest, _routes
from otel_bot._config import Settings
from otel_bot.testing import CALLBACK, CHANNEL_MESSAGES, FOLLOWUP, ORIGINAL, OfflineDiscord
from tests.rest_stub import (
    APP_ID,
    CHANNEL_ID,
    INTERACTION_ID,
    INTERACTION_TOKEN,
    PLAIN_INTERACTION_TOKEN,
    WEBHOOK_ID,
    WEBHOOK_TOKEN,
    Reply,
    adapter,
    bot_http,
    instrumented,
    message_payload,
    ok_with_limits,
    rate_limited,
    stub_discord,
    webhook_session,
)

pytestmark = pytest.mark.timeout(30)


class Callbacks:
    """Stands in for otel_bot._interactions.record_callback (owned by the root-span module)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, Any]]] = []

    def __call__(self, interaction_id: int, **kwargs: Any) -> None:
        self.calls.append((interaction_id, kwargs))


@pytest.fixture
def callbacks(monkeypatch: pytest.MonkeyPatch) -> Callbacks:
    recorder = Callbacks()
    monkeypatch.setattr(_rest, "_record_callback", recorder)
    return recorder


def rest_spans(exporter: Any) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]


def only(exporter: Any, name: str) -> ReadableSpan:
    spans = [s for s in rest_spans(exporter) if s.name == name]
    assert len(spans) == 1, [s.name for s in rest_spans(exporter)]
    return spans[0]


def query_of(received: Any) -> str:
    """The query string a request really carried (discord.py versions differ in their params)."""
    pairs = received.query.items() if isinstance(received.query, dict) else received.query
    text = "&".join(f"{k}={v}" for k, v in pairs)
    return f"?{text}" if text else ""


def assert_http_attrs(span: ReadableSpan, method: str, template: str, status: int, port: int) -> None:
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.HTTP_REQUEST_METHOD] == method
    assert attrs[A.URL_TEMPLATE] == template
    assert attrs[A.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[A.SERVER_PORT] == port and isinstance(attrs[A.SERVER_PORT], int)
    assert attrs[A.HTTP_RESPONSE_STATUS_CODE] == status and isinstance(
        attrs[A.HTTP_RESPONSE_STATUS_CODE], int
    )
    assert isinstance(attrs[A.URL_FULL], str) and attrs[A.URL_FULL].startswith(
        f"http://127.0.0.1:{port}/api/v10/"
    )


# --- HTTPClient.request ------------------------------------------------------------------------------


async def test_channel_message_create_span(span_exporter: Any) -> None:
    async with stub_discord() as stub:
        stub.script("POST", f"/channels/{CHANNEL_ID}/messages", ok_with_limits(message_payload("hello")))
        with instrumented():
            async with bot_http() as http:
                tracer = trace.get_tracer("test")
                with tracer.start_as_current_span("parent") as parent:
                    data = await http.send_message(
                        CHANNEL_ID, params=handle_message_parameters(content="hello")
                    )
        assert data["content"] == "hello"

    span = only(span_exporter, "POST /channels/{channel_id}/messages")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.status.status_code is StatusCode.UNSET
    assert_http_attrs(span, "POST", "/channels/{channel_id}/messages", 200, stub.port)
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.URL_FULL] == f"http://127.0.0.1:{stub.port}/api/v10/channels/{CHANNEL_ID}/messages"
    assert attrs[A.DISCORD_RATELIMIT_BUCKET] == "b1e2c3k4"
    assert attrs[A.DISCORD_RATELIMIT_LIMIT] == 5
    assert attrs[A.DISCORD_RATELIMIT_REMAINING] == 4
    assert attrs[A.DISCORD_RATELIMIT_RESET_AFTER] == 1.5
    assert A.HTTP_REQUEST_RESEND_COUNT not in attrs
    assert A.ERROR_TYPE not in attrs and A.DISCORD_ERROR_CODE not in attrs
    assert A.DISCORD_REST_WEBHOOK not in attrs
    assert span.events == ()
    # the login request is a span too (no parent: it ran outside any span)
    login = only(span_exporter, "GET /users/@me")
    assert login.parent is None


async def test_rate_limited_then_retried(span_exporter: Any) -> None:
    path = f"/channels/{CHANNEL_ID}/messages"
    async with stub_discord() as stub:
        stub.script(
            "POST",
            path,
            rate_limited(0.01, scope="user"),
            rate_limited(0.01, scope="shared"),
            ok_with_limits(),
        )
        with instrumented():
            async with bot_http() as http:
                await http.send_message(CHANNEL_ID, params=handle_message_parameters(content="x"))
        assert [r.path for r in stub.received].count(path) == 3

    span = only(span_exporter, "POST /channels/{channel_id}/messages")
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.HTTP_REQUEST_RESEND_COUNT] == 2
    assert attrs[A.HTTP_RESPONSE_STATUS_CODE] == 200
    assert span.status.status_code is StatusCode.UNSET
    events = [e for e in span.events if e.name == A.EVENT_RATE_LIMITED]
    assert len(events) == 2
    first, second = (dict(e.attributes or {}) for e in events)
    assert first == {
        A.HTTP_REQUEST_RESEND_COUNT: 0,
        A.DISCORD_RATELIMIT_RETRY_AFTER: 0.01,
        A.DISCORD_RATELIMIT_GLOBAL: False,
        A.DISCORD_RATELIMIT_SCOPE: "user",
        A.DISCORD_RATELIMIT_BUCKET: "b1e2c3k4",
    }
    assert second[A.HTTP_REQUEST_RESEND_COUNT] == 1 and second[A.DISCORD_RATELIMIT_SCOPE] == "shared"
    assert isinstance(first[A.DISCORD_RATELIMIT_RETRY_AFTER], float)
    assert isinstance(first[A.DISCORD_RATELIMIT_GLOBAL], bool)
    assert span.start_time is not None and span.end_time is not None
    assert all(span.start_time <= e.timestamp <= span.end_time for e in span.events)


async def test_global_rate_limit_event(span_exporter: Any) -> None:
    async with stub_discord() as stub:
        stub.script("GET", f"/channels/{CHANNEL_ID}", rate_limited(0.01, is_global=True, scope="global"))
        stub.script("GET", f"/channels/{CHANNEL_ID}", Reply(200, {"id": str(CHANNEL_ID), "type": 0}))
        with instrumented():
            async with bot_http() as http:
                await http.get_channel(CHANNEL_ID)
    span = only(span_exporter, "GET /channels/{channel_id}")
    (event,) = span.events
    assert event.name == A.EVENT_RATE_LIMITED
    assert (event.attributes or {})[A.DISCORD_RATELIMIT_GLOBAL] is True
    assert (span.attributes or {})[A.HTTP_REQUEST_RESEND_COUNT] == 1


async def test_server_error_retried(span_exporter: Any) -> None:
    path = f"/channels/{CHANNEL_ID}/messages"
    async with stub_discord() as stub:
        stub.script("POST", path, Reply(502, "bad gateway"), ok_with_limits())
        with instrumented():
            async with bot_http() as http:
                await http.send_message(CHANNEL_ID, params=handle_message_parameters(content="x"))
    span = only(span_exporter, "POST /channels/{channel_id}/messages")
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.HTTP_REQUEST_RESEND_COUNT] == 1
    assert attrs[A.HTTP_RESPONSE_STATUS_CODE] == 200
    assert span.status.status_code is StatusCode.UNSET
    (event,) = span.events
    assert event.name == A.EVENT_REST_RETRY
    assert dict(event.attributes or {}) == {A.HTTP_RESPONSE_STATUS_CODE: 502, A.HTTP_REQUEST_RESEND_COUNT: 0}


async def test_server_error_retried_then_fatal(span_exporter: Any) -> None:
    """502 is retried (an event), 503 is not (discord.py raises DiscordServerError at once)."""
    async with stub_discord() as stub:
        stub.script(
            "GET",
            f"/channels/{CHANNEL_ID}",
            Reply(502, "bad gateway"),
            Reply(503, {"message": "x", "code": 0}),
        )
        with instrumented():
            async with bot_http() as http:
                with pytest.raises(discord.DiscordServerError):
                    await http.get_channel(CHANNEL_ID)
    span = only(span_exporter, "GET /channels/{channel_id}")
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.HTTP_RESPONSE_STATUS_CODE] == 503
    assert attrs[A.ERROR_TYPE] == "503"
    assert attrs[A.HTTP_REQUEST_RESEND_COUNT] == 1
    assert A.DISCORD_ERROR_CODE not in attrs  # code 0 means "no Discord code"
    assert [e.name for e in span.events] == [A.EVENT_REST_RETRY, A.EVENT_EXCEPTION]
    assert dict(span.events[0].attributes or {}) == {
        A.HTTP_RESPONSE_STATUS_CODE: 502,
        A.HTTP_REQUEST_RESEND_COUNT: 0,
    }
    assert span.status.status_code is StatusCode.ERROR


async def test_forbidden_records_discord_code_and_reraises(span_exporter: Any) -> None:
    async with stub_discord() as stub:
        stub.script(
            "POST",
            f"/channels/{CHANNEL_ID}/messages",
            Reply(403, {"message": "Missing Permissions", "code": 50013}),
        )
        with instrumented():
            async with bot_http() as http:
                with pytest.raises(discord.Forbidden) as info:
                    await http.send_message(CHANNEL_ID, params=handle_message_parameters(content="x"))
    assert info.value.code == 50013 and info.value.status == 403
    span = only(span_exporter, "POST /channels/{channel_id}/messages")
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.DISCORD_ERROR_CODE] == 50013
    assert attrs[A.ERROR_TYPE] == "403"
    assert attrs[A.HTTP_RESPONSE_STATUS_CODE] == 403
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "Forbidden: 403 Forbidden (error code: 50013): Missing Permissions"
    (event,) = span.events
    assert event.name == A.EVENT_EXCEPTION
    ev: dict[str, Any] = dict(event.attributes or {})
    assert ev[A.EXCEPTION_TYPE] == "discord.errors.Forbidden"
    assert ev[A.EXCEPTION_MESSAGE] == "403 Forbidden (error code: 50013): Missing Permissions"
    assert "Traceback" in ev[A.EXCEPTION_STACKTRACE]


async def test_error_text_is_cleaned_bounded_and_redacted(span_exporter: Any) -> None:
    """REST errors go through the one recorder (_privacy.record_error): a lone surrogate in
    Discord's error text becomes U+FFFD, the status description is bounded, tokens redacted."""
    from otel_bot import _privacy

    message = "bad \ud800 form " + "x" * 3000 + f" /webhooks/{APP_ID}/{WEBHOOK_TOKEN}/messages"
    async with stub_discord() as stub:
        stub.script("POST", f"/channels/{CHANNEL_ID}/messages", Reply(400, {"message": message, "code": 50035}))
        with instrumented():
            async with bot_http() as http:
                with pytest.raises(discord.HTTPException) as info:
                    await http.send_message(CHANNEL_ID, params=handle_message_parameters(content="x"))
    assert "\ud800" in str(info.value)  # the user's exception is untouched
    span = only(span_exporter, "POST /channels/{channel_id}/messages")
    assert span.status.status_code is StatusCode.ERROR
    description = span.status.description
    assert description is not None
    assert description.startswith("HTTPException: 400 Bad Request (error code: 50035): bad \ufffd form xxx")
    assert len(description) == _privacy.MAX_STATUS_LENGTH
    description.encode("utf-8")
    (event,) = span.events
    ev: dict[str, Any] = dict(event.attributes or {})
    assert ev[A.EXCEPTION_TYPE] == "discord.errors.HTTPException"
    assert len(ev[A.EXCEPTION_MESSAGE]) == _privacy.MAX_EXCEPTION_MESSAGE_LENGTH
    assert "\ud800" not in ev[A.EXCEPTION_MESSAGE] and "\ufffd" in ev[A.EXCEPTION_MESSAGE]
    assert WEBHOOK_TOKEN not in ev[A.EXCEPTION_STACKTRACE]
    assert len(ev[A.EXCEPTION_STACKTRACE]) <= _privacy.MAX_STACKTRACE_LENGTH
    ev[A.EXCEPTION_STACKTRACE].encode("utf-8")


def test_error_type_is_one_format_everywhere() -> None:
    """_privacy.error_type: module-qualified, bare for builtins; what REST's error.type and
    every exception event's exception.type use."""
    from otel_bot import _privacy

    not_found = discord.NotFound.__new__(discord.NotFound)
    assert _privacy.error_type(not_found) == "discord.errors.NotFound"
    assert _privacy.error_type(discord.NotFound) == "discord.errors.NotFound"
    assert _privacy.error_type(ValueError("x")) == "ValueError"
    assert _privacy.error_type(asyncio.TimeoutError()) == "TimeoutError"
    main_cls = type("Local", (Exception,), {"__module__": "__main__"})
    assert _privacy.error_type(main_cls()) == "Local"
    assert _routes.exception_attributes(not_found)[A.EXCEPTION_TYPE] == "discord.errors.NotFound"
    assert not hasattr(_routes, "_qualname")


def test_exception_attributes_tolerate_a_failing_str() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("broken __str__")

    attrs = _routes.exception_attributes(Unprintable())
    assert attrs[A.EXCEPTION_TYPE].endswith("Unprintable")
    assert attrs[A.EXCEPTION_MESSAGE] == "<unprintable Unprintable object>"
    assert isinstance(attrs[A.EXCEPTION_STACKTRACE], str)


async def test_connection_error_type_is_exception_class(span_exporter: Any) -> None:
    async with stub_discord() as stub:
        with instrumented():
            async with bot_http() as http:
                await stub.stop()
                with pytest.raises(aiohttp_errors()) as info:
                    await http.get_channel(CHANNEL_ID)
    span = only(span_exporter, "GET /channels/{channel_id}")
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.ERROR_TYPE] == f"{type(info.value).__module__}.{type(info.value).__qualname__}"
    assert A.HTTP_RESPONSE_STATUS_CODE not in attrs
    assert span.status.status_code is StatusCode.ERROR


def aiohttp_errors() -> type[BaseException]:
    import aiohttp

    return aiohttp.ClientError


# --- the webhook adapter: interaction callbacks, followups, @original -----------------------------------


async def test_interaction_callback_span_and_ack(span_exporter: Any, callbacks: Callbacks) -> None:
    async with stub_discord() as stub, webhook_session() as session:
        with instrumented():
            tracer = trace.get_tracer("test")
            with tracer.start_as_current_span("interaction root") as root:
                await adapter().create_interaction_response(
                    INTERACTION_ID,
                    INTERACTION_TOKEN,
                    session=session,
                    params=interaction_response_params(type=5),
                )
        (received,) = stub.received
        assert received.path == f"/interactions/{INTERACTION_ID}/{INTERACTION_TOKEN}/callback"

    span = only(span_exporter, "POST /interactions/{interaction_id}/{interaction_token}/callback")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == root.get_span_context().span_id
    assert_http_attrs(
        span, "POST", "/interactions/{interaction_id}/{interaction_token}/callback", 204, stub.port
    )
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.URL_FULL] == (
        f"http://127.0.0.1:{stub.port}/api/v10/interactions/{INTERACTION_ID}/{{interaction_token}}/callback"
        + query_of(received)
    )
    assert attrs[A.DISCORD_REST_WEBHOOK] is True
    assert span.end_time is not None
    ((iid, kwargs),) = callbacks.calls
    assert iid == INTERACTION_ID
    assert kwargs == {"status": 204, "discord_code": None, "end_ns": span.end_time, "callback_type": 5}


async def test_unknown_interaction_10062(span_exporter: Any, callbacks: Callbacks) -> None:
    path = f"/interactions/{INTERACTION_ID}/{INTERACTION_TOKEN}/callback"
    async with stub_discord() as stub, webhook_session() as session:
        stub.script("POST", path, Reply(404, {"message": "Unknown interaction", "code": 10062}))
        with instrumented():
            with pytest.raises(discord.NotFound) as info:
                await adapter().create_interaction_response(
                    INTERACTION_ID,
                    INTERACTION_TOKEN,
                    session=session,
                    params=interaction_response_params(type=4),
                )
    assert info.value.code == 10062
    span = only(span_exporter, "POST /interactions/{interaction_id}/{interaction_token}/callback")
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.DISCORD_ERROR_CODE] == 10062 and isinstance(attrs[A.DISCORD_ERROR_CODE], int)
    assert attrs[A.ERROR_TYPE] == "404"
    assert attrs[A.HTTP_RESPONSE_STATUS_CODE] == 404
    assert span.status.status_code is StatusCode.ERROR
    ((iid, kwargs),) = callbacks.calls
    assert iid == INTERACTION_ID
    assert kwargs == {"status": 404, "discord_code": 10062, "end_ns": span.end_time, "callback_type": 4}


async def test_followup_and_original_edit(span_exporter: Any, callbacks: Callbacks) -> None:
    async with stub_discord() as stub, webhook_session() as session:
        with instrumented():
            # a token without the base64 shape is recognised because its callback went first
            await adapter().create_interaction_response(
                INTERACTION_ID,
                PLAIN_INTERACTION_TOKEN,
                session=session,
                params=interaction_response_params(type=5),
            )
            await adapter().execute_webhook(
                APP_ID, PLAIN_INTERACTION_TOKEN, session=session, payload={"content": "queued"}, wait=True
            )
            await adapter().edit_original_interaction_response(
                APP_ID, INTERACTION_TOKEN, session=session, payload={"content": "done"}
            )
            await adapter().delete_original_interaction_response(APP_ID, INTERACTION_TOKEN, session=session)

    followup_request = stub.received[1]
    followup = only(span_exporter, "POST /webhooks/{application_id}/{interaction_token}")
    assert_http_attrs(followup, "POST", "/webhooks/{application_id}/{interaction_token}", 200, stub.port)
    assert (followup.attributes or {})[A.URL_FULL] == (
        f"http://127.0.0.1:{stub.port}/api/v10/webhooks/{APP_ID}/{{interaction_token}}"
        + query_of(followup_request)
    )
    assert "wait=1" in query_of(followup_request)
    edit = only(span_exporter, "PATCH /webhooks/{application_id}/{interaction_token}/messages/@original")
    assert_http_attrs(
        edit, "PATCH", "/webhooks/{application_id}/{interaction_token}/messages/@original", 200, stub.port
    )
    assert (edit.attributes or {})[A.URL_FULL] == (
        f"http://127.0.0.1:{stub.port}/api/v10/webhooks/{APP_ID}/{{interaction_token}}/messages/@original"
    )
    only(span_exporter, "DELETE /webhooks/{application_id}/{interaction_token}/messages/@original")
    assert len(callbacks.calls) == 1  # only the callback is an acknowledgement


async def test_real_webhook_route_keeps_webhook_names(span_exporter: Any) -> None:
    async with stub_discord() as stub, webhook_session() as session:
        with instrumented():
            await adapter().execute_webhook(
                WEBHOOK_ID, WEBHOOK_TOKEN, session=session, payload={"content": "hi"}, wait=True, thread_id=7
            )
    span = only(span_exporter, "POST /webhooks/{webhook_id}/{webhook_token}")
    assert (span.attributes or {})[A.URL_FULL] == (
        f"http://127.0.0.1:{stub.port}/api/v10/webhooks/{WEBHOOK_ID}/{{webhook_token}}"
        + query_of(stub.received[0])
    )
    assert "thread_id=7" in query_of(stub.received[0])


async def test_webhook_rate_limit_and_5xx(span_exporter: Any) -> None:
    path = f"/webhooks/{APP_ID}/{INTERACTION_TOKEN}/messages/@original"
    async with stub_discord() as stub, webhook_session() as session:
        stub.script(
            "PATCH", path, Reply(500, {"message": "oops", "code": 0}), rate_limited(0.01), Reply(200, None)
        )
        with instrumented():
            await adapter().edit_original_interaction_response(
                APP_ID, INTERACTION_TOKEN, session=session, payload={"content": "x"}
            )
    span = only(span_exporter, "PATCH /webhooks/{application_id}/{interaction_token}/messages/@original")
    assert (span.attributes or {})[A.HTTP_REQUEST_RESEND_COUNT] == 2
    assert [e.name for e in span.events] == [A.EVENT_REST_RETRY, A.EVENT_RATE_LIMITED]
    assert dict(span.events[0].attributes or {}) == {
        A.HTTP_RESPONSE_STATUS_CODE: 500,
        A.HTTP_REQUEST_RESEND_COUNT: 0,
    }
    assert (span.events[1].attributes or {})[A.HTTP_REQUEST_RESEND_COUNT] == 1
    assert span.events[0].timestamp < span.events[1].timestamp


# --- discord.SyncWebhook (requests, run in a worker thread) --------------------------------------------


async def test_sync_webhook_spans(span_exporter: Any) -> None:
    import requests

    path = f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"
    async with stub_discord() as stub:
        stub.script("POST", path, rate_limited(0.01), ok_with_limits(message_payload("sync")))
        stub.script("PATCH", path, Reply(404, {"message": "Unknown Webhook", "code": 10015}))
        with instrumented(), requests.Session() as session:
            hook = discord.SyncWebhook.partial(WEBHOOK_ID, WEBHOOK_TOKEN, session=session)
            with trace.get_tracer("test").start_as_current_span("parent") as parent:
                message = await asyncio.to_thread(hook.send, "sync", wait=True)
                with pytest.raises(discord.NotFound) as info:
                    await asyncio.to_thread(hook.edit, name="renamed")
        assert message.content == "sync"
        assert info.value.code == 10015
        assert [r.method for r in stub.received] == ["POST", "POST", "PATCH"]

    send, edit = rest_spans(span_exporter)
    assert send.name == "POST /webhooks/{webhook_id}/{webhook_token}"
    assert send.parent is not None and send.parent.span_id == parent.get_span_context().span_id
    assert_http_attrs(send, "POST", "/webhooks/{webhook_id}/{webhook_token}", 200, stub.port)
    attrs: dict[str, Any] = dict(send.attributes or {})
    assert attrs[A.HTTP_REQUEST_RESEND_COUNT] == 1
    assert attrs[A.DISCORD_RATELIMIT_REMAINING] == 4
    assert attrs[A.DISCORD_REST_WEBHOOK] is True
    assert attrs[A.URL_FULL] == (
        f"http://127.0.0.1:{stub.port}/api/v10/webhooks/{WEBHOOK_ID}/{{webhook_token}}"
        + query_of(stub.received[0])
    )
    (event,) = send.events
    assert event.name == A.EVENT_RATE_LIMITED
    assert dict(event.attributes or {})[A.DISCORD_RATELIMIT_RETRY_AFTER] == 0.01
    assert edit.name == "PATCH /webhooks/{webhook_id}/{webhook_token}"
    edit_attrs: dict[str, Any] = dict(edit.attributes or {})
    assert edit_attrs[A.DISCORD_ERROR_CODE] == 10015
    assert edit_attrs[A.ERROR_TYPE] == "404"
    assert edit.status.status_code is StatusCode.ERROR


# --- off switches, reversibility, no behaviour change ---------------------------------------------------


async def test_suppressed_and_off_yield_no_spans(span_exporter: Any, callbacks: Callbacks) -> None:
    async with stub_discord() as stub, webhook_session() as session:
        with instrumented():
            async with bot_http() as http:
                with suppress_instrumentation():
                    await http.get_channel(CHANNEL_ID)
                    await adapter().create_interaction_response(
                        INTERACTION_ID,
                        INTERACTION_TOKEN,
                        session=session,
                        params=interaction_response_params(type=5),
                    )
        with instrumented(Settings(trace_rest=False)):
            async with bot_http() as http:
                await http.get_channel(CHANNEL_ID)
                await adapter().create_interaction_response(
                    INTERACTION_ID,
                    INTERACTION_TOKEN,
                    session=session,
                    params=interaction_response_params(type=6),
                )
        assert len(stub.received) == 6
    names = [s.name for s in rest_spans(span_exporter)]
    assert names == ["GET /users/@me"]  # the login before suppression; nothing else
    # trace_rest=False still reports the acknowledgement (no span)
    ((iid, kwargs),) = callbacks.calls
    assert iid == INTERACTION_ID and kwargs["callback_type"] == 6 and kwargs["status"] == 204


async def test_not_instrumented_passes_through(span_exporter: Any) -> None:
    applied = _patching.apply(_rest.PATCHES)  # patched but no settings active: pass through
    try:
        async with stub_discord(), bot_http() as http:
            await http.get_channel(CHANNEL_ID)
    finally:
        _patching.revert(applied)
    assert rest_spans(span_exporter) == []


def test_revert_restores_originals() -> None:
    import discord.http as dhttp
    import discord.webhook.async_ as dasync
    from discord.webhook.sync import WebhookAdapter

    originals = (
        vars(HTTPClient)["request"],
        vars(AsyncWebhookAdapter)["request"],
        vars(dhttp)["json_or_text"],
        vars(dasync)["json_or_text"],
        vars(WebhookAdapter)["request"],
    )
    applied = _patching.apply(_rest.PATCHES)
    assert len(applied) == 5
    patched = vars(HTTPClient)["request"]
    assert patched is not originals[0]
    assert patched.__name__ == "request" and patched.__qualname__ == originals[0].__qualname__
    assert _patching.original_of(patched) is originals[0]
    _patching.revert(applied)
    assert vars(HTTPClient)["request"] is originals[0]
    assert vars(AsyncWebhookAdapter)["request"] is originals[1]
    assert vars(dhttp)["json_or_text"] is originals[2]
    assert vars(dasync)["json_or_text"] is originals[3]
    assert vars(WebhookAdapter)["request"] is originals[4]


async def _scenario(stub: Any, session: Any) -> list[str]:
    """Every request shape of this module; returns the outcomes the bot saw."""
    outcomes: list[str] = []
    path = f"/channels/{CHANNEL_ID}/messages"
    stub.script("POST", path, rate_limited(0.01), ok_with_limits())
    stub.script("GET", f"/channels/{CHANNEL_ID}", Reply(404, {"message": "Unknown Channel", "code": 10003}))
    stub.script(
        "POST",
        f"/interactions/{INTERACTION_ID}/{INTERACTION_TOKEN}/callback",
        Reply(404, {"message": "Unknown interaction", "code": 10062}),
    )
    async with bot_http() as http:
        data = await http.send_message(CHANNEL_ID, params=handle_message_parameters(content="a"))
        outcomes.append(data["content"])
        try:
            await http.get_channel(CHANNEL_ID)
        except discord.NotFound as exc:
            outcomes.append(f"{type(exc).__name__}:{exc.code}:{exc}")
    try:
        await adapter().create_interaction_response(
            INTERACTION_ID, INTERACTION_TOKEN, session=session, params=interaction_response_params(type=5)
        )
    except discord.NotFound as exc:
        outcomes.append(f"{type(exc).__name__}:{exc.code}:{exc}")
    data = await adapter().execute_webhook(
        APP_ID, INTERACTION_TOKEN, session=session, payload={"content": "b"}, wait=True
    )
    outcomes.append(str(data["id"]))
    await adapter().edit_original_interaction_response(
        APP_ID, INTERACTION_TOKEN, session=session, payload={"c": 1}
    )
    return outcomes


async def test_same_requests_with_and_without_instrumentation(span_exporter: Any) -> None:
    async with stub_discord() as stub, webhook_session() as session:
        plain = await _scenario(stub, session)
        plain_received = [r.key() for r in stub.received]
        stub.received.clear()
        with instrumented():
            traced = await _scenario(stub, session)
        traced_received = [r.key() for r in stub.received]
    assert plain == traced
    assert plain_received == traced_received
    assert all("traceparent" not in dict(r[3]) for r in traced_received)
    assert len(rest_spans(span_exporter)) == 6  # login, message, channel, callback, followup, edit


# --- route templates (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kind", "name"),
    [
        ("POST", "/channels/{channel_id}/messages", "http", "POST /channels/{channel_id}/messages"),
        (
            "POST",
            "/interactions/{webhook_id}/{webhook_token}/callback",
            "webhook",
            "POST /interactions/{interaction_id}/{interaction_token}/callback",
        ),
        (
            "PATCH",
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
            "interaction",
            "PATCH /webhooks/{application_id}/{interaction_token}/messages/@original",
        ),
        (
            "POST",
            "/webhooks/{webhook_id}/{webhook_token}",
            "webhook",
            "POST /webhooks/{webhook_id}/{webhook_token}",
        ),
        ("put", "/guilds/123456789012345678/onboarding", "http", "PUT /guilds/{id}/onboarding"),
        (
            "GET",
            f"/webhooks/123/{WEBHOOK_TOKEN}/messages/9",
            "http",
            "GET /webhooks/{id}/{token}/messages/{id}",
        ),
        (
            "GET",
            "/applications/@me/role-connections/metadata",
            "http",
            "GET /applications/@me/role-connections/metadata",
        ),
    ],
)
def test_route_templates(method: str, path: str, kind: str, name: str) -> None:
    info = _routes.route_info(method, path, kind)
    assert info.name == name
    assert info.template == name.split(" ", 1)[1]
    assert _routes.route_info(method, path, kind) is info  # cached


def test_full_url_for_literal_paths_and_query_secrets() -> None:
    base = "https://discord.com/api/v10"
    info = _routes.route_info("GET", f"/webhooks/123/{WEBHOOK_TOKEN}", "http")
    url = _routes.full_url(f"{base}/webhooks/123/{WEBHOOK_TOKEN}", base, info, {"code": "abc", "limit": 5})
    assert url == f"{base}/webhooks/123/{{token}}?code=REDACTED&limit=5"


def test_server_of_default_base() -> None:
    assert _routes.server_of("https://discord.com/api/v10")[:2] == ("discord.com", 443)
    assert _routes.server_of("http://127.0.0.1:99999/api")[:2] == ("127.0.0.1", None)  # invalid port


async def test_cancelled_request_is_not_an_error(
    span_exporter: Any, offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    offline_discord.set_latency(300, "GET", "/channels/{channel_id}")
    with instrumented():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(discord_bot.http.get_channel(offline_discord.world.channel_id), 0.05)
    span = only(span_exporter, "GET /channels/{channel_id}")
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.UNSET
    assert A.ERROR_TYPE not in attrs and A.HTTP_RESPONSE_STATUS_CODE not in attrs
    assert span.events == ()
    assert span.end_time is not None


def test_redact() -> None:
    text = (
        f"Cannot connect to https://discord.com/api/v10/webhooks/1/{WEBHOOK_TOKEN}/messages/@original "
        f"Authorization: Bot {PLAIN_INTERACTION_TOKEN} {INTERACTION_TOKEN} ?access_token=xyz"
    )
    out = _routes.redact(text)
    for secret in (WEBHOOK_TOKEN, PLAIN_INTERACTION_TOKEN, INTERACTION_TOKEN, "xyz"):
        assert secret not in out
    assert "/webhooks/1/REDACTED/messages/@original" in out
    assert _routes.redact("a literal secret-value-here b", ["secret-value-here"]) == "a literal REDACTED b"


# --- end to end: a real bot against the offline Discord -------------------------------------------------


async def _run_command(
    fake: OfflineDiscord, bot: commands.Bot, body: Any, **payload_kwargs: Any
) -> dict[str, Any]:
    """Register ``body`` as /probe, inject an invocation, wait until the handler finished."""
    done = asyncio.Event()
    tracer = trace.get_tracer("test")

    @bot.tree.command(name="probe", description="Probe")
    async def probe(interaction: discord.Interaction) -> None:
        try:
            with tracer.start_as_current_span("handler"):
                await body(interaction)
        finally:
            done.set()

    fake.clear_requests()
    payload = fake.payloads.slash_command("probe", **payload_kwargs)
    fake.inject(bot, "INTERACTION_CREATE", payload)
    await asyncio.wait_for(done.wait(), 10)
    return payload


async def test_offline_interaction_flow(
    span_exporter: Any, callbacks: Callbacks, offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    async def body(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("queued")
        await interaction.edit_original_response(content="done")
        assert interaction.channel is not None
        await interaction.channel.send("public")  # type: ignore[union-attr]

    with instrumented():
        payload = await _run_command(offline_discord, discord_bot, body)
    assert offline_discord.route_keys() == [
        f"POST {CALLBACK}",
        f"POST {FOLLOWUP}",
        f"PATCH {ORIGINAL}",
        f"POST {CHANNEL_MESSAGES}",
    ]
    handler = next(s for s in span_exporter.get_finished_spans() if s.name == "handler")
    spans = rest_spans(span_exporter)
    assert [s.name for s in spans] == [
        f"POST {CALLBACK}",
        f"POST {FOLLOWUP}",
        f"PATCH {ORIGINAL}",
        f"POST {CHANNEL_MESSAGES}",
    ]
    port = offline_discord.port
    for span, method, template in zip(
        spans,
        ["POST", "POST", "PATCH", "POST"],
        [CALLBACK, FOLLOWUP, ORIGINAL, CHANNEL_MESSAGES],
        strict=True,
    ):
        assert span.parent is not None and span.parent.span_id == handler.context.span_id
        status = 204 if span.name == f"POST {CALLBACK}" and offline_discord.requests[0].status == 204 else 200
        assert_http_attrs(span, method, template, status, port)
        attrs: dict[str, Any] = dict(span.attributes or {})
        assert (
            isinstance(attrs[A.DISCORD_RATELIMIT_BUCKET], str)
            and len(attrs[A.DISCORD_RATELIMIT_BUCKET]) == 32
        )
        assert isinstance(attrs[A.DISCORD_RATELIMIT_REMAINING], int)
        assert isinstance(attrs[A.DISCORD_RATELIMIT_LIMIT], int)
        assert isinstance(attrs[A.DISCORD_RATELIMIT_RESET_AFTER], float)
        assert payload["token"] not in attrs[A.URL_FULL]
    assert str((spans[0].attributes or {})[A.URL_FULL]).endswith(
        f"/interactions/{payload['id']}/{{interaction_token}}/callback"
        + query_of(offline_discord.requests[0])
    )
    assert (spans[3].attributes or {})[A.URL_FULL] == (
        f"{offline_discord.api_base}/channels/{offline_discord.world.channel_id}/messages"
    )
    assert A.DISCORD_REST_WEBHOOK not in (spans[3].attributes or {})
    ((iid, kwargs),) = callbacks.calls
    assert iid == int(payload["id"])
    assert kwargs == {
        "status": offline_discord.requests[0].status,
        "discord_code": None,
        "end_ns": spans[0].end_time,
        "callback_type": 5,
    }


async def test_offline_late_ack_10062(
    span_exporter: Any, callbacks: Callbacks, offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    errors: list[BaseException] = []

    async def body(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message("late")
        except discord.NotFound as exc:
            errors.append(exc)

    with instrumented():
        payload = await _run_command(offline_discord, discord_bot, body, age_ms=3500)
    (exc,) = errors
    assert isinstance(exc, discord.NotFound) and exc.code == 10062
    span = only(span_exporter, f"POST {CALLBACK}")
    attrs: dict[str, Any] = dict(span.attributes or {})
    assert attrs[A.DISCORD_ERROR_CODE] == 10062
    assert attrs[A.ERROR_TYPE] == "404"
    assert span.status.status_code is StatusCode.ERROR
    ((iid, kwargs),) = callbacks.calls
    assert iid == int(payload["id"])
    assert kwargs["status"] == 404 and kwargs["discord_code"] == 10062 and kwargs["callback_type"] == 4


async def test_offline_rate_limit_and_second_ack(
    span_exporter: Any, callbacks: Callbacks, offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    errors: list[discord.HTTPException] = []
    offline_discord.rate_limit("POST", CHANNEL_MESSAGES, retry_after=0.02, scope="user")

    async def body(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        assert interaction.channel is not None
        await interaction.channel.send("after a 429")  # type: ignore[union-attr]
        try:  # a second acknowledgement through the raw HTTPClient route: 400 / 40060
            await interaction._state.http.request(
                discord.http.Route(
                    "POST",
                    "/interactions/{interaction_id}/{token}/callback",
                    interaction_id=interaction.id,
                    token=interaction.token,
                ),
                json={"type": 4, "data": {"content": "again"}},
            )
        except discord.HTTPException as exc:
            errors.append(exc)

    with instrumented():
        payload = await _run_command(offline_discord, discord_bot, body)
    (exc,) = errors
    assert exc.code == 40060
    message = only(span_exporter, f"POST {CHANNEL_MESSAGES}")
    assert (message.attributes or {})[A.HTTP_REQUEST_RESEND_COUNT] == 1
    (event,) = message.events
    assert event.name == A.EVENT_RATE_LIMITED
    assert dict(event.attributes or {})[A.DISCORD_RATELIMIT_RETRY_AFTER] == 0.02
    assert dict(event.attributes or {})[A.DISCORD_RATELIMIT_GLOBAL] is False
    callbacks_spans = [s for s in rest_spans(span_exporter) if s.name == f"POST {CALLBACK}"]
    assert len(callbacks_spans) == 2
    second = callbacks_spans[1]
    assert (second.attributes or {})[A.DISCORD_ERROR_CODE] == 40060
    assert A.DISCORD_REST_WEBHOOK not in (second.attributes or {})  # it went through HTTPClient
    assert [(iid, kw["status"], kw["discord_code"], kw["callback_type"]) for iid, kw in callbacks.calls] == [
        (int(payload["id"]), offline_discord.requests_for("POST", CALLBACK)[0].status, None, 5),
        (int(payload["id"]), 400, 40060, 4),
    ]


async def test_offline_same_requests_and_exceptions_with_and_without(
    span_exporter: Any, offline_discord: OfflineDiscord, discord_bot: commands.Bot
) -> None:
    """The bot does not notice: the same requests reach the fake, and the same exceptions (the
    very objects discord.py raised) reach the same handlers, with and without the wrappers."""
    caught: list[tuple[Any, ...]] = []
    escaped: list[tuple[Any, ...]] = []

    async def on_error(interaction: discord.Interaction, error: discord.app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        frames = [f.name for f in _frames(original)]
        escaped.append((type(error), type(original), str(original), frames[-1]))

    discord_bot.tree.on_error = on_error  # type: ignore[method-assign]

    async def body(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        offline_discord.rate_limit("POST", CHANNEL_MESSAGES, retry_after=0.01)
        assert interaction.channel is not None
        await interaction.channel.send("after 429")  # type: ignore[union-attr]
        await interaction.followup.send("a")
        try:
            await interaction.response.send_message("second ack")  # discord.py's own guard
        except discord.InteractionResponded as exc:
            caught.append((type(exc), str(exc)))
        try:
            await interaction._state.http.request(
                discord.http.Route(
                    "POST",
                    "/interactions/{interaction_id}/{token}/callback",
                    interaction_id=interaction.id,
                    token=interaction.token,
                ),
                json={"type": 4, "data": {"content": "again"}},
            )
        except discord.HTTPException as exc:
            caught.append((type(exc), exc.status, exc.code, str(exc), _frames(exc)[-1].name))
        await interaction.edit_original_response(content="b")
        await interaction.channel.fetch_message(1)  # type: ignore[union-attr]  # 404 escapes to on_error

    def seen() -> list[tuple[Any, ...]]:
        return [
            (
                r.method,
                r.route,
                sorted(r.query.items()),
                {k: v for k, v in r.json.items() if k != "nonce"} if isinstance(r.json, dict) else r.json,
                r.status,
                sorted((k, v) for k, v in r.headers.items() if k.lower() not in {"host", "content-length"}),
            )
            for r in offline_discord.requests
        ]

    await _run_command(offline_discord, discord_bot, body)
    plain, plain_caught, plain_escaped = seen(), list(caught), list(escaped)
    discord_bot.tree.remove_command("probe")
    caught.clear()
    escaped.clear()
    with instrumented():
        await _run_command(offline_discord, discord_bot, body)
    traced = seen()
    assert len(rest_spans(span_exporter)) == 6  # callback, 429+send, followup, raw callback, edit, fetch

    assert plain == traced  # all but tokens (in paths, not compared) and discord.py's random nonce
    assert plain_caught == caught and len(caught) == 2
    assert plain_escaped == escaped and len(escaped) == 1
    assert escaped[0][1] is discord.NotFound
    assert escaped[0][3] == "request"  # the innermost frame is discord.py's own raise, not ours
    assert all(h[0].lower() != "traceparent" for row in traced for h in row[5])


def _frames(exc: BaseException) -> list[Any]:
    import traceback

    return list(traceback.extract_tb(exc.__traceback__))


async def test_instrument_bot_traces_only_instrumented_clients(
    span_exporter: Any, offline_discord: OfflineDiscord, make_bot: Any
) -> None:
    """Through the real instrument_bot: REST spans nest under the interaction root; the REST
    calls of a client that was not instrumented produce nothing."""
    from otel_bot import instrument_bot, uninstrument_bot

    bot_a = await make_bot()
    bot_b = await make_bot()
    done = asyncio.Event()

    @bot_a.tree.command(name="probe", description="Probe")
    async def probe(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.defer()
            await interaction.followup.send("x")
        finally:
            done.set()

    instrument_bot(bot_a)
    try:
        offline_discord.inject(bot_a, "INTERACTION_CREATE", offline_discord.payloads.slash_command("probe"))
        await asyncio.wait_for(done.wait(), 10)
        await bot_b.get_channel(offline_discord.world.channel_id).send("from b")  # type: ignore[union-attr]
        await bot_a.get_channel(offline_discord.world.channel_id).send("from a")  # type: ignore[union-attr]
    finally:
        uninstrument_bot(bot_a)
    assert vars(HTTPClient)["request"] is _patching.original_of(vars(HTTPClient)["request"])
    callback = only(span_exporter, f"POST {CALLBACK}")
    followup = only(span_exporter, f"POST {FOLLOWUP}")
    assert callback.parent is not None and followup.parent is not None
    assert callback.parent.span_id == followup.parent.span_id  # the interaction root
    assert callback.context.trace_id == followup.context.trace_id
    sends = [s for s in rest_spans(span_exporter) if s.name == f"POST {CHANNEL_MESSAGES}"]
    assert len(sends) == 1  # bot_a's only; bot_b is not instrumented
    assert sends[0].parent is None  # outside any unit of work: its own trace

"""Root spans for gateway event listeners, and the flush on ``Client.close``.

Where discord.py runs them: ``Client.dispatch`` schedules one ``Client._run_event`` task per
listener (the ``on_<event>`` method and every ``add_listener``/``Cog.listener`` coroutine;
custom events from ``bot.dispatch("custom")`` too). Each such task that starts outside any unit
of work becomes a root named ``event on_<event>`` (e.g. ``event on_message``); ``Client.on_error``
runs inside it. Which events are traced: ``Settings.events`` (only those) or every event but
``Settings.ignored_events`` (noisy gateway events by default, see
``otel_bot._config.DEFAULT_IGNORED_EVENTS``).

An event dispatched *inside* a unit of work (``on_command_error``, ``on_app_command_completion``,
a custom event a command dispatches) is part of that work: it becomes an ``event on_<event>``
child span (kind INTERNAL) and the root waits for it.

``source`` for ``Settings.root_hook`` is the tuple of the event's arguments.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind

from . import _attributes as A
from . import _outcomes, _privacy, _roots, _state, _values
from ._guard import guard
from ._patching import Patch


def _event_attributes(
    client: Any, event_name: str, coro: Any, args: tuple[Any, ...], settings: Any
) -> dict[str, Any]:
    attrs: dict[str, Any] = {A.DISCORD_EVENT_NAME: event_name}
    listener = _values.code_name(coro)
    if isinstance(listener, str):
        attrs[A.DISCORD_LISTENER] = listener
    first = args[0] if args else None
    if first is None:
        attrs[A.DISCORD_SHARD_ID] = _values.shard_id_for(client, None)
        return attrs
    guild_id = getattr(first, "guild_id", None)
    if guild_id is None:
        guild_id = getattr(getattr(first, "guild", None), "id", None)
    channel_id = getattr(first, "channel_id", None)
    if channel_id is None:
        channel_id = getattr(getattr(first, "channel", None), "id", None)
    user_id = getattr(first, "user_id", None)
    if user_id is None:
        person = getattr(first, "author", None) or getattr(first, "user", None)
        user_id = getattr(person, "id", None)
    if isinstance(guild_id, int):
        attrs[A.DISCORD_GUILD_ID] = str(guild_id)
    if isinstance(channel_id, int):
        attrs[A.DISCORD_CHANNEL_ID] = str(channel_id)
    if isinstance(user_id, int):
        attrs[A.DISCORD_USER_ID] = _values.user_id_value(user_id, settings)
    attrs[A.DISCORD_SHARD_ID] = _values.shard_id_for(client, guild_id if isinstance(guild_id, int) else None)
    # Messages: their own snowflake clock, and the content when opted in.
    from discord import Message

    if isinstance(first, Message):
        attrs[A.DISCORD_MESSAGE_ID] = str(first.id)
        created = _values.snowflake_ms(first.id)
        if created is not None:
            attrs[A.DISCORD_MESSAGE_CREATED_AT] = created
            if event_name == "on_message":
                attrs[A.DISCORD_GATEWAY_LAG_MS] = float(time.time_ns() / 1e6 - created)
        if settings.capture_message_content and isinstance(first.content, str):
            attrs[A.DISCORD_MESSAGE_CONTENT] = _values.bounded(first.content, settings)
    return {k: v for k, v in attrs.items() if v is not None}


def _wrap_run_event(original: Any) -> Any:
    async def _run_event(self: Any, coro: Any, event_name: str, *args: Any, **kwargs: Any) -> Any:
        if _state.is_suppressed() or not _roots.client_enabled(self):
            return await original(self, coro, event_name, *args, **kwargs)
        settings = _state.settings()
        if settings is None or not settings.trace_events or not settings.event_enabled(event_name):
            return await original(self, coro, event_name, *args, **kwargs)
        parent = _roots.current_root()
        name = f"event {event_name}"
        if parent is not None:
            return await _run_nested(original, self, coro, event_name, name, parent, args, kwargs)
        attrs: dict[str, Any] = {}
        with guard("events.attributes"):
            attrs = _event_attributes(self, event_name, coro, args, settings)
        root = _roots.start_root(
            name, kind="event", flow=event_name, settings=settings, source=args, client=self, attributes=attrs
        )

        async def traced(*a: Any, **kw: Any) -> Any:
            return await _roots.traced_call(root, coro, *a, **kw)

        with root.activated():
            try:
                return await original(self, traced, event_name, *args, **kwargs)
            finally:
                root.release()

    return _run_event


async def _run_nested(
    original: Any, client: Any, coro: Any, event_name: str, name: str, parent: Any, args: Any, kwargs: Any
) -> Any:
    """An event dispatched inside a unit of work: a child span of it."""
    span: Span = INVALID_SPAN
    # Guarded: a provider, sampler or span processor that raises must not fail the listener.
    with guard("events.start"):
        span = _state.get_tracer().start_span(_privacy.bound_name(name), kind=SpanKind.INTERNAL)
    if span is INVALID_SPAN:
        return await original(client, coro, event_name, *args, **kwargs)
    if span.is_recording():
        with guard("events.attributes"):
            span.set_attribute(A.DISCORD_EVENT_NAME, _privacy.clean_text(event_name))
            listener = _values.code_name(coro)
            if isinstance(listener, str):
                span.set_attribute(A.DISCORD_LISTENER, listener)

    async def traced(*a: Any, **kw: Any) -> Any:
        try:
            return await coro(*a, **kw)
        except Exception as exc:
            if span.is_recording():
                with guard("events.note_error"):
                    _privacy.record_error(span, _outcomes.unwrap(exc))
            raise

    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            return await original(client, traced, event_name, *args, **kwargs)
    finally:
        with guard("events.end"):
            span.end()


# --- flush on close ------------------------------------------------------------------------------


async def _flush(settings: Any) -> None:
    """Flush pending spans after ``close()``, bounded by ``flush_timeout_s``; the export runs on a
    helper thread, so the loop keeps running (and no executor span is made) while it waits."""
    timeout = settings.flush_timeout_s if settings is not None else None
    if timeout is None:
        return
    with guard("events.flush"):
        from . import _shutdown

        await _shutdown.flush_async(float(timeout), tracer_provider=settings.tracer_provider)


def _wrap_close(original: Any) -> Any:
    async def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            if _roots.client_enabled(self) and not _state.is_suppressed():
                await _flush(_state.settings())

    return close


def _client() -> Any:
    from discord import Client

    return Client


def _sharded_client() -> Any:
    from discord import AutoShardedClient

    return AutoShardedClient if "close" in vars(AutoShardedClient) else None


PATCHES: tuple[Patch, ...] = (
    Patch(owner=_client, name="_run_event", wrap=_wrap_run_event, group="events"),
    Patch(owner=_client, name="close", wrap=_wrap_close, group="core"),
    Patch(owner=_sharded_client, name="close", wrap=_wrap_close, group="core"),
)

"""``instrument_bot`` / ``uninstrument_bot`` / ``DiscordBotInstrumentor``: the ONE patch table.

The table is the concatenation of ``PATCHES`` from every instrumented module (interactions,
components, commands, events, task loops, Discord REST, executors, databases), each imported
lazily; a module that does not exist yet is skipped. A module may also export
``instrument(settings)`` / ``uninstrument()`` hooks (the DB module turns the contrib asyncpg
instrumentor on there); they run after the table is applied and before it is reverted.

Patches are class-level, so bots built before or after the call are covered; a registry of
instrumented clients makes the wrappers pass straight through for clients that were not
instrumented (unless the zero-code ``DiscordBotInstrumentor`` is active: then every client is).

Process-wide settings: the latest ``instrument_bot`` call's options (or the instrumentor's) are
the active ones for every instrumented client. The patch set is fixed by the first call: a group
switched off then (``trace_rest=False``...) stays unpatched until everything is uninstrumented.

Instrumenting the same client twice emits a ``RuntimeWarning`` (``warnings.warn``) and changes
nothing; ``uninstrument_bot`` on a client that is not instrumented does nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import threading
import warnings
from collections.abc import Collection, Mapping
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from . import _roots, _state
from ._config import Settings
from ._guard import guard
from ._patching import Applied, Patch, apply, revert

#: Modules contributing ``PATCHES`` (and optional hooks), in patch order.
MODULES: tuple[str, ...] = (
    "_interactions",
    "_components",
    "_commands",
    "_events",
    "_tasks",
    "_rest",
    "_executor",
    "_loopwatch",
    "_db",
)

#: The discord.py versions otel_bot supports.
DISCORD_PY_REQUIREMENT = "discord.py >= 2.4, < 2.8"

_lock = threading.RLock()
_applied: list[Applied] = []
_hooked: list[Any] = []
_patched = False
_warned_settings = False

_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(Settings)) - {"tracer_provider"}


def _modules() -> list[Any]:
    found = []
    for name in MODULES:
        full = f"{__package__}.{name}"
        try:
            found.append(importlib.import_module(full))
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise
    return found


def patch_table(modules: list[Any] | None = None) -> tuple[Patch, ...]:
    """The one table: every module's ``PATCHES``, concatenated."""
    table: list[Patch] = []
    for module in _modules() if modules is None else modules:
        table.extend(getattr(module, "PATCHES", ()))
    return tuple(table)


def build_settings(tracer_provider: Any = None, **options: Any) -> Settings:
    """Validate options into :class:`Settings` (raises ``TypeError``/``ValueError``; nothing applied)."""
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise TypeError(
            f"unknown otel_bot option(s): {', '.join(unknown)}; valid options are: {', '.join(sorted(_OPTION_NAMES))}"
        )
    if tracer_provider is not None and not callable(getattr(tracer_provider, "get_tracer", None)):
        raise TypeError(f"tracer_provider must be an OpenTelemetry TracerProvider, got {tracer_provider!r}")
    for key in ("events", "ignored_events"):
        value = options.get(key)
        if value is not None and not isinstance(value, (set, frozenset, list, tuple)):
            raise TypeError(f"{key} must be a collection of event names, got {value!r}")
        if value is not None:
            options[key] = frozenset(value)
    return Settings(tracer_provider=tracer_provider, **options)


#: Settings the zero-code instrumentor reads from ``OTEL_BOT_<NAME>`` (when not passed as kwargs).
ENV_PREFIX = "OTEL_BOT_"
_ENV_BOOL = (
    "capture_user_ids",
    "capture_message_content",
    "capture_option_values",
    "trace_interactions",
    "trace_commands",
    "trace_events",
    "trace_tasks",
    "trace_rest",
    "trace_db",
    "trace_dbapi",
    "capture_db_parameters",
    "capture_db_query_literals",
    "trace_executor",
    "mirror_logs_as_events",
)
_ENV_NUMBER = (
    "max_attribute_length",
    "default_threshold_ms",
    "slow_query_ms",
    "repeated_query_threshold",
    "blocking_threshold_ms",
    "root_timeout_s",
    "flush_timeout_s",
)
_ENV_SET = ("events", "ignored_events")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Options for the zero-code instrumentor from ``OTEL_BOT_*`` variables, e.g.
    ``OTEL_BOT_CAPTURE_USER_IDS=false``, ``OTEL_BOT_IGNORED_EVENTS=typing,presence_update``,
    ``OTEL_BOT_THRESHOLDS=ladder queue=800,ping=100``, ``OTEL_BOT_USER_ID_HMAC_KEY=...``,
    ``OTEL_BOT_ROOT_TIMEOUT_S=none``. A malformed value raises ``ValueError`` naming the variable."""
    options: dict[str, Any] = {}

    def get(name: str) -> str | None:
        value = environ.get(ENV_PREFIX + name.upper())
        return value.strip() if value is not None and value.strip() != "" else None

    for name in _ENV_BOOL:
        value = get(name)
        if value is None:
            continue
        if value.lower() in _TRUE:
            options[name] = True
        elif value.lower() in _FALSE:
            options[name] = False
        else:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be true or false, got {value!r}")
    for name in _ENV_NUMBER:
        value = get(name)
        if value is None:
            continue
        if value.lower() == "none":
            options[name] = None
            continue
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be a number, got {value!r}") from None
        options[name] = (
            int(number) if name in ("max_attribute_length", "repeated_query_threshold") else number
        )
    for name in _ENV_SET:
        value = get(name)
        if value is not None:
            options[name] = frozenset(part.strip() for part in value.split(",") if part.strip())
    key = get("user_id_hmac_key")
    if key is not None:
        options["user_id_hmac_key"] = key.encode()
    thresholds = get("thresholds")
    if thresholds is not None:
        parsed: dict[str, float] = {}
        for item in thresholds.split(","):
            flow, sep, ms = item.rpartition("=")
            try:
                if not sep or not flow.strip():
                    raise ValueError
                parsed[flow.strip()] = float(ms)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}THRESHOLDS must be 'flow=ms,...', got {item!r}") from None
        options["thresholds"] = parsed
    return options


def _group_enabled(settings: Settings) -> Any:
    def enabled(group: str) -> bool:
        value = getattr(settings, f"trace_{group}", True)
        return bool(value)

    return enabled


def _patch(settings: Settings) -> None:
    global _patched
    if _patched:
        return
    modules = _modules()
    enabled = _group_enabled(settings)
    try:
        for patch in patch_table(modules):  # one at a time, so a failure reverts exactly what was applied
            _applied.extend(apply([patch], enabled))
    except BaseException:
        revert(_applied)
        raise
    _patched = True
    for module in modules:
        hook = getattr(module, "instrument", None)
        if callable(hook):
            with guard(f"instrument.{module.__name__}"):
                hook(settings)
                _hooked.append(module)


def _changed_fields(old: Settings, new: Settings) -> list[str]:
    """The Settings fields whose values differ (a field that cannot be compared counts as changed)."""
    changed: list[str] = []
    for f in dataclasses.fields(Settings):
        try:
            same = bool(getattr(old, f.name) == getattr(new, f.name))
        except Exception:
            same = False
        if not same:
            changed.append(f.name)
    return changed


def _activate(settings: Settings, caller: str) -> None:
    """Make ``settings`` the process-wide ones; warn (once) when they replace different active
    settings: one configuration per process, the last call wins."""
    global _warned_settings
    active = _state.settings()
    if _patched and active is not None and active is not settings and not _warned_settings:
        changed = _changed_fields(active, settings)
        if changed:
            _warned_settings = True
            warnings.warn(
                f"otel_bot: {caller} replaces the active settings ({', '.join(changed)} differ); "
                "settings are process-wide: one configuration per process, the last call wins, "
                "so every instrumented bot now uses the new ones",
                RuntimeWarning,
                stacklevel=3,
            )
    _state.activate(settings)


def _unpatch() -> None:
    global _patched, _warned_settings
    if not _patched:
        return
    _warned_settings = False
    for module in reversed(_hooked):
        hook = getattr(module, "uninstrument", None)
        if callable(hook):
            with guard(f"uninstrument.{module.__name__}"):
                hook()
    _hooked.clear()
    _roots.revert_lazy()
    revert(_applied)
    _roots.remove_task_factories()
    _patched = False
    _state.deactivate()


def is_patched() -> bool:
    """True while the patch table is applied."""
    return _patched


def instrument_bot(bot: Any, *, tracer_provider: Any = None, **options: Any) -> Any:
    """Trace ``bot``: every interaction, prefix/hybrid command, event listener and task loop
    iteration becomes a root span, with REST, DB, executor and checkpoint children.

    ``bot`` is any ``discord.Client`` (``commands.Bot``, ``AutoShardedClient``/``AutoShardedBot``
    included), built before or after this call. ``tracer_provider`` defaults to the global one
    (otel_bot never builds an SDK). ``options`` are :class:`otel_bot._config.Settings` fields
    (``capture_user_ids``, ``events``, ``thresholds``...); an unknown or invalid option raises
    ``TypeError``/``ValueError`` before anything is changed. Instrumenting a bot twice warns
    (``RuntimeWarning``) and changes nothing. Returns ``bot``.

    Settings (``tracer_provider`` and ``options``) are process-wide: **one configuration per
    process; the last call wins.** A second ``instrument_bot(bot2, ...)`` (or the zero-code
    instrumentor) with different settings replaces them for every instrumented bot, and warns
    once (``RuntimeWarning``) naming the fields that changed. Pass the same options to every call.
    """
    import discord

    if not isinstance(bot, discord.Client):
        raise TypeError(
            f"instrument_bot() needs a discord.Client (or commands.Bot), got {type(bot).__name__}"
        )
    settings = build_settings(tracer_provider, **options)
    with _lock:
        if bot in _roots.CLIENTS:
            warnings.warn(
                f"otel_bot: {bot!r} is already instrumented; nothing changed", RuntimeWarning, stacklevel=2
            )
            return bot
        _activate(settings, "instrument_bot()")
        _patch(settings)
        _roots.register_client(bot)
    return bot


def uninstrument_bot(bot: Any) -> None:
    """Stop tracing ``bot``. When no client is left instrumented (and the zero-code instrumentor
    is off), every patch is reverted to the exact original object."""
    with _lock:
        if bot not in _roots.CLIENTS:
            return
        _roots.unregister_client(bot)
        if not _roots.CLIENTS and not _roots.FLAGS.all_clients:
            _unpatch()


class DiscordBotInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """The zero-code entry point (``opentelemetry-instrument python bot.py``): traces every
    discord.py client in the process. ``instrument(tracer_provider=..., **options)`` takes the
    same options as :func:`instrument_bot`; options not passed are read from ``OTEL_BOT_*``
    environment variables (see :func:`options_from_env`)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return (DISCORD_PY_REQUIREMENT,)

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider = kwargs.pop("tracer_provider", None)
        options = {**options_from_env(os.environ), **kwargs}
        settings = build_settings(tracer_provider, **options)
        with _lock:
            _activate(settings, "DiscordBotInstrumentor.instrument()")
            _patch(settings)
            _roots.FLAGS.all_clients = True

    def _uninstrument(self, **kwargs: Any) -> None:
        with _lock:
            _roots.FLAGS.all_clients = False
            if not _roots.CLIENTS:
                _unpatch()

"""The settings one ``instrument_bot`` call (or the zero-code instrumentor) runs with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Gateway events that fire constantly and are not units of bot work; no root spans by default.
DEFAULT_IGNORED_EVENTS: frozenset[str] = frozenset(
    {
        "socket_event_type",
        "socket_raw_receive",
        "socket_raw_send",
        "socket_response",
        "presence_update",
        "typing",
        "raw_typing",
        "raw_presence_update",
        "voice_state_update",
        "member_update",
        "user_update",
        "guild_available",
        "connect",
        "disconnect",
        "shard_connect",
        "shard_disconnect",
        "resumed",
        "shard_resumed",
        "ready",
        "shard_ready",
        "error",
        # Already traced as their own roots (interactions / commands), not as listeners:
        "interaction",
    }
)


@dataclass(frozen=True)
class SeverityBounds:
    """Bounds in ms: below ``fast_ms`` FAST, below ``ok_ms`` OK, from ``slow_ms`` SLOW,
    above ``critical_ms`` CRITICAL. Between ``ok_ms`` and ``slow_ms`` is still OK."""

    fast_ms: float = 10.0
    ok_ms: float = 500.0
    slow_ms: float = 1000.0
    critical_ms: float = 3000.0

    def __post_init__(self) -> None:
        if not (0 <= self.fast_ms <= self.ok_ms <= self.slow_ms <= self.critical_ms):
            raise ValueError(
                "severity bounds must satisfy 0 <= fast_ms <= ok_ms <= slow_ms <= critical_ms, "
                f"got {self.fast_ms}, {self.ok_ms}, {self.slow_ms}, {self.critical_ms}"
            )


@dataclass
class Settings:
    """Everything a wrapper may consult. Validated in ``__post_init__`` with clear errors."""

    tracer_provider: Any = None
    # privacy
    capture_user_ids: bool = True
    user_id_hmac_key: bytes | None = None
    capture_message_content: bool = False
    capture_option_values: bool = False
    max_attribute_length: int = 256
    # what becomes a root
    trace_interactions: bool = True
    trace_commands: bool = True
    trace_events: bool = True
    trace_tasks: bool = True
    events: frozenset[str] | None = None  # None: every event but the ignored ones
    ignored_events: frozenset[str] = DEFAULT_IGNORED_EVENTS
    trace_rest: bool = True
    # thresholds
    thresholds: Mapping[str, float] = field(default_factory=dict)
    default_threshold_ms: float | None = 1000.0
    severity_bounds: SeverityBounds = field(default_factory=SeverityBounds)
    # database
    trace_db: bool = True
    trace_dbapi: bool = False
    capture_db_parameters: bool = False
    #: ``db.query.text`` as written (literals and comments kept); off: literals become ``?``
    capture_db_query_literals: bool = False
    slow_query_ms: float = 100.0
    repeated_query_threshold: int = 5
    # executors and the event loop
    trace_executor: bool = True
    blocking_threshold_ms: float | None = 100.0
    # logs
    mirror_logs_as_events: bool = False
    # user hook: called with (span, source object) on every root span start; guarded
    root_hook: Callable[[Any, Any], None] | None = None
    # root lifetime: a root still waiting on tasks after this long ends anyway (None: never)
    root_timeout_s: float | None = 900.0
    # Client.close() flushes pending spans for at most this long (None: no flush)
    flush_timeout_s: float | None = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.user_id_hmac_key, str):
            self.user_id_hmac_key = self.user_id_hmac_key.encode()
        if self.events is not None:
            self.events = frozenset(_event_name(e) for e in self.events)
        self.ignored_events = frozenset(_event_name(e) for e in self.ignored_events)
        for name, value in dict(self.thresholds).items():
            if not isinstance(name, str) or not _is_ms(value):
                raise ValueError(f"thresholds must map flow names to non-negative ms, got {name!r}: {value!r}")
        self.thresholds = {_flow_key(k): float(v) for k, v in self.thresholds.items()}
        if self.default_threshold_ms is not None and not _is_ms(self.default_threshold_ms):
            raise ValueError(f"default_threshold_ms must be non-negative ms or None, got {self.default_threshold_ms!r}")
        for attr in ("slow_query_ms", "max_attribute_length", "repeated_query_threshold"):
            if not _is_ms(getattr(self, attr)):
                raise ValueError(f"{attr} must be a non-negative number, got {getattr(self, attr)!r}")
        if self.blocking_threshold_ms is not None and not _is_ms(self.blocking_threshold_ms):
            raise ValueError(f"blocking_threshold_ms must be non-negative ms or None, got {self.blocking_threshold_ms!r}")
        for attr in ("root_timeout_s", "flush_timeout_s"):
            value = getattr(self, attr)
            if value is not None and not _is_ms(value):
                raise ValueError(f"{attr} must be non-negative seconds or None, got {value!r}")
        if self.root_hook is not None and not callable(self.root_hook):
            raise TypeError(f"root_hook must be callable(span, source), got {self.root_hook!r}")
        if not isinstance(self.severity_bounds, SeverityBounds):
            raise TypeError("severity_bounds must be an otel_bot.SeverityBounds")

    def threshold_for(self, flow: str) -> float | None:
        """The threshold for a flow by the name users see.

        A command matches as ``queue``, ``/queue`` or ``ladder queue`` (``!ping`` for prefix
        ones); a component, modal, event or task loop matches by its root span name
        (``button JoinButton``, ``event on_message``, ``task matchmaker``) or by the part after
        the kind word (``JoinButton``, ``on_message`` / ``message``, ``matchmaker``)."""
        thresholds = self.thresholds
        if not thresholds:
            return self.default_threshold_ms
        for key in _flow_keys(flow):
            if key in thresholds:
                return thresholds[key]
        return self.default_threshold_ms

    def event_enabled(self, event: str) -> bool:
        event = _event_name(event)
        if self.events is not None:
            return event in self.events
        return event not in self.ignored_events


def _is_ms(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _event_name(name: str) -> str:
    return name[3:] if name.startswith("on_") else name


#: The words root span names start with; a threshold may name the flow without them.
_KIND_WORDS = frozenset(
    {"button", "select", "modal", "event", "task", "autocomplete", "user", "message", "dynamic", "component"}
)


def _flow_keys(name: str) -> list[str]:
    """Lookup keys for one flow name, most specific first."""
    key = _flow_key(name)
    keys = [key]
    head, _, rest = key.partition(" ")
    if rest and head in _KIND_WORDS:
        keys.append(_flow_key(rest))
    for k in list(keys):
        if " " in k:
            continue
        if k.startswith("on_"):
            keys.extend((k[3:], f"event {k}"))
        else:
            keys.extend((f"on_{k}", f"event on_{k}", f"task {k}"))
    return keys


def _flow_key(name: str) -> str:
    """Normalise '/ladder queue', '!ping', 'ladder queue' to one lookup key."""
    return name.strip().lstrip("/!").strip()

"""Root spans: start, lifetime, outcome and end of one unit of bot work.

Every root kind (interactions, prefix/hybrid commands, event listeners, task loop iterations)
goes through :func:`start_root`, which opens a ``SERVER`` span with an explicit *empty* parent
context (a user's span around ``bot.start()`` never swallows the bot's traces) and a
:class:`otel_bot._state.WorkUnit`.

A root ends when the work it stands for ends. Its :class:`Root` counts *holds*: the dispatch
itself holds it, and every asyncio task created while the root's unit is current holds it until
the task finishes (a chaining task factory, installed on the running loop at the first root,
does the counting). When the count reaches zero the root's finalizers run (acknowledgement
attributes, the threshold verdict), then the span ends. A root still waiting after
``Settings.root_timeout_s`` ends anyway with ``bot.root.timed_out=true``.

Ids are written as strings (Discord snowflakes fit int64, but JSON consumers of OTLP round
64-bit integers through doubles); durations in ms as floats; counts as ints.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind

from . import _attributes as A
from . import _loopwatch, _outcomes, _privacy, _sla, _state
from ._config import Settings
from ._guard import guard
from ._patching import Patch, apply, original_of, revert

ROOT_KEY = "otel_bot.root"

# --- which clients are instrumented ---------------------------------------------------------

#: Clients passed to instrument_bot (weakly held).
CLIENTS: weakref.WeakSet[Any] = weakref.WeakSet()
#: The ``HTTPClient`` of every client in :data:`CLIENTS`, for an O(1) check on every REST call.
HTTP_CLIENTS: weakref.WeakSet[Any] = weakref.WeakSet()


def register_client(client: Any) -> None:
    """Trace ``client`` (and its REST calls)."""
    CLIENTS.add(client)
    http = getattr(client, "http", None)
    if http is not None:
        HTTP_CLIENTS.add(http)


def unregister_client(client: Any) -> None:
    CLIENTS.discard(client)
    http = getattr(client, "http", None)
    if http is not None:
        HTTP_CLIENTS.discard(http)


class _Flags:
    all_clients: bool = False  # the zero-code instrumentor is active: every client is traced


FLAGS = _Flags()


def client_enabled(client: Any) -> bool:
    """True when ``client``'s work should be traced (instrumented, or zero-code active)."""
    if FLAGS.all_clients:
        return True
    try:
        return client in CLIENTS
    except TypeError:  # unhashable / not weak-referenceable
        return False


def any_enabled() -> bool:
    """True when any client is instrumented (for work not tied to a client: task loops)."""
    return FLAGS.all_clients or len(CLIENTS) > 0


# --- the task factory that counts a root's tasks -------------------------------------------

# Coroutines that live beyond the unit of work that happens to start them: never held.
_UNTRACKED_QUALNAMES = frozenset(
    {
        "Loop._loop",  # discord.ext.tasks: each iteration is its own root
        "BaseView.__timeout_task_impl",  # a view's timeout watcher (2.6+)
        "View.__timeout_task_impl",  # the same before 2.6
        "Modal.__timeout_task_impl",
    }
)


class _TaskFactory:
    """Chains to the loop's previous task factory; a task created inside an open root holds it."""

    __slots__ = ("previous",)

    def __init__(self, previous: Callable[..., Any] | None) -> None:
        self.previous = previous

    def __call__(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        if self.previous is not None:
            task = self.previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        with guard("roots.track_task"):
            ctx = kwargs.get("context")
            unit = ctx.get(_state.current_unit) if ctx is not None else _state.current_unit.get()
            if unit is not None and not unit.ended:
                root = unit.extra.get(ROOT_KEY)
                if root is not None and getattr(coro, "__qualname__", "") not in _UNTRACKED_QUALNAMES:
                    root.hold()
                    task.add_done_callback(root.release_callback)
        return task


_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def ensure_task_factory(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Install the counting task factory on ``loop`` (default: the running loop), chaining to
    whatever factory it has. Idempotent; re-chains if someone replaced ours."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
    current = loop.get_task_factory()
    if isinstance(current, _TaskFactory):
        return
    loop.set_task_factory(_TaskFactory(current))
    _loops.add(loop)


def remove_task_factories() -> None:
    """Put every loop's previous task factory back (uninstrument)."""
    for loop in list(_loops):
        current = loop.get_task_factory()
        if isinstance(current, _TaskFactory):
            loop.set_task_factory(current.previous)
    _loops.clear()


# --- roots --------------------------------------------------------------------------------------

Finalizer = Callable[["Root"], None]


class Root:
    """One root span and the unit of work it stands for; ends when its last hold is released."""

    __slots__ = (
        "__weakref__",
        "_timer",
        "client",
        "finalizers",
        "holds",
        "outcome",
        "settings",
        "source",
        "span",
        "track_outcome",
        "unit",
    )

    def __init__(
        self,
        span: Span,
        unit: _state.WorkUnit,
        settings: Settings,
        source: Any,
        client: Any,
        track_outcome: bool,
    ) -> None:
        self.span = span
        self.unit = unit
        self.settings = settings
        self.source = source
        self.client = client
        self.holds = 1  # the dispatch itself
        self.outcome: str | None = None
        self.finalizers: list[Finalizer] = []
        self.track_outcome = track_outcome
        self._timer: asyncio.TimerHandle | None = None

    # lifetime ----------------------------------------------------------------------------
    def hold(self) -> None:
        self.holds += 1

    def release(self) -> None:
        """Drop one hold; the last one ends the root."""
        self.holds -= 1
        if self.holds <= 0:
            self.end()
        elif self._timer is None and self.settings.root_timeout_s is not None and not self.unit.ended:
            self._arm_timer()

    def release_callback(self, _task: Any) -> None:
        self.release()

    def _arm_timer(self) -> None:
        with guard("roots.timer"):
            loop = asyncio.get_running_loop()
            timeout = float(self.settings.root_timeout_s or 0.0)
            elapsed = (time.time_ns() - self.unit.start_ns) / 1e9
            self._timer = loop.call_later(max(timeout - elapsed, 0.0), self._timed_out)

    def _timed_out(self) -> None:
        if self.unit.ended:
            return
        if self.span.is_recording():
            self.span.set_attribute(A.BOT_ROOT_TIMED_OUT, True)
            self.span.set_attribute(A.BOT_ROOT_PENDING_TASKS, max(self.holds, 0))
        self.end()

    @contextmanager
    def activated(self) -> Iterator[Root]:
        """Run the dispatch with this root's span and unit current."""
        token = otel_context.attach(trace.set_span_in_context(self.span, otel_context.Context()))
        unit_token = _state.current_unit.set(self.unit)
        try:
            yield self
        finally:
            _state.current_unit.reset(unit_token)
            otel_context.detach(token)

    # outcome -----------------------------------------------------------------------------
    def note_error(self, exc: BaseException) -> None:
        """Record what an exception means for this unit (first one wins): user errors set ERROR
        and record the original exception; checks, cooldowns, permissions and bad input are
        outcomes with an event; cancellation is neither."""
        if self.unit.ended or self.outcome is not None or exc is None:
            return
        # Guarded: a user exception whose __str__ raises must still reach the caller as itself.
        with guard("roots.note_error"):
            outcome, original = _outcomes.classify(exc)
            self.outcome = outcome
            span = self.span
            if not span.is_recording():
                return
            if outcome == _outcomes.OUTCOME_CANCELLED:
                return
            if outcome == _outcomes.OUTCOME_ERROR:
                _privacy.record_error(span, original)  # redacted, bounded, encodable
                return
            span.add_event(
                A.EVENT_COMMAND_OUTCOME,
                {A.DISCORD_COMMAND_OUTCOME: outcome, A.EXCEPTION_TYPE: _privacy.error_type(original)},
            )

    def note_outcome(self, outcome: str) -> None:
        """Record a non-exception outcome (e.g. a failed ``interaction_check``)."""
        if self.unit.ended or self.outcome is not None:
            return
        self.outcome = outcome
        if self.span.is_recording() and outcome not in (
            _outcomes.OUTCOME_SUCCESS,
            _outcomes.OUTCOME_CANCELLED,
        ):
            self.span.add_event(A.EVENT_COMMAND_OUTCOME, {A.DISCORD_COMMAND_OUTCOME: outcome})

    # end ---------------------------------------------------------------------------------
    def end(self) -> None:
        if self.unit.ended:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        span = self.span
        with guard("roots.loopwatch"):
            _loopwatch.note_unit_ending(self.unit)
        for finalizer in self.finalizers:
            with guard("roots.finalizer"):
                finalizer(self)
        end_ns = time.time_ns()
        if span.is_recording():
            with guard("roots.end"):
                if self.track_outcome:
                    span.set_attribute(A.DISCORD_COMMAND_OUTCOME, self.outcome or _outcomes.OUTCOME_SUCCESS)
                _sla.evaluate(span, self.unit.flow, (end_ns - self.unit.start_ns) / 1e6, self.settings)
        self.unit.ended = True
        span.end(end_time=end_ns)


def noting_errors(original: Any) -> Any:
    """Wrap a coroutine method whose exceptions discord.py catches and hands to error handlers
    (``CommandTree._call``, ``Item.callback``, ...): note the exception on the current root, then
    re-raise it untouched."""

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except BaseException as exc:
            root = current_root()
            if root is not None:
                root.note_error(exc)
            raise

    return wrapper


def noting_error_arg(original: Any) -> Any:
    """Wrap an error handler called as ``(self, source, error, ...)`` (``Command.dispatch_error``,
    ``View.on_error``, ``Modal.on_error``): note ``error`` on the current root, then run it."""

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        error = args[1] if len(args) > 1 else kwargs.get("error")
        root = current_root()
        if root is not None and isinstance(error, BaseException):
            root.note_error(error)
        return await original(self, *args, **kwargs)

    return wrapper


def current_root() -> Root | None:
    """The open root the caller runs inside, if any."""
    unit = _state.get_unit()
    if unit is None:
        return None
    root = unit.extra.get(ROOT_KEY)
    return root if isinstance(root, Root) else None


def start_root(
    name: str,
    *,
    kind: str,
    flow: str,
    settings: Settings,
    source: Any,
    client: Any = None,
    attributes: dict[str, Any] | None = None,
    links: Sequence[Link] | None = None,
    track_outcome: bool = False,
) -> Root:
    """Open a root span (kind SERVER, empty parent) and its unit of work; the caller runs the
    dispatch inside ``root.activated()`` and calls ``root.release()`` when the dispatch returns."""
    start_ns = time.time_ns()
    span: Span = trace.INVALID_SPAN  # if the provider fails, the work runs untraced
    with guard("roots.start"):
        span = _state.get_tracer().start_span(
            _privacy.bound_name(name),
            context=otel_context.Context(),
            kind=SpanKind.SERVER,
            attributes=bound(attributes, settings),
            links=links,
            start_time=start_ns,
        )
    unit = _state.WorkUnit(span=span, flow=flow, kind=kind, start_ns=start_ns)
    root = Root(span, unit, settings, source, client, track_outcome)
    unit.extra[ROOT_KEY] = root
    with guard("roots.task_factory"):
        ensure_task_factory()
    hook = settings.root_hook
    if hook is not None and span.is_recording():
        with guard("root_hook"):
            hook(span, source)
    return root


def link_to_current() -> list[Link] | None:
    """A link to the span the caller runs inside (e.g. the ``on_message`` root a prefix command
    is invoked from), so the two traces can be joined."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        return [Link(ctx)]
    return None


#: Values otel_bot derives itself (decimal ids, HMAC digests): never cut by max_attribute_length.
EXACT_KEYS = frozenset(
    {
        A.DISCORD_INTERACTION_ID,
        A.DISCORD_GUILD_ID,
        A.DISCORD_CHANNEL_ID,
        A.DISCORD_USER_ID,
        A.DISCORD_MESSAGE_ID,
    }
)


def bound(attributes: dict[str, Any] | None, settings: Settings | None) -> dict[str, Any]:
    """Attributes as hostile input may make them: bounded and encodable (``_privacy``), except
    the ids otel_bot formats itself, which stay whole."""
    if not attributes:
        return {}
    exact = {k: v for k, v in attributes.items() if k in EXACT_KEYS and isinstance(v, str)}
    out = _privacy.bound_attributes({k: v for k, v in attributes.items() if k not in exact}, settings)
    out.update(exact)
    return out


def set_attrs(span: Span, attributes: dict[str, Any], settings: Settings | None = None) -> None:
    """Set every non-``None`` attribute (values bounded as hostile input)."""
    for key, value in bound(attributes, settings).items():
        span.set_attribute(key, value)


async def traced_call(
    root: Root, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kwargs: Any
) -> Any:
    """Await ``func(*args, **kwargs)`` noting an exception on ``root`` (then re-raising it)."""
    try:
        return await func(*args, **kwargs)
    except BaseException as exc:
        root.note_error(exc)
        raise


# --- lazily discovered class patches (user subclasses' handlers) ------------------------------

#: Patches applied on first sight of a user class (e.g. a View subclass's ``on_error``); reverted
#: together with the main table by uninstrument.
LAZY_APPLIED: list[Any] = []
_lazy_seen: weakref.WeakKeyDictionary[type, set[str]] = weakref.WeakKeyDictionary()


def ensure_class_patch(cls: type, name: str, wrap: Callable[[Any], Any]) -> None:
    """Wrap ``name`` where ``cls``'s MRO defines it (once per defining class)."""
    seen = _lazy_seen.get(cls)
    if seen is not None and name in seen:
        return
    for klass in getattr(cls, "__mro__", ()):
        raw = vars(klass).get(name)
        if raw is None:
            continue
        if original_of(raw) is not raw:
            break  # already ours
        if not callable(raw):
            break
        LAZY_APPLIED.extend(apply([Patch(owner=_constant(klass), name=name, wrap=wrap, group="lazy")]))
        break
    _lazy_seen.setdefault(cls, set()).add(name)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def revert_lazy() -> None:
    revert(LAZY_APPLIED)
    _lazy_seen.clear()

"""Executor offloads: the trace crosses into the worker thread or process.

``asyncio.BaseEventLoop.run_in_executor`` (and so ``asyncio.to_thread``, which calls it) is patched
at class level. Inside a trace it creates an INTERNAL span ``executor {function}`` around the work:

* thread pools (the default executor or any ``ThreadPoolExecutor``): the current contextvars (the
  span, otel_bot's unit of work, the user's own variables) are carried into the worker, so spans the
  worker makes (sqlite3 / psycopg2 queries, checkpoints) nest under the executor span. The span
  records the queue wait (submit to start, ``bot.executor.queue_wait_ms``) apart from the run
  (``bot.executor.run_ms``) and the worker thread (``thread.name``, ``thread.id``);
* ``ProcessPoolExecutor``: the call travels through :func:`_process_trampoline`, a picklable
  module-level function carrying the W3C ``traceparent`` (and baggage) with the user's callable and
  arguments, so a child process that has called ``configure_tracing()`` continues the same trace.
  The parent records the span around the future; the child reports when it started and its pid, so
  the queue wait and run time are split there too;
* other executors: the span is recorded around the future; the callable is passed untouched.

The user's callable, its result and its exception reach the caller unchanged (a failure sets the
span to ERROR with the exception; a cancellation is not an error). Outside any trace, or when
suppressed, the original ``run_in_executor`` is called directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import _attributes as A
from . import _privacy, _state
from ._guard import guard
from ._patching import Patch

_PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def callable_name(func: Any) -> tuple[str, str]:
    """``(short name, qualified name)`` of what an executor runs: partials and ``to_thread``'s
    ``functools.partial(Context.run, func, ...)`` are looked through; lambdas are ``<lambda>``."""
    seen = 0
    while seen < 10:
        seen += 1
        if isinstance(func, functools.partial):
            inner = func.func
            if isinstance(getattr(inner, "__self__", None), contextvars.Context) and func.args:
                func = func.args[0]  # asyncio.to_thread: partial(ctx.run, func, *args)
            else:
                func = inner
            continue
        wrapped = getattr(func, "__wrapped__", None)
        if wrapped is not None and callable(wrapped) and not hasattr(func, "__name__"):
            func = wrapped
            continue
        break
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        name = type(func).__name__
    qualname = getattr(func, "__qualname__", None) or name
    module = getattr(func, "__module__", None)
    return name, (f"{module}.{qualname}" if isinstance(module, str) else str(qualname))


def _kind_of(executor: Any) -> str:
    if isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        return "thread"
    if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        return "process"
    return "other"


class _Call:
    """What one offload knows: its span and the clock readings; ended exactly once."""

    __slots__ = ("ended", "lock", "span", "started", "submitted")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.submitted = time.perf_counter()
        self.started: float | None = None
        self.ended = False
        self.lock = threading.Lock()

    def begin(self, queue_wait_ms: float | None = None) -> None:
        now = time.perf_counter()
        self.started = now
        if not self.ended and self.span.is_recording():
            wait = (now - self.submitted) * 1000.0 if queue_wait_ms is None else queue_wait_ms
            self.span.set_attribute(A.BOT_EXECUTOR_QUEUE_WAIT_MS, max(0.0, wait))

    def finish(self, exc: BaseException | None = None, cancelled: bool = False,
               run_ms: float | None = None) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
        span = self.span
        try:
            if span.is_recording():
                with guard("executor.span_end"):
                    if run_ms is None and self.started is not None:
                        run_ms = (time.perf_counter() - self.started) * 1000.0
                    if run_ms is not None:
                        span.set_attribute(A.BOT_EXECUTOR_RUN_MS, max(0.0, run_ms))
                    if exc is not None and not cancelled and not isinstance(exc, asyncio.CancelledError):
                        span.set_attribute(A.ERROR_TYPE, _privacy.error_type(exc))
                        _privacy.record_error(span, exc)  # redacted message / stack, ERROR status
        finally:
            with guard("executor.span_end"):
                span.end()


def _thread_trampoline(call: _Call, ctx: contextvars.Context, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Runs in the worker thread: the caller's context, with the executor span current."""
    span = call.span
    with guard("executor.begin"):
        call.begin()
        if not call.ended and span.is_recording():  # (ended: cancelled just as the worker took it)
            thread = threading.current_thread()
            span.set_attributes(
                {A.THREAD_NAME: thread.name, A.THREAD_ID: threading.get_ident(), A.BOT_EXECUTOR_WORKER: thread.name}
            )
    try:
        result = ctx.run(_run_to_thread_aware, span, func, args)
    except BaseException as exc:
        call.finish(exc)
        raise
    call.finish()
    return result


def _run_to_thread_aware(span: Span, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    # asyncio.to_thread hands us partial(its_ctx.run, func, ...): its_ctx was copied before our
    # span existed, so make the span current inside it for the duration of the call.
    if isinstance(func, functools.partial):
        inner_ctx = getattr(func.func, "__self__", None)
        if isinstance(inner_ctx, contextvars.Context) and getattr(func.func, "__name__", "") == "run":
            token = inner_ctx.run(otel_context.attach, trace.set_span_in_context(span))
            try:
                return func(*args)
            finally:
                inner_ctx.run(otel_context.detach, token)
    return func(*args)


def _process_trampoline(carrier: dict[str, str], func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Runs in the child process: continue the parent's trace, run the user's callable.

    Module-level (so it pickles by reference); returns ``(start wall-clock ns, pid, result)``. The
    user's exception propagates untouched.
    """
    start_ns = time.time_ns()
    token = otel_context.attach(_PROPAGATOR.extract(carrier))
    try:
        result = func(*args)
    finally:
        otel_context.detach(token)
    return start_ns, os.getpid(), result


def _start_span(kind: str, executor_class: str, func: Any) -> Span:
    name, qualified = callable_name(func)
    attrs: dict[str, Any] = {
        A.BOT_EXECUTOR_KIND: kind,
        A.BOT_EXECUTOR_CLASS: executor_class,
        A.CODE_FUNCTION_NAME: qualified,
    }
    return _state.get_tracer().start_span(f"executor {name}", kind=SpanKind.INTERNAL, attributes=attrs)


def _describe(loop: Any, executor: Any) -> tuple[str, str]:
    """``(kind, class name)`` of the executor the call will run on."""
    if executor is None:
        executor = getattr(loop, "_default_executor", None)
        if executor is None:  # run_in_executor is about to create the default ThreadPoolExecutor
            return "thread", concurrent.futures.ThreadPoolExecutor.__qualname__
    return _kind_of(executor), type(executor).__qualname__


def _wrap_run_in_executor(original: Any) -> Any:
    def run_in_executor(self: Any, executor: Any, func: Any, *args: Any) -> Any:
        if _state.is_suppressed():
            return original(self, executor, func, *args)
        settings = _state.settings()
        if settings is not None and not settings.trace_executor:
            return original(self, executor, func, *args)
        if not trace.get_current_span().get_span_context().is_valid:
            return original(self, executor, func, *args)
        if asyncio.iscoroutine(func) or asyncio.iscoroutinefunction(func):
            return original(self, executor, func, *args)  # its own check (debug mode) must see func
        call: _Call | None = None
        kind = "other"
        # Guarded: a provider, sampler or span processor that raises must not fail the offload
        # (then the call runs untraced, exactly as without otel_bot).
        with guard("executor.start"):
            kind, executor_class = _describe(self, executor)
            call = _Call(_start_span(kind, executor_class, func))
        if call is None:
            return original(self, executor, func, *args)
        try:
            if kind == "thread":
                token = otel_context.attach(trace.set_span_in_context(call.span))
                try:
                    ctx = contextvars.copy_context()
                finally:
                    otel_context.detach(token)
                future = original(self, executor, _thread_trampoline, call, ctx, func, args)
                future.add_done_callback(functools.partial(_on_thread_future_done, call))
                return future
            if kind == "process":
                return _submit_to_process(original, self, executor, call, func, args)
            future = original(self, executor, func, *args)
        except BaseException as exc:
            call.finish(exc)
            raise
        call.started = call.submitted  # unknown executor: no queue wait, run = the whole future
        future.add_done_callback(functools.partial(_on_plain_future_done, call))
        return future

    return run_in_executor


def _on_thread_future_done(call: _Call, future: asyncio.Future[Any]) -> None:
    # Only matters when the work never started (cancelled while queued); the worker ends the span
    # otherwise, and finish() runs once.
    if future.cancelled() and call.started is None:
        call.finish(cancelled=True)


def _on_plain_future_done(call: _Call, future: asyncio.Future[Any]) -> None:
    if future.cancelled():
        call.finish(cancelled=True)
    else:
        call.finish(future.exception())


def _submit_to_process(original: Any, loop: Any, executor: Any, call: _Call, func: Any,
                       args: tuple[Any, ...]) -> asyncio.Future[Any]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(call.span))
    submitted_ns = time.time_ns()
    inner: asyncio.Future[Any] = original(loop, executor, _process_trampoline, carrier, func, args)
    outer: asyncio.Future[Any] = loop.create_future()

    def relay(done: asyncio.Future[Any]) -> None:
        if outer.cancelled():
            if not done.cancelled():
                done.exception()  # retrieved: the caller gave up on it, as asyncio would let it
            call.finish(cancelled=True)
            return
        if done.cancelled():
            call.finish(cancelled=True)
            outer.cancel()
            return
        exc = done.exception()
        if exc is not None:
            call.finish(exc)
            outer.set_exception(exc)
            return
        start_ns, pid, result = done.result()
        with guard("executor.process_result"):
            span = call.span
            if span.is_recording():
                end_ns = time.time_ns()
                span.set_attribute(A.BOT_EXECUTOR_QUEUE_WAIT_MS, max(0.0, (start_ns - submitted_ns) / 1e6))
                span.set_attribute(A.PROCESS_PID, int(pid))
                span.set_attribute(A.BOT_EXECUTOR_WORKER, str(pid))
                call.finish(run_ms=(end_ns - start_ns) / 1e6)
        call.finish()
        outer.set_result(result)

    def propagate_cancel(done: asyncio.Future[Any]) -> None:
        if done.cancelled() and not inner.done():
            inner.cancel()

    inner.add_done_callback(relay)
    outer.add_done_callback(propagate_cancel)
    return outer


def _base_event_loop() -> Any:
    return asyncio.BaseEventLoop


#: run_in_executor (``asyncio.to_thread`` goes through it too).
PATCHES: tuple[Patch, ...] = (
    Patch(owner=_base_event_loop, name="run_in_executor", wrap=_wrap_run_in_executor, group="executor"),
)


__all__ = ["PATCHES", "callable_name"]

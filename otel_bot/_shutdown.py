"""Flushing configure_tracing's pipeline within a bounded time: on demand, at exit, on SIGTERM.

:func:`flush` / :func:`flush_async` (called from the instrumented ``Client.close``) and
:func:`shutdown` run the exporter on a helper thread and wait at most the given time, so they never
block longer than asked nor deadlock on a lock the interrupted thread holds. The atexit hook and
the SIGTERM handler (which then does what the handler it replaced would have done) live here too.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from opentelemetry import trace

from . import _export
from ._export import _REPORTER, DEFAULT_SHUTDOWN_TIMEOUT_S, _config_lock

logger = logging.getLogger("otel_bot")

_shutdown_timeout_s = DEFAULT_SHUTDOWN_TIMEOUT_S


def _run_bounded(func: Callable[[], object], timeout_s: float) -> bool:
    """Run ``func`` on a helper thread; wait at most ``timeout_s``. True when it finished in time.

    The helper thread means a flush never deadlocks on a lock the interrupted thread holds (a signal
    handler runs on the main thread, maybe in the middle of an export) and never waits longer than
    asked, whatever the exporter does.
    """
    result: list[bool] = []

    def run() -> None:
        try:
            value = func()
            result.append(value is not False)
        except Exception:
            logger.debug("otel_bot: flush/shutdown raised", exc_info=True)
            result.append(False)

    worker = threading.Thread(target=run, name="otel_bot-flush", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    return bool(result and result[0])


def flush(timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S, tracer_provider: Any = None) -> bool:
    """Export every pending span now; wait at most ``timeout_s`` seconds. True when all went out.

    Flushes ``tracer_provider`` if given, else configure_tracing's provider, else the global
    provider (when it can flush). Blocks the calling thread (bounded); from a coroutine use
    :func:`flush_async`, which keeps the event loop free.
    """
    return _run_bounded(_flusher(timeout_s, tracer_provider), timeout_s)


def _flusher(timeout_s: float, tracer_provider: Any) -> Callable[[], object]:
    provider = tracer_provider if tracer_provider is not None else _export._provider
    if provider is None:
        provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is None:
        return lambda: True
    millis = int(max(timeout_s, 0.0) * 1000)
    return lambda: force_flush(millis)


async def flush_async(timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S, tracer_provider: Any = None) -> bool:
    """:func:`flush` for coroutines (e.g. an instrumented ``Client.close``): the export runs on a
    helper thread (not the loop's executor, so no executor span) and the loop keeps running."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    func = _flusher(timeout_s, tracer_provider)

    def settle(ok: bool) -> None:
        if not done.done():
            done.set_result(ok)

    def run() -> None:
        try:
            ok = func() is not False
        except Exception:
            logger.debug("otel_bot: flush raised", exc_info=True)
            ok = False
        try:
            loop.call_soon_threadsafe(settle, ok)
        except RuntimeError:  # the loop closed meanwhile
            pass

    threading.Thread(target=run, name="otel_bot-flush", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(done), max(timeout_s, 0.0))
    except asyncio.TimeoutError:
        return False


def shutdown(timeout_s: float | None = None) -> bool:
    """Flush and shut down configure_tracing's pipeline within ``timeout_s`` (default: the
    configured ``shutdown_timeout_s``). Spans ended afterwards are not exported until the next
    configure_tracing call."""
    provider = _export._provider
    if provider is None:
        return True
    return _run_bounded(provider.shutdown, _shutdown_timeout_s if timeout_s is None else timeout_s)


def _reset_for_tests(timeout_s: float = 5.0) -> None:
    """Shut down and forget configure_tracing's provider (tests only; a global one stays global)."""
    shutdown(timeout_s)
    with _config_lock:
        _export._provider = None
    _REPORTER.reset()


# --------------------------------------------------------------------------------------------------
# Interpreter exit and SIGTERM

_atexit_registered = False
_previous_sigterm: Any = None
_sigterm_installed = False
_in_sigterm = False


def _at_exit() -> None:
    shutdown()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Flush (bounded), then behave exactly as the handler we replaced would have."""
    global _in_sigterm
    if not _in_sigterm:  # a second SIGTERM during the flush skips straight to the default
        _in_sigterm = True
        try:
            flush(_shutdown_timeout_s)
        finally:
            _in_sigterm = False
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    # SIG_DFL (or a handler not installed from Python): terminate by the signal, as the default does.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_exit_hooks(handle_sigterm: bool) -> None:
    global _atexit_registered, _previous_sigterm, _sigterm_installed
    with _config_lock:
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
        if not handle_sigterm or _sigterm_installed or not hasattr(signal, "SIGTERM"):
            return
        if threading.current_thread() is not threading.main_thread():
            logger.debug("otel_bot: not on the main thread; SIGTERM flush handler not installed")
            return
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm:
            _sigterm_installed = True
            return
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True


__all__ = ["flush", "flush_async", "shutdown"]

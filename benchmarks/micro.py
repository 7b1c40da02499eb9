"""Microbenchmarks: what one otel_bot span / wrapped call costs next to the raw SDK.

* ``checkpoint()`` against ``tracer.start_as_current_span`` with the same name and attributes (the
  SDK floor), both under the same ``configure_tracing`` provider (BatchSpanProcessor, null
  exporter), inside a parent span.
* The REST wrapper against the bare call: discord.py's real ``HTTPClient.request`` (and the
  webhook adapter's ``request``) with and without otel_bot's wrapper, over a canned in-memory
  aiohttp-like session (the transport edge is the only thing stubbed).
* The off path: each wrapper from otel_bot's patch table, built around the same original,
  called inside ``suppress_instrumentation()``, against the original itself.

Every case runs ``--reps`` times, interleaved; the median ns per call is reported.

    .venv/bin/python benchmarks/micro.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as H

MARK = "@@"

_MESSAGE = json.dumps(
    {
        "id": "1200000000000000001",
        "channel_id": "1200000000000000002",
        "type": 0,
        "content": "queued",
        "author": {"id": "1200000000000000003", "username": "bot", "discriminator": "0", "avatar": None},
        "attachments": [],
        "embeds": [],
        "mentions": [],
        "mention_roles": [],
        "pinned": False,
        "mention_everyone": False,
        "tts": False,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "flags": 0,
        "components": [],
    }
)


class _StubResponse:
    """Enough of ``aiohttp.ClientResponse`` for discord.py: status, headers, text()."""

    def __init__(self, status: int, body: str) -> None:
        from multidict import CIMultiDict

        self.status = status
        self.reason = "OK"
        self._body = body
        self.headers = CIMultiDict(
            {
                "Content-Type": "application/json",
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "4",
                "X-RateLimit-Reset": str(time.time() + 1),
                "X-RateLimit-Reset-After": "1.0",
                "X-RateLimit-Bucket": "0123456789abcdef0123456789abcdef",
            }
        )

    async def text(self, encoding: str | None = None) -> str:
        return self._body

    async def json(self, **kwargs: Any) -> Any:
        return json.loads(self._body)

    async def __aenter__(self) -> _StubResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def release(self) -> None:
        return None


class _StubSession:
    closed = False

    def request(self, method: str, url: Any, **kwargs: Any) -> _StubResponse:
        return _StubResponse(200, _MESSAGE)


def _sync_case(fn: Callable[[], None], n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


async def _async_case(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await fn()
    return (time.perf_counter_ns() - t0) / n


async def run(reps: int, n_span: int, n_rest: int, n_off: int) -> dict[str, Any]:
    import discord
    from discord.http import HTTPClient, Route
    from discord.webhook.async_ import AsyncWebhookAdapter
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    from otel_bot import _instrument, checkpoint, configure_tracing, export_stats, instrument_bot

    exporter = H.null_exporter()
    provider = configure_tracing(service_name="bench-micro", exporter=exporter, handle_sigterm=False)
    tracer = provider.get_tracer("bench.raw")

    originals: dict[str, Any] = {"http": HTTPClient.request, "adapter": AsyncWebhookAdapter.request}
    client = discord.Client(intents=discord.Intents.default())
    instrument_bot(client, tracer_provider=provider)
    wrapped: dict[str, Any] = {"http": HTTPClient.request, "adapter": AsyncWebhookAdapter.request}
    http = client.http
    http._HTTPClient__session = _StubSession()  # type: ignore[attr-defined]
    http.token = "bench.token"
    http._global_over = asyncio.Event()
    http._global_over.set()
    adapter = AsyncWebhookAdapter()
    session = http._HTTPClient__session  # type: ignore[attr-defined]  # the client's: traced like interaction callbacks

    def route() -> Route:
        return Route("POST", "/channels/{channel_id}/messages", channel_id=1200000000000000002)

    def wh_route() -> Any:
        from discord.webhook.async_ import Route as WRoute

        # the interaction callback (what ``interaction.response.defer()`` sends)
        return WRoute("POST", "/interactions/{webhook_id}/{webhook_token}/callback", webhook_id=1200000000000000004,
                      webhook_token="benchInteractionTokenSecret0123456789")

    payload = {"content": "queued"}

    # --- the cases --------------------------------------------------------------------------
    def raw_span() -> None:
        with tracer.start_as_current_span("guard_checks", attributes={"players": 1, "bot.checkpoint": True}):
            pass

    def cp_span() -> None:
        with checkpoint("guard_checks", players=1):
            pass

    async def http_bare() -> Any:
        return await originals["http"](http, route(), json=payload)

    async def http_wrapped() -> Any:
        return await wrapped["http"](http, route(), json=payload)

    async def adapter_bare() -> Any:
        return await originals["adapter"](adapter, wh_route(), session=session, payload={"type": 5})

    async def adapter_wrapped() -> Any:
        return await wrapped["adapter"](adapter, wh_route(), session=session, payload={"type": 5})

    # off path: each wrapper in the patch table around the same trivial or real original
    table = {(getattr(p.owner(), "__qualname__", getattr(p.owner(), "__name__", "?")), p.name): p
             for p in _instrument.patch_table() if p.owner() is not None}
    loop = asyncio.get_running_loop()

    async def trivial_request(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def trivial_sync(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def noop() -> None:
        return None

    off_cases: dict[str, tuple[Callable[[], Any], Callable[[], Any], bool]] = {}
    p = table.get(("HTTPClient", "request"))
    if p is not None:
        w = p.wrap(trivial_request)
        r = route()
        off_cases["HTTPClient.request"] = (lambda: trivial_request(http, r), lambda: w(http, r), True)
    p = table.get(("AsyncWebhookAdapter", "request"))
    if p is not None:
        w2 = p.wrap(trivial_request)
        wr = wh_route()
        off_cases["AsyncWebhookAdapter.request"] = (
            lambda: trivial_request(adapter, wr, session), lambda: w2(adapter, wr, session), True)
    p = table.get(("BaseEventLoop", "run_in_executor"))
    if p is not None:
        w3 = p.wrap(trivial_sync)
        off_cases["loop.run_in_executor"] = (lambda: trivial_sync(loop, None, noop), lambda: w3(loop, None, noop), False)
    p = table.get(("Handle", "_run"))
    if p is not None:
        import asyncio.events as ev

        orig_run = ev.Handle.__dict__["_run"]
        for a in _instrument._applied:
            if a.owner is ev.Handle and a.name == "_run":
                orig_run = a.original
        w4 = p.wrap(orig_run)
        handle = ev.Handle(noop, (), loop)
        off_cases["asyncio Handle._run (every loop callback)"] = (lambda: orig_run(handle), lambda: w4(handle), False)
    p = table.get(("Pool", "_acquire"))
    if p is not None:
        w5 = p.wrap(trivial_request)
        off_cases["asyncpg Pool._acquire"] = (lambda: trivial_request(None, None), lambda: w5(None, None), True)

    def nothing() -> None:
        return None

    def cp_off() -> None:
        with checkpoint("guard_checks", players=1):
            pass

    samples: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    gc.collect()
    root = tracer.start_span("bench-root")
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    token = otel_context.attach(trace.set_span_in_context(root))
    try:
        for _ in range(reps):
            pair = [("sdk start_as_current_span + end (3 attributes)", raw_span),
                    ("otel_bot checkpoint() (same name + attributes)", cp_span)]
            for key, fn in (pair if len(samples.get(pair[0][0], [])) % 2 == 0 else pair[::-1]):  # alternate the order
                add(key, _sync_case(fn, n_span))
            provider.force_flush()
            add("HTTPClient.request, bare (stub transport)", await _async_case(http_bare, n_rest))
            add("HTTPClient.request, otel_bot wrapper (recording)", await _async_case(http_wrapped, n_rest))
            add("AsyncWebhookAdapter.request, bare (stub transport)", await _async_case(adapter_bare, n_rest))
            add("AsyncWebhookAdapter.request, otel_bot wrapper (recording)", await _async_case(adapter_wrapped, n_rest))
            provider.force_flush()
            with suppress_instrumentation():
                add("off: nothing", _sync_case(nothing, n_off))
                add("off: checkpoint() suppressed", _sync_case(cp_off, n_off))
                for name, (bare, wrapped_call, is_async) in off_cases.items():
                    if is_async:
                        add(f"off: {name} bare", await _async_case(bare, n_off))
                        add(f"off: {name} wrapped", await _async_case(wrapped_call, n_off))
                    else:
                        add(f"off: {name} bare", _sync_case(bare, n_off))
                        add(f"off: {name} wrapped", _sync_case(wrapped_call, n_off))
    finally:
        otel_context.detach(token)
        root.end()
    provider.force_flush()
    med = {k: float(statistics.median(v)) for k, v in samples.items()}
    sdk = med["sdk start_as_current_span + end (3 attributes)"]
    cp = med["otel_bot checkpoint() (same name + attributes)"]
    # paired: each rep measures both back to back, so the per-rep ratio cancels drift between reps
    paired = [c / r for r, c in zip(samples["sdk start_as_current_span + end (3 attributes)"],
                                    samples["otel_bot checkpoint() (same name + attributes)"], strict=True)]
    off: dict[str, dict[str, float]] = {
        "checkpoint()": {"bare_ns": med["off: nothing"], "wrapped_ns": med["off: checkpoint() suppressed"],
                         "overhead_us": (med["off: checkpoint() suppressed"] - med["off: nothing"]) / 1000},
    }
    for name in off_cases:
        b, w_ = med[f"off: {name} bare"], med[f"off: {name} wrapped"]
        off[name] = {"bare_ns": b, "wrapped_ns": w_, "overhead_us": (w_ - b) / 1000}
    stats = export_stats(provider)
    return {
        "reps": reps,
        "n": {"span": n_span, "rest": n_rest, "off": n_off},
        "table": {k: v for k, v in med.items() if not k.startswith("off:")},
        "samples_ns": {k: [round(x) for x in v] for k, v in samples.items()},
        "sdk_span_us": sdk / 1000,
        "checkpoint_vs_sdk": {"sdk_ns": sdk, "checkpoint_ns": cp, "ratio": float(statistics.median(paired)),
                              "ratio_of_medians": cp / sdk},
        "rest_wrapper": {
            "http_overhead_us": (med["HTTPClient.request, otel_bot wrapper (recording)"] - med["HTTPClient.request, bare (stub transport)"]) / 1000,
            "adapter_overhead_us": (med["AsyncWebhookAdapter.request, otel_bot wrapper (recording)"] - med["AsyncWebhookAdapter.request, bare (stub transport)"]) / 1000,
        },
        "off_path": off,
        "spans_exported": stats.exported,
        "spans_dropped": stats.dropped,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="otel_bot microbenchmarks")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", action="store_true", help="print one machine-readable result line")
    p.add_argument("--reps", type=int, default=None)
    args = p.parse_args(argv)
    if args.quick:
        reps, n_span, n_rest, n_off = args.reps or 2, 300, 100, 500
    else:
        reps, n_span, n_rest, n_off = args.reps or 21, 4000, 1000, 20000
    result = asyncio.run(run(reps, n_span, n_rest, n_off))
    if args.json:
        sys.stdout.write(MARK + json.dumps(result) + "\n")
    else:
        for k, v in result["table"].items():
            print(f"{v:10.0f} ns  {k}")
        print(f"checkpoint / SDK = {result['checkpoint_vs_sdk']['ratio']:.3f}")
        print("REST wrapper overhead (us):", {k: round(v, 2) for k, v in result["rest_wrapper"].items()})
        for k, v in result["off_path"].items():
            print(f"off path {k}: {v['overhead_us']:.3f} us (wrapped {v['wrapped_ns']:.0f} ns, bare {v['bare_ns']:.0f} ns)")
        print("spans exported", result["spans_exported"], "dropped", result["spans_dropped"])
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())

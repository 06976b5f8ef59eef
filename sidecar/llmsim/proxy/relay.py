"""Forwarding: the request goes upstream and the answer comes back to the client.

* Unperturbed (passthrough, and perturb plans that change nothing): bytes are relayed as they
  come, and the output-carrying events of a stream (`events.content_event`: no role-only,
  finish, usage or `[DONE]` chunks, no pings or block starts) are counted as they reach the
  client (for TTFT, ITL and `--record`).
* A perturbed stream (SSE or NDJSON, uncompressed) is split into whole events, each due at an
  absolute deadline computed on its arrival (`PerturbPlan.deadline`). The first event goes out
  through aiohttp with the response headers; the rest are handed to the event loop's shared
  deadline scheduler (`deadlines.Feed`), as the simulator's own streams are, until the client
  reads too slowly, when awaited writes take over. A stream fault strikes after `afterTokens`
  events with the bytes `providers.fault_render.stream_strike` gives, as in the simulator.
* A perturbed whole body gets the added TTFT; one that meets a stream fault is cut or truncated
  by `fault_render.apply` and sent by `streaming.send`, as the simulator's bodies are.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import aiohttp
from aiohttp import web

from llmsim import deadlines, streaming
from llmsim.providers import fault_render
from llmsim.providers.base import BodyAnswer, Frame
from llmsim.proxy import events, routing
from llmsim.proxy.exchange import Exchange
from llmsim.proxy.perturb import PerturbPlan


class UpstreamUnreachable(Exception):
    """The upstream could not be reached (the message names the error's type, never a credential)."""


async def forward(ex: Exchange, session: aiohttp.ClientSession, url: str) -> web.StreamResponse:
    """Send `ex` to `url` and relay the answer; UpstreamUnreachable when no answer comes."""
    request = ex.request
    try:
        data = ex.body if ex.body or request.method not in ("GET", "HEAD") else None
        upstream = await session.request(
            request.method,
            url,
            headers=routing.upstream_headers(request.headers),
            data=data,
            allow_redirects=False,
        )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise UpstreamUnreachable(f"llmsim proxy: upstream unreachable ({type(exc).__name__})") from exc
    try:
        return await _relay(ex, upstream)
    finally:
        upstream.release()


def _response_headers(upstream: aiohttp.ClientResponse, extra: dict[str, str]) -> list[tuple[str, str]]:
    out = [
        (k, v)
        for k, v in upstream.headers.items()
        if k.lower() not in routing.HOP_BY_HOP and k.lower() not in extra
    ]
    return out + list(extra.items())


async def _relay(ex: Exchange, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    ex.status = upstream.status
    content_type = upstream.headers.get("Content-Type", "").lower()
    encoding = upstream.headers.get("Content-Encoding", "identity").strip().lower()
    is_events = content_type.startswith(events.STREAM_TYPES)
    # compressed bytes have no visible event boundaries: they are relayed as they come, unsplit
    streamed = is_events and encoding in ("", "identity")
    ndjson = events.is_ndjson(content_type)
    plan = ex.plan if ex.plan is not None and not ex.plan.is_noop else None
    if plan is not None and plan.strikes and not is_events:
        return await _perturbed_body(ex, upstream, plan)
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for key, value in _response_headers(upstream, ex.extra_headers):
        response.headers.add(key, value)
    if upstream.content_length is not None and not (plan is not None and plan.strikes and streamed):
        response.content_length = upstream.content_length
    elif ex.request.version >= aiohttp.HttpVersion11:
        response.enable_chunked_encoding()  # explicit, so the deadline scheduler knows the framing
    if plan is not None and plan.strikes and not streamed:
        ex.fault = None  # a compressed stream's events cannot be seen: its fault cannot strike
    try:
        if plan is None:
            await _copy(
                ex, response, upstream, events.ContentCounter(ndjson) if streamed and ex.measure else None
            )
        elif streamed:
            await _perturbed_stream(ex, response, upstream, plan, ndjson)
        else:
            await _delayed(ex, response, upstream, plan)
    except ConnectionResetError:  # our write to the client failed (aiohttp's ClientConnectionResetError too)
        ex.gone = True
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        ex.broken = True  # the upstream cut its answer: so does the client's connection
        _abort(ex.request)
    return response


async def _copy(
    ex: Exchange,
    response: web.StreamResponse,
    upstream: aiohttp.ClientResponse,
    counter: events.ContentCounter | None,
) -> None:
    loop = asyncio.get_running_loop()
    await response.prepare(ex.request)
    async for data in upstream.content.iter_any():
        if ex.measure:
            now = loop.time()
            for _ in range(counter.feed(data) if counter is not None else 1):
                ex.written(now)
        await response.write(data)
    await response.write_eof()


async def _delayed(
    ex: Exchange, response: web.StreamResponse, upstream: aiohttp.ClientResponse, plan: PerturbPlan
) -> None:
    """A whole body (or a compressed stream): the added TTFT before the first byte, then as it comes."""
    loop = asyncio.get_running_loop()
    prepared = False
    async for data in upstream.content.iter_any():
        if not prepared:
            await streaming.sleep_until(plan.deadline(0, loop.time(), loop.time()))
            await response.prepare(ex.request)
            prepared = True
        await response.write(data)
        ex.written(loop.time())
    if not prepared:
        await asyncio.sleep(plan.added_ttft_s)
        await response.prepare(ex.request)
    await response.write_eof()


async def _perturbed_body(
    ex: Exchange, upstream: aiohttp.ClientResponse, plan: PerturbPlan
) -> web.StreamResponse:
    """A whole body that meets a stream fault: cut half-way or truncated, as the simulator does."""
    assert plan.fault is not None and ex.generation is not None
    loop = asyncio.get_running_loop()
    body = await upstream.read()
    due = plan.deadline(0, loop.time(), loop.time()) - ex.started
    answer = BodyAnswer(upstream.status, dict(_response_headers(upstream, ex.extra_headers)), body, at_s=due)
    return await streaming.send(
        ex.request, fault_render.apply(answer, plan.fault, ex.generation), ex.started, ex.written
    )


class _Writer:
    """Writes a perturbed stream's events at their deadlines: the first through aiohttp (it carries
    the response headers), the rest through the loop's deadline scheduler; awaited writes once the
    client reads too slowly."""

    def __init__(self, ex: Exchange, response: web.StreamResponse) -> None:
        self.ex = ex
        self.response = response
        self.feed: deadlines.Feed | None = None
        self._first: asyncio.Task[None] | None = None
        self._pending: list[tuple[float, bytes, bool]] = []
        self._awaited = False

    async def send(self, deadline: float, data: bytes, counted: bool = True) -> None:
        if self._awaited:
            await streaming.sleep_until(deadline)
            await self.response.write(data)
            if counted:
                self.ex.written(asyncio.get_running_loop().time())
            return
        if self.feed is None:
            if self._first is None:
                self._first = asyncio.create_task(self._write_first(deadline, data, counted))
            elif self._first.done():
                self._first.result()  # the first write failed: raise its error
            else:
                self._pending.append((deadline, data, counted))
            return
        if self.feed.gone:
            raise streaming.ClientGone()
        if self.feed.backlogged:
            if not await self.feed.drained():
                raise streaming.ClientGone()
            self._awaited = True
            await self.send(deadline, data, counted)
            return
        self.feed.push(deadline, data, counted)

    async def _write_first(self, deadline: float, data: bytes, counted: bool) -> None:
        loop = asyncio.get_running_loop()
        await streaming.sleep_until(deadline)
        await self.response.prepare(self.ex.request)
        await self.response.write(data)
        if counted:
            self.ex.written(loop.time())
        transport = self.ex.request.transport
        if transport is None or transport.is_closing():
            raise streaming.ClientGone()
        self.feed = deadlines.for_loop(loop).feed(transport, self.response.chunked, self.ex.written)
        for pending in self._pending:
            self.feed.push(*pending)
        self._pending.clear()

    async def finish(self, end: Literal["eof", "abort"], added_ttft_s: float) -> None:
        """Let everything sent go out, then end the body or cut the connection."""
        if self._first is not None:
            await self._first
        if self.feed is not None and not await self.feed.drained():
            raise streaming.ClientGone()
        if not self.response.prepared:
            if end == "abort":
                _abort(self.ex.request)
                return
            await asyncio.sleep(added_ttft_s)  # nothing came: the added TTFT still applies
            await self.response.prepare(self.ex.request)
        if end == "eof":
            await self.response.write_eof()
        else:
            _abort(self.ex.request)

    def cancel(self) -> None:
        if self._first is not None and not self._first.done():
            self._first.cancel()


async def _perturbed_stream(
    ex: Exchange,
    response: web.StreamResponse,
    upstream: aiohttp.ClientResponse,
    plan: PerturbPlan,
    ndjson: bool,
) -> None:
    loop = asyncio.get_running_loop()
    splitter = events.FrameSplitter(ndjson)
    writer = _Writer(ex, response)
    first: float | None = None
    k = 0
    struck = not plan.strikes
    try:
        async for data in upstream.content.iter_any():
            now = loop.time()
            for piece in splitter.feed(data):
                if first is None:
                    first = now
                due = plan.deadline(k, now, first)
                if not struck and k >= plan.after_events:
                    struck = True
                    end = await _strike(ex, writer, plan, k, due, piece)
                    if end is not None:
                        await writer.finish(end, plan.added_ttft_s)
                        return
                await writer.send(due, piece, counted=events.content_event(piece, ndjson))
                k += 1
        rest = splitter.flush()
        if rest:
            now = loop.time()
            await writer.send(plan.deadline(k, now, first if first is not None else now), rest,
                              counted=events.content_event(rest, ndjson))  # fmt: skip
        if not struck:
            ex.fault = None  # the stream ended before `afterTokens` events: its fault never struck
        await writer.finish("eof", plan.added_ttft_s)
    finally:
        writer.cancel()


async def _strike(
    ex: Exchange, writer: _Writer, plan: PerturbPlan, sent: int, due: float, upcoming: bytes
) -> Literal["eof", "abort"] | None:
    """The stream fault strikes before event `sent`: write its frame; the end it calls for, or None
    when the stream goes on (with `upcoming`)."""
    assert plan.fault is not None and ex.generation is not None
    data, end = fault_render.stream_strike(plan.fault.fault, ex.generation, sent, (Frame(0.0, upcoming),))
    if data:
        await writer.send(due, data, counted=False)
    return None if end == "continue" else end


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()

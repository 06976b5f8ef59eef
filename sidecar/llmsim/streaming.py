"""The one place that sleeps: sends a rendered answer at the plan's absolute deadlines.

Every frame is due at `start + frame.at_s` on the event loop's monotonic clock. We sleep until
the deadline of the next frame, then write every frame that is due by then in one write, so
timing errors never accumulate (no `sleep(itl)` in a loop) and a late loop catches up at once.
After the first write (which sends the headers) a stream's remaining frames are written by the
loop's shared `DeadlineScheduler` (llmsim.deadlines): one timer for all streams instead of one
sleeping task each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from aiohttp import web

from llmsim import deadlines
from llmsim.providers.base import Answer, BodyAnswer, StreamAnswer

FAST_PATH = True
"""Hand streams to the shared deadline scheduler after their first write (see llmsim.deadlines)."""

TokenCallback = Callable[[float], None]
"""Called with the loop time at which a token was written (once per token slot of the write)."""


class ClientGone(Exception):
    """The client closed the connection while we were sending."""


RELEASE: web.AppKey[asyncio.Event] = web.AppKey("llmsim_release_holds", asyncio.Event)
"""Set when the server shuts down: every held connection (a `timeout` stall) lets go at once."""

HOLD_CHECK_S = 0.1
"""How often a held connection looks whether its client is still there (aiohttp does not cancel
a handler whose client left, so a hold must notice by itself)."""


def install_release(app: web.Application) -> None:
    """Give `app` the shutdown event that ends its held connections (set on `on_shutdown`)."""
    app[RELEASE] = asyncio.Event()

    async def release(app: web.Application) -> None:
        app[RELEASE].set()

    app.on_shutdown.append(release)


async def hold(request: web.Request, seconds: float) -> None:
    """Hold the connection for up to `seconds`: returns when they are over or the server shuts
    down (`RELEASE`), raises ClientGone as soon as the client has left (within `HOLD_CHECK_S`)."""
    loop = asyncio.get_running_loop()
    release = request.app.get(RELEASE)
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        if release is not None and release.is_set():
            return
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ClientGone()
        step = min(left, HOLD_CHECK_S)
        if release is None:
            await asyncio.sleep(step)
            continue
        try:
            await asyncio.wait_for(release.wait(), step)
        except TimeoutError:
            pass


async def sleep_until(deadline: float) -> None:
    loop = asyncio.get_running_loop()
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def send(
    request: web.Request, answer: Answer, start: float, on_token: TokenCallback | None = None
) -> web.StreamResponse:
    """Send `answer`, whose times are relative to `start` (loop time)."""
    if isinstance(answer, BodyAnswer):
        return await _send_body(request, answer, start, on_token)
    return await _send_stream(request, answer, start, on_token)


async def _send_body(
    request: web.Request, answer: BodyAnswer, start: float, on_token: TokenCallback | None
) -> web.StreamResponse:
    await sleep_until(start + answer.at_s)
    try:
        if answer.end != "eof":
            return await _cut(
                request,
                answer.end,
                answer.stall_s,
                partial=answer.body,
                status=answer.status,
                headers=answer.headers,
            )
        response = web.Response(status=answer.status, headers=answer.headers, body=answer.body)
        await response.prepare(request)
        if on_token is not None and answer.status == 200:
            on_token(asyncio.get_running_loop().time())
        await response.write_eof()
    except ConnectionError as exc:  # the client left before its answer (aiohttp's reset error too)
        raise ClientGone() from exc
    return response


async def _send_stream(
    request: web.Request, answer: StreamAnswer, start: float, on_token: TokenCallback | None
) -> web.StreamResponse:
    loop = asyncio.get_running_loop()
    frames = answer.frames
    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    response.enable_chunked_encoding()
    prepared = False
    fast = FAST_PATH
    i, n = 0, len(frames)
    try:
        while i < n:
            await sleep_until(start + frames[i][0])
            payload, i, slots = deadlines.take_due(frames, i, loop.time() - start)
            if not prepared:
                await response.prepare(request)
                prepared = True
            await response.write(payload)
            if slots and on_token is not None:
                sent_at = loop.time()
                for _ in range(slots):  # one call per token slot, even when a late loop sends several at once
                    on_token(sent_at)
            transport = request.transport
            if i < n and fast and transport is not None and not transport.is_closing():
                # Headers are out: the rest goes through the shared deadline scheduler until it is
                # done, the client leaves, or the client reads too slowly (then: awaited writes).
                handback = await deadlines.for_loop(loop).play(
                    cast(deadlines.WritableTransport, transport), frames, i, start, on_token
                )
                if handback.gone:
                    raise ClientGone()
                i = handback.index
        if not prepared:
            await response.prepare(request)
        if answer.end == "eof":
            try:
                await response.write_eof()
            except ConnectionError:
                pass  # every frame was written (e.g. `[DONE]`) and the client left: a whole answer
        elif answer.end == "stall":
            await hold(request, answer.stall_s)
            _abort(request)
        else:
            _abort(request)
    except (ConnectionResetError, ConnectionError) as exc:
        raise ClientGone() from exc
    return response


async def _cut(
    request: web.Request, end: str, stall_s: float, *, partial: bytes, status: int, headers: dict[str, str]
) -> web.StreamResponse:
    """A non-streamed response that never completes: stall, or send half a body and cut."""
    if end == "stall":
        await hold(request, stall_s)
        _abort(request)
        return web.StreamResponse()
    response = web.StreamResponse(
        status=status, headers={k: v for k, v in headers.items() if k.lower() != "content-length"}
    )
    response.content_length = len(partial)
    await response.prepare(request)
    await response.write(partial[: len(partial) // 2])
    _abort(request)
    return response


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()

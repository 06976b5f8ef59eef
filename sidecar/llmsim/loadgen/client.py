"""The HTTP shell: send one request with aiohttp and timestamp every token of the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from llmsim.api.scenario import TargetProvider
from llmsim.loadgen import wire
from llmsim.loadgen.results import RequestRecord
from llmsim.loadgen.wire import ErrorType, HttpCall
from llmsim.simulation import tokens

Clock = Callable[[], float]


@dataclass
class Capture:
    """What a conversation needs back from a successful answer: the body or the stream's events."""

    body: bytes = b""
    events: list[tuple[str, str]] = field(default_factory=list)


async def execute(
    session: aiohttp.ClientSession,
    call: HttpCall,
    provider: TargetProvider,
    record: RequestRecord,
    timeout_s: float,
    clock: Clock,
    capture: Capture | None = None,
) -> None:
    """Send `call` and fill `record` (times relative to the run start via `clock`). Never raises
    for target trouble: failures become `record.error` with a message. With `capture`, a
    successful answer's body or stream events are kept there."""
    try:
        async with asyncio.timeout(timeout_s):
            async with session.request(call.method, call.url, headers=call.headers, data=call.body) as resp:
                record.status = resp.status
                if resp.status != 200:
                    body = await resp.read()
                    record.end_s = clock()
                    record.error, message = wire.classify_error(resp.status, body)
                    record.message = f"HTTP {resp.status}: {message}"[:300]
                    return
                if record.stream:
                    await _read_stream(resp, provider, record, clock, capture)
                else:
                    body = await resp.read()
                    record.end_s = clock()
                    _read_body(body, provider, record)
                    if capture is not None:
                        capture.body = body
    except TimeoutError:
        record.end_s = clock()
        record.error = ErrorType.TIMEOUT
        record.message = f"no complete answer within {timeout_s:g} s"
    except aiohttp.ClientConnectorError as exc:
        record.end_s = clock()
        record.error = ErrorType.CONNECT
        reason = exc.os_error.strerror or str(exc)
        record.message = f"cannot connect to {exc.host}:{exc.port}: {reason}"[:300]
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        record.end_s = clock()
        record.error = ErrorType.DISCONNECT
        record.message = f"connection closed mid-response: {exc.__class__.__name__}"
    except aiohttp.ClientResponseError as exc:
        record.end_s = clock()
        record.error = ErrorType.MALFORMED
        record.message = f"invalid HTTP response: {exc.message}"[:300]
    except aiohttp.ClientError as exc:
        record.end_s = clock()
        record.error = ErrorType.CONNECT
        record.message = f"{exc.__class__.__name__}: {exc}"[:300]
    except (OSError, ValueError) as exc:
        record.end_s = clock()
        record.error = ErrorType.CONNECT
        record.message = f"{exc.__class__.__name__}: {exc}"[:300]


def _read_body(body: bytes, provider: TargetProvider, record: RequestRecord) -> None:
    try:
        parsed = wire.parse_body(provider, body)
    except ValueError as exc:
        record.error = ErrorType.MALFORMED
        record.message = str(exc)[:300]
        return
    record.output_tokens = (
        parsed.output_tokens if parsed.output_tokens is not None else tokens.count(parsed.text)
    )
    if parsed.prompt_tokens is not None:
        record.prompt_tokens = parsed.prompt_tokens


async def _read_stream(
    resp: aiohttp.ClientResponse,
    provider: TargetProvider,
    record: RequestRecord,
    clock: Clock,
    capture: Capture | None,
) -> None:
    decoder = wire.StreamDecoder(ndjson=provider == TargetProvider.OLLAMA)
    text_parts: list[str] = []
    reported: int | None = None
    last_token_s: float | None = None
    finished = False
    events = 0
    async for data in resp.content.iter_any():
        now = clock()
        for name, text in decoder.feed(data):
            events += 1
            if capture is not None:
                capture.events.append((name, text))
            chunk = wire.interpret(provider, name, text)
            if chunk.error is not None:
                record.end_s = now
                record.error, message = chunk.error
                record.message = message[:300]
                record.output_tokens = reported if reported is not None else tokens.count("".join(text_parts))
                return
            if chunk.tokens:
                if last_token_s is None:
                    record.ttft_s = now - record.sent_s
                else:
                    record.itl_s.append(now - last_token_s)
                last_token_s = now
                text_parts.append(chunk.text)
            if chunk.output_tokens_total is not None:
                reported = chunk.output_tokens_total
            if chunk.prompt_tokens is not None:
                record.prompt_tokens = chunk.prompt_tokens
            finished = finished or chunk.finished
            if chunk.done:
                record.end_s = now
                record.output_tokens = reported if reported is not None else tokens.count("".join(text_parts))
                return
    record.end_s = clock()
    record.output_tokens = reported if reported is not None else tokens.count("".join(text_parts))
    if finished and provider in (TargetProvider.OPENAI, TargetProvider.AZURE):
        return  # a missing [DONE] is tolerated, as the OpenAI SDK does
    if events == 0 and decoder.leftover().strip():
        record.error = ErrorType.MALFORMED
        record.message = f"expected a stream, got: {decoder.leftover()[:80]!r}"
    else:
        record.error = ErrorType.DISCONNECT
        record.message = f"stream ended without its terminator after {len(text_parts)} chunks"

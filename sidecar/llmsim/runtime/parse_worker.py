"""Parsing request bodies off the event loop: in a worker thread, or for very large bodies in a
worker process.

Decoding JSON is one C call that never lets other threads run: a worker thread keeps the loop
free only between such calls, and the decode of a body of N MB holds the loop about 6-15 ms per
MB on this 2-core machine (30 MB: 80-100 ms, measured with tests/hostile). So a body over
`PROCESS_BODY_BYTES` is parsed in a child process (the whole `Endpoint.parse`, plus the prompt's
token count and conversation hash), and only the parsed request comes back; bodies between
`THREAD_BODY_BYTES` and that go to the default thread pool; smaller ones are parsed inline.

The child is started (spawned, not forked: the serving process has threads) on the first body
that needs it, so a process that never sees one pays nothing; that first body waits for the
child's imports (about a second). One child serves one request at a time, in arrival order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import threading
from typing import Any

from llmsim.providers.base import ApiError, Endpoint, ErrorKind, HttpRequestFacts
from llmsim.runtime import intake
from llmsim.simulation import faults, planner, request_memo
from llmsim.simulation.request import GenerationRequest

log = logging.getLogger(__name__)

THREAD_BODY_BYTES = 256 * 1024
"""Bodies larger than this are parsed in a worker thread."""
PROCESS_BODY_BYTES = 4 * 1024 * 1024
"""Bodies larger than this are parsed in the worker process."""


def parse_counted(endpoint: Endpoint, facts: HttpRequestFacts) -> GenerationRequest:
    """Parse and enrich, then count the prompt and hash the conversation (remembered per request,
    see `simulation.request_memo`, so the steps on the event loop only read them)."""
    gen = intake.enrich(endpoint.parse(facts), facts)
    planner.prompt_tokens(gen)
    faults.conversation_id(gen)
    return gen


def _in_child(endpoint: Endpoint, facts: HttpRequestFacts) -> tuple[Any, ...]:
    """What the child sends back: the request and its derived values, or the ApiError's fields
    (a frozen-dataclass exception does not survive pickling)."""
    try:
        gen = parse_counted(endpoint, facts)
    except ApiError as error:
        return ("error", error.kind.value, error.message, error.param, dict(error.headers))
    return ("ok", gen, planner.prompt_tokens(gen), faults.conversation_id(gen))


class ParseWorker:
    """Where a request body is parsed (see the module docstring); one per app."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    async def parse(self, endpoint: Endpoint, facts: HttpRequestFacts) -> GenerationRequest:
        size = len(facts.body)
        if size <= THREAD_BODY_BYTES:
            return intake.enrich(endpoint.parse(facts), facts)
        loop = asyncio.get_running_loop()
        if size <= PROCESS_BODY_BYTES:
            return await loop.run_in_executor(None, parse_counted, endpoint, facts)
        try:
            reply = await loop.run_in_executor(self._executor(), _in_child, endpoint, facts)
        except concurrent.futures.process.BrokenProcessPool:  # the child died (killed, out of memory)
            log.warning("the parse worker process died; starting a new one for the next large body")
            self._reset()
            raise ApiError(
                ErrorKind.SERVER_ERROR, "The server had an error while parsing the request."
            ) from None
        if reply[0] == "error":
            _, kind, message, param, headers = reply
            raise ApiError(ErrorKind(kind), message, param=param, headers=headers)
        _, gen, tokens, conversation = reply
        assert isinstance(gen, GenerationRequest)
        request_memo.store(gen, "prompt_tokens", tokens)
        request_memo.store(gen, "conversation_id", conversation)
        return gen

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    def _reset(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the child (if one was started) without waiting for it."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # an idle child exits on the shutdown; a busy one is not waited for
            if process.is_alive():
                process.terminate()

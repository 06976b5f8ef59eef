"""Bounded shutdown of the OpenTelemetry exporters.

An SDK provider's `shutdown()` flushes what is queued and waits for the exporter: against a
collector that accepts connections and never answers, that is the exporter's timeout times its
retries (`llmsim serve` took 40.9 s to exit on SIGTERM). Here every provider shuts down in its own
daemon thread, all at once, and the caller waits at most `SHUTDOWN_BUDGET_S` in total; what is
still unsent then is dropped with one warning, and the daemon threads die with the process. The
providers are built with `shutdown_on_exit=False`, so no `atexit` hook blocks the exit again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET_S = 0.5
"""How long shutting down may wait for the exporters, all together (an idle process then exits
within 2 s of SIGTERM whatever its collector does)."""


async def shutdown_within(
    calls: Sequence[tuple[str, Callable[[], None]]], budget_s: float = SHUTDOWN_BUDGET_S
) -> list[str]:
    """Run every call in its own daemon thread; wait at most `budget_s` for all of them. Returns
    (and logs) the names of those still running then."""
    if not calls:
        return []
    loop = asyncio.get_running_loop()
    pending = {name for name, _ in calls}
    done = asyncio.Event()

    def finished(name: str) -> None:
        pending.discard(name)
        if not pending:
            done.set()

    def run(name: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:  # an exporter failing at exit must not break shutdown
            log.warning("%s: shutdown failed", name, exc_info=True)
        finally:
            try:
                loop.call_soon_threadsafe(finished, name)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    for name, call in calls:
        threading.Thread(target=run, args=(name, call), name=f"shutdown-{name}", daemon=True).start()
    try:
        await asyncio.wait_for(done.wait(), budget_s)
    except TimeoutError:
        late = sorted(pending)
        log.warning(
            "telemetry exporters still flushing after %.1f s, dropping what they hold: %s",
            budget_s,
            ", ".join(late),
        )
        return late
    return []

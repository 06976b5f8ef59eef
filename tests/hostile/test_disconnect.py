"""A client that leaves before a non-streamed body is counted `cancelled`, with no ERROR and no
traceback in the log (issue 18, item 5)."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request

from hostile.harness import Served


def test_a_client_that_leaves_before_a_non_streamed_body_is_cancelled_without_a_traceback(
    served: Served,
) -> None:
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"x-llmsim-profile: slow\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(head + body)
            time.sleep(0.05)  # the body is due after 1 s: leave long before
    time.sleep(1.5)  # all three were due

    statuses = _statuses(served)
    log = served.log()
    assert "ERROR" not in log and "Traceback" not in log, log[-3000:]
    assert re.search(r'outcome="cancelled"[^}]*} 3\.0', statuses), statuses
    assert "internal_error" not in statuses, statuses


def _statuses(served: Served) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return "\n".join(line for line in text.splitlines() if line.startswith("llmsim_requests_total{"))

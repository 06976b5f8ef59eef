"""`make run`: start `llmsim serve`, drive it with the official openai SDK and a load scenario, print reports.

python scripts/demo.py            # demo, then stop the server
python scripts/demo.py --forever  # keep the server up afterwards (Ctrl-C to stop)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "examples/profiles/fixed-latency.yaml"
SCENARIO = ROOT / "examples/scenarios/ramp_up.yaml"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def llmsim(*args: str) -> list[str]:
    exe = shutil.which("llmsim", path=str(Path(sys.executable).parent)) or "llmsim"
    return [exe, *args]


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"demo: llmsim serve exited with code {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    sys.exit("demo: llmsim serve did not become ready within 30 s")


def sdk_burst(url: str, n: int = 8) -> None:
    """A short burst of real streaming requests with the openai SDK; print achieved vs configured timing."""
    import numpy as np
    import openai
    from rich.console import Console
    from rich.table import Table

    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-demo", max_retries=0)
    ttfts, itls, e2es = [], [], []
    for i in range(n + 1):
        t0 = time.perf_counter()
        times = []
        stream = client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": f"Tell me a story #{i}"}])  # fmt: skip
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                times.append(time.perf_counter() - t0)
        if i == 0:
            continue  # the first call pays the SDK's one-time import and model-building cost
        ttfts.append(times[0])
        itls.extend(np.diff(times))
        e2es.append(times[-1])
    table = Table(title=f"openai SDK, {n} streaming requests vs examples/profiles/fixed-latency.yaml")
    for col in ("metric", "configured", "p50", "p90", "p99"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for name, values, want in (
        ("TTFT ms", ttfts, 250.0),
        ("ITL ms", itls, 20.0),
        ("E2E ms", e2es, 250.0 + 63 * 20),
    ):
        p = np.percentile(np.array(values) * 1000, [50, 90, 99])
        table.add_row(name, f"{want:.1f}", *(f"{x:.1f}" for x in p))
    Console().print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--forever", action="store_true", help="keep llmsim serve running after the demo")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load in the scenario phase")
    args = parser.parse_args()

    port = pick_port(args.port)
    url = f"http://127.0.0.1:{port}"
    print(f"demo: starting llmsim serve --profile {PROFILE.relative_to(ROOT)} on {url}", flush=True)
    server = subprocess.Popen(llmsim("serve", "--profile", str(PROFILE), "--port", str(port)),
                              stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        wait_ready(url, server)
        sdk_burst(url)
        if SCENARIO.exists():
            out = ROOT / "reports" / "demo"
            print(
                f"\ndemo: running {SCENARIO.relative_to(ROOT)} for {args.duration:g} s against {url}",
                flush=True,
            )
            code = subprocess.call(llmsim("load", "--scenario", str(SCENARIO), "--target", url,
                                          "--duration", f"{args.duration:g}", "--out", str(out)))  # fmt: skip
            if code != 0:
                print(f"demo: llmsim load exited with {code}", file=sys.stderr)
                return code
            print(f"\ndemo: report: {out / 'report.html'}")
        if args.forever:
            print(f"demo: llmsim serve keeps running on {url}; Ctrl-C to stop", flush=True)
            server.wait()
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())

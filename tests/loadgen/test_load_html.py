"""report.html: self-contained, with the four plots; it renders in headless Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from llmsim.api.scenario import LoadScenarioSpec
from llmsim.errors import LLMSimError
from llmsim.loadgen import html, report
from llmsim.loadgen.results import Partial, RequestRecord, window_length
from llmsim.loadgen.wire import ErrorType

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample_report() -> dict[str, object]:
    spec = LoadScenarioSpec.model_validate(
        {
            "durationS": 10,
            "pattern": {"type": "spike", "baseRps": 5, "peakRps": 20, "atS": 4, "widthS": 2},
            "slos": [
                {"metric": "error_rate", "threshold": 0.05},
                {"metric": "ttft_ms", "percentile": 95, "threshold": 400},
            ],
            "target": {"model": "claude-sonnet-4 <b>", "provider": "anthropic"},
        }
    )
    window_s, n = window_length(spec.duration_s, 1.0)
    part = Partial(window_s=window_s, n_windows=n, workers=[0])
    rng = np.random.default_rng(1)
    for i in range(200):
        t = i * 10 / 200
        failed = 4 <= t < 6 and i % 3 == 0
        ttft = float(rng.lognormal(np.log(0.2), 0.3))
        part.add(
            RequestRecord(index=i, intended_s=t, sent_s=t + 0.001, stream=True, prompt_tokens=50 + 10 * (i % 40),
                          output_tokens=0 if failed else 30, ttft_s=None if failed else ttft,
                          itl_s=[] if failed else [0.02] * 29, end_s=t + 0.8,
                          error=ErrorType.OVERLOADED if failed else None, message="HTTP 529: Overloaded <x>"),
            rng,
        )  # fmt: skip
    part.notes.append("a note with <script>alert(1)</script>")
    return report.build(spec, part)


def mixed_report() -> dict[str, object]:
    """A workflow run over a two-model mix: the optional sections and plots."""
    spec = LoadScenarioSpec.model_validate(
        {
            "durationS": 4,
            "windowS": 1,
            "pattern": {"type": "workflow", "parallelWorkflows": 2},
            "requests": {"models": [{"name": "gpt-4o"}, {"name": "gpt-4o-mini"}]},
            "workflows": [{"id": "chat", "turns": [{"user": "hi"}, {"user": "more <please>"}]}],
        }
    )
    part = Partial(window_s=1.0, n_windows=4, workers=[0])
    rng = np.random.default_rng(2)
    flow = part.workflow("chat", 2)
    for i in range(40):
        t = i * 0.1
        model = ("gpt-4o", "gpt-4o-mini")[i % 2]
        ttft = float(rng.lognormal(np.log(0.3 if model == "gpt-4o" else 0.15), 0.2))
        part.add(RequestRecord(index=i, intended_s=t, sent_s=t, stream=True, prompt_tokens=30, output_tokens=10,
                               ttft_s=ttft, itl_s=[0.01] * 9, end_s=t + ttft + 0.09, model=model), rng)  # fmt: skip
        flow.turns[i % 2].completed += 1
        flow.turns[i % 2].requests += 1
        flow.turns[i % 2].e2e_ms.record((ttft + 0.09) * 1000)
    flow.started = flow.succeeded = 20
    flow.e2e_ms.record_many([800.0] * 20)
    return report.build(spec, part)


def test_the_page_is_self_contained_and_holds_every_plot() -> None:
    page = html.render(sample_report())
    for plot_id in html.PLOT_IDS:
        match = re.search(
            rf'<img id="{plot_id}" alt="[^"]+" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page
        )
        assert match, plot_id
        assert base64.b64decode(match.group(1)).startswith(PNG_MAGIC)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    assert "<script>" not in page and "&lt;script&gt;" in page  # user text is escaped
    assert "claude-sonnet-4 &lt;b&gt;" in page
    assert "FAIL" in page and "4–5 s" in page  # the spike windows failed the error-rate SLO
    assert "id=recommendations" in page and "slo" in page
    for plot_id in html.OPTIONAL_PLOT_IDS:
        assert f'id="{plot_id}"' not in page  # one model, no workflows


def test_model_mixes_and_workflows_get_their_sections_and_plots() -> None:
    page = html.render(mixed_report())
    for plot_id in html.PLOT_IDS + html.OPTIONAL_PLOT_IDS:
        assert f'<img id="{plot_id}"' in page, plot_id
    assert "Per model" in page and "gpt-4o-mini" in page
    assert "Workflow <code>chat</code>: 100.0 % succeeded" in page and "more &lt;please&gt;" in page


def test_a_version_1_report_gets_a_clear_error() -> None:
    with pytest.raises(LLMSimError, match="schema_version 2; this one is 1"):
        html.render({"schema_version": 1})


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(chromium: str, page_text: str, folder: Path) -> np.ndarray:
    folder.mkdir()
    page = folder / "report.html"
    page.write_text(page_text, encoding="utf-8")
    shot = folder / "shot.png"
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={folder / 'profile'}", "--window-size=1200,5200",
        f"--screenshot={shot}", page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    assert shot.exists(), result.stderr.decode(errors="replace")[-2000:]
    return np.asarray((mpimg.imread(shot)[:, :, :3] * 255).round().astype(int))


def count_colour(pixels: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.sum(np.all(np.abs(pixels - np.array(rgb)) <= 12, axis=-1)))


PLOT_COLOURS = {
    # name: (colour, fewest pixels expected). The same page with every plot image emptied has
    # 0, 0, ~130, 0 and 0 such pixels (measured: 264, 25376, 2661, 88 and 284 with the plots), so
    # these minimums fail when the plots do not render.
    "matplotlib blue (CDF, target rate, scatter)": ((31, 119, 180), 50),
    "error-rate bars": ((214, 39, 40), 2000),
    "shading of windows that failed an SLO": ((248, 221, 219), 1000),  # #f4c7c3 at alpha 0.6 on white
    "concurrency line": ((23, 190, 207), 50),
    "latency-over-time p50 lines (green)": ((44, 160, 44), 200),
}


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (CI installs Debian's `chromium` package; see .ci/run)")
    pixels = screenshot(chromium, html.render(sample_report()), tmp_path / "shot")
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1000
    for name, (rgb, minimum) in PLOT_COLOURS.items():
        assert count_colour(pixels, rgb) >= minimum, name

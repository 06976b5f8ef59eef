"""`llmsim profile validate|list|show`: exit codes and field-path messages (what GitOps pipelines run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmsim import profiles
from llmsim.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_validate_accepts_good_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "validate", str(ROOT / "examples/profiles/fixed-latency.yaml")]) == 0
    assert "ok (profile 'fixed-latency')" in capsys.readouterr().out


def test_validate_reports_every_bad_file_with_field_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("latency:\n  itlMs: {type: constant, value: -1}\n  bogus: 1\n")
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("latency: [unclosed\n")
    good = ROOT / "examples/profiles/fixed-latency.yaml"
    assert (
        main(["profile", "validate", str(bad), str(good), str(garbage), str(tmp_path / "missing.yaml")]) == 1
    )
    err = capsys.readouterr().err
    assert f"{bad}: latency.itlMs.constant.value: Input should be greater than or equal to 0" in err
    assert f"{bad}: latency.bogus: unknown field" in err
    assert f"{garbage}: not valid YAML/JSON" in err
    assert "missing.yaml: cannot read" in err


def test_list_shows_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in profiles.preset_names())


def test_show_prints_the_preset_with_its_comments_and_resolved_specs_reload(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["profile", "show", "gpt-4o"]) == 0
    assert "Source:" in capsys.readouterr().out
    assert main(["profile", "show", "--resolved", "production-realistic"]) == 0
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(capsys.readouterr().out)
    assert profiles.load_file(dumped).spec == profiles.load_preset("production-realistic").spec
    assert yaml.safe_load(dumped.read_text())["faults"]["rates"]


def test_show_unknown_preset_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "show", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no built-in preset named 'nope'" in err[0]


def test_each_command_imports_only_its_own_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from llmsim.cli.main import main; main(['profile', 'list']);"
        "heavy = [m for m in ('mitmproxy', 'kopf', 'matplotlib') if m in sys.modules];"
        "sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from llmsim.cli.main import COMMANDS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_validate_rejects_fault_windows_that_never_fire_or_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    never = tmp_path / "never.yaml"
    never.write_text("faults:\n  windows:\n    - {fault: overloaded, cron: '0 0 30 feb *', durationS: 60}\n")
    overlap = tmp_path / "overlap.yaml"
    overlap.write_text(
        "faults:\n  windows:\n"
        "    - {fault: timeout, startAt: '2026-03-02T14:00:00Z', durationS: 300}\n"
        "    - {fault: timeout, cron: '*/2 14 * * *', durationS: 60}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(
        "faults:\n  windows:\n    - {fault: overloaded, cron: '0 14 * * mon-fri', timeZone: Europe/Berlin, durationS: 300}\n"
    )
    assert main(["profile", "validate", str(never), str(overlap), str(good)]) == 1
    captured = capsys.readouterr()
    assert (
        f"{never}: faults.windows[0].cron: '0 0 30 feb *' matches no date: the window never opens"
        in captured.err
    )
    assert f"{overlap}: faults: windows[1] overlaps windows[0], both timeout" in captured.err
    assert f"{good}: ok" in captured.out

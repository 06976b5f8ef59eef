"""The iptables capture's init script, run for real in a throw-away network namespace (needs root,
`unshare` and the iptables tools; skipped without them): valid rules, idempotent, IPv6 only
where the namespace has it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from llmsim_operator.resources import sidecar

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "iptables", "ip6tables", "ip")),
    reason="needs root, unshare, ip and the iptables tools",
)


def run_in_netns(script: str, ipv6: bool) -> tuple[str, str]:
    """Run the script twice in a new network namespace (gone when the command ends); its nat rules."""
    setup = "ip link set lo up; " if ipv6 else "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null; "
    command = f'{setup}sh -ec "$SCRIPT" && sh -ec "$SCRIPT" && iptables -t nat -S && echo ---- && ip6tables -t nat -S'
    done = subprocess.run(["unshare", "-n", "sh", "-c", command], env={**os.environ, "SCRIPT": script},
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    v4, v6 = done.stdout.split("----\n")
    return v4, v6


def test_the_rules_apply_twice_and_redirect_the_intercepted_ports_for_both_families() -> None:
    v4, v6 = run_in_netns(sidecar.iptables_script(["ollama.ml.svc:11434", "vllm.ml.svc"]), ipv6=True)
    for rules, loopback in ((v4, "127.0.0.0/8"), (v6, "::1/128")):
        chain = [line for line in rules.splitlines() if line.startswith("-A LLMSIM_OUTPUT")]
        assert chain == [
            "-A LLMSIM_OUTPUT -m owner --uid-owner 15080 -j RETURN",
            f"-A LLMSIM_OUTPUT -d {loopback} -j RETURN",
            "-A LLMSIM_OUTPUT -p tcp -m tcp --dport 443 -j REDIRECT --to-ports 15443",
            "-A LLMSIM_OUTPUT -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 15080",
            "-A LLMSIM_OUTPUT -p tcp -m tcp --dport 11434 -j REDIRECT --to-ports 15080",
        ]
        assert rules.count("-A OUTPUT -p tcp -j LLMSIM_OUTPUT") == 1  # idempotent


def test_a_namespace_without_ipv6_gets_ipv4_rules_only() -> None:
    v4, v6 = run_in_netns(sidecar.iptables_script(), ipv6=False)
    assert "LLMSIM_OUTPUT" in v4 and "LLMSIM_OUTPUT" not in v6

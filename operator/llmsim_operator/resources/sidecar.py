"""Pure builders of the injected containers and volumes."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from llmsim_operator import constants as c
from llmsim_operator.settings import OperatorSettings


class Capture(StrEnum):
    """How an app's traffic reaches the sidecar (annotation `llmsim.io/capture`)."""

    PROXY = "proxy"
    BASE_URL = "base-url"
    HOST_ALIAS = "host-alias"
    IPTABLES = "iptables"


UNPRIVILEGED_PORT_SYSCTL = "net.ipv4.ip_unprivileged_port_start"
TMP_VOLUME = "llmsim-tmp"

_RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": c.SIDECAR_UID,
    "runAsGroup": c.SIDECAR_UID,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

_COPY_CA = (
    "import os, shutil, sys\n"
    "src, dst = sys.argv[1], sys.argv[2]\n"
    "for name in os.listdir(src):\n"
    "    if not name.startswith('.'):\n"
    "        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))\n"
    "        os.chmod(os.path.join(dst, name), 0o600 if name.endswith('ca.pem') else 0o644)\n"
)

_RESERVED_PORTS = frozenset({80, 443, c.PROXY_PORT, c.ADMIN_PORT, c.TRANSPARENT_PORT})


def intercept_ports(intercept_hosts: Sequence[str]) -> list[int]:
    """Ports of `host:port` intercept entries other than 443/80 and the sidecar's own: an
    in-cluster provider on its own port (vLLM's 8000, Ollama's 11434), taken to speak plain HTTP."""
    ports: set[int] = set()
    for entry in intercept_hosts:
        text = entry.strip()
        head, sep, port = text.rpartition(":")
        if sep and port.isdigit() and (text.count(":") == 1 or head.endswith("]")) and 0 < int(port) < 65536:
            ports.add(int(port))
    return sorted(ports - _RESERVED_PORTS)


def _nat_rules(tool: str, loopback: str, ports: Sequence[int]) -> str:
    lines = [
        f"{tool} -t nat -N LLMSIM_OUTPUT 2>/dev/null || true",
        f"{tool} -t nat -F LLMSIM_OUTPUT",
        f"{tool} -t nat -C OUTPUT -p tcp -j LLMSIM_OUTPUT 2>/dev/null \\",
        f"  || {tool} -t nat -A OUTPUT -p tcp -j LLMSIM_OUTPUT",
        f"{tool} -t nat -A LLMSIM_OUTPUT -m owner --uid-owner {c.SIDECAR_UID} -j RETURN",
        f"{tool} -t nat -A LLMSIM_OUTPUT -d {loopback} -j RETURN",
        f"{tool} -t nat -A LLMSIM_OUTPUT -p tcp --dport 443 -j REDIRECT --to-ports {c.TRANSPARENT_PORT}",
        f"{tool} -t nat -A LLMSIM_OUTPUT -p tcp --dport 80 -j REDIRECT --to-ports {c.PROXY_PORT}",
        *(
            f"{tool} -t nat -A LLMSIM_OUTPUT -p tcp --dport {p} -j REDIRECT --to-ports {c.PROXY_PORT}"
            for p in ports
        ),
    ]
    return "\n".join(lines) + "\n"


def iptables_script(intercept_hosts: Sequence[str] = ()) -> str:
    """Redirect the pod's outbound HTTPS to the proxy's TLS listener and plain HTTP (port 80 and the
    ports of intercepted in-cluster providers) to its origin-form listener, except the proxy's own
    connections (by its UID); the same for IPv6 with ip6tables where the pod has IPv6."""
    ports = intercept_ports(intercept_hosts)
    return (
        "set -e\n"
        + _nat_rules("iptables", "127.0.0.0/8", ports)
        + "if read -r _ < /proc/net/if_inet6 2>/dev/null; then  # the pod has IPv6\n"
        + _nat_rules("ip6tables", "::1/128", ports)
        + "fi\n"
    )


IPTABLES_SCRIPT = iptables_script()
"""The rules without intercepted in-cluster ports."""


def proxy_args(capture: Capture | str = "proxy", intercept_hosts: Sequence[str] = ()) -> list[str]:
    """`llmsim proxy` arguments (flags and ports fixed by DESIGN.md), plus the TLS listener that
    host-alias (port 443, resolving providers through DNS rather than /etc/hosts; and a plain
    listener on each intercepted in-cluster provider's port) and iptables (the redirect target)
    capture need."""
    extra: list[str] = []
    if str(capture) == "host-alias":
        extra = ["--tls-listen", "127.0.0.1:443", "--bypass-hosts-file"]
        for port in intercept_ports(intercept_hosts):
            extra += ["--listen-also", f"127.0.0.1:{port}"]
    elif str(capture) == "iptables":
        extra = ["--tls-listen", f"127.0.0.1:{c.TRANSPARENT_PORT}", "--ipv6-loopback"]
    return [
        "proxy",
        "--profile",
        f"{c.PROFILE_DIR}/{c.PROFILE_FILE}",
        "--listen",
        f"127.0.0.1:{c.PROXY_PORT}",
        "--admin",
        f"0.0.0.0:{c.ADMIN_PORT}",
        "--ca-dir",
        c.CA_DIR,
        "--admin-token-file",
        f"{c.ADMIN_DIR}/{c.ADMIN_TOKEN_KEY}",
        "--kube-token-file",
        f"{c.KUBE_API_DIR}/token",
        "--kube-ca-file",
        f"{c.KUBE_API_DIR}/ca.crt",
        *extra,
    ]


def _resources(settings: OperatorSettings) -> dict[str, Any]:
    return {
        "requests": {"cpu": settings.sidecar_cpu_request, "memory": settings.sidecar_memory_request},
        "limits": {"cpu": settings.sidecar_cpu_limit, "memory": settings.sidecar_memory_limit},
    }


def container(
    capture: Capture,
    settings: OperatorSettings,
    profile: str,
    *,
    native: bool,
    intercept_hosts: Sequence[str] = (),
) -> dict[str, Any]:
    """The proxy sidecar. Native: an init container with `restartPolicy: Always` and a startup probe,
    so app containers start only once the proxy is ready."""
    probe = {"httpGet": {"path": "/readyz", "port": c.ADMIN_PORT}, "periodSeconds": 2, "failureThreshold": 3}
    out: dict[str, Any] = {
        "name": c.SIDECAR_NAME,
        "image": settings.sidecar_image,
        "imagePullPolicy": settings.sidecar_image_pull_policy,
        "command": ["llmsim"],
        "args": proxy_args(capture, intercept_hosts),
        "env": [
            {"name": "LLMSIM_CAPTURE", "value": str(capture)},
            {"name": "LLMSIM_PROFILE_NAME", "value": profile},
            {"name": "LLMSIM_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "LLMSIM_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            # the profile itself, watched through the API (the mounted file is the fallback)
            {"name": "LLMSIM_WATCH_PROFILE", "value": f"$(LLMSIM_POD_NAMESPACE)/{profile}"},
            {"name": "HOME", "value": "/tmp"},
        ],
        "ports": [{"name": "llmsim-admin", "containerPort": c.ADMIN_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "resources": _resources(settings),
        "securityContext": dict(_RESTRICTED),
        "volumeMounts": [
            {"name": c.VOLUME_PROFILE, "mountPath": c.PROFILE_DIR, "readOnly": True},
            {"name": c.VOLUME_CA, "mountPath": c.CA_DIR},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
            # the sidecar's alone: no app container mounts these
            {"name": c.VOLUME_ADMIN, "mountPath": c.ADMIN_DIR, "readOnly": True},
            {"name": c.VOLUME_KUBE_API, "mountPath": c.KUBE_API_DIR, "readOnly": True},
        ],
    }
    if native:
        out["restartPolicy"] = "Always"
        out["startupProbe"] = {
            "httpGet": {"path": "/readyz", "port": c.ADMIN_PORT},
            "periodSeconds": 1,
            "failureThreshold": 60,
        }
    return out


def init_containers(
    capture: Capture, settings: OperatorSettings, intercept_hosts: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Run-to-completion init containers placed before the sidecar: the iptables rules (iptables
    capture only) and the copy of the CA Secret into the sidecar's writable CA directory."""
    out: list[dict[str, Any]] = []
    if str(capture) == "iptables":
        out.append(
            {
                "name": c.IPTABLES_INIT_NAME,
                "image": settings.sidecar_image,
                "imagePullPolicy": settings.sidecar_image_pull_policy,
                "command": ["sh", "-c", iptables_script(intercept_hosts)],
                "resources": {
                    "requests": {"cpu": "10m", "memory": "16Mi"},
                    "limits": {"cpu": "100m", "memory": "64Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": False,
                    "runAsUser": 0,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]},
                },
            }
        )
    out.append(
        {
            "name": c.CA_INIT_NAME,
            "image": settings.sidecar_image,
            "imagePullPolicy": settings.sidecar_image_pull_policy,
            "command": ["python", "-c", _COPY_CA, c.CA_SECRET_MOUNT, c.CA_DIR],
            "resources": {
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"cpu": "100m", "memory": "64Mi"},
            },
            "securityContext": dict(_RESTRICTED),
            "volumeMounts": [
                {"name": c.VOLUME_CA_SECRET, "mountPath": c.CA_SECRET_MOUNT, "readOnly": True},
                {"name": c.VOLUME_CA, "mountPath": c.CA_DIR},
            ],
        }
    )
    return out


def volumes(config_map: str, settings: OperatorSettings) -> list[dict[str, Any]]:
    """The profile ConfigMap, the CA Secret (whole, for the sidecar; public files, for the apps),
    the sidecar's scratch space, its admin token and its API credentials."""
    return [
        {"name": c.VOLUME_PROFILE, "configMap": {"name": config_map}},
        {"name": c.VOLUME_CA_SECRET, "secret": {"secretName": settings.ca_secret, "defaultMode": 0o444}},
        {
            "name": c.VOLUME_TRUST,
            "secret": {
                "secretName": settings.ca_secret,
                "items": [{"key": name, "path": name} for name in c.PUBLIC_CA_FILES],
                "defaultMode": 0o444,
            },
        },
        {"name": c.VOLUME_CA, "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}},
        {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}},
        {"name": c.VOLUME_ADMIN, "secret": {"secretName": c.ADMIN_SECRET, "defaultMode": 0o444}},
        {
            # the pod's ServiceAccount token and the API server's CA, whether or not the pod
            # automounts them (the sidecar watches its profile with them)
            "name": c.VOLUME_KUBE_API,
            "projected": {
                "defaultMode": 0o444,
                "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                ],
            },
        },
    ]


def trust_mount() -> dict[str, Any]:
    """Where app containers find the public CA files."""
    return {"name": c.VOLUME_TRUST, "mountPath": c.TRUST_DIR, "readOnly": True}

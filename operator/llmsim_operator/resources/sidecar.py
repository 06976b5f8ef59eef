"""Pure builders of the injected containers and volumes."""

from __future__ import annotations

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

IPTABLES_SCRIPT = f"""set -e
iptables -t nat -N LLMSIM_OUTPUT 2>/dev/null || true
iptables -t nat -F LLMSIM_OUTPUT
iptables -t nat -C OUTPUT -p tcp -j LLMSIM_OUTPUT 2>/dev/null \\
  || iptables -t nat -A OUTPUT -p tcp -j LLMSIM_OUTPUT
iptables -t nat -A LLMSIM_OUTPUT -m owner --uid-owner {c.SIDECAR_UID} -j RETURN
iptables -t nat -A LLMSIM_OUTPUT -d 127.0.0.0/8 -j RETURN
iptables -t nat -A LLMSIM_OUTPUT -p tcp --dport 443 -j REDIRECT --to-ports {c.TRANSPARENT_PORT}
iptables -t nat -A LLMSIM_OUTPUT -p tcp --dport 80 -j REDIRECT --to-ports {c.PROXY_PORT}
"""
"""Redirect the pod's outbound HTTPS to the proxy's TLS listener and plain HTTP to its origin-form
listener, except the proxy's own connections (by its UID)."""


def proxy_args(capture: Capture | str = "proxy") -> list[str]:
    """`llmsim proxy` arguments (flags and ports fixed by DESIGN.md), plus the TLS listener that
    host-alias (port 443, resolving providers through DNS rather than /etc/hosts) and iptables
    (the redirect target) capture need."""
    extra: list[str] = []
    if str(capture) == "host-alias":
        extra = ["--tls-listen", "127.0.0.1:443", "--bypass-hosts-file"]
    elif str(capture) == "iptables":
        extra = ["--tls-listen", f"127.0.0.1:{c.TRANSPARENT_PORT}"]
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


def container(capture: Capture, settings: OperatorSettings, profile: str, *, native: bool) -> dict[str, Any]:
    """The proxy sidecar. Native: an init container with `restartPolicy: Always` and a startup probe,
    so app containers start only once the proxy is ready."""
    probe = {"httpGet": {"path": "/readyz", "port": c.ADMIN_PORT}, "periodSeconds": 2, "failureThreshold": 3}
    out: dict[str, Any] = {
        "name": c.SIDECAR_NAME,
        "image": settings.sidecar_image,
        "imagePullPolicy": settings.sidecar_image_pull_policy,
        "command": ["llmsim"],
        "args": proxy_args(capture),
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


def init_containers(capture: Capture, settings: OperatorSettings) -> list[dict[str, Any]]:
    """Run-to-completion init containers placed before the sidecar: the iptables rules (iptables
    capture only) and the copy of the CA Secret into the sidecar's writable CA directory."""
    out: list[dict[str, Any]] = []
    if str(capture) == "iptables":
        out.append(
            {
                "name": c.IPTABLES_INIT_NAME,
                "image": settings.sidecar_image,
                "imagePullPolicy": settings.sidecar_image_pull_policy,
                "command": ["sh", "-c", IPTABLES_SCRIPT],
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

"""Operator settings, read from `LLMSIM_OPERATOR_*` environment variables.

The Helm chart maps its values one-to-one onto these variables (a list is a comma-separated string or
a JSON array). `tests/operator/test_settings.py` pins every default.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from llmsim import __version__

CommaList = Annotated[list[str], NoDecode]


class OperatorSettings(BaseSettings):
    """Everything the operator can be told from outside."""

    model_config = SettingsConfigDict(
        env_prefix="LLMSIM_OPERATOR_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    namespace: str = "llmsim-system"
    """The operator's own namespace (never injected; holds the webhook TLS Secret)."""
    watch_namespaces: CommaList = Field(default_factory=list)
    """Namespaces whose SimulationProfiles and LoadScenarios are reconciled; empty: all namespaces."""
    inject_namespaces: CommaList = Field(default_factory=list)
    """Allow-list of namespaces whose pods may be injected; empty: every namespace not excluded."""
    excluded_namespaces: CommaList = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease"]
    )
    """Namespaces never injected (the operator's own namespace is always excluded as well)."""
    sidecar_image: str = f"llmsim/sidecar:{__version__}"
    """Image of the injected proxy sidecar (and of the CA copy init container)."""
    sidecar_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Pull policy of the sidecar image."""
    sidecar_mode: Literal["native", "classic"] = "native"
    """`native`: an init container with `restartPolicy: Always` (Kubernetes >= 1.29); `classic`: a regular
    container (older clusters; no start-up ordering)."""
    default_capture: Literal["proxy", "base-url", "host-alias", "iptables"] = "proxy"
    """Capture mode of pods without the `llmsim.io/capture` annotation."""
    sidecar_cpu_request: str = "50m"
    """CPU request of the sidecar."""
    sidecar_memory_request: str = "64Mi"
    """Memory request of the sidecar."""
    sidecar_cpu_limit: str = "500m"
    """CPU limit of the sidecar."""
    sidecar_memory_limit: str = "256Mi"
    """Memory limit of the sidecar."""
    extra_no_proxy: CommaList = Field(default_factory=list)
    """Entries appended to the apps' NO_PROXY besides localhost, the pod network names and `.svc`."""
    loadgen_image: str = f"llmsim/sidecar:{__version__}"
    """Image of the LoadScenario Job workers (runs `llmsim load`)."""
    job_backoff_limit: int = Field(default=1, ge=0, le=10)
    """Retries per worker index of a LoadScenario Job."""
    webhook_addr: str = "0.0.0.0"
    """Address the admission webhook server listens on."""
    webhook_port: int = Field(default=9443, ge=1, le=65535)
    """Port of the admission webhook server (the chart's Service targets it)."""
    webhook_insecure: bool = False
    """Serve the webhook over plain HTTP (tests only; the API server requires HTTPS)."""
    webhook_service: str = "llmsim-webhook"
    """Name of the webhook's Service; the TLS certificate is issued for its DNS names."""
    webhook_url: str = ""
    """Base URL the API server calls the webhook at instead of the Service (the chart's `webhook.url`),
    e.g. `https://127.0.0.1:9443` for an operator outside the cluster; its host is added to the TLS
    certificate. Empty: the Service."""
    webhook_configuration: str = "llmsim-sidecar-injector"
    """Name of the chart's MutatingWebhookConfiguration whose `caBundle` the operator keeps current."""
    webhook_tls_secret: str = "llmsim-webhook-tls"
    """Secret (in `namespace`) holding the webhook's CA and serving certificate."""
    webhook_cert_dir: str = "/tmp/llmsim-webhook"
    """Where the serving certificate is written for the webhook server (it reloads when they change)."""
    webhook_cert_days: int = Field(default=90, ge=1)
    """Validity of the webhook serving certificate, in days."""
    ca_secret: str = "llmsim-ca"
    """Name of the per-namespace Secret with the CA the sidecars sign intercepted TLS with."""
    ca_days: int = Field(default=365, ge=2)
    """Validity of generated CAs, in days."""
    renew_before_days: int = Field(default=30, ge=1)
    """Certificates and CAs are rotated this many days before they expire."""
    rotation_check_interval_s: float = Field(default=3600.0, gt=0)
    """How often certificates are checked for rotation."""
    pods_resync_interval_s: float = Field(default=30.0, gt=0)
    """How often profiles recount their pods (and pods missing the sidecar)."""
    scenario_poll_interval_s: float = Field(default=10.0, gt=0)
    """How often a scheduled LoadScenario checks whether its next run is due."""
    peering: str = "llmsim"
    """kopf peering name: one active operator among replicas."""
    standalone: bool = False
    """Run without peering (a single replica, or tests)."""
    peering_priority: int | None = Field(default=None, ge=0, le=1_000_000)
    """kopf peering priority of this replica; unset: a random one per process. Replicas must differ:
    kopf pauses every operator whose peers share its priority; the highest live one reconciles."""
    metrics_port: int = Field(default=8080, ge=0, le=65535)
    """Port of the Prometheus `/metrics` endpoint (0: off)."""

    @field_validator(
        "watch_namespaces", "inject_namespaces", "excluded_namespaces", "extra_no_proxy", mode="before"
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def may_inject(self, namespace: str) -> bool:
        """Whether pods of `namespace` may be injected at all."""
        if namespace == self.namespace or namespace in self.excluded_namespaces:
            return False
        return not self.inject_namespaces or namespace in self.inject_namespaces

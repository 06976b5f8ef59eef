"""Prometheus metrics of the operator (served on `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECONCILES = Counter("llmsim_operator_reconciles", "Reconciliations by kind and result", ["kind", "result"])
INJECTIONS = Counter("llmsim_operator_injections", "Admission decisions on pods", ["result"])
PODS_MISSING_SIDECAR = Gauge(
    "llmsim_operator_pods_missing_sidecar",
    "Opted-in pods that run without the sidecar",
    ["namespace", "profile"],
)
RUNS = Counter("llmsim_operator_scenario_runs", "LoadScenario runs by final phase", ["phase"])
CERT_ROTATIONS = Counter(
    "llmsim_operator_certificate_rotations", "Certificates and CAs (re)generated", ["what"]
)

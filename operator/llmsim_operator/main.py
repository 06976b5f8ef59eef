"""Run the operator (what `llmsim operator` calls)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from llmsim import redact
from llmsim_operator.handlers import all as handlers
from llmsim_operator.handlers.common import SETTINGS_KEY
from llmsim_operator.settings import OperatorSettings

__all__ = ["effective_settings", "handlers", "kopf_options", "run"]


def effective_settings(
    namespaces: list[str] | None, standalone: bool, settings: OperatorSettings
) -> OperatorSettings:
    """The environment's settings with the command line's `--namespace` and `--standalone` applied,
    so that every part of the operator (kopf, the webhook's profile cache, the peering check) sees
    the same ones."""
    return settings.model_copy(
        update={
            "watch_namespaces": list(namespaces or settings.watch_namespaces),
            "standalone": standalone or settings.standalone,
        }
    )


def kopf_options(settings: OperatorSettings) -> dict[str, Any]:
    """kopf.run's scope and peering arguments. Standalone means no peering at all; otherwise
    peering is mandatory under LLMSIM_OPERATOR_PEERING. (A peering name makes kopf's peering
    mandatory, and mandatory peering combined with standalone pauses every watch forever with
    "peering CRD is missing", so the name is passed only with peering.)"""
    watched = list(settings.watch_namespaces)
    scope: dict[str, Any] = {"clusterwide": not watched, "namespaces": watched}
    if settings.standalone:
        return scope | {"standalone": True}
    return scope | {"standalone": False, "peering_name": settings.peering}


def run(namespaces: list[str] | None = None, standalone: bool = False, verbose: bool = False) -> int:
    """Block running the operator until it is stopped (SIGINT/SIGTERM)."""
    settings = effective_settings(namespaces, standalone, OperatorSettings())
    redact.install_logging()  # kopf's records and ours: messages, arguments and tracebacks
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kopf.run(memo=kopf.Memo({SETTINGS_KEY: settings}), **kopf_options(settings))
    return 0

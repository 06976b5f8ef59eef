"""Run the operator (what `llmsim operator` calls)."""

from __future__ import annotations

import logging

import kopf

from llmsim_operator.handlers import all as handlers
from llmsim_operator.settings import OperatorSettings

__all__ = ["handlers", "run"]


def run(namespaces: list[str] | None = None, standalone: bool = False, verbose: bool = False) -> int:
    """Block running the operator until it is stopped (SIGINT/SIGTERM)."""
    settings = OperatorSettings()
    watched = namespaces or settings.watch_namespaces
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kopf.run(
        clusterwide=not watched,
        namespaces=watched,
        standalone=standalone or settings.standalone,
        peering_name=settings.peering,
    )
    return 0

"""Import every handler module (registers their handlers in kopf's default registry)."""

from llmsim_operator.handlers import pods, profiles, scenarios, startup, webhook

MODULES = (pods, profiles, scenarios, startup, webhook)

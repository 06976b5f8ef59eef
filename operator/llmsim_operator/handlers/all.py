"""Import every handler module (registers their handlers in kopf's default registry)."""

from llmsim_operator.handlers import kill_switch, pods, profiles, scenarios, startup, webhook

MODULES = (kill_switch, pods, profiles, scenarios, startup, webhook)

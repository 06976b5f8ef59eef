"""llmsim: simulated LLM providers for testing LLM applications locally and on Kubernetes."""

__version__ = "0.1.0"

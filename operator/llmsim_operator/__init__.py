"""The llmsim operator: SimulationProfile and LoadScenario reconciliation and the sidecar injection webhook.

Layers: `handlers/` holds every `@kopf.*` decorator and nothing else of substance; `resources/` and
`injection.py` are pure builders (model in, manifest or JSONPatch out); `k8s.py` is the only module
that talks to the API server besides kopf itself.
"""

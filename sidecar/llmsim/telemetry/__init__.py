"""Telemetry: Prometheus metrics, OpenTelemetry traces and metrics, sessions and events.

The request path talks to one object, `facade.Telemetry`; everything behind it fails quietly
(a broken exporter or event sink never fails or slows a request).
"""

"""`llmsim proxy`: the interceptor the sidecar runs.

Pure pieces (scope, redaction, safety gate, perturbation plans, request facts) are separate from
the I/O shells (front door, data path, admin server, reload watcher).
"""

"""Names other components (the Helm chart, the sidecar, users' manifests) rely on."""

from __future__ import annotations

GROUP = "llmsim.io"
VERSION = "v1alpha1"
PROFILES = "simulationprofiles"
SCENARIOS = "loadscenarios"

INJECT_NAMESPACE_WEBHOOK_ID = "llmsim-inject-namespace"
"""kopf handler id, hence URL path `/llmsim-inject-namespace`, of the webhook the chart registers with
`namespaceSelector: llmsim.io/inject=enabled` (every pod there is injected unless it opts out)."""
INJECT_POD_WEBHOOK_ID = "llmsim-inject-pod"
"""kopf handler id, hence URL path `/llmsim-inject-pod`, of the webhook the chart registers for the
other allowed namespaces (only pods annotated `llmsim.io/profile` are injected)."""
WEBHOOK_PATHS = {f"/{INJECT_NAMESPACE_WEBHOOK_ID}", f"/{INJECT_POD_WEBHOOK_ID}"}

# Pod and namespace labels/annotations (DESIGN.md).
NAMESPACE_INJECT_LABEL = "llmsim.io/inject"
NAMESPACE_INJECT_ENABLED = "enabled"
PROFILE_ANNOTATION = "llmsim.io/profile"
INJECT_ANNOTATION = "llmsim.io/inject"
CAPTURE_ANNOTATION = "llmsim.io/capture"
SIDECAR_MODE_ANNOTATION = "llmsim.io/sidecar"
"""`native` (default) or `classic`: overrides the operator's sidecar mode for one pod."""
INJECTED_ANNOTATION = "llmsim.io/injected"
"""Set by the webhook to the profile name; the pods watcher counts pods by it."""
INJECTED_LABEL = "llmsim.io/injected"
"""`true` on injected pods (labels are selectable; annotations are not)."""
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "llmsim-operator"
PROFILE_LABEL = "llmsim.io/profile"
SCENARIO_LABEL = "llmsim.io/scenario"
RUN_LABEL = "llmsim.io/run"

# The sidecar (ports and flags fixed by DESIGN.md).
SIDECAR_NAME = "llmsim-proxy"
CA_INIT_NAME = "llmsim-ca-init"
IPTABLES_INIT_NAME = "llmsim-iptables"
PROXY_PORT = 15080
ADMIN_PORT = 15090
TRANSPARENT_PORT = 15443
"""The proxy's TLS listener (`--tls-listen`) that iptables capture redirects outbound 443 to."""
SIDECAR_UID = 15080
"""The sidecar's user id; the iptables rules exempt its own traffic by this owner."""
PROFILE_DIR = "/etc/llmsim/profile"
PROFILE_FILE = "profile.yaml"
CA_DIR = "/var/run/llmsim/ca"
CA_SECRET_MOUNT = "/etc/llmsim/ca-secret"
TRUST_DIR = "/etc/llmsim/trust"
"""Where app containers see the public CA files (never the key)."""
VOLUME_PROFILE = "llmsim-profile"
VOLUME_CA = "llmsim-ca"
VOLUME_CA_SECRET = "llmsim-ca-secret"
VOLUME_TRUST = "llmsim-trust"

# Files of the per-namespace CA Secret; names match llmsim.proxy.ca (mitmproxy's CertStore layout).
CA_KEY_FILE = "llmsim-ca.pem"
"""Private key + certificate (only the sidecar sees it)."""
CA_CERT_FILE = "llmsim-ca-cert.pem"
BUNDLE_FILE = "bundle.pem"
"""System CAs plus the llmsim CA(s): what SSL_CERT_FILE & co. point at."""
TRUSTSTORE_FILE = "truststore.p12"
"""The same CAs as a Java PKCS#12 trust store."""
TRUSTSTORE_PASSWORD = "changeit"
PUBLIC_CA_FILES = (CA_CERT_FILE, BUNDLE_FILE, TRUSTSTORE_FILE)

FINALIZER = "llmsim.io/finalizer"

# What the sidecar needs to act on its profile within seconds (see resources/sidecar_access.py).
SIDECAR_ACCESS_NAME = "llmsim-sidecar"
"""The Role and RoleBinding in each namespace with profiles: read the profiles, post Events."""
ADMIN_SECRET = "llmsim-admin-token"
"""The Secret (per namespace) with the bearer token of the sidecars' admin port."""
ADMIN_TOKEN_KEY = "token"
ADMIN_DIR = "/etc/llmsim/admin"
"""Where the sidecar (only) mounts the admin token Secret."""
KUBE_API_DIR = "/var/run/llmsim/kube"
"""Where the sidecar (only) mounts its ServiceAccount token and the API server's CA."""
VOLUME_ADMIN = "llmsim-admin"
VOLUME_KUBE_API = "llmsim-kube-api"

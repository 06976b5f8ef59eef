"""Sidecar injection, pure: (pod, profile, settings) -> the injected pod, or the JSONPatch to it.

Idempotent by construction: every element is added only when it is missing (containers and volumes
by name, environment variables by name, NO_PROXY entries one by one), so a second pass over an
injected pod changes nothing and re-invocation after other webhooks is safe.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from llmsim.providers import catalog
from llmsim_operator import constants as c
from llmsim_operator.resources import sidecar
from llmsim_operator.settings import OperatorSettings

Pod = dict[str, Any]

PROXY_URL = f"http://127.0.0.1:{c.PROXY_PORT}"
PROVIDER_HOSTS = catalog.ALIAS_HOSTS
"""Names host-alias capture resolves to 127.0.0.1 (wildcards such as *.openai.azure.com cannot be aliased)."""
BASE_NO_PROXY = ("localhost", "127.0.0.1", "::1", ".svc", ".cluster.local")
"""Exempt from the proxy: the pod itself and in-cluster services, except entries that would exempt
a host the profile intercepts (see `no_proxy_entries`)."""

Capture = sidecar.Capture


@dataclass(frozen=True)
class ProfileInfo:
    """What the webhook needs to know about a SimulationProfile (kept in a kopf index)."""

    name: str
    namespace: str
    config_map: str
    match_labels: Mapping[str, str] | None = None
    intercept_hosts: tuple[str, ...] = ()
    ready: bool = True

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Whether the profile's pod selector (if any) admits a pod with these labels."""
        return self.match_labels is None or all(labels.get(k) == v for k, v in self.match_labels.items())


@dataclass(frozen=True)
class Decision:
    """Whether to inject, with what, and what to tell the user."""

    profile: ProfileInfo | None
    capture: Capture = Capture.PROXY
    native: bool = True
    reason: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def inject(self) -> bool:
        return self.profile is not None


def _meta(pod: Mapping[str, Any], key: str) -> dict[str, str]:
    value = (pod.get("metadata") or {}).get(key) or {}
    return dict(value)


def decide(
    pod: Mapping[str, Any],
    namespace: str,
    namespace_opted_in: bool,
    profiles: Sequence[ProfileInfo],
    settings: OperatorSettings,
) -> Decision:
    """Should this pod get the sidecar, and with which profile? (Never raises: never blocks a pod.)"""
    annotations, labels = _meta(pod, "annotations"), _meta(pod, "labels")
    if annotations.get(c.INJECT_ANNOTATION, "").lower() == "false":
        return Decision(None, reason=f"opted out ({c.INJECT_ANNOTATION}: false)")
    if not settings.may_inject(namespace):
        return Decision(None, reason=f"namespace {namespace} is not allowed for injection")
    in_namespace = sorted((p for p in profiles if p.namespace == namespace), key=lambda p: p.name)
    wanted = annotations.get(c.PROFILE_ANNOTATION)
    chosen: ProfileInfo | None
    if wanted:
        chosen = next((p for p in in_namespace if p.name == wanted), None)
        if chosen is None:
            return Decision(None, reason=f"no SimulationProfile {wanted!r} in namespace {namespace}")
        if not chosen.selects(labels):
            return Decision(
                None, reason=f"profile {wanted!r} has a pod selector that does not match this pod"
            )
    elif namespace_opted_in:
        selecting = [p for p in in_namespace if p.match_labels is not None and p.selects(labels)]
        default = [p for p in in_namespace if p.name == "default" and p.selects(labels)]
        candidates = selecting or default
        if not candidates:
            return Decision(None, reason="no SimulationProfile selects this pod and none is named 'default'")
        chosen = candidates[0]
    else:
        return Decision(None, reason=f"no {c.PROFILE_ANNOTATION} annotation")
    if not chosen.ready:
        return Decision(None, reason=f"profile {chosen.name!r} is not Ready")
    warnings: list[str] = []
    raw_capture = annotations.get(c.CAPTURE_ANNOTATION, settings.default_capture)
    try:
        capture = Capture(raw_capture)
    except ValueError:
        capture = Capture(settings.default_capture)
        choices = ", ".join(m.value for m in Capture)
        warnings.append(
            f"llmsim: {c.CAPTURE_ANNOTATION}: {raw_capture!r} is not one of {choices}; using {capture}"
        )
    mode = annotations.get(c.SIDECAR_MODE_ANNOTATION, settings.sidecar_mode)
    if mode not in ("native", "classic"):
        warnings.append(f"llmsim: {c.SIDECAR_MODE_ANNOTATION}: {mode!r} is not native or classic")
        mode = settings.sidecar_mode
    return Decision(chosen, capture, mode == "native", f"profile {chosen.name}", tuple(warnings))


def _env_names(container: Mapping[str, Any]) -> set[str]:
    return {e.get("name", "") for e in container.get("env") or []}


def _set_absent_env(container: dict[str, Any], values: Sequence[tuple[str, str]]) -> None:
    present = _env_names(container)
    env = container.setdefault("env", [])
    for name, value in values:
        if name not in present:
            env.append({"name": name, "value": value})
            present.add(name)


def _extend_no_proxy(container: dict[str, Any], entries: Sequence[str]) -> None:
    """Append missing entries to NO_PROXY/no_proxy; a `valueFrom` is left as it is."""
    env = container.setdefault("env", [])
    for name in ("NO_PROXY", "no_proxy"):
        item = next((e for e in env if e.get("name") == name), None)
        if item is None:
            env.append({"name": name, "value": ",".join(entries)})
        elif "valueFrom" not in item:
            current = [p.strip() for p in str(item.get("value") or "").split(",") if p.strip()]
            item["value"] = ",".join(current + [e for e in entries if e not in current])


def _host_of(entry: str) -> str:
    """`host`, `host:port`, `[v6]:port` -> the host part, lowercased."""
    text = entry.strip().lower()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def exempts(entry: str, host: str) -> bool:
    """Whether the NO_PROXY `entry` exempts `host` in the common runtimes (curl, Go, Python's
    requests/httpx/urllib, Node): `*`, the host itself, or a domain suffix (`.svc`, `svc`, `*.svc`).
    An intercept glob (`*.ml.svc`) counts as any host under its domain."""
    name = _host_of(entry)
    target = _host_of(host)
    if target.startswith("*."):
        target = "x" + target[1:]
    if name == "*":
        return True
    if name.startswith("*."):
        name = name[1:]
    if name.startswith("."):
        return target.endswith(name) or target == name[1:]
    return bool(name) and (target == name or target.endswith("." + name))


def no_proxy_entries(settings: OperatorSettings, intercept_hosts: Sequence[str]) -> list[str]:
    """The entries the injection adds to NO_PROXY: the defaults and `extraNoProxy`, minus every one
    that would exempt an intercepted host (an in-cluster `vllm.ml.svc` must reach the proxy, so
    `.svc` goes; other in-cluster traffic then passes the proxy, which tunnels or forwards it
    untouched)."""
    intercepted = [*PROVIDER_HOSTS, *intercept_hosts]
    return [
        entry
        for entry in (*BASE_NO_PROXY, *settings.extra_no_proxy)
        if not any(exempts(entry, host) for host in intercepted)
    ]


def trust_env() -> list[tuple[str, str]]:
    """CA trust for the common runtimes, pointing at the mounted public CA files."""
    bundle = f"{c.TRUST_DIR}/{c.BUNDLE_FILE}"
    return [
        ("SSL_CERT_FILE", bundle),
        ("REQUESTS_CA_BUNDLE", bundle),
        ("CURL_CA_BUNDLE", bundle),
        ("NODE_EXTRA_CA_CERTS", f"{c.TRUST_DIR}/{c.CA_CERT_FILE}"),
        (
            "JAVA_TOOL_OPTIONS",
            f"-Djavax.net.ssl.trustStore={c.TRUST_DIR}/{c.TRUSTSTORE_FILE} "
            "-Djavax.net.ssl.trustStoreType=PKCS12 "
            f"-Djavax.net.ssl.trustStorePassword={c.TRUSTSTORE_PASSWORD}",
        ),
    ]


def capture_env(capture: Capture) -> list[tuple[str, str]]:
    """The variables that route an app's provider traffic to the sidecar in this capture mode."""
    if capture is Capture.PROXY:
        return [(name, PROXY_URL) for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")]
    if capture is Capture.BASE_URL:
        return catalog.base_url_env(PROXY_URL)
    return []


def alias_hosts(intercept_hosts: Sequence[str]) -> list[str]:
    """Provider host names for `hostAliases`: the built-in ones plus the profile's, without ports/globs."""
    out = list(PROVIDER_HOSTS)
    for host in intercept_hosts:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if name and "*" not in name and name not in out:
            out.append(name)
    return out


def _add_by_name(
    items: list[dict[str, Any]], new: Sequence[dict[str, Any]], front: bool = False
) -> list[dict[str, Any]]:
    names = {i.get("name") for i in items}
    missing = [n for n in new if n["name"] not in names]
    return missing + items if front else items + missing


def mutate(pod: Mapping[str, Any], decision: Decision, settings: OperatorSettings) -> Pod:
    """The injected pod (a new dict; `pod` is not modified)."""
    out: Pod = copy.deepcopy(dict(pod))
    profile = decision.profile
    if profile is None:
        return out
    meta = out.setdefault("metadata", {})
    annotations = meta.get("annotations") or {}
    annotations.setdefault(c.INJECTED_ANNOTATION, profile.name)
    meta["annotations"] = annotations
    labels = meta.get("labels") or {}
    labels.setdefault(c.INJECTED_LABEL, "true")
    meta["labels"] = labels

    spec = out.setdefault("spec", {})
    # The sidecar's projected ServiceAccount token needs a named account; the API server's
    # ServiceAccount admission would name `default` anyway (it may run after this webhook).
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["volumes"] = _add_by_name(spec.get("volumes") or [], sidecar.volumes(profile.config_map, settings))
    app_containers = [ct for ct in spec.get("containers") or [] if ct.get("name") != c.SIDECAR_NAME]
    sidecar_container = sidecar.container(
        decision.capture,
        settings,
        profile.name,
        native=decision.native,
        intercept_hosts=profile.intercept_hosts,
    )
    ours_first = sidecar.init_containers(decision.capture, settings, profile.intercept_hosts)
    already = any(
        ct.get("name") == c.SIDECAR_NAME
        for ct in (spec.get("initContainers") or []) + (spec.get("containers") or [])
    )
    if decision.native and not already:
        ours_first = [*ours_first, sidecar_container]
    spec["initContainers"] = _add_by_name(spec.get("initContainers") or [], ours_first, front=True)
    if not decision.native and not already:
        spec["containers"] = [*(spec.get("containers") or []), sidecar_container]
        if app_containers:
            annotations.setdefault("kubectl.kubernetes.io/default-container", app_containers[0]["name"])

    no_proxy = no_proxy_entries(settings, profile.intercept_hosts)
    for container in app_containers:
        _set_absent_env(container, capture_env(decision.capture))
        if decision.capture is Capture.PROXY:
            _extend_no_proxy(container, no_proxy)
        _set_absent_env(container, trust_env())
        container["volumeMounts"] = _add_by_name(container.get("volumeMounts") or [], [sidecar.trust_mount()])

    if decision.capture is Capture.HOST_ALIAS:
        aliases = spec.get("hostAliases") or []
        local = next((a for a in aliases if a.get("ip") == "127.0.0.1"), None)
        if local is None:
            local = {"ip": "127.0.0.1", "hostnames": []}
            aliases.append(local)
        local["hostnames"] = list(local.get("hostnames") or []) + [
            h for h in alias_hosts(profile.intercept_hosts) if h not in (local.get("hostnames") or [])
        ]
        spec["hostAliases"] = aliases
        # The sidecar terminates TLS on 443 as a non-root user.
        security = spec.get("securityContext") or {}
        sysctls = security.get("sysctls") or []
        if not any(s.get("name") == sidecar.UNPRIVILEGED_PORT_SYSCTL for s in sysctls):
            sysctls.append({"name": sidecar.UNPRIVILEGED_PORT_SYSCTL, "value": "443"})
        security["sysctls"] = sysctls
        spec["securityContext"] = security
    return out


def json_patch(
    pod: Mapping[str, Any], decision: Decision, settings: OperatorSettings
) -> list[dict[str, Any]]:
    """The RFC 6902 patch from `pod` to the injected pod (empty when nothing changes)."""
    ops: list[dict[str, Any]] = jsonpatch.make_patch(dict(pod), mutate(pod, decision, settings)).patch
    return ops

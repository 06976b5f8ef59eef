"""Sidecar injection as a pure function: decisions, every capture mode, idempotency, valid pods."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest

from llmsim_operator import constants as c
from llmsim_operator import injection
from llmsim_operator.injection import Capture, Decision, ProfileInfo
from llmsim_operator.settings import OperatorSettings

K8S_VERSION = "1.37.0"
NS = "team-a"
SETTINGS = OperatorSettings(namespace="llmsim-system", sidecar_image="llmsim/sidecar:test")
PROFILE = ProfileInfo(name="drill", namespace=NS, config_map="llmsim-profile-drill-cfg")


def pod(
    annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": NS, "labels": labels or {"app": "chat"}},
        "spec": {"containers": [{"name": "app", "image": "python:3.12"}], **spec},
    }
    if annotations is not None:
        body["metadata"]["annotations"] = annotations
    return body


def decision(
    capture: Capture = Capture.PROXY, native: bool = True, profile: ProfileInfo = PROFILE
) -> Decision:
    return Decision(profile, capture, native)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def injected(body: dict[str, Any], d: Decision) -> dict[str, Any]:
    """Apply the JSONPatch (as the API server would) and check the result is a valid pod."""
    ops = injection.json_patch(body, d, SETTINGS)
    out: dict[str, Any] = jsonpatch.apply_patch(body, ops)
    kubernetes_validate.validate(out, K8S_VERSION, strict=True)
    return out


# --- decisions --------------------------------------------------------------------------------


def test_an_annotated_pod_gets_the_named_profile() -> None:
    d = injection.decide(pod({c.PROFILE_ANNOTATION: "drill"}), NS, False, [PROFILE], SETTINGS)
    assert d.inject and d.profile == PROFILE and d.capture is Capture.PROXY and d.native


def test_the_opt_out_annotation_wins_over_everything() -> None:
    body = pod({c.PROFILE_ANNOTATION: "drill", c.INJECT_ANNOTATION: "false"})
    d = injection.decide(body, NS, True, [PROFILE], SETTINGS)
    assert not d.inject and "opted out" in d.reason


@pytest.mark.parametrize("namespace", ["kube-system", "llmsim-system"])
def test_excluded_and_the_operators_own_namespace_are_never_injected(namespace: str) -> None:
    profile = ProfileInfo("drill", namespace, "cm")
    d = injection.decide(pod({c.PROFILE_ANNOTATION: "drill"}), namespace, True, [profile], SETTINGS)
    assert not d.inject and "not allowed" in d.reason


def test_an_allow_list_restricts_injection_to_its_namespaces() -> None:
    settings = OperatorSettings(inject_namespaces=["other"])
    d = injection.decide(pod({c.PROFILE_ANNOTATION: "drill"}), NS, False, [PROFILE], settings)
    assert not d.inject


def test_an_unknown_profile_is_not_injected_so_the_pod_still_starts() -> None:
    d = injection.decide(pod({c.PROFILE_ANNOTATION: "nope"}), NS, False, [PROFILE], SETTINGS)
    assert not d.inject and "no SimulationProfile 'nope'" in d.reason


def test_a_profile_in_another_namespace_does_not_count() -> None:
    other = ProfileInfo("drill", "elsewhere", "cm")
    assert not injection.decide(pod({c.PROFILE_ANNOTATION: "drill"}), NS, False, [other], SETTINGS).inject


def test_a_pod_selector_narrows_the_blast_radius() -> None:
    narrow = ProfileInfo("drill", NS, "cm", match_labels={"app": "billing"})
    d = injection.decide(pod({c.PROFILE_ANNOTATION: "drill"}), NS, False, [narrow], SETTINGS)
    assert not d.inject and "selector" in d.reason


def test_in_an_opted_in_namespace_a_selecting_profile_beats_the_default_one() -> None:
    default = ProfileInfo("default", NS, "cm-default")
    chat = ProfileInfo("chat", NS, "cm-chat", match_labels={"app": "chat"})
    d = injection.decide(pod(), NS, True, [default, chat], SETTINGS)
    assert d.profile == chat
    d = injection.decide(pod(labels={"app": "other"}), NS, True, [default, chat], SETTINGS)
    assert d.profile == default


def test_without_annotation_and_outside_opted_in_namespaces_nothing_happens() -> None:
    default = ProfileInfo("default", NS, "cm-default")
    assert not injection.decide(pod(), NS, False, [default], SETTINGS).inject
    assert not injection.decide(pod(), NS, True, [], SETTINGS).inject


def test_an_invalid_profile_is_not_injected() -> None:
    broken = ProfileInfo("drill", NS, "cm", ready=False)
    assert not injection.decide(pod({c.PROFILE_ANNOTATION: "drill"}), NS, False, [broken], SETTINGS).inject


def test_capture_and_sidecar_mode_come_from_annotations_with_warnings_for_typos() -> None:
    body = pod(
        {
            c.PROFILE_ANNOTATION: "drill",
            c.CAPTURE_ANNOTATION: "host-alias",
            c.SIDECAR_MODE_ANNOTATION: "classic",
        }
    )
    d = injection.decide(body, NS, False, [PROFILE], SETTINGS)
    assert d.capture is Capture.HOST_ALIAS and not d.native and d.warnings == ()
    body = pod({c.PROFILE_ANNOTATION: "drill", c.CAPTURE_ANNOTATION: "socks"})
    d = injection.decide(body, NS, False, [PROFILE], SETTINGS)
    assert d.inject and d.capture is Capture.PROXY and "'socks'" in d.warnings[0]


# --- mutation ---------------------------------------------------------------------------------


def test_the_admin_token_and_the_api_credentials_are_mounted_into_the_sidecar_only() -> None:
    out = injected(pod(), decision())
    proxy = next(i for i in out["spec"]["initContainers"] if i["name"] == c.SIDECAR_NAME)
    mounts = {m["name"]: m["mountPath"] for m in proxy["volumeMounts"]}
    assert mounts[c.VOLUME_ADMIN] == c.ADMIN_DIR and mounts[c.VOLUME_KUBE_API] == c.KUBE_API_DIR
    for app in out["spec"]["containers"]:
        names = {m["name"] for m in app.get("volumeMounts") or []}
        assert not names & {c.VOLUME_ADMIN, c.VOLUME_KUBE_API, c.VOLUME_CA_SECRET}
    volumes = {v["name"]: v for v in out["spec"]["volumes"]}
    assert volumes[c.VOLUME_ADMIN]["secret"]["secretName"] == c.ADMIN_SECRET
    sources = volumes[c.VOLUME_KUBE_API]["projected"]["sources"]
    assert any("serviceAccountToken" in s for s in sources)
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["LLMSIM_WATCH_PROFILE"] == "$(LLMSIM_POD_NAMESPACE)/drill"
    names = [e["name"] for e in proxy["env"]]  # $(VAR) expands only from variables defined before it
    assert names.index("LLMSIM_POD_NAMESPACE") < names.index("LLMSIM_WATCH_PROFILE")


def test_native_sidecar_is_an_init_container_that_always_restarts() -> None:
    out = injected(pod(), decision())
    inits = out["spec"]["initContainers"]
    assert [i["name"] for i in inits] == [c.CA_INIT_NAME, c.SIDECAR_NAME]
    proxy = inits[1]
    assert proxy["restartPolicy"] == "Always" and "startupProbe" in proxy
    assert proxy["args"] == [
        "proxy",
        "--profile",
        "/etc/llmsim/profile/profile.yaml",
        "--listen",
        "127.0.0.1:15080",
        "--admin",
        "0.0.0.0:15090",
        "--ca-dir",
        "/var/run/llmsim/ca",
        "--admin-token-file",
        "/etc/llmsim/admin/token",
        "--kube-token-file",
        "/var/run/llmsim/kube/token",
        "--kube-ca-file",
        "/var/run/llmsim/kube/ca.crt",
    ]
    sc = proxy["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["allowPrivilegeEscalation"] is False
    assert proxy["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert [ct["name"] for ct in out["spec"]["containers"]] == ["app"]
    assert out["metadata"]["annotations"][c.INJECTED_ANNOTATION] == "drill"
    assert out["metadata"]["labels"][c.INJECTED_LABEL] == "true"


def test_classic_sidecar_is_a_regular_container_and_the_app_stays_default() -> None:
    out = injected(pod(), decision(native=False))
    assert [ct["name"] for ct in out["spec"]["containers"]] == ["app", c.SIDECAR_NAME]
    assert "restartPolicy" not in out["spec"]["containers"][1]
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "app"
    assert [i["name"] for i in out["spec"]["initContainers"]] == [c.CA_INIT_NAME]


def test_volumes_mount_the_profile_config_map_and_the_ca_secret_without_the_key_for_apps() -> None:
    out = injected(pod(), decision())
    volumes = {v["name"]: v for v in out["spec"]["volumes"]}
    assert volumes[c.VOLUME_PROFILE]["configMap"]["name"] == "llmsim-profile-drill-cfg"
    assert volumes[c.VOLUME_CA_SECRET]["secret"]["secretName"] == "llmsim-ca"
    trust_keys = [item["key"] for item in volumes[c.VOLUME_TRUST]["secret"]["items"]]
    assert c.CA_KEY_FILE not in trust_keys and c.BUNDLE_FILE in trust_keys
    [mount] = out["spec"]["containers"][0]["volumeMounts"]
    assert mount == {"name": c.VOLUME_TRUST, "mountPath": c.TRUST_DIR, "readOnly": True}


def test_proxy_capture_sets_proxy_variables_and_ca_trust() -> None:
    env = env_of(injected(pod(), decision())["spec"]["containers"][0])
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://127.0.0.1:15080"
    assert env["NO_PROXY"].split(",")[:2] == ["localhost", "127.0.0.1"] and ".svc" in env["NO_PROXY"]
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == "/etc/llmsim/trust/bundle.pem"
    assert env["NODE_EXTRA_CA_CERTS"] == "/etc/llmsim/trust/llmsim-ca-cert.pem"
    assert "trustStore=/etc/llmsim/trust/truststore.p12" in env["JAVA_TOOL_OPTIONS"]


def test_existing_variables_are_kept_and_no_proxy_is_extended_not_overwritten() -> None:
    app = {
        "name": "app",
        "image": "python:3.12",
        "env": [
            {"name": "HTTPS_PROXY", "value": "http://corp-proxy:3128"},
            {"name": "NO_PROXY", "value": "internal.example.com,localhost"},
            {"name": "SSL_CERT_FILE", "value": "/etc/corp/ca.pem"},
            {"name": "no_proxy", "valueFrom": {"configMapKeyRef": {"name": "net", "key": "no_proxy"}}},
        ],
    }
    out = injected(pod(containers=[app]), decision())
    env = env_of(out["spec"]["containers"][0])
    assert env["HTTPS_PROXY"] == "http://corp-proxy:3128"
    assert env["SSL_CERT_FILE"] == "/etc/corp/ca.pem"
    assert env["NO_PROXY"].startswith("internal.example.com,localhost,127.0.0.1,")
    assert env["NO_PROXY"].count("localhost") == 1
    assert env["no_proxy"] == {"configMapKeyRef": {"name": "net", "key": "no_proxy"}}
    assert env["HTTP_PROXY"] == "http://127.0.0.1:15080"


def test_base_url_capture_points_the_provider_sdks_at_the_sidecar() -> None:
    env = env_of(injected(pod(), decision(Capture.BASE_URL))["spec"]["containers"][0])
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:15080/v1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:15080"
    assert "HTTPS_PROXY" not in env and "NO_PROXY" not in env


def test_host_alias_capture_resolves_provider_hosts_locally() -> None:
    profile = ProfileInfo("drill", NS, "cm", intercept_hosts=("vllm.internal:8000", "*.openai.azure.com"))
    aliases = [{"ip": "10.0.0.9", "hostnames": ["db"]}]
    out = injected(pod(hostAliases=aliases), decision(Capture.HOST_ALIAS, profile=profile))
    local = next(a for a in out["spec"]["hostAliases"] if a["ip"] == "127.0.0.1")
    assert local["hostnames"] == [
        "api.openai.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "vllm.internal",
    ]
    assert {"ip": "10.0.0.9", "hostnames": ["db"]} in out["spec"]["hostAliases"]
    assert {"name": "net.ipv4.ip_unprivileged_port_start", "value": "443"} in out["spec"]["securityContext"][
        "sysctls"
    ]
    assert "HTTPS_PROXY" not in env_of(out["spec"]["containers"][0])
    proxy = next(i for i in out["spec"]["initContainers"] if i["name"] == c.SIDECAR_NAME)
    assert proxy["args"][-5:] == [
        "--tls-listen", "127.0.0.1:443", "--bypass-hosts-file", "--listen-also", "127.0.0.1:8000",
    ]  # fmt: skip


def test_iptables_capture_adds_a_net_admin_init_container_first() -> None:
    out = injected(pod(), decision(Capture.IPTABLES))
    inits = out["spec"]["initContainers"]
    assert [i["name"] for i in inits] == [c.IPTABLES_INIT_NAME, c.CA_INIT_NAME, c.SIDECAR_NAME]
    assert inits[0]["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]
    assert f"--uid-owner {c.SIDECAR_UID}" in inits[0]["command"][2]
    assert "--dport 443 -j REDIRECT --to-ports 15443" in inits[0]["command"][2]
    assert inits[2]["args"][-3:] == ["--tls-listen", "127.0.0.1:15443", "--ipv6-loopback"]
    assert inits[2]["securityContext"]["runAsUser"] == c.SIDECAR_UID
    assert "HTTPS_PROXY" not in env_of(out["spec"]["containers"][0])


SVC_PROFILE = ProfileInfo("drill", NS, "cm", intercept_hosts=("vllm.ml.svc", "ollama.ml.svc:11434"))
"""In-cluster providers the docs tell users to intercept."""


def test_proxy_capture_leaves_intercepted_svc_hosts_out_of_no_proxy_and_keeps_the_apps_own() -> None:
    body = pod()
    body["spec"]["containers"][0]["env"] = [{"name": "NO_PROXY", "value": "db.internal"}]
    env = env_of(injected(body, decision(Capture.PROXY, profile=SVC_PROFILE))["spec"]["containers"][0])
    assert env["NO_PROXY"] == "db.internal,localhost,127.0.0.1,::1,.cluster.local"  # extended, never replaced
    assert env["no_proxy"] == "localhost,127.0.0.1,::1,.cluster.local"
    for host in ("vllm.ml.svc", "ollama.ml.svc"):
        assert not any(injection.exempts(e, host) for e in str(env["NO_PROXY"]).split(","))
    plain = env_of(injected(pod(), decision(Capture.PROXY))["spec"]["containers"][0])
    assert ".svc" in str(plain["NO_PROXY"]).split(",")  # nothing in-cluster intercepted: exempt


@pytest.mark.parametrize(
    ("entry", "host", "exempt"),
    [
        (".svc", "vllm.ml.svc", True), ("svc", "vllm.ml.svc", True), ("*.svc", "vllm.ml.svc", True),
        ("*", "vllm.ml.svc", True), ("vllm.ml.svc", "vllm.ml.svc:8000", True), (".svc", "*.ml.svc", True),
        (".cluster.local", "vllm.ml.svc", False), ("ml.svc.example", "vllm.ml.svc", False),
        ("localhost", "api.openai.com", False), ("::1", "api.openai.com", False),
    ],
)  # fmt: skip
def test_which_no_proxy_entries_exempt_a_host(entry: str, host: str, exempt: bool) -> None:
    assert injection.exempts(entry, host) is exempt


def test_host_alias_capture_listens_on_the_port_of_an_intercepted_svc_provider() -> None:
    out = injected(pod(), decision(Capture.HOST_ALIAS, profile=SVC_PROFILE))
    local = next(a for a in out["spec"]["hostAliases"] if a["ip"] == "127.0.0.1")
    assert {"vllm.ml.svc", "ollama.ml.svc"} <= set(local["hostnames"])
    proxy = next(i for i in out["spec"]["initContainers"] if i["name"] == c.SIDECAR_NAME)
    assert proxy["args"][-2:] == ["--listen-also", "127.0.0.1:11434"]  # vllm.ml.svc: 443, the TLS listener


def test_iptables_capture_redirects_intercepted_svc_ports_for_ipv4_and_ipv6() -> None:
    out = injected(pod(), decision(Capture.IPTABLES, profile=SVC_PROFILE))
    script = out["spec"]["initContainers"][0]["command"][2]
    for tool in ("iptables", "ip6tables"):
        assert f"{tool} -t nat -A LLMSIM_OUTPUT -p tcp --dport 11434 -j REDIRECT --to-ports 15080" in script
        assert f"{tool} -t nat -A LLMSIM_OUTPUT -m owner --uid-owner {c.SIDECAR_UID} -j RETURN" in script
    assert "ip6tables -t nat -A LLMSIM_OUTPUT -d ::1/128 -j RETURN" in script
    assert "if read -r _ < /proc/net/if_inet6 2>/dev/null; then" in script  # only where the pod has IPv6


def test_base_url_capture_writes_no_no_proxy_for_svc_providers() -> None:
    """base-url capture reaches the sidecar through the SDKs' base-URL variables, not a proxy: an
    in-cluster provider is caught when the app takes its base URL from them (docs/operator.md)."""
    env = env_of(injected(pod(), decision(Capture.BASE_URL, profile=SVC_PROFILE))["spec"]["containers"][0])
    assert (
        env["OPENAI_BASE_URL"] == "http://127.0.0.1:15080/v1"
        and env["OLLAMA_HOST"] == "http://127.0.0.1:15080"
    )
    assert "NO_PROXY" not in env


def test_existing_init_containers_and_other_sidecars_stay_in_place_after_ours() -> None:
    inits = [
        {"name": "istio-proxy", "image": "istio/proxyv2", "restartPolicy": "Always"},
        {"name": "migrate", "image": "app:1", "command": ["migrate"]},
    ]
    containers = [{"name": "app", "image": "app:1"}, {"name": "log-shipper", "image": "fluent-bit"}]
    out = injected(pod(initContainers=inits, containers=containers), decision())
    names = [i["name"] for i in out["spec"]["initContainers"]]
    assert names == [c.CA_INIT_NAME, c.SIDECAR_NAME, "istio-proxy", "migrate"]
    assert out["spec"]["initContainers"][2:] == inits  # untouched
    assert all("HTTPS_PROXY" in env_of(ct) for ct in out["spec"]["containers"])


@pytest.mark.parametrize("capture", list(Capture))
@pytest.mark.parametrize("native", [True, False])
def test_injection_is_idempotent(capture: Capture, native: bool) -> None:
    body = pod(initContainers=[{"name": "migrate", "image": "app:1"}])
    once = injected(body, decision(capture, native))
    assert injection.json_patch(once, decision(capture, native), SETTINGS) == []
    # Re-invocation with the other mode does not add a second sidecar either.
    twice = injection.mutate(once, decision(capture, not native), SETTINGS)
    all_names = [ct["name"] for ct in twice["spec"]["initContainers"] + twice["spec"]["containers"]]
    assert all_names.count(c.SIDECAR_NAME) == 1


def test_the_input_pod_is_not_modified() -> None:
    body = pod()
    before = copy.deepcopy(body)
    injection.json_patch(body, decision(Capture.HOST_ALIAS), SETTINGS)
    assert body == before


def test_no_profile_means_no_patch() -> None:
    assert injection.json_patch(pod(), Decision(None), SETTINGS) == []


@pytest.mark.parametrize("capture", list(Capture))
def test_the_sidecar_arguments_are_what_llmsim_proxy_accepts(capture: Capture) -> None:
    from llmsim.cli import main as cli

    proxy = next(
        i for i in injected(pod(), decision(capture))["spec"]["initContainers"] if i["name"] == c.SIDECAR_NAME
    )
    assert proxy["command"] == ["llmsim"]
    args = cli.build_parser().parse_args(proxy["args"])
    assert args.command == "proxy" and args.listen == "127.0.0.1:15080" and args.admin == "0.0.0.0:15090"
    assert str(args.ca_dir) == c.CA_DIR and args.profile == "/etc/llmsim/profile/profile.yaml"

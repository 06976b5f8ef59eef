"""The pod runner against the real control plane: what the drills rely on the kubelet stand-in
for. Init containers run to completion before a native sidecar, which must pass its startup probe
before the app starts; env, envFrom, fieldRefs and `$(VAR)` come from the stored pod and its
ConfigMaps/Secrets; volumes are files with the `..data` swap and follow edits; unknown images fail
the pod; Services spread connections over ready endpoints; deletion honours the grace period and
removes the pod's network namespace."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from kubeapi import CONFIGMAPS, MERGE, PODS, SECRETS, Kube
from managedproc import wait_for
from podrunner_proc import PodNode

APP = "llmsim-drills/app:1"

SHOW = """
import json, os, pathlib, time
files = {p: pathlib.Path(p).read_text() for p in ("/cfg/greeting", "/sec/token", "/proj/greeting", "/scratch/init")}
print(json.dumps({"env": {k: os.environ.get(k) for k in ("GREETING", "FROM_SECRET", "POD", "NS", "CFG_extra",
                                                     "COMBINED", "KUBERNETES_SERVICE_HOST")},
                  "files": files, "argv": os.sys.argv[1:],
                  "data_link": os.readlink("/cfg/..data"), "hosts": pathlib.Path("/etc/hosts").read_text()}), flush=True)
while True:
    time.sleep(3600)
"""


def pod_spec(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "hostAliases": [{"ip": "10.9.9.9", "hostnames": ["llm.internal"]}],
            "initContainers": [
                {
                    "name": "prepare",
                    "image": APP,
                    "command": [
                        "python",
                        "-c",
                        "import pathlib,time; time.sleep(0.3); pathlib.Path('/scratch/init').write_text(str(time.time()))",
                    ],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                },
                {
                    "name": "helper",
                    "image": APP,
                    "restartPolicy": "Always",
                    "command": ["python", "-m", "http.server", "8081", "--bind", "0.0.0.0"],
                    "startupProbe": {
                        "httpGet": {"path": "/", "port": 8081},
                        "periodSeconds": 1,
                        "failureThreshold": 30,
                    },
                },
            ],
            "containers": [
                {
                    "name": "app",
                    "image": APP,
                    "command": ["python", "-c", SHOW],
                    "args": ["$(GREETING)", "$$(literal)"],
                    "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                    "env": [
                        {
                            "name": "GREETING",
                            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}},
                        },
                        {
                            "name": "FROM_SECRET",
                            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}},
                        },
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "COMBINED", "value": "$(POD)@$(NS)"},
                    ],
                    "readinessProbe": {"tcpSocket": {"port": 8081}, "periodSeconds": 1},
                    "volumeMounts": [
                        {"name": "cfg", "mountPath": "/cfg", "readOnly": True},
                        {"name": "sec", "mountPath": "/sec", "readOnly": True},
                        {"name": "proj", "mountPath": "/proj", "readOnly": True},
                        {"name": "scratch", "mountPath": "/scratch"},
                    ],
                }
            ],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "settings"}},
                {"name": "sec", "secret": {"secretName": "creds"}},
                {
                    "name": "proj",
                    "projected": {
                        "sources": [
                            {
                                "configMap": {
                                    "name": "settings",
                                    "items": [{"key": "greeting", "path": "greeting"}],
                                }
                            }
                        ]
                    },
                },
                {"name": "scratch", "emptyDir": {}},
            ],
        },
    }


def first_json(text: str) -> dict[str, Any]:
    for line in text.splitlines():
        if line.startswith("{"):
            found: dict[str, Any] = json.loads(line)
            return found
    raise AssertionError(f"no JSON line in {text!r}")


def test_a_pod_runs_init_then_sidecar_then_app_with_its_env_volumes_and_hosts(
    kube: Kube, pod_node: PodNode
) -> None:
    ns = pod_node.namespace("runner")
    kube.create(
        CONFIGMAPS,
        ns,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"greeting": "hello", "extra": "x"},
        },
    )
    kube.create(
        SECRETS,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"token": base64.b64encode(b"s3cret").decode()},
        },
    )
    kube.create(PODS, ns, pod_spec("show"))
    pod = pod_node.wait_pod(ns, "show")
    status = pod["status"]
    assert status["phase"] == "Running" and status["podIP"].startswith("10.244.0.")
    init = {s["name"]: s for s in status["initContainerStatuses"]}
    assert init["prepare"]["state"]["terminated"]["exitCode"] == 0
    assert init["helper"]["started"] is True and "running" in init["helper"]["state"]
    (app,) = status["containerStatuses"]
    assert app["ready"] is True and app["restartCount"] == 0
    # the sidecar was started only after the init container finished, the app after the sidecar
    assert (
        init["prepare"]["state"]["terminated"]["finishedAt"]
        <= init["helper"]["state"]["running"]["startedAt"]
    )
    assert init["helper"]["state"]["running"]["startedAt"] <= app["state"]["running"]["startedAt"]
    shown = first_json(kube.wait(lambda: pod_node.logs(ns, "show", "app") or None, "app log"))
    assert shown["env"] == {
        "GREETING": "hello",
        "FROM_SECRET": "s3cret",
        "POD": "show",
        "NS": ns,
        "CFG_extra": "x",
        "COMBINED": f"show@{ns}",
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
    }
    assert shown["argv"] == ["hello", "$(literal)"]
    assert shown["files"]["/cfg/greeting"] == "hello" and shown["files"]["/sec/token"] == "s3cret"
    assert shown["files"]["/proj/greeting"] == "hello" and float(shown["files"]["/scratch/init"]) > 0
    assert shown["data_link"].startswith("..20")
    assert "10.9.9.9\tllm.internal" in shown["hosts"] and f"{status['podIP']}\tshow" in shown["hosts"]
    assert (
        "10.0.0.1\tkubernetes.default.svc.cluster.local kubernetes.default.svc kubernetes.default"
        in shown["hosts"]
    )


def test_a_configmap_edit_reaches_the_running_pods_files_by_a_data_swap(
    kube: Kube, pod_node: PodNode
) -> None:
    ns = pod_node.namespace("runner")
    kube.create(
        CONFIGMAPS,
        ns,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "live"}, "data": {"v": "1"}},
    )
    watcher = """
import os, time, pathlib
last = None
while True:
    now = (pathlib.Path('/cfg/v').read_text(), os.readlink('/cfg/..data'))
    if now != last:
        print(f"{time.time()} {now[0]} {now[1]}", flush=True)
        last = now
    time.sleep(0.02)
"""
    kube.create(
        PODS,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "watch"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "w",
                        "image": APP,
                        "command": ["python", "-c", watcher],
                        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
                    }
                ],
                "volumes": [{"name": "cfg", "configMap": {"name": "live"}}],
            },
        },
    )
    pod_node.wait_pod(ns, "watch")
    kube.wait(lambda: " 1 " in pod_node.logs(ns, "watch"), "first content seen")
    edited = time.time()
    kube.patch(CONFIGMAPS, ns, "live", {"data": {"v": "2"}}, content_type=MERGE)
    line = kube.wait(
        lambda: next((ln for ln in pod_node.logs(ns, "watch").splitlines() if " 2 " in ln), None), "edit seen"
    )
    seen_at, _, link = line.split()
    first_link = pod_node.logs(ns, "watch").splitlines()[0].split()[2]
    assert link != first_link  # a new ..<timestamp> directory, swapped in
    delay = float(seen_at) - edited
    assert 0 < delay < pod_node.sync_period_s + 2.0, delay


def test_an_unknown_image_fails_the_pod_with_a_clear_status(kube: Kube, pod_node: PodNode) -> None:
    ns = pod_node.namespace("runner")
    kube.create(
        PODS,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "nope"},
            "spec": {"containers": [{"name": "c", "image": "registry.example/unknown:1"}]},
        },
    )
    pod = pod_node.wait_pod(ns, "nope", "Failed", timeout_s=30)
    assert pod["status"]["reason"] == "ErrImagePull"
    assert (
        "registry.example/unknown:1" in pod["status"]["message"] and "image map" in pod["status"]["message"]
    )
    (ct,) = pod["status"]["containerStatuses"]
    assert ct["state"]["waiting"]["reason"] == "ErrImagePull"


def test_a_service_spreads_connections_over_its_ready_replicas_by_name(kube: Kube, pod_node: PodNode) -> None:
    ns = pod_node.namespace("runner")
    serve = "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = os.environ['POD'].encode()\n        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\nhttp.server.ThreadingHTTPServer(('0.0.0.0', 8000), H).serve_forever()\n"
    kube.plane.request(
        "POST",
        f"/apis/apps/v1/namespaces/{ns}/deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "echo"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "echo"}},
                "template": {
                    "metadata": {"labels": {"app": "echo"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {
                                "name": "echo",
                                "image": APP,
                                "command": ["python", "-c", serve],
                                "env": [
                                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/", "port": 8000},
                                    "periodSeconds": 1,
                                },
                            }
                        ],
                    },
                },
            },
        },
    )
    kube.create(
        "v1/services",
        ns,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8000}]},
        },
    )
    client = f"""
import time, urllib.request
seen = set()
deadline = time.time() + 40
while time.time() < deadline and len(seen) < 2:
    try:
        seen.add(urllib.request.urlopen('http://echo.{ns}.svc/', timeout=2).read().decode())
    except OSError:
        time.sleep(0.2)
print(' '.join(sorted(seen)), flush=True)
"""
    kube.create(
        PODS,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": APP, "command": ["python", "-c", client]}],
            },
        },
    )
    pod_node.wait_pod(ns, "client", "Succeeded", timeout_s=60)
    names = pod_node.logs(ns, "client").split()
    replicas = [p["metadata"]["name"] for p in kube.list(PODS, ns, "app=echo")]
    assert sorted(names) == sorted(replicas) and len(names) == 2


def test_deleting_a_pod_honours_its_grace_period_and_removes_its_network_namespace(
    kube: Kube, pod_node: PodNode
) -> None:
    ns = pod_node.namespace("runner")
    # the app notes SIGTERM and keeps going: the runner must wait the grace period, then SIGKILL
    trap = "import signal, time\nsignal.signal(signal.SIGTERM, lambda *a: print('term', time.time(), flush=True))\nprint('up', flush=True)\nwhile True: time.sleep(0.1)\n"
    kube.create(
        PODS,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "graceful"},
            "spec": {
                "terminationGracePeriodSeconds": 3,
                "containers": [{"name": "c", "image": APP, "command": ["python", "-c", trap]}],
            },
        },
    )
    pod_node.wait_pod(ns, "graceful")
    kube.wait(lambda: "up" in pod_node.logs(ns, "graceful"), "app up")
    netns = wait_for(
        lambda: ((pod_node.status() or {}).get("pods") or {}).get(f"{ns}/graceful"), 10, "pod netns"
    )
    began = time.monotonic()
    kube.delete(PODS, ns, "graceful")
    kube.wait_gone(PODS, ns, "graceful")
    took = time.monotonic() - began
    assert 3.0 <= took < 3.0 + 4.0, took  # SIGTERM, the 3 s grace period, then SIGKILL
    wait_for(lambda: (s := pod_node.status()) and f"{ns}/graceful" not in s["pods"] and netns not in s["netns"],
             10, "the pod's network namespace removed")  # fmt: skip
    assert not (Path("/run/netns") / netns).exists()


def test_a_pod_reaches_the_api_server_as_its_service_account_through_the_kubernetes_service(
    kube: Kube, pod_node: PodNode
) -> None:
    ns = pod_node.namespace("runner")
    kube.wait(lambda: kube.find(CONFIGMAPS, ns, "kube-root-ca.crt"), "kube-root-ca.crt published")
    call = """
import json, os, ssl, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile="/var/run/secrets/api/ca.crt")
token = open("/var/run/secrets/api/token").read()
url = f"https://kubernetes.default.svc:{os.environ['KUBERNETES_SERVICE_PORT']}/api/v1/namespaces/{os.environ['NS']}/pods"
req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
try:
    urllib.request.urlopen(req, context=ctx, timeout=10)
    print(json.dumps({"code": 200}))
except urllib.error.HTTPError as exc:
    print(json.dumps({"code": exc.code, "message": json.loads(exc.read())["message"]}))
"""
    projected = {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                             {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}  # fmt: skip
    kube.create(PODS, ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "caller"},
                           "spec": {"restartPolicy": "Never", "serviceAccountName": "default",
                                    "containers": [{"name": "c", "image": APP, "command": ["python", "-c", call],
                                                    "env": [{"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                                                    "volumeMounts": [{"name": "api", "mountPath": "/var/run/secrets/api"}]}],
                                    "volumes": [{"name": "api", "projected": projected}]}})  # fmt: skip
    pod_node.wait_pod(ns, "caller", "Succeeded", timeout_s=60)
    answer = json.loads(pod_node.logs(ns, "caller").strip().splitlines()[-1])
    # TLS verified with the published CA, the token authenticated: RBAC (no binding) says no
    assert answer["code"] == 403 and f"system:serviceaccount:{ns}:default" in answer["message"], answer

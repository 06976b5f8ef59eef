"""A local pod runner for the cluster tests: a small, honest stand-in for the part of the kubelet
(plus scheduler, kube-proxy and cluster DNS) that llmsim depends on. Test infrastructure, not
product. Run as a process:

    python tests/cluster/podrunner.py --kubeconfig K --node N --state-dir /run/llmsim-podrunner-N \
        --images images.json --kubelet-cert C --kubelet-key K [--sync-period-s 1] \
        [--schedule-label llmsim.io/test-node=N]

- Node: registers Node `N` (Ready, InternalIP 127.0.0.1, its kubelet port), deletes it on exit.
- Scheduler: binds pending pods without `nodeName` in namespaces labelled `--schedule-label` to the
  node (so other tests' pods, which must stay Pending, are left alone); pods created with
  `spec.nodeName: N` are run wherever they are.
- Pods: one thread each (pod_worker.py), containers run by pod_launch.py in the pod's network and
  mount namespaces; the image map (pod_images.py) says which host programs an image stands for.
- Volumes and environment: pod_volumes.py / pod_env.py, from a cache of the namespaces' ConfigMaps
  and Secrets that is refreshed every `--sync-period-s` (the kubelet's sync period and ConfigMap
  cache TTL, about a minute on a node; a second here), so a ConfigMap edit reaches a running pod's
  files within one period plus the listing time.
- Network, Services and names: pod_network.py (node netns + bridge, veth per pod, a userspace
  Service proxy over EndpointSlices, re-read every poll as kube-proxy watches them, hosts files
  standing in for DNS, rewritten every sync period).
- Logs: an HTTPS "kubelet" endpoint serving `/containerLogs/<ns>/<pod>/<container>`, which the API
  server proxies `pods/log` to (`kubectl logs`, the operator reading LoadScenario worker results).

What it does not do: images, cgroups/resource limits, user namespaces, service-account token
automount (the control plane runs without the ServiceAccount admission plugin), `enableServiceLinks`
variables other than the `kubernetes` Service's, ephemeral containers, `kubectl exec`/port-forward,
log rotation and `previous` logs.

On SIGTERM every pod's containers are stopped (grace periods capped by `--stop-grace-s`), every
network namespace is deleted, the mount points it created on the host are removed and the Node
object is deleted. `--status-file` gets the runner's PIDs and namespaces for leak checks.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pod_api import Api, ApiFailed
from pod_images import ImageMap
from pod_network import Backend, NodeNetwork, ServiceProxy
from pod_worker import NodeContext, PodWorker

log = logging.getLogger("podrunner")


class Cache:
    """ConfigMaps and Secrets of the namespaces with pods here, Services and EndpointSlices."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.services: list[dict[str, Any]] = []
        self.slices: list[dict[str, Any]] = []

    def refresh(self, namespaces: set[str]) -> None:
        objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        for ns in namespaces:
            for kind in ("configmaps", "secrets"):
                try:
                    for obj in self.api.items(f"/api/v1/namespaces/{ns}/{kind}"):
                        objects[(ns, kind, obj["metadata"]["name"])] = obj
                except ApiFailed as exc:
                    if exc.status != 404:
                        raise
        with self.lock:
            self.objects = objects
        self.refresh_services()

    def refresh_services(self) -> None:
        services = self.api.items("/api/v1/services")
        slices = self.api.items("/apis/discovery.k8s.io/v1/endpointslices")
        with self.lock:
            self.services, self.slices = services, slices

    def lookup(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.objects.get((namespace, kind, name))


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.api = Api(args.kubeconfig)
        self.node = args.node
        self.state_dir: Path = args.state_dir
        self.network = NodeNetwork(args.node_id)
        self.proxy = ServiceProxy(self.network.netns)
        self.cache = Cache(self.api)
        self.images = ImageMap(json.loads(args.images.read_text()))
        self.workers: dict[str, PodWorker] = {}
        self.stopping = threading.Event()
        self.created_mount_points: list[Path] = []
        self._mount_lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str | None, int], tuple[str, float]] = {}
        api_url = urllib.parse.urlsplit(self.api.url)
        self.api_address = (api_url.hostname or "127.0.0.1", api_url.port or 443)
        self.ctx = NodeContext(
            api=self.api, node=self.node, network=self.network, images=self.images, state_dir=self.state_dir,
            lookup=self.cache.lookup, services=lambda: list(self.cache.services),
            kubernetes_service=self.kubernetes_service, token_for=self.token_for,
            mount_point=self.mount_point, sync_period_s=args.sync_period_s,
        )  # fmt: skip
        self.kubelet: ThreadingHTTPServer | None = None

    # -- node ------------------------------------------------------------------------------------

    def register_node(self, kubelet_port: int) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node,
                                                           "kubernetes.io/os": "linux", "llmsim.io/pod-runner": "true"}}}  # fmt: skip
        try:
            self.api.request("POST", "/api/v1/nodes", body)
        except ApiFailed as exc:
            if exc.status != 409:
                raise
        capacity = {"cpu": "2", "memory": "4Gi", "pods": "110"}
        status = {
            "capacity": capacity,
            "allocatable": capacity,
            # InternalIP only: the API server dials the first preferred address type it finds, and
            # the node's name resolves nowhere.
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "llmsim pod runner is ready",
                    "lastHeartbeatTime": _now(),
                    "lastTransitionTime": _now(),
                }
            ],
            "nodeInfo": {
                "kubeletVersion": "llmsim-pod-runner",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": "",
                "osImage": "",
                "containerRuntimeVersion": "llmsim-pod-runner://1",
                "kubeProxyVersion": "",
            },
        }
        self.api.patch(f"/api/v1/nodes/{self.node}/status", {"status": status})

    def kubernetes_service(self) -> tuple[str, int] | None:
        for svc in self.cache.services:
            if svc["metadata"]["namespace"] == "default" and svc["metadata"]["name"] == "kubernetes":
                return str(svc["spec"]["clusterIP"]), int(svc["spec"]["ports"][0]["port"])
        return None

    def token_for(self, namespace: str, account: str, audience: str | None, expiration_s: int) -> str:
        """A TokenRequest token, reused until 80% of its lifetime (as the kubelet refreshes them)."""
        key = (namespace, account, audience, expiration_s)
        cached = self._tokens.get(key)
        if cached and time.monotonic() < cached[1]:
            return cached[0]
        spec: dict[str, Any] = {"expirationSeconds": expiration_s}
        if audience:
            spec["audiences"] = [audience]
        review = self.api.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )  # fmt: skip
        token = str(review["status"]["token"])
        self._tokens[key] = (token, time.monotonic() + 0.8 * expiration_s)
        return token

    def mount_point(self, dst: str, is_file: bool) -> None:
        """Create a missing mount point on the host (empty; removed when the runner stops)."""
        path = Path(dst)
        with self._mount_lock:
            if path.exists():
                return
            missing = [p for p in [path, *path.parents] if not p.exists()]
            top = missing[-1]
            if is_file:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)
            self.created_mount_points.append(top)

    # -- loop ------------------------------------------------------------------------------------

    def scheduling_namespaces(self) -> set[str]:
        key, _, value = self.args.schedule_label.partition("=")
        selector = f"{key}={value}" if value else key
        return {ns["metadata"]["name"] for ns in self.api.items("/api/v1/namespaces", labelSelector=selector)}

    def step(self) -> None:
        pods = self.api.items("/api/v1/pods")
        allowed = self.scheduling_namespaces()
        mine: dict[str, dict[str, Any]] = {}
        for pod in pods:
            meta, spec = pod["metadata"], pod["spec"]
            if not spec.get("nodeName") and meta["namespace"] in allowed and not meta.get("deletionTimestamp") and \
                    spec.get("schedulerName", "default-scheduler") == "default-scheduler":  # fmt: skip
                self.bind(pod)
            elif spec.get("nodeName") == self.node:
                mine[meta["uid"]] = pod
        for uid, pod in mine.items():
            worker = self.workers.get(uid)
            if worker is None:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and pod["metadata"].get(
                    "deletionTimestamp"
                ):
                    continue
                worker = self.workers[uid] = PodWorker(self.ctx, pod)
                log.info("pod %s/%s: admitted", pod["metadata"]["namespace"], pod["metadata"]["name"])
                worker.start()
            else:
                worker.observe(pod)
        for uid, worker in list(self.workers.items()):
            if uid not in mine and not worker.finished.is_set():
                # gone from the API (deleted with grace 0 by someone else): stop it now
                worker.pod["metadata"].setdefault("deletionTimestamp", _now())
                worker.pod["metadata"]["deletionGracePeriodSeconds"] = 0
            if worker.finished.is_set() and uid not in mine:
                del self.workers[uid]

    def bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"], "uid": meta["uid"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}}  # fmt: skip
        try:
            self.api.request(
                "POST", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", binding
            )
            log.info("pod %s/%s: bound to %s", meta["namespace"], meta["name"], self.node)
        except ApiFailed as exc:
            log.info("pod %s/%s: not bound: %s", meta["namespace"], meta["name"], exc)

    def sync(self) -> None:
        namespaces = {w.namespace for w in self.workers.values()} | self.scheduling_namespaces()
        self.cache.refresh(namespaces)
        self.proxy.update(self.service_table())

    def refresh_services(self) -> None:
        self.cache.refresh_services()
        self.proxy.update(self.service_table())

    def service_table(self) -> dict[tuple[str, int], list[Backend]]:
        table: dict[tuple[str, int], list[Backend]] = {}
        for svc in self.cache.services:
            meta, spec = svc["metadata"], svc["spec"]
            cluster_ip = spec.get("clusterIP")
            if not cluster_ip or cluster_ip == "None":
                continue
            if meta["namespace"] == "default" and meta["name"] == "kubernetes":
                table[(cluster_ip, int(spec["ports"][0]["port"]))] = [Backend(None, *self.api_address)]
                continue
            slices = [s for s in self.cache.slices if s["metadata"]["namespace"] == meta["namespace"]
                      and (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == meta["name"]]  # fmt: skip
            for port in spec.get("ports") or []:
                backends: list[Backend] = []
                for sl in slices:
                    target = next(
                        (
                            p["port"]
                            for p in sl.get("ports") or []
                            if p.get("name", "") == port.get("name", "")
                        ),
                        None,
                    )
                    if target is None:
                        continue
                    for ep in sl.get("endpoints") or []:
                        if (ep.get("conditions") or {}).get("ready") is not False:
                            backends += [
                                Backend(self.network.netns, address, int(target))
                                for address in ep["addresses"]
                            ]
                table[(cluster_ip, int(port["port"]))] = backends
        return table

    def run(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.network.open()
        self.proxy.start()
        self.kubelet = self.serve_kubelet()
        self.register_node(self.kubelet.server_address[1])
        self.sync()
        self.write_status_file()
        last_sync = time.monotonic()
        while not self.stopping.wait(self.args.poll_s):
            try:
                self.step()
                if time.monotonic() - last_sync >= self.args.sync_period_s:
                    self.sync()
                    last_sync = time.monotonic()
                else:  # Services and endpoints follow every step (kube-proxy watches them)
                    self.refresh_services()
                self.write_status_file()
            except Exception:
                log.exception("runner step failed; retrying")

    def write_status_file(self) -> None:
        if self.args.status_file is None:
            return
        info = {
            "node": self.node,
            "netns": self.network.namespaces(),
            "netns_inodes": self.network.inodes,
            "pods": {
                f"{w.namespace}/{w.name}": w.net.netns for w in self.workers.values() if w.net is not None
            },
            "pids": sorted(pid for w in self.workers.values() for pid in w.pids()),
            "connections": self.proxy.connections,
        }
        tmp = self.args.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(self.args.status_file)

    def close(self) -> None:
        for worker in list(self.workers.values()):
            worker.shutdown(self.args.stop_grace_s)
        for worker in list(self.workers.values()):
            worker.thread.join(timeout=self.args.stop_grace_s + 15)
        self.proxy.close()
        self.network.close()
        if self.kubelet is not None:
            self.kubelet.shutdown()
        try:
            self.api.request("DELETE", f"/api/v1/nodes/{self.node}")
        except Exception as exc:
            log.warning("node %s not deleted: %s", self.node, exc)
        for top in reversed(self.created_mount_points):
            shutil.rmtree(top, ignore_errors=True)  # empty directories (and files) we created
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.write_status_file()

    # -- kubelet endpoint --------------------------------------------------------------------------

    def serve_kubelet(self) -> ThreadingHTTPServer:
        runner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if parts[0] == "healthz":
                    return self._send(200, b"ok")
                if parts[0] != "containerLogs" or len(parts) != 4:
                    return self._send(404, b"not found")
                _, ns, pod, container = parts
                worker = next(
                    (w for w in runner.workers.values() if w.namespace == ns and w.name == pod), None
                )
                path = worker.log_path(container) if worker else None
                if path is None or not path.exists():
                    return self._send(404, f"no log for {ns}/{pod}/{container}".encode())
                data = path.read_bytes()
                query = urllib.parse.parse_qs(url.query)
                if "tailLines" in query:
                    data = b"".join(data.splitlines(keepends=True)[-int(query["tailLines"][0]) :])
                if "limitBytes" in query:
                    data = data[: int(query["limitBytes"][0])]
                return self._send(200, data)

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("kubelet: " + format, *args)

        server = ThreadingHTTPServer(("127.0.0.1", self.args.kubelet_port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.args.kubelet_cert, self.args.kubelet_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, name="kubelet", daemon=True).start()
        return server


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--node-id", required=True, help="short id for network namespace and link names")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--images", type=Path, required=True, help="the image map (JSON; pod_images.py)")
    p.add_argument("--kubelet-cert", type=Path, required=True)
    p.add_argument("--kubelet-key", type=Path, required=True)
    p.add_argument("--kubelet-port", type=int, default=0)
    p.add_argument(
        "--schedule-label", required=True, help="namespace label KEY=VALUE whose pending pods are bound here"
    )
    p.add_argument("--sync-period-s", type=float, default=1.0)
    p.add_argument("--poll-s", type=float, default=0.2)
    p.add_argument("--stop-grace-s", type=float, default=10.0)
    p.add_argument("--status-file", type=Path)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(name)s: %(message)s")
    runner = Runner(args)

    def stop(signum: int, frame: object) -> None:
        runner.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        runner.run()
    finally:
        runner.close()
        log.info("stopped; every pod, network namespace and mount point removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The pod runner's network: a node network namespace with a bridge, one network namespace per pod
wired to it by a veth pair, and a userspace Service proxy; nothing is changed in the host's own
network namespace.

    node netns  llmsim-n-<id>:  lo, br0 10.244.0.1/24, `local 10.0.0.0/24` route (Service IPs)
    pod netns   llmsim-p-<id>-<k>: lo, eth0 10.244.0.<k>/24 (veth to br0), default via 10.244.0.1

- Pod to pod: pod IPs on the bridge (what a CNI plugin gives).
- Pod to Service: a pod connects to the Service's ClusterIP (routed to the node netns, where the
  whole Service range is local); the runner's proxy, listening on every ClusterIP:port inside the
  node netns, picks a ready endpoint from the Service's EndpointSlices (round-robin per connection)
  and splices the connection to the endpoint pod's IP: kube-proxy's old userspace mode (except
  that a connection to a Service without a ready endpoint waits up to NO_ENDPOINT_WAIT_S for one). The
  `kubernetes` Service has no endpoints here (the API server listens on the host's 127.0.0.1), so
  its ClusterIP is spliced to the API server's address from the host netns.
- Names: there is no cluster DNS. Each pod's /etc/hosts (a per-pod file bind-mounted over
  /etc/hosts inside the pod's mount namespace, as the kubelet does) lists localhost, the pod's own
  name, its `hostAliases`, and `<svc>.<ns>.svc.cluster.local <svc>.<ns>.svc <svc>.<ns>` (plus the
  short name within the pod's namespace) for every Service's ClusterIP; the runner rewrites it at
  its sync period, so Services created later resolve too.

A socket belongs to the network namespace its creating thread was in: `socket_in()` switches the
calling thread into a namespace for the `socket()` call only (setns(2) on a network namespace is
per thread), so one process serves listeners in the node netns and dials both pods and the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import os
import socket
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("podrunner.network")

POD_CIDR = ipaddress.ip_network("10.244.0.0/24")
GATEWAY = "10.244.0.1"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
NO_ENDPOINT_WAIT_S = 5.0
"""A connection to a Service with no ready endpoint waits this long for one before it is closed
(kube-proxy rejects at once; here pods started together, e.g. by one `kubectl apply -k`, would
otherwise race the seconds their dependencies take to start)."""


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def delete_netns(name: str) -> None:
    if netns_exists(name):
        ip("netns", "delete", name)


def socket_in(netns: str | None, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket created inside network namespace `netns` (None: this process's own)."""
    if netns is None:
        return socket.socket(family, socket.SOCK_STREAM)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        os.setns(target, CLONE_NEWNET)
        try:
            return socket.socket(family, socket.SOCK_STREAM)
        finally:
            os.setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)


@dataclass
class PodNet:
    netns: str
    ip: str
    veth: str


class NodeNetwork:
    """The node netns and the pods' netns/veths; `close()` deletes every namespace it made."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.netns = f"llmsim-n-{node_id}"
        self._free = [str(h) for h in POD_CIDR.hosts() if str(h) != GATEWAY]
        self._pods: dict[str, PodNet] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.inodes: list[int] = []
        """Every network namespace ever made here (a process left in one keeps it alive)."""

    def open(self) -> None:
        ip("netns", "add", self.netns)
        self.inodes.append((NETNS_DIR / self.netns).stat().st_ino)
        ip("-n", self.netns, "link", "set", "lo", "up")
        ip("-n", self.netns, "link", "add", "br0", "type", "bridge")
        ip("-n", self.netns, "addr", "add", f"{GATEWAY}/{POD_CIDR.prefixlen}", "dev", "br0")
        ip("-n", self.netns, "link", "set", "br0", "up")
        ip("-n", self.netns, "route", "add", "local", "10.0.0.0/24", "dev", "lo")

    def add_pod(self, key: str, sysctls: Mapping[str, str]) -> PodNet:
        """A netns for pod `key` with its IP; `sysctls`: the pod's (namespaced net.*) sysctls."""
        with self._lock:
            k = next(self._counter)
            address = self._free.pop(0)
        net = PodNet(f"llmsim-p-{self.node_id}-{k}", address, f"v{self.node_id[:6]}{k}")
        ip("netns", "add", net.netns)
        self.inodes.append((NETNS_DIR / net.netns).stat().st_ino)
        try:
            ip(
                "-n",
                self.netns,
                "link",
                "add",
                net.veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                net.netns,
            )
            ip("-n", self.netns, "link", "set", net.veth, "master", "br0", "up")
            ip("-n", net.netns, "link", "set", "lo", "up")
            ip("-n", net.netns, "addr", "add", f"{address}/{POD_CIDR.prefixlen}", "dev", "eth0")
            ip("-n", net.netns, "link", "set", "eth0", "up")
            ip("-n", net.netns, "route", "add", "default", "via", GATEWAY)
            for name, value in sysctls.items():
                if not name.startswith("net."):
                    raise RuntimeError(f"sysctl {name}: only namespaced net.* sysctls are supported")
                subprocess.run(
                    ["ip", "netns", "exec", net.netns, "sysctl", "-q", "-w", f"{name}={value}"],
                    check=True, capture_output=True, timeout=20,
                )  # fmt: skip
        except BaseException:
            delete_netns(net.netns)
            raise
        self._pods[key] = net
        return net

    def remove_pod(self, key: str) -> None:
        net = self._pods.pop(key, None)
        if net is None:
            return
        delete_netns(net.netns)  # takes eth0 and so its veth peer with it
        with self._lock:
            self._free.append(net.ip)

    def namespaces(self) -> list[str]:
        return [self.netns, *(p.netns for p in self._pods.values())]

    def close(self) -> None:
        for key in list(self._pods):
            self.remove_pod(key)
        delete_netns(self.netns)


def service_names(name: str, namespace: str, pod_namespace: str) -> list[str]:
    names = [f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}.svc", f"{name}.{namespace}"]
    return names + ([name] if namespace == pod_namespace else [])


def hosts_file(pod: Mapping[str, Any], pod_ip: str, services: Iterable[Mapping[str, Any]]) -> str:
    """The pod's /etc/hosts (kubelet layout first, then the Services standing in for cluster DNS)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    hostname = spec.get("hostname") or meta["name"]
    lines = [
        "# Kubernetes-managed hosts file (llmsim pod runner).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod_ip}\t{hostname}",
    ]
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("# Entries added by HostAliases.")
        lines += [f"{a['ip']}\t{' '.join(a.get('hostnames') or [])}" for a in aliases]
    lines.append("# Services (the runner's stand-in for cluster DNS).")
    for svc in services:
        cluster_ip = (svc.get("spec") or {}).get("clusterIP")
        if cluster_ip and cluster_ip != "None":
            names = service_names(svc["metadata"]["name"], svc["metadata"]["namespace"], meta["namespace"])
            lines.append(f"{cluster_ip}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Backend:
    netns: str | None
    """Where to dial from: the node netns for pod IPs, None (the host) for the API server."""
    host: str
    port: int


@dataclass
class _Listener:
    server: asyncio.AbstractServer
    backends: list[Backend] = field(default_factory=list)
    next: int = 0


class ServiceProxy:
    """Userspace load balancer for Service ClusterIPs, on its own event-loop thread."""

    def __init__(self, node_netns: str) -> None:
        self.node_netns = node_netns
        self.loop = asyncio.new_event_loop()
        self._listeners: dict[tuple[str, int], _Listener] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, name="service-proxy", daemon=True)
        self.connections = 0

    def start(self) -> None:
        self._thread.start()

    def update(self, table: Mapping[tuple[str, int], Sequence[Backend]]) -> None:
        """Make the listeners exactly `table` (ClusterIP, port) -> ready backends."""
        asyncio.run_coroutine_threadsafe(self._update(dict(table)), self.loop).result(timeout=20)

    async def _update(self, table: dict[tuple[str, int], Sequence[Backend]]) -> None:
        for key in list(self._listeners):
            if key not in table:
                listener = self._listeners.pop(key)
                listener.server.close()
        for key, backends in table.items():
            listener = self._listeners.get(key)
            if listener is None:
                sock = socket_in(self.node_netns)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(key)
                sock.listen(128)
                sock.setblocking(False)
                server = await asyncio.start_server(lambda r, w, k=key: self._serve(k, r, w), sock=sock)
                listener = self._listeners[key] = _Listener(server)
            listener.backends = list(backends)

    async def _serve(
        self, key: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        listener = self._listeners.get(key)
        try:
            waited = 0.0
            while listener is not None and not listener.backends and waited < NO_ENDPOINT_WAIT_S:
                await asyncio.sleep(0.1)
                waited += 0.1
            if listener is None or not listener.backends:
                return  # still no ready endpoint: the connection is closed
            backend = listener.backends[listener.next % len(listener.backends)]
            listener.next += 1
            sock = socket_in(backend.netns)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(self.loop.sock_connect(sock, (backend.host, backend.port)), 5)
            except (OSError, TimeoutError):
                sock.close()
                return
            up_reader, up_writer = await asyncio.open_connection(sock=sock)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def close(self) -> None:
        async def shut() -> None:
            for listener in self._listeners.values():
                listener.server.close()
            self._listeners.clear()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(timeout=20)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()

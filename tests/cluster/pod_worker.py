"""One pod on the pod runner's node, from admission to deletion (one thread per pod).

Order, as the kubelet does it: network namespace and hosts file, volumes (waiting while a
non-optional ConfigMap/Secret is missing), then the init containers in order, where a classic one
must exit 0 before the next starts and a native sidecar (`restartPolicy: Always`) must pass its
startup probe (or just start, without one) and keeps running; then every app container. Readiness,
startup and liveness probes (httpGet to the pod IP from the node, tcpSocket, exec) run at their
periods; exits are restarted by the pod's `restartPolicy` (sidecars always) with a capped backoff.
When every app container has finished for good, the sidecars are stopped (reverse order) and the
pod ends `Succeeded` or `Failed`. A deletion stops the app containers with SIGTERM, waits the
pod's grace period, SIGKILLs, then stops the sidecars the same way, removes the network namespace
and volumes, and finishes the deletion (grace period 0), as the kubelet does.

Status (phase, conditions, podIP, per-container state, ready, started, restartCount) is written
through the `status` subresource whenever it changes."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pod_env
import pod_volumes
from pod_api import Api, ApiFailed
from pod_images import ImageMap
from pod_network import NodeNetwork, PodNet, hosts_file, socket_in

log = logging.getLogger("podrunner.pod")

LAUNCH = Path(__file__).resolve().with_name("pod_launch.py")
TICK_S = 0.05
MAX_BACKOFF_S = 5.0
RESOLV_CONF = "# no cluster DNS (llmsim pod runner): names resolve through /etc/hosts only\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _die_with_parent() -> None:
    _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Probe:
    spec: Mapping[str, Any]
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0

    def period(self) -> float:
        return float(self.spec.get("periodSeconds", 10))


@dataclass
class Container:
    spec: dict[str, Any]
    kind: str  # "init", "sidecar" or "app"
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "PodInitializing"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    ready: bool = False
    done: bool = False
    """Finished for good (will not be restarted)."""
    restart_at: float | None = None
    probes: dict[str, Probe] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class NodeContext:
    """What every pod worker shares with the runner."""

    api: Api
    node: str
    network: NodeNetwork
    images: ImageMap
    state_dir: Path
    lookup: Callable[[str, str, str], dict[str, Any] | None]
    """(namespace, kind, name) -> a ConfigMap/Secret from the runner's cache."""
    services: Callable[[], list[dict[str, Any]]]
    kubernetes_service: Callable[[], tuple[str, int] | None]
    token_for: Callable[[str, str, str | None, int], str]
    mount_point: Callable[[str, bool], None]
    """Create a missing mount point on the host (dst, is_file), remembered for removal."""
    sync_period_s: float


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: dict[str, Any]) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.dir = ctx.state_dir / "pods" / self.uid
        self.net: PodNet | None = None
        spec = pod["spec"]
        self.init = [
            Container(ct, "sidecar" if ct.get("restartPolicy") == "Always" else "init")
            for ct in spec.get("initContainers") or []
        ]
        self.apps = [Container(ct, "app") for ct in spec.get("containers") or []]
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.initialized = False
        self.started_at = now()
        self._last_status: Any = None
        self._last_sync = 0.0
        self._stop = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"pod-{self.namespace}/{self.name}", daemon=True
        )

    # -- the runner's side -----------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def observe(self, pod: dict[str, Any]) -> None:
        """The pod as last listed (its deletionTimestamp matters)."""
        self.pod = pod

    def shutdown(self, grace_cap_s: float) -> None:
        """The runner is stopping: stop everything (not a deletion: the object stays)."""
        self._grace_cap = grace_cap_s
        self._stop.set()

    def log_path(self, container: str) -> Path:
        return self.dir / "logs" / f"{container}.log"

    def containers(self) -> list[Container]:
        return [*self.init, *self.apps]

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.containers() if c.proc is not None and c.proc.poll() is None]

    # -- lifecycle -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._lifecycle()
        except Exception:
            log.exception("pod %s/%s: worker failed", self.namespace, self.name)
            self._fail("RunnerError", "the pod runner failed; see its log")
        finally:
            self._teardown(getattr(self, "_grace_cap", 30.0))
            if self._deleting() and not self._stop.is_set():
                self._finish_deletion()
            self.finished.set()

    def _deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    def _lifecycle(self) -> None:
        if not self._check_images():
            self._wait_deletion()
            return
        self.net = self.ctx.network.add_pod(
            self.uid,
            {
                s["name"]: s["value"]
                for s in (self.pod["spec"].get("securityContext") or {}).get("sysctls") or []
            },
        )
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self._write_hosts()
        self._write_status()
        while not self._sync_volumes():
            if self._idle(self.ctx.sync_period_s):
                return
        for ct in self.init:
            if not self._run_init(ct):
                self._wait_deletion()
                return
        self.initialized = True
        for ct in self.apps:
            self._start(ct)
        self.phase = "Running"
        self._write_status()
        while not self._idle(TICK_S):
            self._supervise()
            if all(ct.done for ct in self.apps):
                self._stop_group([c for c in reversed(self.init) if c.kind == "sidecar"], 30.0)
                failed = any((ct.state.get("terminated") or {}).get("exitCode", 1) != 0 for ct in self.apps)
                self.phase = "Failed" if failed else "Succeeded"
                self._write_status()
                self._release()
                self._wait_deletion()
                return

    def _idle(self, seconds: float) -> bool:
        """Sleep; True when the pod is being deleted or the runner stops (then stop working)."""
        if self._stop.wait(seconds) or self._deleting():
            return True
        if time.monotonic() - self._last_sync >= self.ctx.sync_period_s:
            self._last_sync = time.monotonic()
            with contextlib.suppress(pod_env.ConfigError):
                self._sync_volumes()
            self._write_hosts()
        return False

    def _wait_deletion(self) -> None:
        while not self._stop.wait(0.2) and not self._deleting():
            pass

    def _check_images(self) -> bool:
        for ct in self.containers():
            if self.ctx.images.resolve(ct.spec.get("image", "")) is None:
                message = self.ctx.images.unknown_message(ct.spec.get("image", ""))
                ct.state = {"waiting": {"reason": "ErrImagePull", "message": message}}
                self._fail("ErrImagePull", f"container {ct.name}: {message}")
                return False
        return True

    def _fail(self, reason: str, message: str) -> None:
        self.phase, self.reason, self.message = "Failed", reason, message
        with contextlib.suppress(Exception):
            self._write_status()

    def _run_init(self, ct: Container) -> bool:
        """Run one init container through; False when the pod failed or is going away."""
        while True:
            if (
                not ct.running()
                and not ct.done
                and (ct.restart_at is None or time.monotonic() >= ct.restart_at)
            ) and not self._start(ct):
                return False
            if self._idle(TICK_S):
                return False
            self._supervise()
            if ct.kind == "sidecar" and ct.started:
                return True
            if ct.kind == "init" and ct.done:
                if ct.state.get("terminated", {}).get("exitCode") == 0:
                    return True
                self._fail("InitContainerFailed", f"init container {ct.name} failed")
                return False

    def _sync_volumes(self) -> bool:
        try:
            changed = pod_volumes.sync(
                self.pod,
                self.dir / "volumes",
                lambda kind, name: self.ctx.lookup(self.namespace, kind, name),
                lambda sa, aud, exp: self.ctx.token_for(self.namespace, sa, aud, exp),
            )
        except pod_env.ConfigError as exc:
            for ct in self.containers():
                if ct.proc is None:
                    ct.state = {"waiting": {"reason": "ContainerCreating", "message": str(exc)}}
            self._write_status()
            return False
        if changed:
            log.info("pod %s/%s: volumes %s written", self.namespace, self.name, changed)
        return True

    def _write_hosts(self) -> None:
        if self.net is None:
            return
        resolv = self.dir / "resolv.conf"
        if not resolv.exists():
            resolv.write_text(RESOLV_CONF)
        text = hosts_file(self.pod, self.net.ip, self.ctx.services())
        path = self.dir / "hosts"
        if not path.exists() or path.read_text() != text:
            with path.open("r+" if path.exists() else "w") as fh:  # in place: it is bind-mounted
                fh.seek(0)
                fh.write(text)
                fh.truncate()

    # -- containers ------------------------------------------------------------------------------

    def _launch_spec(self, ct: Container, argv: list[str] | None = None) -> dict[str, Any]:
        assert self.net is not None
        image = self.ctx.images.resolve(ct.spec.get("image", ""))
        assert image is not None
        base = {**image.environment(), "HOSTNAME": self.name}
        svc = self.ctx.kubernetes_service()
        if svc is not None:
            base.update({"KUBERNETES_SERVICE_HOST": svc[0], "KUBERNETES_SERVICE_PORT": str(svc[1]),
                         "KUBERNETES_PORT": f"tcp://{svc[0]}:{svc[1]}"})  # fmt: skip
        env = pod_env.environment(
            self.pod, ct.spec, base, lambda kind, name: self.ctx.lookup(self.namespace, kind, name)
        )
        security = {
            **(self.pod["spec"].get("securityContext") or {}),
            **(ct.spec.get("securityContext") or {}),
        }
        uid, _gid = security.get("runAsUser"), security.get("runAsGroup", security.get("runAsUser"))
        env.setdefault("HOME", "/root" if not uid else "/")
        mounts: list[list[Any]] = [[src, dst, True] for dst, src in image.mounts.items()]
        for dst in image.mounts:
            self.ctx.mount_point(dst, False)
        for vm in ct.spec.get("volumeMounts") or []:
            src = self.dir / "volumes" / vm["name"]
            if vm.get("subPath"):
                src = Path(os.path.realpath(src / vm["subPath"]))
            is_file = src.is_file()
            self.ctx.mount_point(vm["mountPath"], is_file)
            mounts.append([str(src), vm["mountPath"], bool(vm.get("readOnly"))])
        return {
            "netns": self.net.netns,
            "hosts": str(self.dir / "hosts"),
            "resolv": str(self.dir / "resolv.conf"),
            "mounts": mounts,
            "argv": argv if argv is not None else pod_env.command_line(ct.spec, list(image.entrypoint), env),
            "env": env,
            "cwd": ct.spec.get("workingDir"),
            "uid": None,
            "gid": None,
        }

    def _start(self, ct: Container) -> bool:
        try:
            spec = self._launch_spec(ct)
        except pod_env.ConfigError as exc:
            ct.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            self._write_status()
            ct.restart_at = time.monotonic() + self.ctx.sync_period_s
            return not self._idle(self.ctx.sync_period_s)
        spec_path = self.dir / f"{ct.name}.launch.json"
        spec_path.write_text(json.dumps(spec))
        with self.log_path(ct.name).open("ab") as out:
            ct.proc = subprocess.Popen(
                [sys.executable, str(LAUNCH), str(spec_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
        ct.state = {"running": {"startedAt": now()}}
        ct.ready = ct.started = False
        ct.restart_at = None
        clock = time.monotonic()
        ct.probes = {
            kind: Probe(ct.spec[key], next_at=clock + float(ct.spec[key].get("initialDelaySeconds", 0)))
            for kind, key in (
                ("startup", "startupProbe"),
                ("readiness", "readinessProbe"),
                ("liveness", "livenessProbe"),
            )
            if ct.spec.get(key)
        }
        if "startup" not in ct.probes:
            ct.started = True
        if "readiness" not in ct.probes and ct.kind != "init":
            ct.ready = ct.started
        log.info("pod %s/%s: started %s (pid %s)", self.namespace, self.name, ct.name, ct.proc.pid)
        self._write_status()
        return True

    def _supervise(self) -> None:
        changed = False
        for ct in self.containers():
            if ct.proc is None:
                continue
            code = ct.proc.poll()
            if code is not None and "running" in ct.state:
                changed = True
                self._reap(ct)
                ct.state = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                           "startedAt": ct.state["running"]["startedAt"], "finishedAt": now()}}  # fmt: skip
                ct.ready = False
                if self._restarts(ct, code):
                    backoff = min(MAX_BACKOFF_S, 0.5 * 2**ct.restarts)
                    ct.restart_at = time.monotonic() + backoff
                else:
                    ct.done = True
            elif code is None:
                changed |= self._probe(ct)
            if (
                ct.restart_at is not None
                and time.monotonic() >= ct.restart_at
                and not ct.done
                and (self.initialized or ct.kind != "app")
            ):
                ct.last_state = ct.state
                ct.restarts += 1
                self._start(ct)
                changed = True
        if changed:
            self._write_status()

    def _restarts(self, ct: Container, code: int) -> bool:
        if ct.kind == "sidecar":
            return True
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if ct.kind == "init":
            return policy != "Never" and code != 0
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def _probe(self, ct: Container) -> bool:
        """Run due probes; True when the container's started/ready state changed."""
        changed = False
        clock = time.monotonic()
        for kind, probe in list(ct.probes.items()):
            if clock < probe.next_at or (kind != "startup" and not ct.started):
                continue
            probe.next_at = clock + probe.period()
            ok = self._check(ct, probe.spec)
            probe.successes, probe.failures = (probe.successes + 1, 0) if ok else (0, probe.failures + 1)
            passed = probe.successes >= int(probe.spec.get("successThreshold", 1))
            failed = probe.failures >= int(probe.spec.get("failureThreshold", 3))
            if kind == "startup" and passed and not ct.started:
                ct.started, changed = True, True
                del ct.probes["startup"]
                if "readiness" not in ct.probes:
                    ct.ready = True
            elif kind == "readiness" and (passed or failed) and ct.ready != passed:
                ct.ready, changed = passed, True
            if failed and kind in ("startup", "liveness"):
                log.info(
                    "pod %s/%s: %s probe of %s failed; killing it", self.namespace, self.name, kind, ct.name
                )
                self._kill(ct, float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
                return True
        return changed

    def _check(self, ct: Container, spec: Mapping[str, Any]) -> bool:
        assert self.net is not None
        timeout = float(spec.get("timeoutSeconds", 1))
        try:
            if "httpGet" in spec:
                get = spec["httpGet"]
                sock = socket_in(self.ctx.network.netns)
                sock.settimeout(timeout)
                sock.connect((get.get("host") or self.net.ip, self._port(ct, get["port"])))
                conn = http.client.HTTPConnection(self.net.ip, timeout=timeout)
                conn.sock = sock
                try:
                    conn.request("GET", get.get("path", "/"))
                    return 200 <= conn.getresponse().status < 400
                finally:
                    conn.close()
            if "tcpSocket" in spec:
                sock = socket_in(self.ctx.network.netns)
                sock.settimeout(timeout)
                with sock:
                    sock.connect((self.net.ip, self._port(ct, spec["tcpSocket"]["port"])))
                return True
            if "exec" in spec:
                launch = self._launch_spec(ct, argv=list(spec["exec"]["command"]))
                path = self.dir / f"{ct.name}.probe.json"
                path.write_text(json.dumps(launch))
                result = subprocess.run(
                    [sys.executable, str(LAUNCH), str(path)], capture_output=True, timeout=timeout + 5
                )
                return result.returncode == 0
        except (OSError, http.client.HTTPException, subprocess.TimeoutExpired):
            return False
        log.warning("pod %s/%s: probe of %s has no supported handler", self.namespace, self.name, ct.name)
        return False

    @staticmethod
    def _port(ct: Container, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in ct.spec.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise OSError(f"no port named {port!r}")

    def _kill(self, ct: Container, grace_s: float) -> None:
        """A failed liveness/startup probe: the container is killed and `_supervise` sees the exit
        (and restarts it by the pod's policy)."""
        self._signal(ct, signal.SIGKILL)

    def _stop_group(self, group: list[Container], grace_s: float) -> None:
        """SIGTERM to every container's process group, wait up to `grace_s`, SIGKILL the rest."""
        for ct in group:
            ct.done = True
        live = [ct for ct in group if ct.running()]
        for ct in live:
            self._signal(ct, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(ct.running() for ct in live) and time.monotonic() < deadline:
            time.sleep(TICK_S)
        for ct in live:
            if ct.running():
                self._signal(ct, signal.SIGKILL)
            assert ct.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                ct.proc.wait(timeout=10)
            self._reap(ct)
            if "running" in ct.state:
                code = ct.proc.returncode
                ct.state = {"terminated": {"exitCode": 128 - code if code < 0 else code, "reason": "Error" if code else "Completed",
                                           "startedAt": ct.state["running"]["startedAt"], "finishedAt": now()}}  # fmt: skip
            ct.ready = False

    @staticmethod
    def _signal(ct: Container, signum: int) -> None:
        if ct.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(ct.proc.pid, signum)

    @staticmethod
    def _reap(ct: Container) -> None:
        """Whatever the container left in its process group goes with it."""
        if ct.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(ct.proc.pid, signal.SIGKILL)

    # -- teardown --------------------------------------------------------------------------------

    def _teardown(self, grace_cap_s: float) -> None:
        meta = self.pod["metadata"]
        grace = float(
            meta.get("deletionGracePeriodSeconds")
            or self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        )
        grace = min(grace, grace_cap_s)
        began = time.monotonic()
        self._stop_group(self.apps, grace)
        remaining = max(1.0, grace - (time.monotonic() - began))
        self._stop_group([c for c in reversed(self.init)], remaining)
        if self.phase not in ("Succeeded", "Failed") and self._deleting():
            self.phase = "Failed" if self.pod["spec"].get("restartPolicy") == "Never" else self.phase
        self._release()

    def _release(self) -> None:
        self.ctx.network.remove_pod(self.uid)
        self.net = None
        shutil.rmtree(self.dir / "volumes", ignore_errors=True)

    def _finish_deletion(self) -> None:
        with contextlib.suppress(ApiFailed):
            self.ctx.api.request(
                "DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{self.name}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
            )  # fmt: skip

    # -- status ----------------------------------------------------------------------------------

    def _container_status(self, ct: Container) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": ct.name,
            "image": ct.spec.get("image", ""),
            "imageID": "",
            "ready": ct.ready,
            "started": ct.running() and ct.started,
            "restartCount": ct.restarts,
            "state": ct.state,
            "lastState": ct.last_state,
        }
        if ct.proc is not None:
            out["containerID"] = f"llmsim-runner://{self.uid}/{ct.name}/{ct.proc.pid}"
        return out

    def status(self) -> dict[str, Any]:
        ready = (
            self.phase == "Running"
            and all(ct.ready for ct in self.apps)
            and all(ct.ready for ct in self.init if ct.kind == "sidecar")
        )

        def cond(kind: str, value: bool) -> dict[str, Any]:
            return {
                "type": kind,
                "status": "True" if value else "False",
                "lastTransitionTime": self.started_at,
            }

        scheduled = [
            c for c in (self.pod.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"
        ]
        status: dict[str, Any] = {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.started_at,
            "conditions": [
                *(scheduled or [cond("PodScheduled", True)]),
                cond("PodReadyToStartContainers", self.net is not None),
                cond("Initialized", self.initialized),
                cond("ContainersReady", ready),
                cond("Ready", ready),
            ],
            "containerStatuses": [self._container_status(ct) for ct in self.apps],
            "qosClass": (self.pod.get("status") or {}).get("qosClass", "BestEffort"),
        }
        if self.init:
            status["initContainerStatuses"] = [self._container_status(ct) for ct in self.init]
        if self.net is not None:
            status["podIP"] = self.net.ip
            status["podIPs"] = [{"ip": self.net.ip}]
        if self.reason:
            status["reason"], status["message"] = self.reason, self.message
        return status

    def _write_status(self) -> None:
        status = self.status()
        comparable = json.dumps(
            {
                **status,
                "conditions": [
                    {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]
                ],
            },
            sort_keys=True,
        )
        if comparable == self._last_status:
            return
        try:
            self.ctx.api.patch(
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status", {"status": status}
            )
            self._last_status = comparable
        except ApiFailed as exc:
            if exc.status != 404:
                log.warning("pod %s/%s: status not written: %s", self.namespace, self.name, exc)

"""The sidecar watches its own SimulationProfile through the Kubernetes API (`--watch-profile`).

The mounted ConfigMap reaches a running pod only after the kubelet's sync (typically a minute);
the API's watch delivers `paused`, spec changes and deletion within a second. So the sidecar lists
its profile by name, then watches it, with the namespace's read-only Role the operator manages
(`llmsim-sidecar`: get/list/watch simulationprofiles, bound to the pods' ServiceAccounts).

* a spec from the API is anchored as the operator renders it (relative windows and `durationS`
  counted from the creation, `profiles.anchored`) and installed when it differs from the active one;
  the operator's `llmsim.io/kill-switch` annotation (a paused namespace) makes it `paused`;
* deletion (a DELETED event, or a list without it) fails safe at once: everything passes through
  until the profile exists again;
* when the API cannot be read (unreachable, 403, a broken answer), the mounted file stays the
  fallback (`reload.py` installs its changes again) for `grace_s`; longer than that, the sidecar
  fails safe too (`unreadable`), because it could no longer hear a kill switch. `grace_s <= 0`
  keeps the file forever.

Kubernetes I/O is plain aiohttp with the pod's ServiceAccount token (re-read on every connection,
as the kubelet rotates it); the decisions are `WatchHealth`, pure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import ValidationError

from llmsim import managed_fields, profiles
from llmsim.api.resources import KILL_SWITCH_ANNOTATION
from llmsim.api.timestamps import parse_time
from llmsim.errors import ProfileError, describe_validation_error
from llmsim.profiles import NamedProfile
from llmsim.proxy.audit import ControlAudit
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.state import ProxyState

log = logging.getLogger("llmsim.proxy")

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_GRACE_S = 30.0
"""How long the API may be unreadable before the sidecar fails safe (the file serves meanwhile)."""
PATH = "/apis/llmsim.io/v1alpha1/namespaces/{namespace}/simulationprofiles"


@dataclass(frozen=True)
class KubeTarget:
    """Where the profile lives and how to reach the API server."""

    namespace: str
    name: str
    api: str
    """Base URL of the API server (in a pod: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)."""
    token_file: Path = SA_DIR / "token"
    ca_file: Path | None = SA_DIR / "ca.crt"

    @staticmethod
    def parse(ref: str) -> tuple[str, str]:
        """`NAMESPACE/NAME` -> (namespace, name); ValueError naming the flag."""
        namespace, sep, name = ref.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise ValueError(f"--watch-profile {ref!r}: expected NAMESPACE/NAME")
        return namespace, name

    @staticmethod
    def in_cluster_api() -> str | None:
        host, port = (
            os.environ.get("KUBERNETES_SERVICE_HOST"),
            os.environ.get("KUBERNETES_SERVICE_PORT", "443"),
        )
        if not host:
            return None
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"

    def collection(self) -> str:
        return self.api.rstrip("/") + PATH.format(namespace=quote(self.namespace))

    def selector(self) -> str:
        return "metadata.name=" + self.name


@dataclass
class WatchHealth:
    """Whether what the API said still holds (pure; times are monotonic seconds)."""

    grace_s: float
    started: float
    last_read: float | None = None
    """When the API last answered (a list, a watch that opened, an event)."""
    deleted: bool = False
    healthy: bool = False
    """The API answered and nothing failed since (then its view is current)."""

    def read(self, now: float) -> None:
        self.last_read, self.healthy = now, True

    def gone(self, now: float) -> None:
        self.deleted = True
        self.read(now)

    def present(self, now: float) -> None:
        self.deleted = False
        self.read(now)

    def failed(self) -> None:
        self.healthy = False

    def failsafe(self, now: float) -> str | None:
        """`deleted`, `unreadable` (no answer for longer than the grace), or None."""
        if self.deleted:
            return "deleted"
        if (
            self.grace_s > 0
            and now - (self.last_read if self.last_read is not None else self.started) > self.grace_s
        ):
            return "unreadable"
        return None

    def authoritative(self) -> bool:
        """Whether the API's view is current (so the lagging file must not override it)."""
        return self.healthy


@dataclass
class WatchStats:
    """What the watch did (for tests and logs)."""

    installs: int = 0
    errors: int = 0
    last_error: str | None = None
    events: list[str] = field(default_factory=list)


class ProfileWatch:
    """Lists and watches one SimulationProfile; installs its spec into `state`, fails safe."""

    def __init__(
        self,
        target: KubeTarget,
        state: ProxyState,
        metrics: ProxyMetrics,
        *,
        grace_s: float = DEFAULT_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
        audit: ControlAudit | None = None,
    ) -> None:
        self.target = target
        self.state = state
        self.metrics = metrics
        self.clock = clock
        self.health = WatchHealth(grace_s, clock())
        self.stats = WatchStats()
        self.audit = audit
        """Told of every change the watch makes to what applies (the audit trail)."""
        self._posts: set[asyncio.Task[None]] = set()
        self._killed: str | None = None
        self._ssl = self._ssl_context()
        self.watch_timeout_s = int(max(5, min(60, grace_s / 3 if grace_s > 0 else 60)))
        """A watch ends (and is re-opened) this often, so a quiet profile still proves the API alive."""

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if not self.target.api.startswith("https"):
            return False
        ctx = ssl.create_default_context()
        if self.target.ca_file is not None and self.target.ca_file.is_file():
            ctx.load_verify_locations(cafile=str(self.target.ca_file))
        return ctx

    def _headers(self) -> dict[str, str]:
        token = self.target.token_file.read_text().strip()
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    # -- applying what the API says ------------------------------------------------------------

    def apply(self, obj: dict[str, Any] | None) -> None:
        """The resource as the API has it now (None: it does not exist)."""
        now = self.clock()
        if obj is None:
            self.health.gone(now)
            self._settle(now)
            return
        self.health.present(now)
        meta = obj.get("metadata") or {}
        source = f"SimulationProfile {self.target.namespace}/{self.target.name} (API)"
        try:
            parsed = profiles.parse_spec(obj.get("spec") or {}, source, prefix="spec")
            created = parse_time(meta.get("creationTimestamp"))
            spec = profiles.anchored(parsed, created)
            killed = (meta.get("annotations") or {}).get(KILL_SWITCH_ANNOTATION)
            if killed:  # the operator's namespace kill switch holds it
                spec = spec.model_copy(update={"paused": True})
        except ProfileError as exc:
            self._invalid("; ".join(exc.problems))
        except ValidationError as exc:
            self._invalid("; ".join(describe_validation_error(exc, "spec")))
        else:
            before = self.state.profile.spec
            if profiles.dump_spec(spec) != profiles.dump_spec(before):
                self.state.install(
                    NamedProfile(self.target.name, spec, f"api:{self.target.namespace}/{self.target.name}")
                )
                self.metrics.reloads.labels("ok").inc()
                self.stats.installs += 1
                why = f" (kill switch: {killed})" if killed else ""
                self._notify("installed", "watch", None, f"generation {meta.get('generation')}{why}")
                if spec.paused != before.paused:
                    switch = killed or self._killed
                    source = "kill-switch" if switch and not parsed.paused else "profile"
                    who = (
                        switch
                        if source == "kill-switch"
                        else managed_fields.manager_of(obj, "spec", "paused")
                    )
                    self._notify(
                        "paused" if spec.paused else "resumed",
                        source,
                        who,
                        f"generation {meta.get('generation')}",
                    )
            self._killed = killed
        self._settle(now)

    def _invalid(self, problems: str) -> None:
        self.metrics.reloads.labels("invalid").inc()
        log.error("watched profile rejected, keeping %r: %s", self.state.profile.name, problems)

    def _settle(self, now: float) -> None:
        """Bring the fail-safe and the file's role in line with the health."""
        reason = self.health.failsafe(now)
        self.state.api_authoritative = self.health.authoritative()
        if self.state.fail_safe(reason):
            detail = (
                f"everything passes through: the profile is {reason}"
                if reason
                else "the profile applies again"
            )
            self._notify("failsafe" if reason else "recovered", "watch", None, detail)

    def _notify(self, action: str, source: str, who: str | None, detail: str) -> None:
        self.stats.events.append(action)
        if self.audit is not None:
            try:
                self.audit.record(action, source, who, detail)
            except Exception:
                log.exception("profile watch audit failed")

    def post_event(self, kind: str, reason: str, message: str) -> None:
        """A Kubernetes Event on the profile (fire and forget; the Role allows `create` on events)."""
        try:
            task = asyncio.get_running_loop().create_task(self._post_event(kind, reason, message))
        except RuntimeError:
            return  # no loop (a test driving apply() directly): nothing to post with
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post_event(self, kind: str, reason: str, message: str) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        pod = os.environ.get("LLMSIM_POD_NAME") or "llmsim-proxy"
        body = {
            "apiVersion": "v1", "kind": "Event", "type": kind, "reason": reason, "message": message[:1000],
            "metadata": {"generateName": f"{self.target.name}.", "namespace": self.target.namespace},
            "involvedObject": {"apiVersion": "llmsim.io/v1alpha1", "kind": "SimulationProfile",
                               "name": self.target.name, "namespace": self.target.namespace},
            "source": {"component": "llmsim-proxy", "host": pod},
            "reportingComponent": "llmsim-proxy", "reportingInstance": pod,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }  # fmt: skip
        url = self.target.api.rstrip("/") + f"/api/v1/namespaces/{quote(self.target.namespace)}/events"
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url,
                    json=body,
                    headers=self._headers(),
                    ssl=self._ssl,
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as resp,
            ):
                if resp.status >= 300:
                    log.warning("kubernetes event %s refused: HTTP %d", reason, resp.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("kubernetes event %s not posted: %s", reason, exc)

    def failed(self, what: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = what
        self.health.failed()
        self._settle(self.clock())

    # -- the API ---------------------------------------------------------------------------------

    async def list_once(self, session: aiohttp.ClientSession) -> str:
        """List the profile by name; apply it; return the list's resourceVersion."""
        url = f"{self.target.collection()}?fieldSelector={quote(self.target.selector())}"
        async with session.get(url, headers=self._headers(), ssl=self._ssl) as resp:
            if resp.status != 200:
                raise WatchError(f"list: HTTP {resp.status} {(await resp.text())[:200]}")
            doc = await resp.json()
        items = doc.get("items") or []
        self.apply(items[0] if items else None)
        return str((doc.get("metadata") or {}).get("resourceVersion") or "")

    async def watch_once(self, session: aiohttp.ClientSession, version: str) -> str | None:
        """One watch from `version`, until the server ends it; the last resourceVersion seen, or
        None when the watch must start over with a list (410 Gone)."""
        query = (
            f"watch=1&allowWatchBookmarks=true&timeoutSeconds={self.watch_timeout_s}"
            f"&fieldSelector={quote(self.target.selector())}&resourceVersion={quote(version)}"
        )
        url = f"{self.target.collection()}?{query}"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self.watch_timeout_s + 15)
        async with session.get(url, headers=self._headers(), ssl=self._ssl, timeout=timeout) as resp:
            if resp.status == 410:
                return None
            if resp.status != 200:
                raise WatchError(f"watch: HTTP {resp.status} {(await resp.text())[:200]}")
            self.health.read(self.clock())
            self._settle(self.clock())
            async for raw in resp.content:
                if not raw.strip():
                    continue
                event = json.loads(raw)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise WatchError(f"watch: {obj.get('message', obj)}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    self.health.read(self.clock())
                    self._settle(self.clock())
                elif kind == "DELETED":
                    self.apply(None)
                elif kind in ("ADDED", "MODIFIED"):
                    self.apply(obj)
        self.health.read(self.clock())
        return version

    async def run(self, *, retry_s: float = 1.0, max_retry_s: float = 5.0) -> None:
        """List, then watch, forever; on trouble the file serves and the watch retries (bounded backoff)."""
        delay = retry_s
        ticker = asyncio.create_task(self._tick())
        try:
            async with aiohttp.ClientSession() as session:
                version: str | None = None
                while True:
                    try:
                        if version is None:
                            version = await self.list_once(session)
                        version = await self.watch_once(session, version)
                        delay = retry_s
                        continue
                    except asyncio.CancelledError:
                        raise
                    except (aiohttp.ClientError, OSError, WatchError, ValueError, TimeoutError) as exc:
                        self.failed(str(exc) or type(exc).__name__)
                        log.warning("profile watch: %s (retrying in %g s)", exc, delay)
                        version = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, max_retry_s)
        finally:
            ticker.cancel()

    async def _tick(self, every_s: float = 0.5) -> None:
        """The grace runs out without any event: look at the health on a timer too."""
        while True:
            await asyncio.sleep(every_s)
            self._settle(self.clock())


class WatchError(Exception):
    """The API answered, but not with what the watch needs."""

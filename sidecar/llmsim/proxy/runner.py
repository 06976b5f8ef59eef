"""Assembles and runs the proxy: front door, data path (with the simulator app), admin server,
optional TLS listener for host-alias capture, profile watcher."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from llmsim import profiles
from llmsim.api.profile import Mode
from llmsim.profiles import NamedProfile
from llmsim.proxy import frontdoor, upstream
from llmsim.proxy.admin import create_admin_app
from llmsim.proxy.admin_auth import TOKEN_FILE, AdminToken
from llmsim.proxy.audit import ControlAudit, ScheduleObserver
from llmsim.proxy.ca import DEFAULT_CA_DIR, DEFAULT_MAX_CONTEXTS, CertificateAuthority
from llmsim.proxy.datapath import DataPath
from llmsim.proxy.frontdoor import FrontDoor
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.profile_watch import DEFAULT_GRACE_S, SA_DIR, KubeTarget, ProfileWatch
from llmsim.proxy.reload import ProfileWatcher
from llmsim.proxy.reporting import Reporter, open_observations
from llmsim.proxy.routing import DEFAULT_UPSTREAMS, Pins, Router
from llmsim.proxy.scope import Scope
from llmsim.proxy.state import ProxyState
from llmsim.proxy.tlslistener import TlsListener
from llmsim.runtime.state import RuntimeState
from llmsim.server.app import create_app
from llmsim.telemetry.facade import Telemetry

log = logging.getLogger("llmsim.proxy")

Address = tuple[str, int]

CANCEL_GRACE_S = 0.2
"""After the drain, how long aiohttp may take to cancel a request still running (it may wait twice
this: once for the handler, once for its cancellation)."""


def parse_address(text: str, what: str) -> Address:
    """`host:port` -> (host, port); ValueError naming the option."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{what}: {text!r} is not HOST:PORT")
    return (host.strip("[]") or "127.0.0.1", int(port))


@dataclass
class ProxyOptions:
    """Everything `llmsim proxy` takes; `validate()` checks the combination and names the bad option."""

    profile: str | None = None
    """Preset name or profile file (a file is watched and hot-reloaded)."""
    mode: Mode | None = None
    """Replaces the profile's mode."""
    listen: Address = ("127.0.0.1", 15080)
    listen_also: tuple[Address, ...] = ()
    """More plain-HTTP listeners like `listen` (host-alias capture of an in-cluster provider on its
    own port, e.g. ollama.ml.svc:11434 resolving to 127.0.0.1:11434)."""
    admin: Address | None = ("127.0.0.1", 15090)
    ca_dir: Path = DEFAULT_CA_DIR
    tls_listen: Address | None = None
    """host-alias / iptables capture: terminate TLS here (e.g. 0.0.0.0:443) with certificates from our CA."""
    ipv6_loopback: bool = False
    """Also listen on [::1] at the `listen` and `tls_listen` ports, where the pod has IPv6
    (iptables capture: ip6tables redirects there); skipped with a warning where it has not."""
    tls_default_host: str = "api.openai.com"
    """Certificate presented to clients that send no SNI on `tls_listen`."""
    intercept: tuple[str, ...] = ()
    """Extra hosts (`host`, `*.domain`, `host:port`) to intercept besides the providers' and the profile's."""
    upstreams: dict[str, str] = field(default_factory=dict)
    """base-url capture: provider -> base URL (defaults for openai, anthropic, gemini)."""
    upstream_ca: Path | None = None
    """Extra CA file trusted for upstream TLS (besides the system store)."""
    resolve: dict[str, Address] = field(default_factory=dict)
    """host -> (ip, port) for upstream connections and tunnels (tests; pinning)."""
    bypass_hosts_file: bool = False
    """Resolve upstreams through DNS, ignoring /etc/hosts (host-alias capture with perturb/passthrough)."""
    observations: Path | None = None
    """Append measured timings (JSON lines) here, for `llmsim profile fit`."""
    admin_token_file: Path | None = None
    """The bearer token the admin port's control routes require (default: `<ca_dir>/admin-token`,
    created on first start)."""
    watch_profile: str | None = None
    """`NAMESPACE/NAME` of the SimulationProfile to watch through the Kubernetes API (the
    operator's sidecars); the `profile` file stays the fallback."""
    kube_api: str | None = None
    """API server URL for `watch_profile` (default: the in-cluster service)."""
    kube_token_file: Path = SA_DIR / "token"
    """Bearer token for the API server (default: the pod's ServiceAccount token)."""
    kube_ca_file: Path | None = SA_DIR / "ca.crt"
    """CA of the API server (default: the pod's ServiceAccount CA)."""
    watch_grace_s: float = DEFAULT_GRACE_S
    """How long the watched profile may be unreadable before everything passes through (<= 0: never)."""
    watch_interval_s: float = 0.5
    drain_s: float = 10.0
    """On shutdown (SIGTERM), how long in-flight requests and streams may take to finish."""
    head_timeout_s: float = frontdoor.DEFAULT_HEAD_TIMEOUT_S
    """A new connection's first request head (and an intercepted CONNECT's first request after the
    TLS handshake) must arrive within this long, or the connection is closed."""
    tunnel_idle_s: float = frontdoor.DEFAULT_TUNNEL_IDLE_S
    """A raw tunnel (non-LLM host, or a relayed TLS connection) idle this long either way is closed."""
    leaf_cache_size: int = DEFAULT_MAX_CONTEXTS
    """Per-host certificates kept in memory (least recently used evicted first)."""

    def validate(self) -> None:
        Scope.build(self.intercept)
        for name, value in (
            ("--drain", self.drain_s), ("--head-timeout", self.head_timeout_s),
            ("--tunnel-idle-timeout", self.tunnel_idle_s),
        ):  # fmt: skip
            if not value > 0:
                raise ValueError(f"{name}: {value:g} must be a positive number of seconds")
        if self.leaf_cache_size < 1:
            raise ValueError(f"--leaf-cache-size: {self.leaf_cache_size} must be at least 1")
        for provider, url in self.upstreams.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"--upstream {provider}={url}: the URL must start with http:// or https://")
        if self.upstream_ca is not None and not self.upstream_ca.is_file():
            raise ValueError(f"--upstream-ca {self.upstream_ca}: no such file")
        if self.admin_token_file is not None and not self.admin_token_file.is_file():
            raise ValueError(f"--admin-token-file {self.admin_token_file}: no such file")
        if self.watch_profile is not None:
            KubeTarget.parse(self.watch_profile)
            if (self.kube_api or KubeTarget.in_cluster_api()) is None:
                raise ValueError("--watch-profile: no API server (give --kube-api outside a pod)")
            if not self.kube_token_file.is_file():
                raise ValueError(f"--kube-token-file {self.kube_token_file}: no such file")

    def kube_target(self) -> KubeTarget | None:
        if self.watch_profile is None:
            return None
        namespace, name = KubeTarget.parse(self.watch_profile)
        api = self.kube_api or KubeTarget.in_cluster_api()
        assert api is not None
        return KubeTarget(namespace, name, api, self.kube_token_file, self.kube_ca_file)


def load_profile(ref: str | None) -> NamedProfile:
    return profiles.default_profile() if ref is None else profiles.load(ref)


class ProxyServer:
    """The running proxy; `start()` binds every listener, `stop()` closes them."""

    def __init__(self, options: ProxyOptions, profile: NamedProfile | None = None) -> None:
        options.validate()
        self.options = options
        self.profile_path = _watched_path(options.profile)
        self.state = ProxyState(
            profile or load_profile(options.profile),
            extra_hosts=options.intercept,
            mode_override=options.mode,
        )
        self.runtime = RuntimeState(self.state.registry)
        """Shared by the data path and the simulator app inside the proxy."""
        self.state.on_activate.append(self.runtime.reactivate)
        self.metrics = ProxyMetrics()
        self.metrics.bind(self.state)
        self.ca = CertificateAuthority(options.ca_dir, options.leaf_cache_size)
        resolver_overrides = dict(options.resolve)
        ssl_ctx = upstream.client_ssl_context(options.upstream_ca)
        self.pins = Pins()
        self.router = Router({**DEFAULT_UPSTREAMS, **options.upstreams}, pins=self.pins)
        self.datapath = DataPath(
            self.state,
            self.runtime,
            self.metrics,
            self.router,
            session_factory=lambda: upstream.new_session(
                upstream.UpstreamResolver(resolver_overrides, options.bypass_hosts_file), ssl_ctx
            ),
            reporter=Reporter(self.runtime, open_observations(options.observations)),
        )
        self.telemetry = Telemetry.for_registry(self.state.registry)
        """Every request's telemetry (simulated by the app, or answered by the data path)."""
        self.app = create_app(state=self.runtime, telemetry=self.telemetry)
        self.app.middlewares.insert(0, self.datapath.middleware())
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=CANCEL_GRACE_S
        )  # the drain is ours (`stop`): aiohttp's own waits twice its timeout
        self._admin_runner: web.AppRunner | None = None
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.listen_address: Address | None = None
        self.admin_address: Address | None = None
        self.also_addresses: list[Address] = []
        self.admin_token_path: Path | None = None
        """The file holding the admin port's bearer token."""
        self.tls_address: Address | None = None
        self._tls: TlsListener | None = None
        self.watcher: ProfileWatcher | None = None
        """Polls the profile file (when `--profile` is one)."""
        target = options.kube_target()
        self.audit = ControlAudit(self.state, self.metrics, self.telemetry.events)
        """The audit trail of control actions (metrics, events, Kubernetes Events)."""
        self.profile_watch: ProfileWatch | None = (
            None
            if target is None
            else ProfileWatch(
                target, self.state, self.metrics, grace_s=options.watch_grace_s, audit=self.audit
            )
        )
        """Watches the SimulationProfile through the API (`--watch-profile`)."""
        if self.profile_watch is not None:
            self.audit.kube_event = self.profile_watch.post_event
        self.schedule_observer = ScheduleObserver(self.state, self.audit, self.runtime.wall_clock)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self._runner.setup()
        http_server = self._runner.server
        assert http_server is not None
        door = FrontDoor(
            self.state, self.ca, http_server, self.metrics, tunnel_overrides=self.options.resolve,
            pins=self.pins, head_timeout_s=self.options.head_timeout_s,
            tunnel_idle_s=self.options.tunnel_idle_s,
        )  # fmt: skip
        host, port = self.options.listen
        server = await loop.create_server(door.protocol, host, port, reuse_address=True, backlog=1024)
        self._servers.append(server)
        self.listen_address = _bound(server)
        for also_host, also_port in self.options.listen_also:
            extra = await loop.create_server(
                door.protocol, also_host, also_port, reuse_address=True, backlog=1024
            )
            self._servers.append(extra)
            self.also_addresses.append(_bound(extra))
        if self.options.tls_listen is not None:
            ctx = self.ca.sni_context(self.options.tls_default_host)
            self._tls = TlsListener(
                self.state, http_server, ctx, self.metrics, self.options.resolve,
                head_timeout_s=self.options.head_timeout_s, tunnel_idle_s=self.options.tunnel_idle_s,
            )  # fmt: skip
            self.tls_address = await self._tls.start(*self.options.tls_listen)
        if self.options.ipv6_loopback:
            await self._listen_ipv6_loopback(door)
        own = {f"{h}:{p}" for h, p in [self.listen_address] if h}
        own |= {f"localhost:{self.listen_address[1]}", f"127.0.0.1:{self.listen_address[1]}"}
        self.router.own_addresses = frozenset(own)
        if self.options.admin is not None:
            token = (
                AdminToken(self.options.admin_token_file)
                if self.options.admin_token_file is not None
                else AdminToken.ensure(self.options.ca_dir / TOKEN_FILE)
            )
            self.admin_token_path = token.path
            admin_app = create_admin_app(
                self.state, self.metrics, token, lambda: self.telemetry.prometheus.render()[0], self.audit
            )
            self._admin_runner = web.AppRunner(admin_app, access_log=None, shutdown_timeout=CANCEL_GRACE_S)
            await self._admin_runner.setup()
            assert self._admin_runner.server is not None
            admin = await loop.create_server(
                self._admin_runner.server, *self.options.admin, reuse_address=True
            )
            self._servers.append(admin)
            self.admin_address = _bound(admin)
        if self.profile_path is not None:
            self.watcher = ProfileWatcher(
                self.profile_path, self.state, self.metrics, self.options.watch_interval_s, audit=self.audit
            )
            self._tasks.append(asyncio.create_task(self.watcher.run()))
        if self.profile_watch is not None:
            self._tasks.append(asyncio.create_task(self.profile_watch.run()))
        self._tasks.append(asyncio.create_task(self._observe_schedule()))
        self.state.ready = True
        log.info(
            "llmsim proxy on %s:%d (admin %s, token %s, CA %s, profile %r)",
            *self.listen_address, self.admin_address, self.admin_token_path, self.ca.cert_path,
            self.state.profile.name,
        )  # fmt: skip

    async def _observe_schedule(self, every_s: float = 1.0) -> None:
        """Windows opening and closing and the expiry, into the audit trail (within `every_s`)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                start = self.runtime.activated_at.get(self.state.profile.name)
                self.schedule_observer.tick(-1.0 if start is None else loop.time() - start)
            except Exception:
                log.exception("schedule observer failed")
            await asyncio.sleep(every_s)

    async def _listen_ipv6_loopback(self, door: FrontDoor) -> None:
        loop = asyncio.get_running_loop()
        assert self.listen_address is not None
        try:
            extra = await loop.create_server(door.protocol, "::1", self.listen_address[1], reuse_address=True)
            self._servers.append(extra)
            self.also_addresses.append(_bound(extra))
            if self._tls is not None and self.tls_address is not None:
                self.also_addresses.append(await self._tls.listen_also("::1", self.tls_address[1]))
        except OSError as exc:
            log.warning(
                "no IPv6 loopback listener (%s): IPv6 traffic is not captured here", exc.strerror or exc
            )

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish for up to `drain_s`, then cancel what is
        left (within `CANCEL_GRACE_S`) and close everything."""
        self.state.ready = False
        for task in self._tasks:
            task.cancel()
        for server in self._servers:
            server.close()
        if self._tls is not None:
            self._tls.close()
        if not await self.datapath.wait_idle(self.options.drain_s):
            log.warning(
                "drain: %d request(s) still in flight after %g s; cutting them",
                self.datapath.in_flight, self.options.drain_s,
            )  # fmt: skip
        await self._runner.cleanup()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
        await self.datapath.close()

    async def serve_forever(self, stop: asyncio.Event | None = None) -> None:
        """Serve until `stop` is set; then stop accepting and let in-flight requests finish
        (up to `drain_s`)."""
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
            log.info("shutting down: draining in-flight requests for up to %g s", self.options.drain_s)
        finally:
            await self.stop()


def _bound(server: asyncio.Server) -> Address:
    for sock in server.sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host, port = sock.getsockname()[:2]
            return str(host), int(port)
    raise RuntimeError("listener has no TCP socket")


def _watched_path(ref: str | None) -> Path | None:
    if ref is None:
        return None
    path = Path(ref)
    return path if path.exists() else None

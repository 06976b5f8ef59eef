"""The SimulationProfiles the webhook decides with, as every replica sees them.

kopf pauses the watches of every replica that is not the active peer, and its indexes stay empty
while paused, yet every replica serves the webhook (the Service balances over all of them). So the
webhook does not use a kopf index: each replica lists and watches the profiles itself, in a
thread, with the official client (like controller-runtime's cache, which runs on every replica
whatever the leader election says). Until the first list has arrived, a lookup goes to the API
server directly, so no replica ever admits a pod unpatched for want of state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes.client
from kubernetes.watch.watch import iter_resp_lines

from llmsim.api.status import ProfilePhase
from llmsim_operator import constants as c
from llmsim_operator import injection, k8s
from llmsim_operator.resources import names

log = logging.getLogger("llmsim.operator.profiles")
WATCH_TIMEOUT_S = 240
"""Server-side timeout of one watch request; the watch then resumes from its resourceVersion."""
RETRY_DELAYS_S = (0.5, 1, 2, 5, 10)


def profile_info(obj: Mapping[str, Any]) -> injection.ProfileInfo:
    """What the webhook needs to know about one SimulationProfile object."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    selector = spec.get("selector") or None
    match_labels = dict(selector.get("matchLabels") or {}) if isinstance(selector, dict) else None
    return injection.ProfileInfo(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        config_map=names.profile_config_map(str(meta.get("name") or "")),
        match_labels=match_labels,
        intercept_hosts=tuple(str(h) for h in spec.get("interceptHosts") or []),
        ready=(obj.get("status") or {}).get("phase") == ProfilePhase.READY.value,
    )


class ProfileCache:
    """List + watch of SimulationProfiles cluster-wide, or in each of `namespaces`."""

    def __init__(self, namespaces: Sequence[str] = ()) -> None:
        self._scopes: tuple[str | None, ...] = tuple(namespaces) or (None,)
        self._lock = threading.Lock()
        self._profiles: dict[str | None, dict[tuple[str, str], injection.ProfileInfo]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: dict[str | None, Any] = {}

    def start(self) -> ProfileCache:
        for scope in self._scopes:
            thread = threading.Thread(
                target=self._run, args=(scope,), name=f"llmsim-profile-cache-{scope or 'all'}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            responses = list(self._responses.values())
        for response in responses:  # unblocks a thread waiting for the next watch event
            try:
                response.shutdown()
            except Exception:
                pass

    def _scope_of(self, namespace: str) -> str | None:
        return None if self._scopes == (None,) else namespace

    def profiles(self, namespace: str) -> list[injection.ProfileInfo] | None:
        """The profiles of `namespace`, or None until this replica has listed them once."""
        scope = self._scope_of(namespace)
        with self._lock:
            known = self._profiles.get(scope)
            if known is None:
                return None if scope in self._scopes else []
            return [info for info in known.values() if info.namespace == namespace]

    async def lookup(self, namespace: str) -> list[injection.ProfileInfo]:
        """The profiles of `namespace`, from the cache or, before it is synced, the API server."""
        cached = self.profiles(namespace)
        if cached is not None:
            return cached
        items = await asyncio.to_thread(k8s.list_custom, c.PROFILES, namespace)
        return [profile_info(item) for item in items]

    # -- the watch thread --------------------------------------------------------------------------

    def _run(self, scope: str | None) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                version = self._list(scope)
                failures = 0
                self._watch(scope, version)
            except WatchExpired:
                continue  # normal: the API server compacted past our version; list again
            except Exception as exc:
                if self._stop.is_set():
                    return
                delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)]
                failures += 1
                level = logging.WARNING if failures > 2 else logging.DEBUG
                log.log(
                    level, "profile cache (%s): %s; retrying in %s s", scope or "all namespaces", exc, delay
                )
                self._stop.wait(delay)

    def _api_call(self, scope: str | None, **kwargs: Any) -> Any:
        api = kubernetes.client.CustomObjectsApi()
        if scope is None:
            return api.list_cluster_custom_object(c.GROUP, c.VERSION, c.PROFILES, **kwargs)
        return api.list_namespaced_custom_object(c.GROUP, c.VERSION, scope, c.PROFILES, **kwargs)

    def _list(self, scope: str | None) -> str:
        listing = self._api_call(scope, _request_timeout=k8s.TIMEOUT)
        fresh: dict[tuple[str, str], injection.ProfileInfo] = {}
        for item in listing.get("items") or []:
            info = profile_info(item)
            fresh[(info.namespace, info.name)] = info
        with self._lock:
            self._profiles[scope] = fresh
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, scope: str | None, version: str) -> None:
        """Apply watch events until the server ends the watch (then the caller lists again only if
        the watch expired; a normal timeout resumes from the last resourceVersion)."""
        while not self._stop.is_set():
            response = self._api_call(
                scope,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_TIMEOUT_S,
                _preload_content=False,
                _request_timeout=(k8s.TIMEOUT[0], WATCH_TIMEOUT_S + 30),
            )
            with self._lock:
                self._responses[scope] = response
            try:
                for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                    if not line:
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    kind = event.get("type")
                    if kind == "ERROR":  # 410 Gone: the version is too old; list again
                        raise WatchExpired(str(obj.get("message") or obj))
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self._apply(scope, kind, obj)
            finally:
                with self._lock:
                    self._responses.pop(scope, None)
                response.release_conn()

    def _apply(self, scope: str | None, kind: str, obj: Mapping[str, Any]) -> None:
        info = profile_info(obj)
        with self._lock:
            known = self._profiles.setdefault(scope, {})
            if kind == "DELETED":
                known.pop((info.namespace, info.name), None)
            else:
                known[(info.namespace, info.name)] = info


class WatchExpired(RuntimeError):
    """The API server ended the watch with an error (typically 410 Gone)."""

"""The few Kubernetes API calls the handlers make (the official client, configured by kopf's login).

Clients are made per call, never module-global. API errors are classified here: conflicts and
"not found" are part of the normal flow; 429/5xx become `kopf.TemporaryError` (kopf retries with a
delay); other 4xx become `kopf.PermanentError` (no crash loop on one bad object).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import kopf
import kubernetes.client
from kubernetes.client.exceptions import ApiException

from llmsim_operator import constants as c

Body = dict[str, Any]
RETRY_DELAY_S = 10.0
TIMEOUT = (5.0, 30.0)
"""(connect, read) timeout of every call: a stuck API server must not hang a handler thread."""


@contextmanager
def classified(what: str) -> Iterator[None]:
    """Turn ApiExceptions into kopf's temporary/permanent errors."""
    try:
        yield
    except ApiException as exc:
        status = exc.status or 0
        if status == 429 or status >= 500 or status == 0:
            raise kopf.TemporaryError(
                f"{what}: API error {status} {exc.reason}", delay=RETRY_DELAY_S
            ) from exc
        raise kopf.PermanentError(f"{what}: API error {status} {exc.reason}") from exc


def configure_client() -> None:
    """Load the in-cluster or kubeconfig credentials into the client's default configuration (kopf's
    login does the same, but only after the start-up handlers, which already need the API)."""
    import kubernetes.config

    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]


def _core() -> Any:
    return kubernetes.client.CoreV1Api()


def _batch() -> Any:
    return kubernetes.client.BatchV1Api()


def _custom() -> Any:
    return kubernetes.client.CustomObjectsApi()


def _rbac() -> Any:
    return kubernetes.client.RbacAuthorizationV1Api()


def _status_of(exc: ApiException) -> int:
    return int(exc.status or 0)


def _call(what: str, call: Callable[[], Any], *tolerated: int) -> tuple[Any, int | None]:
    """Run one API call with `classified` errors; an ApiException whose status is in `tolerated`
    (404 for reads and deletes, 409 for creates) is part of the flow: it returns (None, status)."""
    with classified(what):
        try:
            return call(), None
        except ApiException as exc:
            if _status_of(exc) in tolerated:
                return None, _status_of(exc)
            raise


def _plain(obj: Any) -> Body:
    """A client model object as the plain dict the API server sent."""
    out: Body = kubernetes.client.ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return out


def apply_config_map(body: Body) -> None:
    """Create the ConfigMap, or replace its data when it exists."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    what = f"ConfigMap {ns}/{name}"
    _, conflict = _call(
        what,
        lambda: _core().create_namespaced_config_map(namespace=ns, body=body, _request_timeout=TIMEOUT),
        409,
    )
    if conflict:
        patch = {k: v for k, v in body.items() if k in ("data", "binaryData")}
        patch["metadata"] = {"labels": body["metadata"].get("labels", {})}
        _call(
            what,
            lambda: _core().patch_namespaced_config_map(
                name=name, namespace=ns, body=patch, _request_timeout=TIMEOUT
            ),
        )


def delete_config_map(namespace: str, name: str) -> None:
    _call(
        f"ConfigMap {namespace}/{name}",
        lambda: _core().delete_namespaced_config_map(
            name=name, namespace=namespace, _request_timeout=TIMEOUT
        ),
        404,
    )


def apply_role(body: Body) -> None:
    """Create the Role, or replace its rules when they differ."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    what = f"Role {ns}/{name}"
    existing, missing = _call(
        what, lambda: _rbac().read_namespaced_role(name=name, namespace=ns, _request_timeout=TIMEOUT), 404
    )
    if missing:
        _call(
            what,
            lambda: _rbac().create_namespaced_role(namespace=ns, body=body, _request_timeout=TIMEOUT),
            409,
        )
    elif _plain(existing).get("rules") != body["rules"]:
        patch = {"rules": body["rules"]}
        _call(
            what,
            lambda: _rbac().patch_namespaced_role(
                name=name, namespace=ns, body=patch, _request_timeout=TIMEOUT
            ),
        )


def read_role_binding(namespace: str, name: str) -> Body | None:
    found, missing = _call(
        f"RoleBinding {namespace}/{name}",
        lambda: _rbac().read_namespaced_role_binding(
            name=name, namespace=namespace, _request_timeout=TIMEOUT
        ),
        404,
    )
    return None if missing else _plain(found)


def write_role_binding(body: Body, existing: Body | None) -> bool:
    """Create the RoleBinding, or set its subjects on `existing` (only if unchanged since read:
    False on a conflict, and the caller reads again)."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    what = f"RoleBinding {ns}/{name}"
    if existing is None:
        _, conflict = _call(
            what,
            lambda: _rbac().create_namespaced_role_binding(namespace=ns, body=body, _request_timeout=TIMEOUT),
            409,
        )
        return conflict is None
    patch = {
        "metadata": {"resourceVersion": existing["metadata"]["resourceVersion"]},
        "subjects": body["subjects"],
    }
    _, conflict = _call(
        what,
        lambda: _rbac().patch_namespaced_role_binding(
            name=name, namespace=ns, body=patch, _request_timeout=TIMEOUT
        ),
        409,
    )
    return conflict is None


def create_secret_if_missing(body: Body) -> bool:
    """Create the Secret unless it exists (its content is then left alone); True when created."""
    ns = body["metadata"]["namespace"]
    _, conflict = _call(
        f"Secret {ns}/{body['metadata']['name']}",
        lambda: _core().create_namespaced_secret(namespace=ns, body=body, _request_timeout=TIMEOUT),
        409,
    )
    return conflict is None


def read_secret(namespace: str, name: str) -> Body | None:
    secret, missing = _call(
        f"Secret {namespace}/{name}",
        lambda: _core().read_namespaced_secret(name=name, namespace=namespace, _request_timeout=TIMEOUT),
        404,
    )
    return None if missing else _plain(secret)


def write_secret(body: Body, existing: Body | None) -> bool:
    """Create the Secret when `existing` is None, else update `existing` (optimistic concurrency:
    only if nobody changed it since it was read). False on a conflict: another writer (a second
    replica) got there first, and the caller reads again and goes with what is stored."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    what = f"Secret {ns}/{name}"
    if existing is None:
        _, conflict = _call(
            what,
            lambda: _core().create_namespaced_secret(namespace=ns, body=body, _request_timeout=TIMEOUT),
            409,
        )
        return conflict is None
    # A patch that carries the resourceVersion read is a precondition: 409 when it changed since.
    meta = body["metadata"]
    patch = {
        "metadata": {
            "resourceVersion": existing["metadata"]["resourceVersion"],
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {},
        },
        "data": body["data"],
    }
    _, conflict = _call(
        what,
        lambda: _core().patch_namespaced_secret(
            name=name, namespace=ns, body=patch, _request_timeout=TIMEOUT
        ),
        409,
    )
    return conflict is None


def create_job(body: Body) -> bool:
    """Create a Job; False when it already exists."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    _, conflict = _call(
        f"Job {ns}/{name}",
        lambda: _batch().create_namespaced_job(namespace=ns, body=body, _request_timeout=TIMEOUT),
        409,
    )
    return conflict is None


def delete_job(namespace: str, name: str) -> None:
    """Delete a Job and (in a real cluster) its pods."""
    _call(
        f"Job {namespace}/{name}",
        lambda: _batch().delete_namespaced_job(
            name=name, namespace=namespace, propagation_policy="Background", _request_timeout=TIMEOUT
        ),
        404,
    )


def read_job(namespace: str, name: str) -> Body | None:
    job, missing = _call(
        f"Job {namespace}/{name}",
        lambda: _batch().read_namespaced_job(name=name, namespace=namespace, _request_timeout=TIMEOUT),
        404,
    )
    return None if missing else _plain(job)


def worker_logs(namespace: str, job_name: str) -> list[str]:
    """Logs of the Job's succeeded worker pods (one per completion index, the latest attempt)."""
    with classified(f"pods of Job {namespace}/{job_name}"):
        pods = (
            _core()
            .list_namespaced_pod(
                namespace=namespace, label_selector=f"{c.RUN_LABEL}={job_name}", _request_timeout=TIMEOUT
            )
            .items
        )
        logs: list[str] = []
        for pod in pods:
            labels = pod.metadata.labels or {}
            if labels.get(c.RUN_LABEL) != job_name or (pod.status and pod.status.phase != "Succeeded"):
                continue
            try:
                logs.append(
                    str(
                        _core().read_namespaced_pod_log(
                            name=pod.metadata.name, namespace=namespace, _request_timeout=TIMEOUT
                        )
                    )
                )
            except ApiException as exc:
                if _status_of(exc) != 404:
                    raise
    return logs


def list_custom(plural: str, namespace: str) -> list[Body]:
    """The namespace's objects of one of our custom resources."""
    listing, _ = _call(
        f"{plural} in {namespace}",
        lambda: _custom().list_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, plural, _request_timeout=TIMEOUT
        ),
    )
    return [dict(item) for item in listing.get("items") or []]


def crd_exists(name: str) -> bool:
    """Whether the CustomResourceDefinition `name` (`<plural>.<group>`) is installed."""
    found, missing = _call(
        f"CustomResourceDefinition {name}",
        lambda: kubernetes.client.ApiextensionsV1Api().read_custom_resource_definition(
            name=name, _request_timeout=TIMEOUT
        ),
        404,
    )
    return missing is None and found is not None


def custom_object_exists(group: str, version: str, plural: str, name: str, namespace: str | None) -> bool:
    """Whether a (cluster-scoped when `namespace` is None) custom object exists."""
    if namespace is None:
        call = lambda: _custom().get_cluster_custom_object(  # noqa: E731
            group, version, plural, name, _request_timeout=TIMEOUT
        )
    else:
        call = lambda: _custom().get_namespaced_custom_object(  # noqa: E731
            group, version, namespace, plural, name, _request_timeout=TIMEOUT
        )
    _, missing = _call(f"{plural} {namespace or ''}/{name}", call, 404)
    return missing is None


def patch_status(plural: str, namespace: str, name: str, status: Body) -> None:
    """Merge-patch the status subresource of one of our custom resources (gone: nothing to do)."""
    _call(
        f"{plural} {namespace}/{name} status",
        lambda: _custom().patch_namespaced_custom_object_status(
            c.GROUP, c.VERSION, namespace, plural, name, {"status": status}, _request_timeout=TIMEOUT
        ),
        404,
    )


def annotate_custom(plural: str, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
    """Merge-patch annotations of one of our custom resources (None removes one; gone: nothing)."""
    _call(
        f"{plural} {namespace}/{name} annotations",
        lambda: _custom().patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, plural, name, {"metadata": {"annotations": annotations}},
            _request_timeout=TIMEOUT,
        ),
        404,
    )  # fmt: skip


def read_custom(plural: str, namespace: str, name: str) -> Body | None:
    obj, missing = _call(
        f"{plural} {namespace}/{name}",
        lambda: _custom().get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, plural, name, _request_timeout=TIMEOUT
        ),
        404,
    )
    return None if missing else dict(obj)


def patch_webhook_ca_bundle(configuration: str, ca_pem: bytes) -> bool:
    """Set `caBundle` on every webhook of the chart's MutatingWebhookConfiguration; False if absent."""
    api = kubernetes.client.AdmissionregistrationV1Api()
    with classified(f"MutatingWebhookConfiguration {configuration}"):
        try:
            raw = api.read_mutating_webhook_configuration(
                name=configuration, _request_timeout=TIMEOUT, _preload_content=False
            )
        except ApiException as exc:
            if _status_of(exc) == 404:
                return False
            raise
        webhooks = json.loads(raw.data).get("webhooks") or []  # type: ignore[attr-defined]
        bundle = base64.b64encode(ca_pem).decode("ascii")
        ops = [
            {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
            for i, hook in enumerate(webhooks)
            if (hook.get("clientConfig") or {}).get("caBundle") != bundle
        ]
        if ops:
            api.patch_mutating_webhook_configuration(name=configuration, body=ops, _request_timeout=TIMEOUT)
    return True

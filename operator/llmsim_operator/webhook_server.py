"""kopf's webhook server, plus the request's namespace copied into the reviewed object.

A pod in a CREATE AdmissionReview often has no `metadata.namespace` (it comes from the URL), and
kopf passes handlers only the object. The namespace decides which profiles apply, so it is filled in
from `request.namespace` before kopf sees the review (the patch is computed against that same body,
so the namespace never appears in the returned JSONPatch).
"""

from __future__ import annotations

from typing import Any

import aiohttp.web
import kopf


def with_request_namespace(review: Any) -> Any:
    """The review with `request.object.metadata.namespace` set from `request.namespace` if missing."""
    request = review.get("request") if isinstance(review, dict) else None
    if isinstance(request, dict):
        obj, namespace = request.get("object"), request.get("namespace")
        if isinstance(obj, dict) and namespace:
            meta = obj.setdefault("metadata", {})
            if isinstance(meta, dict) and not meta.get("namespace"):
                meta["namespace"] = namespace
    return review


class NamespacedWebhookServer(kopf.WebhookServer):
    @staticmethod
    async def _serve(fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:
        async def fn_with_namespace(data: Any, **kwargs: Any) -> Any:
            return await fn(with_request_namespace(data), **kwargs)

        response: aiohttp.web.Response = await kopf.WebhookServer._serve(fn_with_namespace, request)  # type: ignore[arg-type]
        return response

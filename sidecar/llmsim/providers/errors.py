"""Errors in a provider's shape when no endpoint is at hand. Pure.

An endpoint renders its own errors (`Endpoint.render_error`, which may quote the request). Paths the
simulator has no route for, and requests the proxy answers on a route the simulator does not know,
still get the provider's own error body: the provider comes from `catalog.classify`, the shape from
its module.
"""

from __future__ import annotations

from llmsim.providers import anthropic, gemini, ollama, openai_common
from llmsim.providers.base import ApiError, BodyAnswer, ErrorKind

UNROUTED_REQUEST_ID = "req_unrouted"
INTERNAL_ERROR_MESSAGE = "The simulator failed to process this request (internal error; see the llmsim log)."


def internal_error() -> ApiError:
    """What a client gets when llmsim itself fails on its request (the fail-open answer)."""
    return ApiError(ErrorKind.SERVER_ERROR, INTERNAL_ERROR_MESSAGE)


def error_answer(provider: str, error: ApiError, request_id: str = "") -> BodyAnswer:
    """`error` as `provider` (`openai`, `azure`, `anthropic`, `gemini`, `ollama`) answers it;
    `request_id`: the id the simulator assigned (as its endpoints quote it), none for unrouted paths."""
    if provider == "ollama":
        return ollama.error_answer(error)
    if provider == "gemini":
        return gemini.error_answer(error)
    if provider == "anthropic":
        return anthropic.error_answer(
            error, anthropic.error_request_id(request_id) if request_id else UNROUTED_REQUEST_ID
        )
    return openai_common.error_answer(error, request_id or UNROUTED_REQUEST_ID, azure=provider == "azure")

"""The route table: which endpoint serves which method and path.

Provider modules contribute routes here; the app factory binds each to a Pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmsim.providers import anthropic, gemini, ollama
from llmsim.providers.base import Endpoint
from llmsim.providers.openai_chat import ChatCompletions
from llmsim.providers.openai_completions import Completions
from llmsim.providers.openai_embeddings import Embeddings
from llmsim.providers.openai_responses import Responses


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    endpoint: Endpoint


def openai_routes() -> list[Route]:
    return [
        Route("POST", "/v1/chat/completions", ChatCompletions("openai")),
        Route("POST", "/v1/completions", Completions("openai")),
        Route("POST", "/v1/embeddings", Embeddings("openai")),
        Route("POST", "/v1/responses", Responses("openai")),
    ]


def azure_routes() -> list[Route]:
    prefix = "/openai/deployments/{deployment}"
    return [
        Route("POST", prefix + "/chat/completions", ChatCompletions("azure")),
        Route("POST", prefix + "/completions", Completions("azure")),
        Route("POST", prefix + "/embeddings", Embeddings("azure")),
        # Azure's newer "v1" surface is the OpenAI API under /openai/v1.
        Route("POST", "/openai/v1/chat/completions", ChatCompletions("azure")),
        Route("POST", "/openai/v1/completions", Completions("azure")),
        Route("POST", "/openai/v1/embeddings", Embeddings("azure")),
        Route("POST", "/openai/v1/responses", Responses("azure")),
        Route("POST", "/openai/responses", Responses("azure")),
    ]


def anthropic_routes() -> list[Route]:
    return [
        Route("POST", "/v1/messages", anthropic.Messages()),
        Route("POST", "/v1/messages/count_tokens", anthropic.CountTokens()),
    ]


def gemini_routes() -> list[Route]:
    prefix = "/{version:v1|v1beta|v1alpha}/models/{model:[^/:]+}:"
    return [Route("POST", prefix + method, endpoint) for method, endpoint in gemini.ENDPOINTS.items()]


def ollama_routes() -> list[Route]:
    return [
        Route("POST", "/api/chat", ollama.Chat()),
        Route("POST", "/api/generate", ollama.Generate()),
        Route("POST", "/api/embed", ollama.Embed()),
    ]


ROUTE_TABLES = (openai_routes, azure_routes, anthropic_routes, gemini_routes, ollama_routes)
"""Functions returning each provider's routes; provider modules add theirs here."""


def all_routes() -> list[Route]:
    return [route for table in ROUTE_TABLES for route in table()]

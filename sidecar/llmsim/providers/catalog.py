"""The provider catalog: who each LLM provider is on the wire. Pure data and one classifier.

The one home of the facts that several parts of llmsim need about the providers themselves (not
about their request and response bodies, which the provider modules own):

* the proxy: the hosts whose TLS it intercepts (`TLS_HOSTS`), where base-url capture forwards
  (`default_upstreams`), which provider a request is for (`classify`);
* the simulator: whose error shape an unrouted path gets and whose model list `GET /v1/models`
  means (`classify`);
* the operator: the host names host-alias capture points at the sidecar (`ALIAS_HOSTS`) and the
  variables base-url capture sets (`base_url_env`);
* the load generator: each provider's chat path, credential header and required headers;
* everyone: the credentials that are never logged (`CREDENTIAL_HEADERS`, `CREDENTIAL_QUERY`).

Imports only the standard library: the operator reads it without the simulator's dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class ProviderInfo:
    """What identifies one provider's API, independent of any request body."""

    name: str
    """`openai`, `azure`, `anthropic`, `gemini` or `ollama` (metrics label, profile `provider`)."""
    hosts: tuple[str, ...] = ()
    """Host patterns of the public API (fnmatch, lower-case): the proxy intercepts their TLS."""
    default_upstream: str | None = None
    """Where base-url capture forwards this provider's requests (None: it must be configured)."""
    base_url_env: str | None = None
    """The official SDK's base-URL environment variable."""
    base_url_path: str = ""
    """What that variable carries after the server's address (OpenAI's SDK expects `/v1`)."""
    credential_header: str = "authorization"
    """The request header that carries the API key."""
    credential_scheme: str = ""
    """What precedes the key in that header (`Bearer `)."""
    chat_path: str = ""
    """The chat route, with `{deployment}` (Azure) or `{version}`, `{model}`, `{method}` (Gemini)."""
    required_headers: tuple[tuple[str, str], ...] = ()
    """Headers every request must carry (Anthropic's API version)."""


OPENAI = ProviderInfo(
    "openai",
    hosts=("api.openai.com",),
    default_upstream="https://api.openai.com",
    base_url_env="OPENAI_BASE_URL",
    base_url_path="/v1",
    credential_scheme="Bearer ",
    chat_path="/v1/chat/completions",
)
AZURE = ProviderInfo(
    "azure",
    hosts=("*.openai.azure.com",),
    base_url_env="AZURE_OPENAI_ENDPOINT",
    credential_header="api-key",
    chat_path="/openai/deployments/{deployment}/chat/completions",
)
ANTHROPIC = ProviderInfo(
    "anthropic",
    hosts=("api.anthropic.com",),
    default_upstream="https://api.anthropic.com",
    base_url_env="ANTHROPIC_BASE_URL",
    credential_header="x-api-key",
    chat_path="/v1/messages",
    required_headers=(("anthropic-version", "2023-06-01"),),
)
GEMINI = ProviderInfo(
    "gemini",
    hosts=("generativelanguage.googleapis.com",),
    default_upstream="https://generativelanguage.googleapis.com",
    base_url_env="GOOGLE_GEMINI_BASE_URL",
    credential_header="x-goog-api-key",
    chat_path="/{version}/models/{model}:{method}",
)
OLLAMA = ProviderInfo(
    "ollama",
    base_url_env="OLLAMA_HOST",
    credential_scheme="Bearer ",
    chat_path="/api/chat",
)

PROVIDERS: tuple[ProviderInfo, ...] = (OPENAI, AZURE, ANTHROPIC, GEMINI, OLLAMA)
"""Every provider, in the order llmsim lists them."""

TLS_HOSTS: tuple[str, ...] = tuple(host for info in PROVIDERS for host in info.hosts)
"""Provider host patterns whose TLS the proxy always intercepts."""

ALIAS_HOSTS: tuple[str, ...] = tuple(host for host in TLS_HOSTS if "*" not in host)
"""Provider host names a pod's `hostAliases` can point at the sidecar (wildcards cannot be aliased)."""

CREDENTIAL_HEADERS: tuple[str, ...] = tuple(dict.fromkeys(info.credential_header for info in PROVIDERS))
"""Headers that carry provider credentials (`authorization`, `api-key`, `x-api-key`,
`x-goog-api-key`): forwarded upstream, never logged or exported."""

CREDENTIAL_QUERY = "key"
"""Gemini's query parameter for the API key (`?key=`), never logged either."""

ANTHROPIC_VERSION_HEADER = ANTHROPIC.required_headers[0][0]


def get(name: str) -> ProviderInfo:
    """The provider called `name`; KeyError naming the known ones."""
    for info in PROVIDERS:
        if info.name == name:
            return info
    raise KeyError(f"unknown provider {name!r}; known: {', '.join(i.name for i in PROVIDERS)}")


def default_upstreams() -> dict[str, str]:
    """provider -> base URL base-url capture forwards to (openai, anthropic, gemini)."""
    return {info.name: info.default_upstream for info in PROVIDERS if info.default_upstream}


def base_url_env(server_url: str) -> list[tuple[str, str]]:
    """The SDK variables that point every provider at `server_url` (e.g. the sidecar)."""
    return [(info.base_url_env, server_url + info.base_url_path) for info in PROVIDERS if info.base_url_env]


def provider_of_host(host: str) -> str | None:
    """The provider whose public API `host` (`name` or `name:port`) is (None for any other host)."""
    name = host.lower()
    if name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    name = name.rstrip(".")
    for info in PROVIDERS:
        if any(fnmatchcase(name, pattern) for pattern in info.hosts):
            return info.name
    return None


def is_gemini_path(path: str) -> bool:
    """Gemini's prefixes (`/v1beta/`, `/v1alpha/`) or a `/models/{model}:{method}` call."""
    return path.startswith(("/v1beta/", "/v1alpha/")) or (
        "/models/" in path and ":" in path.rsplit("/", 1)[-1]
    )


def classify(
    path: str,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    host: str = "",
) -> str:
    """Which provider a request is for.

    A provider's own host decides first; then the path (`/openai/` Azure, `/v1/messages`
    Anthropic, Gemini's prefixes and `:method` calls, `/api/` Ollama); where providers share a
    path, the credentials (DESIGN.md): `x-goog-api-key` or `key=` means Gemini, Anthropic's
    `anthropic-version` or `x-api-key` means Anthropic; everything else is OpenAI. `headers` may
    be any mapping with lower-case (or case-insensitive) keys.
    """
    by_host = provider_of_host(host) if host else None
    if by_host is not None:
        return by_host
    if path.startswith("/openai/"):
        return AZURE.name
    if path.startswith("/v1/messages"):
        return ANTHROPIC.name
    if is_gemini_path(path):
        return GEMINI.name
    if path.startswith("/api/"):
        return OLLAMA.name
    headers = headers or {}
    if GEMINI.credential_header in headers or CREDENTIAL_QUERY in (query or {}):
        return GEMINI.name
    if ANTHROPIC_VERSION_HEADER in headers or ANTHROPIC.credential_header in headers:
        return ANTHROPIC.name
    return OPENAI.name

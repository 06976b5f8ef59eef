"""Every route's answer, rendered from a fixed seed: the cases of `test_seeded_bytes.py`.

Each case parses a fixed request with the route's endpoint, plans it with a fixed generator,
id and timestamp, renders it and reduces the answer (status, headers, every frame's time and
bytes) to one digest. Optimising the planner or a renderer must leave every digest unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from llmsim import profiles
from llmsim.providers.base import Answer, ApiError, BodyAnswer, HttpRequestFacts
from llmsim.server import routes
from llmsim.simulation import planner

PROFILES = ("gpt-4o", "claude-sonnet", "gemini-2.0-flash", "llama-3.1-8b-vllm", "production-realistic")
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about tides."}]
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip


def _openai_bodies(operation: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if operation == "chat":
        for stream in (False, True):
            yield (
                f"stream={stream}",
                {"model": "gpt-4o", "messages": MESSAGES, "stream": stream, "max_tokens": 40},
            )
            yield f"n2 stream={stream}", {"model": "gpt-4o", "messages": MESSAGES, "stream": stream, "n": 2,
                                          "logprobs": True, "top_logprobs": 2, "max_tokens": 12}  # fmt: skip
            yield f"tools stream={stream}", {"model": "gpt-4o", "messages": MESSAGES, "stream": stream,
                                             "tools": [TOOL], "tool_choice": "required"}  # fmt: skip
            yield f"schema stream={stream}", {"model": "gpt-4o", "messages": MESSAGES, "stream": stream,
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
                    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}}}}  # fmt: skip
        yield (
            "usage",
            {
                "model": "gpt-4o",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
    elif operation == "completion":
        for stream in (False, True):
            yield f"stream={stream}", {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon", "stream": stream,
                                       "max_tokens": 30}  # fmt: skip
    elif operation == "embeddings":
        yield "one", {"model": "text-embedding-3-small", "input": "hello world", "dimensions": 8}
        yield "batch", {"model": "text-embedding-3-small", "input": ["a", "b c"], "dimensions": 4}
    elif operation == "responses":
        for stream in (False, True):
            yield f"stream={stream}", {"model": "gpt-4o", "input": "Tell me about tides.", "stream": stream}
            yield f"tools stream={stream}", {"model": "gpt-4o", "input": "Weather in Oslo?", "stream": stream,
                "tools": [{"type": "function", "name": "get_weather", "parameters": TOOL["function"]["parameters"]}],
                "tool_choice": "required"}  # fmt: skip


def _bodies(provider: str, operation: str, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if provider in ("openai", "azure"):
        yield from _openai_bodies(operation)
    elif provider == "anthropic":
        base = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "messages": MESSAGES[1:],
            "system": "Be brief.",
        }
        if operation == "count_tokens":
            yield "count", {k: v for k, v in base.items() if k != "max_tokens"}
            return
        for stream in (False, True):
            yield f"stream={stream}", {**base, "stream": stream}
            yield f"tools stream={stream}", {**base, "stream": stream, "tool_choice": {"type": "any"},
                "tools": [{"name": "get_weather", "input_schema": TOOL["function"]["parameters"]}]}  # fmt: skip
            yield f"thinking stream={stream}", {**base, "max_tokens": 2048, "stream": stream,
                                                "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip
    elif provider == "gemini":
        contents = [{"role": "user", "parts": [{"text": "Tell me about tides."}]}]
        if path.endswith("batchEmbedContents"):
            yield (
                "batch",
                {"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}}]},
            )
        elif path.endswith("embedContent"):
            yield "one", {"content": {"parts": [{"text": "hello"}]}}
        elif path.endswith("countTokens"):
            yield "count", {"contents": contents}
        else:
            yield (
                "plain",
                {"contents": contents, "generationConfig": {"maxOutputTokens": 50, "candidateCount": 1}},
            )
            yield "tools", {"contents": contents, "tools": [{"functionDeclarations": [{"name": "get_weather",
                            "parameters": TOOL["function"]["parameters"]}]}],
                            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}  # fmt: skip
    elif provider == "ollama":
        if operation == "embeddings":
            yield "embed", {"model": "llama3.1", "input": ["a", "b"]}
        elif operation == "completion":
            for stream in (False, True):
                yield f"stream={stream}", {"model": "llama3.1", "prompt": "Once upon", "stream": stream}
        else:
            for stream in (False, True):
                yield f"stream={stream}", {"model": "llama3.1", "messages": MESSAGES, "stream": stream}
                yield f"format stream={stream}", {"model": "llama3.1", "messages": MESSAGES, "stream": stream,
                    "format": {"type": "object", "properties": {"a": {"type": "number"}}}}  # fmt: skip


def _concrete(path: str) -> tuple[str, dict[str, str]]:
    """A concrete path for a route pattern, and its match info."""
    info: dict[str, str] = {}
    out = path
    if "{deployment}" in out:
        out, info["deployment"] = out.replace("{deployment}", "gpt-4o"), "gpt-4o"
    if "{version:" in out:
        out = out.replace("{version:v1|v1beta|v1alpha}", "v1beta")
        info["version"] = "v1beta"
    if "{model:" in out:
        out = out.replace("{model:[^/:]+}", "gemini-2.0-flash")
        info["model"] = "gemini-2.0-flash"
    return out, info


def digest(answer: Answer) -> str:
    h = hashlib.sha256()
    h.update(f"{answer.status}|{sorted(answer.headers.items())}|{answer.end}|{answer.stall_s!r}".encode())
    if isinstance(answer, BodyAnswer):
        h.update(f"|{answer.at_s!r}|".encode() + answer.body)
    else:
        for frame in answer.frames:
            h.update(f"|{frame.at_s!r}|{frame.token}|".encode() + frame.data)
    return h.hexdigest()[:16]


def cases() -> Iterator[tuple[str, str]]:
    """(case id, digest) for every route x request x profile."""
    for route in routes.all_routes():
        endpoint = route.endpoint
        path, info = _concrete(route.path)
        for label, body in _bodies(endpoint.provider, endpoint.operation, route.path):
            query = {"alt": "sse"} if path.endswith("streamGenerateContent") else {}
            if path.startswith("/openai/deployments/"):
                query["api-version"] = "2024-10-21"
            raw = json.dumps(body).encode()
            facts = HttpRequestFacts(
                "POST", path, info, query, {"content-type": "application/json"}, raw, "rid0"
            )
            for name in PROFILES:
                spec = profiles.load(name).spec
                case = f"{route.method} {route.path} [{label}] {name}"
                try:
                    gen = endpoint.parse(facts)
                    plan = planner.plan_response(spec, gen, planner.new_rng(7, 11), response_id="rid0",
                                                 created=1_700_000_000)  # fmt: skip
                    answer = endpoint.render(plan, gen, facts)
                except ApiError as error:
                    answer = endpoint.render_error(error, facts)
                yield case, digest(answer)


if __name__ == "__main__":  # regenerate the pinned digests (only when a change is MEANT to alter bytes)
    print(json.dumps(dict(cases()), indent=1, sort_keys=True))

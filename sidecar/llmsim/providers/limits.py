"""The sizes real providers cap, with where each cap is documented, and the JSON Schema size
check of OpenAI's Structured Outputs.

Each provider's parser raises its own 400 (in its own wording) when a request exceeds one of
these; that is also what keeps one request from making the simulator generate unbounded output
(`candidateCount: 100000` once took 10 GB). Where a provider documents no limit, the cap is
llmsim's own and says so: it is set at the largest documented cap of the same kind elsewhere.
"""

from __future__ import annotations

from typing import Any

OPENAI_MAX_N = 128
"""Chat/Completions `n`: OpenAI API reference, `n` "minimum 1, maximum 128"."""
OPENAI_MAX_TOOLS = 128
"""Chat/Responses `tools`: OpenAI API reference, "A max of 128 functions are supported"."""
OPENAI_MAX_EMBEDDING_INPUTS = 2048
"""Embeddings `input` arrays: OpenAI API reference, "any array must be 2048 dimensions or less"."""
OPENAI_MAX_EMBEDDING_DIMENSIONS = 8192
"""Embeddings `dimensions`: llmsim's own (OpenAI's largest model has 3072; other OpenAI-compatible
servers go higher)."""

OPENAI_SCHEMA_MAX_PROPERTIES = 5000
"""Structured Outputs (strict): "A schema may have up to 5000 object properties total"."""
OPENAI_SCHEMA_MAX_DEPTH = 10
"""Structured Outputs (strict): "... with up to 10 levels of nesting"."""
OPENAI_SCHEMA_MAX_ENUM_VALUES = 1000
"""Structured Outputs (strict): "A schema may have up to 1000 enum values across all enum properties"."""
OPENAI_SCHEMA_MAX_STRING_CHARS = 120_000
"""Structured Outputs (strict): "the total string length of all property names, definition names,
enum values, and const values cannot exceed 120,000 characters"."""

GEMINI_MAX_CANDIDATES = 8
"""`generationConfig.candidateCount`: Gemini / Vertex AI GenerationConfig reference, 1 to 8."""
GEMINI_MAX_BATCH_EMBEDDINGS = 100
"""`batchEmbedContents` `requests`: Gemini API, at most 100 requests in one batch."""
GEMINI_MAX_EMBEDDING_DIMENSIONS = 3072
"""`outputDimensionality`: Gemini embedding models document at most 3072 (gemini-embedding-001)."""

OLLAMA_MAX_EMBED_INPUTS = 2048
"""`/api/embed` `input`: llmsim's own (Ollama documents none; OpenAI's cap of the same kind)."""
OLLAMA_MAX_EMBED_DIMENSIONS = 8192
"""`/api/embed` `dimensions`: llmsim's own (Ollama documents none; as for OpenAI above)."""


def strict_schema_problem(schema: Any) -> str | None:
    """Why an OpenAI strict schema exceeds the Structured Outputs limits (None when it fits).

    Iterative (no recursion however deep the document), and linear in the schema's size."""
    properties = enums = chars = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, list):
            stack.extend((item, depth) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        props = node.get("properties")
        if isinstance(props, dict) and props:
            if depth > OPENAI_SCHEMA_MAX_DEPTH:
                return f"nesting depth exceeds the maximum of {OPENAI_SCHEMA_MAX_DEPTH} levels"
            properties += len(props)
            chars += sum(len(str(name)) for name in props)
            stack.extend((sub, depth + 1) for sub in props.values())
        for key in ("$defs", "definitions"):
            defs = node.get(key)
            if isinstance(defs, dict):
                chars += sum(len(str(name)) for name in defs)
                stack.extend((sub, depth) for sub in defs.values())
        enum = node.get("enum")
        if isinstance(enum, list):
            enums += len(enum)
            chars += sum(len(v) for v in enum if isinstance(v, str))
        const = node.get("const")
        if isinstance(const, str):
            chars += len(const)
        for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "additionalProperties"):
            sub = node.get(key)
            if isinstance(sub, dict | list):
                stack.append((sub, depth + 1 if key in ("items", "prefixItems") else depth))
        if properties > OPENAI_SCHEMA_MAX_PROPERTIES:
            return f"it has more than {OPENAI_SCHEMA_MAX_PROPERTIES} object properties in total"
        if enums > OPENAI_SCHEMA_MAX_ENUM_VALUES:
            return f"it has more than {OPENAI_SCHEMA_MAX_ENUM_VALUES} enum values in total"
        if chars > OPENAI_SCHEMA_MAX_STRING_CHARS:
            return (
                "the total string length of property names, definition names, enum and const values "
                f"exceeds {OPENAI_SCHEMA_MAX_STRING_CHARS} characters"
            )
    return None

"""Structured outputs whose schemas combine `pattern`, `format`, `minItems`/`maxItems` and `enum`,
parsed and validated by the SDKs' own helpers (openai `parse`, google-genai `parsed`, ollama
`format`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Literal

import ollama
import openai
import pytest
from google import genai
from google.genai import types
from pydantic import BaseModel, Field

from simserver import SimServer


class Order(BaseModel):
    sku: Annotated[str, Field(pattern=r"^SKU-[0-9]{4}$")]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    status: Literal["new", "paid", "shipped"]
    tags: Annotated[list[Literal["gift", "express", "fragile"]], Field(min_length=1, max_length=2)]
    placed: dt.date
    contact: Annotated[str, Field(pattern=r"^[a-z]+@example\.com$")]


@pytest.mark.parametrize("seed", range(5))
def test_openai_parse_validates_the_generated_object(sim_server: SimServer, seed: int) -> None:
    c = openai.OpenAI(base_url=sim_server.url + "/v1", api_key="k", max_retries=0)
    r = c.chat.completions.parse(model="gpt-4o", messages=[{"role": "user", "content": "an order"}],
                                 response_format=Order, extra_headers={"x-llmsim-seed": str(seed)})  # fmt: skip
    order = r.choices[0].message.parsed
    assert isinstance(order, Order) and 1 <= len(order.tags) <= 2
    responses = c.responses.parse(model="gpt-4o", input="an order", text_format=Order,
                                  extra_headers={"x-llmsim-seed": str(seed)})  # fmt: skip
    assert isinstance(responses.output_parsed, Order)


def test_gemini_parsed_and_ollama_format_validate(sim_server: SimServer) -> None:
    g = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=sim_server.url))
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=Order.model_json_schema()
    )
    response = g.models.generate_content(model="g", contents="an order", config=config)
    assert Order.model_validate_json(response.text or "")
    reply = ollama.Client(host=sim_server.url).chat(model="llama3.1", messages=[{"role": "user", "content": "order"}],
                                                    format=Order.model_json_schema())  # fmt: skip
    assert Order.model_validate(json.loads(reply.message.content or ""))

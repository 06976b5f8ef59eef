"""The request mix: prompt lengths, shares, templates and prompt files."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmsim.api.scenario import RequestMix
from llmsim.errors import LLMSimError
from llmsim.loadgen.requestmix import PromptSource, synthetic_prompt
from llmsim.simulation import tokens


@pytest.mark.parametrize("n", [1, 7, 200, 3000])
def test_synthetic_prompts_have_the_asked_token_count(n: int) -> None:
    assert tokens.count(synthetic_prompt(n, offset=n)) == n


def test_shares_and_lengths_follow_the_mix() -> None:
    mix = RequestMix.model_validate(
        {"promptTokens": {"type": "uniform", "low": 100, "high": 300}, "maxTokens": {"type": "constant", "value": 64},
         "streamingShare": 0.25, "toolCallShare": 0.5, "system": "be brief"}
    )  # fmt: skip
    n = 4000
    source = PromptSource(mix, n, seed=1)
    reqs = [source.request(i, 0.0) for i in range(n)]
    streams = sum(r.stream for r in reqs)
    tools = sum(r.tool_call for r in reqs)
    # binomial: 4.5 standard deviations
    assert abs(streams - 1000) < 4.5 * (n * 0.25 * 0.75) ** 0.5
    assert abs(tools - 2000) < 4.5 * (n * 0.25) ** 0.5
    assert all(100 <= r.prompt_tokens <= 300 and r.max_tokens == 64 and r.system == "be brief" for r in reqs)
    again = PromptSource(mix, n, seed=1).request(17, 0.0)
    assert again == reqs[17]


def test_templates_are_drawn_by_weight() -> None:
    mix = RequestMix.model_validate({"templates": [{"text": "a", "weight": 3}, {"text": "b", "weight": 1}]})
    source = PromptSource(mix, 4000, seed=2)
    share_a = sum(source.request(i, 0.0).prompt == "a" for i in range(4000)) / 4000
    assert abs(share_a - 0.75) < 4.5 * (0.75 * 0.25 / 4000) ** 0.5


def test_prompts_come_from_a_jsonl_file_next_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "first question"}\n\n{"prompt": "second one"}\n')
    mix = RequestMix.model_validate({"promptsFile": "prompts.jsonl"})
    source = PromptSource(mix, 100, seed=3, base_dir=tmp_path)
    assert {source.request(i, 0.0).prompt for i in range(100)} == {"first question", "second one"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt": "ok"}\nnot json\n', "line 2: not JSON"),
        ('{"text": "x"}\n', 'line 1: expected {"prompt": "<text>"}'),
        ("\n\n", "holds no prompts"),
    ],
)
def test_bad_prompt_files_are_named_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "p.jsonl").write_text(text)
    mix = RequestMix.model_validate({"promptsFile": "p.jsonl"})
    with pytest.raises(LLMSimError, match=r"requests\.promptsFile") as info:
        PromptSource(mix, 10, seed=0, base_dir=tmp_path)
    assert message in str(info.value)


def test_a_missing_prompt_file_is_a_clear_error(tmp_path: Path) -> None:
    mix = RequestMix.model_validate({"promptsFile": "nope.jsonl"})
    with pytest.raises(LLMSimError, match=r"cannot read nope\.jsonl"):
        PromptSource(mix, 10, seed=0, base_dir=tmp_path)


def test_draws_past_the_planned_count_do_not_depend_on_the_order_asked() -> None:
    # Closed loops do not know their request count: the draws grow in chunks, and draw i is a
    # function of the seed and i alone.
    mix = RequestMix.model_validate(
        {"streamingShare": 0.5, "models": [{"name": "a"}, {"name": "b", "weight": 3}]}
    )
    one, two = PromptSource(mix, 16, seed=4), PromptSource(mix, 16, seed=4)
    late = one.request(5000, 0.0)
    for i in range(0, 5001, 7):
        two.request(i, 0.0)
    assert two.request(5000, 0.0) == late
    models = [PromptSource(mix, 4000, seed=4).request(i, 0.0).model for i in range(4000)]
    assert 0.72 < models.count("b") / 4000 < 0.78  # weight 3 of 4; 4000 draws: sd 0.007

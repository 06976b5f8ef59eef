"""What `content_filter` and `refusal` do to a planned reply (pure)."""

from __future__ import annotations

from llmsim.api.faults import FaultParams, FaultType
from llmsim.simulation import faults, safety
from llmsim.simulation.logprobs import TokenLogprob
from llmsim.simulation.plan import Choice, ToolCall

CALL = ToolCall(id="1", name="f", arguments={}, arguments_json="{}", argument_pieces=("{}",))
PIECES = ("One", " two", " three", " four", " five", " six", " seven")


def choice() -> Choice:
    probs = tuple(TokenLogprob(p, -0.1, ()) for p in PIECES)
    return Choice(index=1, pieces=PIECES, tool_calls=(CALL,), finish_reason="tool_calls", logprobs=probs)


def test_the_content_filter_cuts_after_the_configured_tokens_and_drops_tool_calls() -> None:
    fault = faults.decision(FaultType.CONTENT_FILTER, "forced", FaultParams(after_tokens=3))
    cut = safety.apply(choice(), fault)
    assert cut.pieces == PIECES[:3] and cut.tool_calls == () and cut.finish_reason == "content_filter"
    assert cut.logprobs is not None and len(cut.logprobs) == 3 and cut.index == 1


def test_a_refusal_replaces_the_reply_with_the_refusal_text() -> None:
    refused = safety.apply(choice(), faults.decision(FaultType.REFUSAL, "rate", FaultParams()))
    assert refused.text == safety.REFUSAL_TEXT and refused.finish_reason == "refusal"
    assert refused.tool_calls == () and refused.logprobs is None


def test_other_faults_and_none_leave_the_reply_alone() -> None:
    original = choice()
    assert safety.apply(original, None) is original
    assert safety.apply(original, faults.decision(FaultType.SLOW_STREAM, "rate", FaultParams())) is original

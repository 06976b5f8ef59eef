"""Conversation state: the turn the model answers and the tool results it answers, any wire format."""

from __future__ import annotations

from llmsim.simulation.conversation import current_turn
from llmsim.simulation.request import Message, PastToolCall, ToolResult


def test_a_plain_user_message_is_turn_one_without_tool_results() -> None:
    turn = current_turn([Message("system", "be brief"), Message("user", "hi")])
    assert turn.number == 1 and turn.user_text == "hi" and not turn.answers_tools


def test_openai_style_tool_messages_make_turn_two_and_take_names_from_the_call_ids() -> None:
    turn = current_turn([
        Message("user", "add and multiply"),
        Message("assistant", "", tool_calls=(PastToolCall("add", "{}", "call_1"), PastToolCall("mul", "{}", "call_2"))),
        Message("tool", "5", tool_results=(ToolResult("5", call_id="call_1"),)),
        Message("tool", "6", tool_results=(ToolResult("6", call_id="call_2"),)),
    ])  # fmt: skip
    assert turn.number == 2 and turn.user_text == "add and multiply"
    assert [(r.name, r.content) for r in turn.tool_results] == [("add", "5"), ("mul", "6")]


def test_anthropic_style_tool_results_in_a_user_message_are_not_the_user_turn() -> None:
    turn = current_turn([
        Message("user", "weather?"),
        Message("assistant", "{}", tool_calls=(PastToolCall("get_weather", "{}", "toolu_1"),)),
        Message("user", "21 C", tool_results=(ToolResult("21 C", call_id="toolu_1"),)),
    ])  # fmt: skip
    assert turn.number == 2 and turn.user_text == "weather?"
    assert turn.tool_results == (ToolResult("21 C", name="get_weather", call_id="toolu_1"),)


def test_results_without_ids_take_names_by_position_after_the_calls() -> None:
    turn = current_turn([
        Message("user", "go"),
        Message("assistant", "", tool_calls=(PastToolCall("a"), PastToolCall("b"))),
        Message("tool", "x", tool_results=(ToolResult("x"),)),
        Message("tool", "y", tool_results=(ToolResult("y"),)),
    ])  # fmt: skip
    assert [r.name for r in turn.tool_results] == ["a", "b"]


def test_each_round_of_tool_results_counts_one_turn() -> None:
    turn = current_turn([
        Message("user", "go"),
        Message("assistant", "", tool_calls=(PastToolCall("a", call_id="1"),)),
        Message("tool", "r1", tool_results=(ToolResult("r1", call_id="1"),)),
        Message("assistant", "", tool_calls=(PastToolCall("b", call_id="2"),)),
        Message("tool", "r2", tool_results=(ToolResult("r2", call_id="2"),)),
    ])  # fmt: skip
    assert turn.number == 3 and [r.name for r in turn.tool_results] == ["b"]


def test_a_new_user_message_starts_a_new_exchange() -> None:
    turn = current_turn([
        Message("user", "first"),
        Message("assistant", "", tool_calls=(PastToolCall("a", call_id="1"),)),
        Message("tool", "r", tool_results=(ToolResult("r", call_id="1"),)),
        Message("assistant", "answer"),
        Message("user", "second"),
    ])  # fmt: skip
    assert turn.number == 1 and turn.user_text == "second" and not turn.answers_tools


def test_results_without_any_user_message_still_count_as_a_tool_turn() -> None:
    """Responses API with `previous_response_id`: the input is only the function call outputs."""
    turn = current_turn([Message("tool", "r", tool_results=(ToolResult("r", call_id="call_9"),))])
    assert turn.number == 2 and turn.answers_tools and turn.user_text == ""

"""Multi-turn workflows: one conversation per unit of closed-loop work.

Each turn sends the whole history so far (user messages, replies, tool calls and tool results).
When the model calls tools, the workflow answers every call with the tool's scripted `result` and
asks again (a tool round), up to `maxToolRounds` per turn. A conversation fails at its first failed
request (an application would surface that error); one cut off by the end of the run is abandoned.
"""

from __future__ import annotations

import numpy as np

from llmsim.api.scenario import LoadScenarioSpec, Workflow, WorkflowRun
from llmsim.loadgen import client, conversation
from llmsim.loadgen.conversation import Conversation, Message, ToolDef
from llmsim.loadgen.requestmix import PromptSource
from llmsim.loadgen.sending import Sender
from llmsim.loadgen.workflow_stats import WorkflowStats
from llmsim.simulation import sampling

TOOL_LOOP = "tool_loop"
"""Failure type of a turn whose model kept calling tools beyond `maxToolRounds`."""
BAD_REPLY = "malformed"


class WorkflowDriver:
    """Runs conversation `index` (a closed-loop unit) of the scenario's workflows."""

    def __init__(self, spec: LoadScenarioSpec, sender: Sender, mix: PromptSource) -> None:
        assert isinstance(spec.pattern, WorkflowRun)
        self.pattern = spec.pattern
        self.spec, self.sender, self.mix = spec, sender, mix
        self.flows = [w for w in spec.workflows if self.pattern.workflow_id in (None, w.id)]
        weights = np.asarray([w.weight for w in self.flows], dtype=float)
        self._cumulative = np.cumsum(weights / weights.sum())

    def _conversation_rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.spec.seed, 0xC0417, index])

    async def __call__(self, index: int, ready_s: float) -> None:
        rng = self._conversation_rng(index)
        flow = self.flows[min(len(self.flows) - 1, int(np.searchsorted(self._cumulative, rng.random())))]
        thinks = (
            np.zeros(len(flow.turns))
            if self.pattern.think_time_s is None
            else np.maximum(0.0, sampling.sample(self.pattern.think_time_s, rng, len(flow.turns)))
        )
        stats = self.sender.partial.workflow(flow.id, len(flow.turns))
        stats.started += 1
        await self._converse(flow, stats, index, ready_s, thinks)

    async def _converse(
        self, flow: Workflow, stats: WorkflowStats, index: int, ready_s: float, thinks: np.ndarray
    ) -> None:
        sender = self.sender
        history: list[Message] = []
        tools = {t.name: t for t in flow.tools}
        started: float | None = None
        ended = ready_s
        for k, turn in enumerate(flow.turns):
            if k > 0:
                ready_s = sender.clock() + float(thinks[k - 1])
                if ready_s >= self.spec.duration_s or not await sender.sleep_until(ready_s):
                    stats.abandoned += 1
                    return
            history.append(Message("user", turn.user))
            offered = tuple(
                ToolDef(t.name, t.description, t.parameters) for t in (tools[name] for name in turn.tools)
            )
            ts = stats.turns[k]
            choice = turn.tool_choice
            turn_start: float | None = None
            first_ttft: float | None = None
            rounds = 0
            while True:
                conv = Conversation(tuple(history), offered, choice, flow.system)
                capture = client.Capture()
                intended = ready_s if turn_start is None else sender.clock()
                rec = await sender.send(self.mix.request(index, intended, conv), capture)
                ts.requests += 1
                if turn_start is None:
                    turn_start, first_ttft = rec.sent_s, rec.ttft_s
                    started = rec.sent_s if started is None else started
                if not rec.ok:
                    assert rec.error is not None
                    self._fail(stats, k, rec.error.value)
                    return
                try:
                    provider = self.spec.target.provider
                    reply = (
                        conversation.parse_events(provider, capture.events)
                        if rec.stream
                        else conversation.parse_body(provider, _json(capture.body))
                    )
                except (ValueError, KeyError, TypeError, IndexError):
                    self._fail(stats, k, BAD_REPLY)
                    return
                history.append(Message("assistant", reply.text, reply.tool_calls))
                if not reply.tool_calls:
                    break
                if rounds >= flow.max_tool_rounds:
                    self._fail(stats, k, TOOL_LOOP)
                    return
                if sender.stop.is_set():
                    stats.abandoned += 1
                    return
                rounds += 1
                ts.tool_rounds += 1
                for call in reply.tool_calls:
                    tool = tools.get(call.name)
                    result = tool.result if tool is not None else {"error": f"no tool named {call.name}"}
                    history.append(Message("tool", tool_call=call, result=result))
                choice = "auto"
            assert rec.end_s is not None and turn_start is not None
            ts.completed += 1
            ts.e2e_ms.record((rec.end_s - turn_start) * 1000)
            if first_ttft is not None:
                ts.ttft_ms.record(first_ttft * 1000)
            ended = rec.end_s
        stats.succeeded += 1
        stats.e2e_ms.record((ended - (started if started is not None else ended)) * 1000)

    @staticmethod
    def _fail(stats: WorkflowStats, turn: int, kind: str) -> None:
        stats.turns[turn].failed += 1
        stats.failed += 1
        stats.failures[kind] = stats.failures.get(kind, 0) + 1


def _json(body: bytes) -> dict[str, object]:
    import json

    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc

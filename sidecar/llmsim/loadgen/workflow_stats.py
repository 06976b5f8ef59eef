"""Mergeable counts and histograms of workflow conversations and their turns (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmsim.loadgen.histogram import LogHistogram


@dataclass
class TurnStats:
    """One turn position of a workflow, over all its conversations."""

    completed: int = 0
    """Turns answered (with any tool round trips)."""
    failed: int = 0
    requests: int = 0
    """Requests sent for the turn (1 + tool rounds)."""
    tool_rounds: int = 0
    """Tool results sent back to the model."""
    e2e_ms: LogHistogram = field(default_factory=LogHistogram)
    """Completed turns: the first request's send to the final answer (tool round trips included)."""
    ttft_ms: LogHistogram = field(default_factory=LogHistogram)
    """Completed streamed turns: time to the first token of the turn's first request."""

    def merge(self, other: TurnStats) -> None:
        self.completed += other.completed
        self.failed += other.failed
        self.requests += other.requests
        self.tool_rounds += other.tool_rounds
        self.e2e_ms.merge(other.e2e_ms)
        self.ttft_ms.merge(other.ttft_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "failed": self.failed,
            "requests": self.requests,
            "tool_rounds": self.tool_rounds,
            "e2e_ms": self.e2e_ms.to_dict(),
            "ttft_ms": self.ttft_ms.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TurnStats:
        return cls(
            completed=int(doc["completed"]),
            failed=int(doc["failed"]),
            requests=int(doc["requests"]),
            tool_rounds=int(doc["tool_rounds"]),
            e2e_ms=LogHistogram.from_dict(doc["e2e_ms"]),
            ttft_ms=LogHistogram.from_dict(doc["ttft_ms"]),
        )


@dataclass
class WorkflowStats:
    """All conversations of one workflow."""

    started: int = 0
    succeeded: int = 0
    failed: int = 0
    abandoned: int = 0
    """Cut off by the end of the run (neither success nor failure)."""
    failures: dict[str, int] = field(default_factory=dict)
    """Failed conversations by the error type that ended them (`tool_loop` included)."""
    e2e_ms: LogHistogram = field(default_factory=LogHistogram)
    """Successful conversations: first send to the last answer (think time included)."""
    turns: list[TurnStats] = field(default_factory=list)

    @classmethod
    def empty(cls, turns: int) -> WorkflowStats:
        return cls(turns=[TurnStats() for _ in range(turns)])

    def merge(self, other: WorkflowStats) -> None:
        if len(other.turns) != len(self.turns):
            raise ValueError("partials have different workflows (were they run from the same scenario?)")
        self.started += other.started
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.abandoned += other.abandoned
        for key, n in other.failures.items():
            self.failures[key] = self.failures.get(key, 0) + n
        self.e2e_ms.merge(other.e2e_ms)
        for mine, theirs in zip(self.turns, other.turns, strict=True):
            mine.merge(theirs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "abandoned": self.abandoned,
            "failures": dict(sorted(self.failures.items())),
            "e2e_ms": self.e2e_ms.to_dict(),
            "turns": [t.to_dict() for t in self.turns],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> WorkflowStats:
        return cls(
            started=int(doc["started"]),
            succeeded=int(doc["succeeded"]),
            failed=int(doc["failed"]),
            abandoned=int(doc["abandoned"]),
            failures={str(k): int(v) for k, v in dict(doc["failures"]).items()},
            e2e_ms=LogHistogram.from_dict(doc["e2e_ms"]),
            turns=[TurnStats.from_dict(t) for t in doc["turns"]],
        )

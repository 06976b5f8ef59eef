"""`RecordBuilder.build` makes exactly the record its constructor would."""

from __future__ import annotations


def test_a_built_record_equals_one_made_by_its_constructor() -> None:
    from llmsim.telemetry.records import RecordBuilder, RequestRecord

    builder = RecordBuilder("rid", "openai", "chat", started_at=12.5)
    builder.model, builder.profile, builder.stream, builder.status = "gpt-4o", "p", True, 200
    builder.input_tokens, builder.output_tokens, builder.finish_reasons = 3, 2, ["stop"]
    builder.token(0.1)
    builder.token(0.15)
    builder.e2e_s, builder.carrier = 0.2, {"traceparent": "00-x"}
    built = builder.build()
    expected = RequestRecord(
        provider="openai", operation="chat", model="gpt-4o", mode="simulate", outcome="ok", started_at=12.5,
        e2e_s=0.2, ttft_s=0.1, token_times_s=(0.1, 0.15), input_tokens=3, output_tokens=2, status=200,
        profile="p", finish_reasons=("stop",), request_id="rid", stream=True, carrier={"traceparent": "00-x"},
    )  # fmt: skip
    assert built == expected and hash(built.token_times_s) == hash(expected.token_times_s)
    assert list(vars(built)) == list(vars(expected))  # every field, in the constructor's order

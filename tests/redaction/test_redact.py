"""`llmsim.redact`, the one redaction layer: every form a credential takes in text, documents and
log records (messages, arguments, tracebacks)."""

from __future__ import annotations

import io
import logging

import pytest

from llmsim import redact

S = "s3cr3tVALUE"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {S}",
        f"Proxy-Authorization: Basic {S}",
        f"Cookie: a={S}; b={S}",
        f"set-cookie: sid={S}; Path=/",
        f"x-api-key: {S}",
        f"api-key={S}",
        f"Ocp-Apim-Subscription-Key: {S}",
        f"x-goog-api-key: {S}",
        f"{{'Authorization': 'Bearer {S}', 'Accept': '*/*'}}",
        f"[('Cookie', 'a={S}; b=2'), ('x-api-key', '{S}')]",
        f"b'Authorization: Bearer {S}\\r\\nHost: x'",
        f"GET /v1?key={S}&alt=sse",
        f"https://h/x?api_key={S}&api-key={S}&token={S}&sig={S}&access_token={S}&apikey={S}",
        f"https://user:{S}@example.com/v1",
        f"redis://:{S}@redis:6379/0",
        "sk-proj-abcdefgh12345678 and sk-ant-api03-abcdefgh and AIzaSyA1234567890abcdefghij",
        f"LineTooLong: 400, message:\n  Got more than 8190 bytes when reading: b'{S}AAAA'.",
        f"BadHttpMessage: 400, message:\n  Invalid header value char:\n\n    b'X-Custom: {S}\\x01'\n    ^",
    ],
)
def test_every_credential_form_is_redacted(text: str) -> None:
    out = redact.redact_text(text)
    assert S not in out and "sk-proj-abc" not in out and "AIzaSyA123" not in out, out
    assert redact.REDACTED in out or redact.URL_USER in out
    assert redact.redact_text(out) == out  # idempotent: redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "the token count was 5, max_tokens 10",
        "POST /v1/chat/completions?alt=sse&model=x",
        "https://api.openai.com/v1/chat/completions",
        "ttft_ms p50 120.5",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact.redact_text(text) == text


def test_urls_keep_their_shape() -> None:
    assert redact.redact_url(f"http://u:{S}@h:1/p?x=1&key={S}&sig={S}#f") == (
        "http://redacted@h:1/p?x=1&key=<redacted>&sig=<redacted>#f"
    )


def test_documents_lose_credential_values_and_keep_their_structure() -> None:
    doc = {
        "target": {
            "url": f"http://u:{S}@h/v1?key={S}",
            "headers": {"Authorization": f"Bearer {S}", "Cookie": S, "X-Trace": "t1"},
            "apiKey": {"env": "MY_KEY", "file": None},
        },
        "run": {"notes": [f"stopped early: the target http://u:{S}@h failed"]},
        "numbers": [1, 2.5, None, True],
    }
    out = redact.redact_document(doc)
    assert S not in repr(out)
    assert out["target"]["headers"] == {
        "Authorization": "<redacted>",
        "Cookie": "<redacted>",
        "X-Trace": "t1",
    }
    assert out["target"]["apiKey"] == {"env": "MY_KEY", "file": None}  # a reference, not a secret
    assert out["numbers"] == [1, 2.5, None, True]


def _format(record: logging.LogRecord) -> str:
    return logging.Formatter("%(levelname)s %(message)s").format(record)


def test_a_record_loses_secrets_in_its_message_arguments_and_traceback() -> None:
    try:
        raise ValueError(f"upstream refused Authorization: Bearer {S}")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "x",
        logging.ERROR,
        __file__,
        1,
        "calling %s with %r",
        (f"https://h/?key={S}", {"x-api-key": S}),
        exc_info,
    )
    record.stack_info = f"Stack (most recent call last):\n  headers={{'cookie': '{S}'}}"
    text = _format(redact.scrub_record(record))
    assert S not in text
    assert "ValueError: upstream refused Authorization: <redacted>" in text  # the traceback is kept


def test_installed_logging_redacts_records_of_every_logger_and_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a handler with no filter (as kopf or a library adds)
    logger = logging.getLogger("some.library.redact-test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    previous = logging.getLogRecordFactory()
    redact._installed.clear()
    try:
        redact.install_logging()
        redact.install_logging()  # idempotent
        logger.debug("headers %s", {"Proxy-Authorization": f"Basic {S}"})
        try:
            raise RuntimeError(f"b'Cookie: {S}'")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logging.setLogRecordFactory(previous)
        redact._installed.clear()
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert S not in text and "Traceback" in text and "<redacted>" in text


def test_the_filter_still_works_on_handlers() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Cookie: %s", (S,), None)
    assert redact.RedactingFilter().filter(record) and S not in record.getMessage()

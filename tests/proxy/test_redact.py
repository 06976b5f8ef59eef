from __future__ import annotations

import logging

import pytest

from llmsim.proxy.redact import RedactingFilter, redact_headers, redact_text, redact_url


def test_secret_headers_are_redacted_whatever_their_case() -> None:
    out = redact_headers(
        {
            "Authorization": "Bearer sk-1",
            "API-Key": "a",
            "x-api-key": "b",
            "X-Goog-Api-Key": "c",
            "Accept": "*/*",
        }
    )
    assert out == {"authorization": "<redacted>", "api-key": "<redacted>", "x-api-key": "<redacted>",
                   "x-goog-api-key": "<redacted>", "accept": "*/*"}  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "GET /v1beta/models/m:generateContent?key=AIzaSECRET&alt=sse",
        "headers: Authorization: Bearer sk-proj-SECRET",
        "x-api-key=sk-ant-SECRET",
        "api-key: SECRET",
        "x-goog-api-key: SECRET",
    ],
)
def test_free_text_loses_credentials(text: str) -> None:
    assert "SECRET" not in redact_text(text)


def test_urls_keep_their_other_parameters() -> None:
    assert redact_url("/m:x?alt=sse&key=abc") == "/m:x?alt=sse&key=<redacted>"


def test_the_logging_filter_scrubs_formatted_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("llmsim.test.redact")
    handler = caplog.handler
    scrub = RedactingFilter()
    handler.addFilter(scrub)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.INFO, logger="llmsim.test.redact"):
            logger.info("upstream said %s", "Authorization: Bearer sk-SECRET")
    finally:
        handler.removeFilter(scrub)  # type: ignore[arg-type]
    assert "SECRET" not in caplog.text and "<redacted>" in caplog.text

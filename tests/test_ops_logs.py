"""Structured logs: one JSON object per line with a request id, and never a secret in them."""

from __future__ import annotations

import json
import logging

import pytest

from app.platform.logs import REDACTED, configure_logging, redact_text, request_context

SECRETS = ["hunter2-correct-horse", "qk_live_9f8e7d6c5b4a", "eyJhbGciOiJIUzI1NiJ9.payload.sig"]


@pytest.fixture
def log_lines(settings):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging(settings)

    def read() -> list[dict]:
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = (settings.logs_dir / "kura.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]

    yield read
    for handler in list(root.handlers):
        if getattr(handler, "_kura", False):
            root.removeHandler(handler)
            handler.close()
    for handler in saved[0]:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(saved[1])


def test_log_lines_are_json_with_the_request_id_of_the_request(log_lines):
    log = logging.getLogger("kura.test")
    with request_context(user="alice") as rid:
        log.info("ask", extra={"passages": 3, "question_chars": 41})
    log.info("outside any request")
    first, second = log_lines()[-2:]
    assert first["request_id"] == rid and first["user"] == "alice" and first["passages"] == 3
    assert first["message"] == "ask" and first["level"] == "INFO" and first["time"].endswith("Z")
    assert "request_id" not in second


def test_passwords_keys_and_tokens_never_reach_the_log_file(log_lines):
    log = logging.getLogger("kura.test")
    log.warning("login failed for alice password=%s", SECRETS[0])
    log.info(
        "connecting",
        extra={"qdrant_api_key": SECRETS[1], "url": f"http://kura:{SECRETS[0]}@qdrant:6333"},
    )
    log.error("upstream said: Authorization: Bearer %s", SECRETS[2])
    log.info(
        "settings",
        extra={"settings": {"qdrant_url": "http://qdrant:6333", "llm_api_key": SECRETS[1]}},
    )
    try:
        raise RuntimeError(f'bad config {{"password": "{SECRETS[0]}"}}')
    except RuntimeError:
        log.exception("startup failed")
    text = json.dumps(log_lines(), ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in text
    assert text.count(REDACTED) >= 6
    assert "http://qdrant:6333" in text  # what is not secret stays readable


def test_redaction_keeps_ordinary_text_untouched():
    plain = "ingested 3 files (12 chunks) from /srv/docs/passwords-policy.pdf in 2.1 s"
    assert redact_text(plain) == plain
    assert redact_text("token: abc123") == f"token: {REDACTED}"

"""Logging: JSON lines (one object per event, with a request id) to stderr and to
`logs_dir/kura.jsonl`, ready for a SIEM; secrets are redacted before any handler sees them.

Usage:
    configure_logging(settings)                 # once per process (CLI main, UI start)
    with request_context(user="alice"):         # every log line inside carries request_id, user
        log.info("ask", extra={"chunks": 5})
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.platform.settings import KuraSettings

_request: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "kura_request", default=None
)

# Attributes every LogRecord has; anything else came in through `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
REDACTED = "[REDACTED]"
# A field is secret by its name: *password*, *secret*, *api_key*, or ending in token/pass/pwd
# (not `passages`, `token_count`).
_SECRET_KEY = re.compile(
    r"(password|passwd|passphrase|secret|credential|api[_-]?key|authorization|cookie|(^|[_-])(token|pass|pwd)$)",
    re.I,
)
_SECRET_IN_TEXT = [
    # key=value, key: value, "key": "value" for secret-looking keys
    re.compile(
        r"""(?P<key>["']?[\w.-]*(?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key|credential)["']?\s*[:=]\s*)"""
        r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&}]+)""",
        re.I,
    ),
    re.compile(r"(?P<key>\b(?:Bearer|Basic)\s+)(?P<value>[A-Za-z0-9._~+/=-]+)", re.I),
    re.compile(r"(?P<key>://[^/\s:@]+:)(?P<value>[^@\s/]+)(?=@)"),  # user:password@host in URLs
]


@contextmanager
def request_context(request_id: str | None = None, **fields: str) -> Iterator[str]:
    """Tag every log line in this block (and this thread/task) with a request id and fields."""
    rid = request_id or uuid.uuid4().hex[:16]
    token = _request.set({"request_id": rid, **fields})
    try:
        yield rid
    finally:
        _request.reset(token)


def current_request_id() -> str | None:
    ctx = _request.get()
    return ctx["request_id"] if ctx else None


def redact_text(text: str) -> str:
    for pattern in _SECRET_IN_TEXT:
        text = pattern.sub(lambda m: m.group("key") + REDACTED, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


class RedactSecrets(logging.Filter):
    """Replace passwords, API keys and tokens in the message and every extra field."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact_text(record.getMessage())
        record.msg, record.args = message, None
        for key in set(vars(record)) - _STANDARD:
            setattr(record, key, _redact_value(key, getattr(record, key)))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry.update(_request.get() or {})
        for key in set(vars(record)) - _STANDARD:
            entry[key] = getattr(record, key)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: KuraSettings | None = None) -> None:
    """JSON to stderr (and to logs_dir/kura.jsonl when settings are given) unless KURA_LOG_JSON
    is false, then plain text for people. Level from KURA_LOG_LEVEL (default WARNING on the
    console; the file always gets INFO and up, so a SIEM sees every request)."""
    level = os.environ.get("KURA_LOG_LEVEL", "WARNING").upper()
    as_json = (
        settings.log_json
        if settings is not None
        else os.environ.get("KURA_LOG_JSON", "true") != "false"
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_kura", False):
            root.removeHandler(handler)
    redact = RedactSecrets()
    console = logging.StreamHandler()
    console.setLevel(level)
    console.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    handlers: list[logging.Handler] = [console]
    if settings is not None:
        settings.logs_dir.mkdir(parents=True, exist_ok=True)
        file = logging.handlers.RotatingFileHandler(
            settings.logs_dir / "kura.jsonl", maxBytes=50 * 2**20, backupCount=10, encoding="utf-8"
        )
        file.setLevel(logging.INFO)
        file.setFormatter(JsonFormatter())
        handlers.append(file)
    for handler in handlers:
        handler.addFilter(redact)
        handler._kura = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(
        min(
            logging.INFO if settings is not None else logging.getLevelName(level),
            logging.getLevelName(level),
        )
    )
    # Libraries that are chatty at INFO even when nothing is wrong.
    for noisy in (
        "unstructured",
        "pdfminer",
        "httpx",
        "sentence_transformers",
        "pikepdf",
        "streamlit",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)

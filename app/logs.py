"""Logging setup: plain warnings to stderr for people; issue 8 adds JSON logs for a SIEM."""

from __future__ import annotations

import logging
import os


def configure_logging() -> None:
    level = os.environ.get("KURA_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Libraries that are chatty at INFO even when nothing is wrong.
    for noisy in ("unstructured", "pdfminer", "httpx", "sentence_transformers", "pikepdf"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)

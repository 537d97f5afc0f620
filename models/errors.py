"""Errors a site can meet with its model files; each message says what to do."""

from __future__ import annotations


class ModelError(RuntimeError):
    """Something is wrong with a model kura was told to use."""


class ModelMissing(ModelError):
    """A model kura needs is not where it was told to look."""


class ModelInvalid(ModelError):
    """A model file is there but unusable: wrong checksum, truncated, not a GGUF, no chat
    template, or too large for this machine's memory."""


class LLMUnavailable(ModelError):
    """The configured OpenAI-compatible LLM server cannot be reached or answered with an error."""

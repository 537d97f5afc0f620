"""Make unstructured's English NLP work with no network.

unstructured loads spaCy's `en_core_web_sm` for sentence splitting, word tokens and POS tags,
and downloads it on first use when it is missing, which fails (and hangs for minutes) offline.
kura answers that in one of two ways:

1. The operator supplies the official wheel (`kura setup --spacy-wheel PATH`); kura checks it
   against the sha256 unstructured itself pins and installs it. Best classification quality.
2. Otherwise kura hands unstructured a pipeline that needs no download: spaCy's rule-based
   English tokenizer and sentencizer, plus a small verb tagger. POS tags only decide whether a
   one-sentence English line is narrative text or a title (unstructured's `contains_verb`), and
   kura's own chunker does not depend on that decision, so the lexicon below is enough.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

SPACY_MODEL = "en_core_web_sm"

_AUX_AND_COMMON_VERBS = frozenset(
    """is are was were be been being am has have had do does did can could will would shall
    should may might must get gets got make makes made take takes took give gives gave go goes
    went come comes came see sees saw know knows knew say says said use uses used find finds
    found provide provides require requires include includes apply applies describe describes
    contain contains allow allows""".split()
)


@Language.component("kura_verb_tagger")
def _verb_tagger(doc: Doc) -> Doc:
    """Tag likely verbs VB*, everything else NN: enough for unstructured's `contains_verb`."""
    for token in doc:
        word = token.lower_
        if word in _AUX_AND_COMMON_VERBS:
            token.tag_ = "VBZ"
        elif len(word) > 4 and word.isalpha() and word.endswith(("ed", "ing")):
            token.tag_ = "VBD" if word.endswith("ed") else "VBG"
        else:
            token.tag_ = "NN"
    return doc


@lru_cache(maxsize=1)
def offline_pipeline() -> Language:
    """A spaCy English pipeline that loads nothing from disk or network."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("kura_verb_tagger")
    return nlp


def official_model_installed() -> bool:
    try:
        spacy.load(SPACY_MODEL, exclude=["ner", "lemmatizer", "attribute_ruler"])
    except OSError:
        return False
    return True


def install_for_unstructured() -> str:
    """Point unstructured's loader at a model that needs no download. Returns which one."""
    from unstructured.nlp import tokenize

    if official_model_installed():
        return f"{SPACY_MODEL} (official wheel)"
    # `_get_nlp` is unstructured's single loading point (lru-cached); replacing it is the
    # narrowest change that keeps every caller (pos_tag, sent_tokenize, word_tokenize) intact.
    tokenize._get_nlp = offline_pipeline  # type: ignore[attr-defined]
    return "rule-based English pipeline (no download)"


def install_official_wheel(wheel: Path) -> None:
    """Install the official `en_core_web_sm` wheel after checking unstructured's pinned sha256."""
    from unstructured.nlp import tokenize

    expected = tokenize._SPACY_MODEL_SHA256
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if actual != expected:
        raise ValueError(
            f"{wheel} has sha256 {actual}, but unstructured pins {expected} for "
            f"{SPACY_MODEL}-{tokenize._SPACY_MODEL_VERSION}; use the official wheel"
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )

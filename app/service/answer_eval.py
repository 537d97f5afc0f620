"""`kura eval answers`: what readers are shown, per model, on a BEIR-layout QA set.

The benchmark a site runs on its own questions to choose its model (or none). Retrieval runs
once, through the ask path (hybrid search, relevance floor, context assembly:
retrieval/context.py `answer_context`), and is cached; then every model answers the same
contexts, each in a process of its own (so its peak memory is its own):
- `extractive`: evidence only, no model (KURA_ANSWER_GENERATION=false);
- a GGUF file (`path.gguf`, or `path.gguf#gemma` to name a prompt format for a base model);
- an OpenAI-compatible server (`http://host:port/v1`, as KURA_LLM_URL takes).

Each question is asked twice: as it is, and unanswerable, with its gold passage removed (the
search runs wider and the gold document's passages are dropped before the context is chosen;
only BM25's document frequencies differ from a corpus without it). What is shown is scored the
way a reader meets it: the quote (when the verdict is answered or uncertain) plus the generated
answer when the support check let it through; never the list of passages.

Usage:
    report = evaluate_answers(load_dataset(folder), ["extractive", "model.gguf"], settings, limit=100)
    print(report.as_dict())
"""

from __future__ import annotations

import json
import multiprocessing
import re
import resource
import statistics
import string
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.platform.settings import KuraSettings
from app.service.answer import ABSTAINED, ANSWERED, NOTHING, UNCERTAIN, verdict_of
from app.service.evaluation import EVAL_GROUP, Dataset, _documents, ingest_corpus, ndcg_at, sample_queries
from base.cjk import is_japanese
from retrieval.context import ContextPassage, RelevanceFloor, answer_context
from retrieval.evidence import find_evidence
from retrieval.passage import Passage
from retrieval.sparse import SparseEncoder
from retrieval.support import check_support

EXTRACTIVE = "extractive"


@dataclass
class EvalQuestion:
    """One question and its two contexts, as the ask path chose them (cached between runs)."""

    qid: str
    question: str
    answers: list[str]
    answerable: list[ContextPassage]
    unanswerable: list[ContextPassage]

    @property
    def japanese(self) -> bool:
        return is_japanese(self.question)


@dataclass
class Shown:
    """What one reader was shown for one question by one model."""

    verdict: str
    quote: str
    generated: str  # '' when there was none or it was withheld
    withheld: bool
    score: float = 0.0  # the quote's answer chance (retrieval/evidence.py), kept to try other thresholds
    first_token_s: float | None = None
    tokens: int = 0
    generating_s: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(t for t in (self.quote, self.generated) if t)

    @property
    def answer_text(self) -> str:
        """The text scored for EM/F1: the generated answer when shown, else the quote."""
        return self.generated or self.quote


# --- gold matching (SQuAD's normalisation for English, NFKC characters for Japanese) --------
def _normal_en(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _normal_ja(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def gold_in(text: str, answers: Sequence[str], japanese: bool) -> bool:
    if not text:
        return False
    if japanese:
        shown = _normal_ja(text)
        return any(_normal_ja(a) and _normal_ja(a) in shown for a in answers)
    shown = f" {_normal_en(text)} "
    return any(_normal_en(a) and f" {_normal_en(a)} " in shown for a in answers)


def exact_and_f1(text: str, answers: Sequence[str], japanese: bool) -> tuple[float, float]:
    """SQuAD EM and F1 (tokens in English, characters in Japanese), best over the gold answers."""
    best_em = best_f1 = 0.0
    for gold in answers:
        if japanese:
            predicted, wanted = list(_normal_ja(text)), list(_normal_ja(gold))
        else:
            predicted, wanted = _normal_en(text).split(), _normal_en(gold).split()
        best_em = max(best_em, float(predicted == wanted))
        common = sum(min(predicted.count(t), wanted.count(t)) for t in set(wanted))
        if common:
            precision, recall = common / len(predicted), common / len(wanted)
            best_f1 = max(best_f1, 2 * precision * recall / (precision + recall))
    return best_em, best_f1


# --- retrieval, once ---------------------------------------------------------------------------
def retrieve_questions(
    dataset: Dataset, settings: KuraSettings, cache_dir: Path, limit: int | None, seed: int = 13,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[EvalQuestion], float]:
    """The sampled answerable questions with both contexts, and the sample's hybrid nDCG@10,
    from the cache when this dataset, sample and retrieval configuration were retrieved before."""
    from models.embedder import load_embedder
    from models.registry import resolve_embedder_path
    from retrieval.search import parse_fusion, search_passages

    s = settings
    key = f"answers-{dataset.name}-{dataset.fingerprint()}-{limit}-{seed}-{_retrieval_spec(s)}.json"
    cached = cache_dir / key
    if cached.is_file():
        data = json.loads(cached.read_text())
        return [_question_from(d) for d in data["questions"]], data["ndcg10"]
    embedder = load_embedder(resolve_embedder_path(s.embedder_path), s.embedder_backend, cache_dir=s.model_cache_dir)
    sparse = SparseEncoder(s.sparse_japanese)
    store, *_ = ingest_corpus(dataset, embedder, sparse, cache_dir, s.chunk_tokens, s.chunk_overlap_tokens)
    floor = RelevanceFloor(s.min_term_coverage, s.min_dense_score, s.min_rerank_score)
    budget = s.llm_context_tokens - s.llm_max_answer_tokens - 256
    search = {"sparse": sparse, "fusion": parse_fusion(s.fusion), "dense_languages": s.embedder_languages}
    qids = [q for q in sample_queries(dataset, limit, seed) if q in dataset.answers]
    questions, ndcg = [], 0.0
    try:
        for done, qid in enumerate(qids, start=1):
            text = dataset.queries[qid]
            wide = search_passages(store, embedder, text, [EVAL_GROUP], 30, **search)
            ndcg += ndcg_at(_documents(wide), dataset.qrels[qid])
            gold = set(dataset.qrels[qid])
            kept = [p for p in wide if p.doc_id not in gold][: s.search_top_k]
            context = answer_context(text, wide[: s.search_top_k], floor, sparse, budget, s.context_passages,
                                     s.min_relevance)
            without = answer_context(text, kept, floor, sparse, budget, s.context_passages, s.min_relevance)
            questions.append(EvalQuestion(qid, text, dataset.answers[qid], context, without))
            if on_progress:
                on_progress(done, len(qids))
    finally:
        store.close()
    ndcg = ndcg / len(qids) if qids else 0.0
    cached.write_text(json.dumps({"questions": [asdict(q) for q in questions], "ndcg10": ndcg}, ensure_ascii=False))
    return questions, ndcg


def _retrieval_spec(s: KuraSettings) -> str:
    return re.sub(r"[^A-Za-z0-9.,-]+", "_", f"{s.fusion}-{s.search_top_k}-{s.context_passages}-{s.min_term_coverage}-"
                  f"{s.min_dense_score}-{s.llm_context_tokens}-{s.llm_max_answer_tokens}-{s.embedder_backend}")


def _question_from(data: dict[str, Any]) -> EvalQuestion:
    def context(items: list[dict[str, Any]]) -> list[ContextPassage]:
        found = []
        for c in items:
            passage = Passage(**{**c["passage"], "heading_path": tuple(c["passage"]["heading_path"])})
            found.append(ContextPassage(c["number"], passage, tuple(c["chunk_ids"])))
        return found

    return EvalQuestion(data["qid"], data["question"], data["answers"], context(data["answerable"]),
                        context(data["unanswerable"]))


# --- answering, one model per process --------------------------------------------------------
def answer_all(questions: list[EvalQuestion], model: str, settings: KuraSettings) -> dict[str, Any]:
    """Every question answered (answerable and unanswerable) by `model`, in this process:
    {"shown": {"answerable": [...], "unanswerable": [...]}, "peak_rss_mb", "vram_mb", "load_s"}."""
    started, before = time.monotonic(), _rss_mb()
    llm = _load_model(model, settings)
    load_s = time.monotonic() - started
    sparse = SparseEncoder(settings.sparse_japanese)
    shown: dict[str, list[dict[str, Any]]] = {"answerable": [], "unanswerable": []}
    for q in questions:
        for kind in ("answerable", "unanswerable"):
            shown[kind].append(asdict(_answer_one(q.question, getattr(q, kind), llm, sparse, settings)))
    return {
        "shown": shown,
        "load_s": round(load_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model_rss_mb": round(_rss_mb() - before, 1),
        "vram_mb": _vram_mb(),
    }


def _load_model(model: str, s: KuraSettings) -> Any:
    if model == EXTRACTIVE:
        return None
    if model.startswith(("http://", "https://")):
        from models.openai_backend import OpenAICompatibleLLM

        return OpenAICompatibleLLM(model, model=s.llm_model, api_key=s.llm_api_key)
    from models.llm import LlamaCppLLM

    path, _, chat_format = model.partition("#")
    return LlamaCppLLM(Path(path), s.llm_context_tokens, s.llm_threads, s.llm_gpu_layers, chat_format or None)


def _answer_one(question: str, context: list[ContextPassage], llm: Any, sparse: SparseEncoder,
                s: KuraSettings) -> Shown:
    """What the ask use case shows for this context (app/service/asking.py), timed."""
    from models.prompts import PromptPassage, build_messages

    if not context:
        return Shown(NOTHING, "", "", False)
    evidence = find_evidence(question, [c.passage for c in context], sparse, min_score=0.0)
    verdict = verdict_of(evidence, s.evidence_min_score, s.evidence_hedge_score)
    quote = evidence.text if verdict in (ANSWERED, UNCERTAIN) else ""
    if llm is None or verdict not in (ANSWERED, UNCERTAIN):
        return Shown(verdict, quote, "", False, evidence.score)
    messages = build_messages(question, [PromptPassage(c.number, c.passage.location, c.passage.text) for c in context])
    started, first, parts = time.monotonic(), None, []
    for token in llm.stream(messages, s.llm_max_answer_tokens, s.llm_timeout_s):
        first = first if first is not None else time.monotonic() - started
        parts.append(token)
    generated = "".join(parts).strip()
    checked = generated
    for c in context:  # file names echoed from the prompt are not claims (as in the ask use case)
        checked = checked.replace(c.passage.location, "")
    supported = bool(generated) and check_support(checked, [c.passage.text for c in context], sparse).supported
    elapsed = time.monotonic() - started
    return Shown(verdict, quote, generated if supported else "", bool(generated) and not supported, evidence.score,
                 first, len(parts), elapsed - (first or 0.0))


def _rss_mb() -> float:
    """This process's resident memory now (the model's own share is the growth while it answers)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _vram_mb() -> float | None:
    """GPU memory in use, when nvidia-smi is there (a CUDA build of llama.cpp)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=10).stdout
    return sum(float(v) for v in out.split() if v.strip()) or None


def _child(questions_path: str, model: str, settings_json: str, out_path: str) -> None:
    from base import offline  # noqa: F401  (telemetry off before any model library loads)

    data = json.loads(Path(questions_path).read_text())
    questions = [_question_from(d) for d in data]
    settings = KuraSettings.model_validate_json(settings_json)
    Path(out_path).write_text(json.dumps(answer_all(questions, model, settings), ensure_ascii=False))


def answer_in_child(questions: list[EvalQuestion], model: str, settings: KuraSettings, work: Path) -> dict[str, Any]:
    """answer_all in a fresh process, so its load time and peak memory are the model's own."""
    work.mkdir(parents=True, exist_ok=True)
    questions_path, out_path = work / "questions.json", work / f"answers-{abs(hash(model))}.json"
    questions_path.write_text(json.dumps([asdict(q) for q in questions], ensure_ascii=False))
    process = multiprocessing.get_context("spawn").Process(
        target=_child, args=(str(questions_path), model, settings.model_dump_json(), str(out_path))
    )
    process.start()
    process.join()
    if process.exitcode != 0 or not out_path.is_file():
        raise RuntimeError(f"answering with {model} failed (exit code {process.exitcode}); see the messages above")
    return json.loads(out_path.read_text())


# --- the report ----------------------------------------------------------------------------
@dataclass
class ModelScore:
    model: str
    questions: int
    gold_in_shown: float  # answerable: the gold answer is in what the reader is shown
    exact_match: float
    f1: float
    supported: float  # answerable: share labelled supported (the documents answer it)
    support_precision: float | None  # labelled supported -> the gold answer is shown
    abstained: float  # unanswerable: said plainly that no passage answers it
    not_presented: float  # unanswerable: abstained, or shown the closest passage flagged "may not answer"
    invented: float  # unanswerable: presented as the answer (supported) without the gold answer
    generated_shown: float | None  # of the generated answers, the share that passed the support check
    first_token_p50_s: float | None
    first_token_p95_s: float | None
    tokens_per_s: float | None
    peak_rss_mb: float
    model_rss_mb: float  # what loading and running the model added to the process
    vram_mb: float | None
    load_s: float
    verdicts: dict[str, dict[str, int]] = field(default_factory=dict)


def score(model: str, questions: list[EvalQuestion], result: dict[str, Any]) -> ModelScore:
    answerable = [Shown(**d) for d in result["shown"]["answerable"]]
    unanswerable = [Shown(**d) for d in result["shown"]["unanswerable"]]
    n = len(questions)
    hits = [gold_in(a.text, q.answers, q.japanese) for a, q in zip(answerable, questions, strict=True)]
    em_f1 = [exact_and_f1(a.answer_text, q.answers, q.japanese) for a, q in zip(answerable, questions, strict=True)]
    labelled = [h for a, h in zip(answerable, hits, strict=True) if a.verdict == ANSWERED]
    invented = sum(
        1 for a, q in zip(unanswerable, questions, strict=True)
        if a.verdict == ANSWERED and not gold_in(a.text, q.answers, q.japanese)
    )
    generated = [a for a in answerable + unanswerable if a.generated or a.withheld]
    firsts = sorted(a.first_token_s for a in answerable + unanswerable if a.first_token_s is not None)
    rates = [(a.tokens - 1) / a.generating_s for a in answerable + unanswerable if a.tokens > 1 and a.generating_s > 0]
    return ModelScore(
        model=model,
        questions=n,
        gold_in_shown=_share(sum(hits), n),
        exact_match=_share(sum(e for e, _ in em_f1), n),
        f1=_share(sum(f for _, f in em_f1), n),
        supported=_share(len(labelled), n),
        support_precision=round(sum(labelled) / len(labelled), 3) if labelled else None,
        abstained=_share(sum(a.verdict in (ABSTAINED, NOTHING) for a in unanswerable), n),
        not_presented=_share(sum(a.verdict != ANSWERED for a in unanswerable), n),
        invented=_share(invented, n),
        generated_shown=round(sum(bool(a.generated) for a in generated) / len(generated), 3) if generated else None,
        first_token_p50_s=_percentile(firsts, 0.5),
        first_token_p95_s=_percentile(firsts, 0.95),
        tokens_per_s=round(statistics.median(rates), 1) if rates else None,
        peak_rss_mb=result["peak_rss_mb"],
        model_rss_mb=result["model_rss_mb"],
        vram_mb=result["vram_mb"],
        load_s=result["load_s"],
        verdicts={kind: _counts(shown) for kind, shown in (("answerable", answerable), ("unanswerable", unanswerable))},
    )


def _share(count: float, total: int) -> float:
    return round(count / total, 3) if total else 0.0


def _percentile(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None


def _counts(shown: list[Shown]) -> dict[str, int]:
    return {v: sum(1 for s in shown if s.verdict == v) for v in (ANSWERED, UNCERTAIN, ABSTAINED, NOTHING)}


@dataclass
class AnswerReport:
    dataset: str
    questions: int
    ndcg10: float
    models: list[ModelScore]
    settings: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_answers(
    dataset: Dataset, models: Sequence[str], settings: KuraSettings, cache_dir: Path, limit: int | None = None,
    seed: int = 13, on_progress: Callable[[str, int, int], None] | None = None,
) -> AnswerReport:
    """Retrieve once (cached), then score what each model shows (see the module docstring)."""
    progress = (lambda done, total: on_progress("retrieve", done, total)) if on_progress else None
    questions, ndcg = retrieve_questions(dataset, settings, cache_dir, limit, seed, progress)
    scores = []
    for position, model in enumerate(models, start=1):
        if on_progress:
            on_progress(f"answering with {model}", position, len(models))
        result = answer_in_child(questions, model, settings, cache_dir / "answer-runs")
        scores.append(score(model, questions, result))
    used = {k: getattr(settings, k) for k in ("evidence_min_score", "evidence_hedge_score", "search_top_k",
                                               "context_passages", "llm_max_answer_tokens", "fusion")}
    return AnswerReport(dataset.name, len(questions), round(ndcg, 4), scores, {**used, "limit": limit, "seed": seed})

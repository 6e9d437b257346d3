"""AVDS summary metrics through the reference implementations.

- BLEU-4: ``sacrebleu`` corpus BLEU (0–100) with its signature reported, so numbers are comparable
  across papers; sentence BLEU is kept per sample for stratified plots.
- CIDEr (CIDEr-D weights, n=4, sigma=6) and METEOR 1.5: ``pycocoevalcap``. Both are given text
  lower-cased and split like the COCO PTB tokenizer (punctuation tokens removed); the Java PTB
  tokenizer itself is skipped because it starts a JVM per call for the same result on plain prose.
- METEOR runs ``java -jar meteor-1.5.jar``; without Java it is reported as unavailable, not as 0.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Sequence

log = logging.getLogger("amuse.eval.metrics.text")

# The COCO PTB tokenizer drops these tokens after tokenizing.
_PUNCT = re.compile(r"[\"'`.,?!:;()\[\]{}]|--|-(?=\s)|(?<=\s)-")


def coco_tokenize(text: str) -> str:
    """Lower-case, punctuation-free, whitespace-joined tokens (what pycocoevalcap's scorers expect)."""
    return " ".join(_PUNCT.sub(" ", (text or "").lower()).split())


def bleu_signature(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> str:
    """sacrebleu's signature for this corpus (nrefs, tokenizer, smoothing, version)."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU()
    bleu.corpus_score(list(hypotheses), _ref_streams(references))
    return str(bleu.get_signature())


def _ref_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference position; None pads samples with fewer references."""
    k = max((len(r) for r in references), default=0)
    return [[r[i] if i < len(r) else None for r in references] for i in range(k)]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """sacrebleu corpus BLEU-4 (0–100), default 13a tokenization and exponential smoothing."""
    from sacrebleu.metrics import BLEU

    return float(BLEU().corpus_score(list(hypotheses), _ref_streams(references)).score)


def sentence_bleu(hypothesis: str, references: Sequence[str]) -> float:
    from sacrebleu.metrics import BLEU

    return float(BLEU(effective_order=True).sentence_score(hypothesis, list(references)).score)


def cider(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
    """pycocoevalcap CIDEr: (corpus score, per-sample scores). IDF comes from this corpus's references."""
    from pycocoevalcap.cider.cider import Cider

    if not hypotheses:
        return float("nan"), []
    gts = {i: [coco_tokenize(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [coco_tokenize(h)] for i, h in enumerate(hypotheses)}
    score, scores = Cider().compute_score(gts, res)
    return float(score), [float(s) for s in scores]


_meteor = None
_meteor_lock = threading.Lock()


def meteor_available() -> bool:
    return shutil.which("java") is not None


def prewarm_meteor() -> None:
    """Start METEOR's JVM now: it loads its paraphrase tables in the background (15-30 s on 2 cores), so
    a run that will score AVDS calls this before its predictions and the load overlaps them."""
    global _meteor
    if not meteor_available():
        return
    from pycocoevalcap.meteor.meteor import Meteor

    with _meteor_lock:
        if _meteor is None:
            _meteor = Meteor()  # Popen only: the first compute_score waits for the tables


def meteor(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, list[float]] | None:
    """pycocoevalcap METEOR 1.5: (corpus score, per-sample scores), or None without Java."""
    global _meteor
    if not hypotheses:
        return float("nan"), []
    if not meteor_available():
        log.warning("METEOR unavailable: no `java` on PATH (make sysdeps installs a JRE)")
        return None
    from pycocoevalcap.meteor.meteor import Meteor

    gts = {i: [coco_tokenize(r) or "." for r in refs] for i, refs in enumerate(references)}
    # METEOR's Java side hangs on an empty hypothesis line; a lone "." scores 0 like an empty one.
    res = {i: [coco_tokenize(h) or "."] for i, h in enumerate(hypotheses)}
    with _meteor_lock:
        if _meteor is None:
            _meteor = Meteor()  # one JVM per process; its first score waits for the tables (prewarm_meteor)
        score, scores = _meteor.compute_score(gts, res)
    return float(score), [float(s) for s in scores]

"""Answer kinds: what a task's answer is, and everything that follows from it.

A task declares one kind (``kind = CHOICE``); the kind gives the task its answer format line in
the prompt, its parser, its gold value, its per-sample score, its aggregate metrics and report
columns, the canonical text of an answer (the reference response RAFT trains on) and the answer a
policy gives when it has nothing to go on. A new kind is one class here, registered by name.

Times: STG questions speak in clip-relative seconds, so an intervals gold is read from the
sample's ``answer`` (clip-relative JSON pairs, the one reference format) and compared with the
candidate's intervals in the same time base.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eval.metrics import classification, temporal, text
from eval.metrics.bootstrap import Estimate, bootstrap_mean, bootstrap_stat
from eval.parsing import Parsed, parse_choice, parse_intervals, parse_text


@dataclass
class ScoringParams:
    iou_thresholds: tuple[float, ...] | list[float] = (0.3, 0.5, 0.7)
    stg_tolerance_s: float = 1.0
    bootstrap_samples: int = 1000
    seed: int = 0


@dataclass
class SampleScore:
    parsed_answer: str | None
    parse_ok: bool
    score: float  # the task's per-sample headline in [0, 1]: correct, tIoU, or sentence BLEU / 100
    metrics: dict[str, Any] = field(default_factory=dict)


class GoldError(ValueError):
    """A sample whose reference answer its own task cannot read (names the sample and the field)."""


def references(sample: dict) -> list[str]:
    return list(sample.get("references") or []) or [sample["answer"]]


class AnswerKind(ABC):
    name: ClassVar[str] = ""
    answer_format: ClassVar[str] = ""  # the prompt's instruction for the answer line
    headline: ClassVar[str] = ""  # the aggregate metric reports lead with
    empty_answer: ClassVar[str] = ""  # what a policy with nothing to go on answers

    @abstractmethod
    def parse(self, answer: Any, sample: dict) -> Parsed:
        """The kind's reading of a reply's answer (a value or text)."""

    @abstractmethod
    def gold(self, sample: dict) -> Any:
        """The reference answer as a value."""

    def answer_text(self, value: Any) -> str:
        """The canonical text of an answer value, as a reply's answer line holds it."""
        return value if isinstance(value, str) else json.dumps(value)

    def reference_answer(self, sample: dict) -> str:
        """The gold answer as a reply's answer line holds it (the reference response's last line)."""
        return self.answer_text(self.gold(sample))

    def intervals_of(self, value: Any) -> list[tuple[float, float]]:
        """The time intervals an answer value claims (clip-relative); none for kinds without times."""
        return []

    @abstractmethod
    def score(self, parsed: Parsed, sample: dict, params: ScoringParams) -> SampleScore:
        """Per-sample score in [0, 1] and its metrics."""

    @abstractmethod
    def aggregate(self, rows: list[dict], samples: dict[str, dict], params: ScoringParams) -> dict[str, Estimate]:
        """Headline metrics with bootstrap CIs."""

    def columns(self, params: ScoringParams) -> list[str]:
        """Report columns: the aggregate metric names, headline first."""
        return [self.headline]


KINDS: dict[str, AnswerKind] = {}


def register_kind(cls: type[AnswerKind]) -> type[AnswerKind]:
    KINDS[cls.name] = cls()
    return cls


@register_kind
class Choice(AnswerKind):
    name = "choice"
    answer_format = "The answer is the letter of one option only."
    headline = "accuracy"
    empty_answer = "A"

    def parse(self, answer: Any, sample: dict) -> Parsed:
        return parse_choice(answer, list(sample.get("options") or []))

    def gold(self, sample: dict) -> str:
        letter = (sample.get("answer") or "").strip().upper()
        n = len(sample.get("options") or [])
        if len(letter) != 1 or not "A" <= letter < chr(65 + max(n, 1)):
            raise GoldError(f"sample {sample.get('sample_id')}: field 'answer' {sample.get('answer')!r} is not "
                            f"the letter of one of its {n} options")
        return letter

    def score(self, parsed: Parsed, sample: dict, params: ScoringParams) -> SampleScore:
        correct = classification.choice_correct(parsed.value if parsed.ok else None, self.gold(sample))
        return SampleScore(parsed.value if parsed.ok else None, parsed.ok, correct, {"correct": correct, "parse": parsed.how})

    def aggregate(self, rows, samples, params):
        return {"accuracy": bootstrap_mean([r["score"] for r in rows], params.bootstrap_samples, params.seed)}


@register_kind
class Intervals(AnswerKind):
    name = "intervals"
    answer_format = "The answer is JSON: a list of [start, end] pairs in seconds, e.g. [[1.0, 2.5], [4.0, 6.0]]."
    headline = "tIoU"
    empty_answer = "[]"

    def parse(self, answer: Any, sample: dict) -> Parsed:
        return parse_intervals(answer)

    def gold(self, sample: dict) -> list[tuple[float, float]]:
        """Clip-relative gold intervals from ``answer``: JSON [[start, end], ...], the one reference format."""
        try:
            pairs = json.loads(sample["answer"])
            return [(float(a), float(b)) for a, b in pairs]
        except (ValueError, TypeError, KeyError) as exc:
            raise GoldError(f"sample {sample.get('sample_id')}: field 'answer' {str(sample.get('answer'))[:80]!r} is "
                            "not JSON [[start, end], ...] in clip-relative seconds") from exc

    def answer_text(self, value: Any) -> str:
        return json.dumps([[round(float(a), 2), round(float(b), 2)] for a, b in value])

    def intervals_of(self, value: Any) -> list[tuple[float, float]]:
        return [(float(a), float(b)) for a, b in value or []]

    def score(self, parsed: Parsed, sample: dict, params: ScoringParams) -> SampleScore:
        m = temporal.stg_sample_metrics(parsed.value if parsed.ok else None, self.gold(sample), params.iou_thresholds,
                                        params.stg_tolerance_s)
        m["parse"] = parsed.how
        return SampleScore(json.dumps(parsed.value) if parsed.ok else None, parsed.ok, m["tiou"], m)

    def aggregate(self, rows, samples, params):
        ms = [json.loads(r["metrics"] or "{}") for r in rows]
        nb, seed = params.bootstrap_samples, params.seed
        out = {"tIoU": bootstrap_mean([m.get("tiou", 0.0) for m in ms], nb, seed)}
        for t in params.iou_thresholds:
            out[f"R@1 IoU={t:g}"] = bootstrap_mean([m.get(f"r1@{t:g}", 0.0) for m in ms], nb, seed)
        out["off-by-one acc"] = bootstrap_mean([m.get("off_by_one", 0.0) for m in ms], nb, seed)
        return out

    def columns(self, params):
        return ["tIoU", *[f"R@1 IoU={t:g}" for t in params.iou_thresholds], "off-by-one acc"]


@register_kind
class FreeText(AnswerKind):
    name = "text"
    answer_format = "The answer is a short summary that says which speaker said what."
    headline = "BLEU-4"
    empty_answer = ""

    def parse(self, answer: Any, sample: dict) -> Parsed:
        return parse_text(answer)

    def gold(self, sample: dict) -> list[str]:
        return references(sample)

    def reference_answer(self, sample: dict) -> str:
        return sample["answer"]

    def score(self, parsed: Parsed, sample: dict, params: ScoringParams) -> SampleScore:
        if not parsed.ok:
            return SampleScore(None, False, 0.0, {"sentence_bleu": 0.0, "parse": parsed.how})
        b = text.sentence_bleu(parsed.value, self.gold(sample))
        return SampleScore(parsed.value, True, b / 100.0, {"sentence_bleu": b, "parse": parsed.how})

    def aggregate(self, rows, samples, params):
        hyps = [r["parsed_answer"] or "" for r in rows]
        refs = [references(samples[r["sample_id"]]) for r in rows]
        nb = params.bootstrap_samples
        # Corpus BLEU is not a mean of sentence scores, so its CI resamples the corpus itself.
        out = {"BLEU-4": bootstrap_stat(
            len(rows), lambda idx: text.corpus_bleu([hyps[i] for i in idx], [refs[i] for i in idx]) / 100.0,
            n_boot=min(nb, 300), seed=params.seed)}
        if rows:
            c, per = text.cider(hyps, refs)
            est = bootstrap_mean(per, nb, params.seed)
            out["CIDEr"] = Estimate(c, est.low, est.high, est.n)
            met = text.meteor(hyps, refs)
            if met is not None:
                m, per_m = met
                est = bootstrap_mean(per_m, nb, params.seed)
                out["METEOR"] = Estimate(m, est.low, est.high, est.n)
        judged = [json.loads(r["metrics"] or "{}").get("judge") for r in rows]
        judged = [j for j in judged if j is not None]
        if judged:
            out["LLM-judge (0-10)"] = bootstrap_mean([j / 10.0 for j in judged], nb, params.seed)
        return out

    def columns(self, params):
        return ["BLEU-4", "CIDEr", "METEOR", "LLM-judge (0-10)"]


CHOICE, INTERVALS, TEXT = KINDS["choice"], KINDS["intervals"], KINDS["text"]

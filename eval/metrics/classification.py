"""Multiple-choice accuracy (AVSA, NSP, SRID, CSNL)."""

from __future__ import annotations


def choice_correct(predicted_letter: str | None, answer_letter: str) -> float:
    """1.0 when the parsed letter equals the gold letter; an unparsed answer (None) is wrong."""
    if predicted_letter is None:
        return 0.0
    return float(predicted_letter.strip().upper() == answer_letter.strip().upper())


def accuracy(correct: list[float]) -> float:
    return sum(correct) / len(correct) if correct else float("nan")

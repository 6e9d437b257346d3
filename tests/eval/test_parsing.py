"""Parsing on a table of messy, real-world-looking answers."""

from __future__ import annotations

import logging

import pytest

from eval.parsing import parse_choice, parse_intervals, parse_text

OPTS = ["Speaker 1", "Speaker 12", "the woman on the left", "nobody"]

CHOICE_CASES = [
    ("B", "B"),
    ("b", "B"),
    ("(C)", "C"),
    ("**D**", "D"),
    ("Answer: c", "C"),
    ("The answer is (B).", "B"),
    ("I think the answer is A because she moves her lips.", "A"),
    ('{"answer": "C"}', "C"),
    ('```json\n{"reflect": "x", "answer": "D"}\n```', "D"),
    ("B) Speaker 12", "B"),
    ("C. the woman on the left", "C"),
    ("Option B", "B"),
    ("It's Speaker 12 who talks.", "B"),  # longest option text wins over "Speaker 1"
    ("speaker 1", "A"),
    ("The woman on the left is speaking.", "C"),
    ("I'd go with D.", "D"),
    ("A", "A"),
]

CHOICE_FAILS = [
    "",
    "I cannot tell from the clip.",
    "A man is speaking, maybe.",  # the article "A" is not an answer
    "The answer is A or B.",
    "E",  # outside the four options
    "The answer is a man with glasses.",
]


@pytest.mark.parametrize("text,letter", CHOICE_CASES)
def test_choice_parses(text, letter):
    p = parse_choice(text, OPTS)
    assert p.ok, (text, p.how)
    assert p.value == letter


@pytest.mark.parametrize("text", CHOICE_FAILS)
def test_choice_unparseable_is_logged(text, caplog):
    with caplog.at_level(logging.WARNING, logger="amuse.eval.parsing"):
        p = parse_choice(text, OPTS)
    assert not p.ok and p.value is None
    assert "unparseable choice answer" in caplog.text


INTERVAL_CASES = [
    ("[[1.0, 2.5], [4, 6]]", [(1.0, 2.5), (4.0, 6.0)]),
    ('{"answer": [[3, 4.5]]}', [(3.0, 4.5)]),
    ('[{"start": 1.5, "end": 2}]', [(1.5, 2.0)]),
    ("[2.0, 3.0]", [(2.0, 3.0)]),
    ("She speaks from 1.2s to 3.4s and again 7 - 9 seconds.", [(1.2, 3.4), (7.0, 9.0)]),
    ("0:01.5 – 0:03", [(1.5, 3.0)]),
    ("```json\n[[10, 12]]\n```", [(10.0, 12.0)]),
    ('{"reflect": "ok", "answer": "[[5, 6]]"}', [(5.0, 6.0)]),
    ("[[4, 6], [1, 2]]", [(1.0, 2.0), (4.0, 6.0)]),  # sorted
    ("[]", []),  # explicit "never": parsed, and scored as wrong by tIoU
]


@pytest.mark.parametrize("text,expected", INTERVAL_CASES)
def test_intervals_parse(text, expected):
    p = parse_intervals(text)
    assert p.ok, (text, p.how)
    assert p.value == expected


@pytest.mark.parametrize("text", ["", "Speaker 2 speaks a lot.", "[[5, 2]]", "{\"answer\": \"unknown\"}"])
def test_intervals_unparseable(text, caplog):
    with caplog.at_level(logging.WARNING, logger="amuse.eval.parsing"):
        assert not parse_intervals(text).ok
    assert "intervals" in caplog.text


def test_intervals_drop_malformed_but_keep_good():
    p = parse_intervals("[[1, 2], [6, 3]]")
    assert p.ok and p.value == [(1.0, 2.0)]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Summary: Alice asks about the budget.  Bob agrees.", "Alice asks about the budget. Bob agrees."),
        ('{"reflect": "r", "answer": "Bob thanks Alice."}', "Bob thanks Alice."),
        ("**Alice** greets Bob.", "Alice greets Bob."),
    ],
)
def test_text_parse(text, expected):
    p = parse_text(text)
    assert p.ok and p.value == expected


def test_text_empty_is_unparseable():
    assert not parse_text("  ").ok
    assert not parse_text('{"answer": ""}').ok

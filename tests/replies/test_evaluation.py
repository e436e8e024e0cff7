"""Reply evaluation measures: ParlAI's answer normalisation, unigram F1, hits@1."""

from __future__ import annotations

import pytest

from chatbot.replies.evaluation import hits_at_1, normalize_answer, unigram_f1


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The cat sat.", "cat sat"),
        ("  An  apple, a DAY!\n", "apple day"),
        ("the theater is an anthem", "theater is anthem"),
        ("don't stop-believing", "dont stopbelieving"),
        ("A-the", "athe"),
        ("The the THE", ""),
        ("?!...", ""),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


@pytest.mark.parametrize(
    ("guess", "answer", "f1"),
    [
        # "cat sat" vs "cat sat down": common 2, p = 2/2, r = 2/3, f1 = 2pr/(p+r) = 0.8.
        ("The cat sat.", "a cat sat down", 0.8),
        ("Hello there!", "hello, THERE", 1.0),
        # common 1 ("cat", clipped to the answer's count), p = 1/3, r = 1: f1 = 0.5.
        ("cat cat cat", "cat", 0.5),
        # dog x2 in both: common 2, p = r = 2/3.
        ("cat dog dog", "dog dog bird", 2 / 3),
        # common 1 ("i"), p = 1/2, r = 1/4: f1 = (1/4) / (3/4) = 1/3.
        ("i agree", "i do not know", 1 / 3),
        ("cat", "dog", 0.0),
    ],
)
def test_unigram_f1_golden(guess: str, answer: str, f1: float) -> None:
    assert unigram_f1(guess, answer) == pytest.approx(f1, abs=1e-12)
    assert unigram_f1(answer, guess) == pytest.approx(f1, abs=1e-12)


@pytest.mark.parametrize(
    ("guess", "answer"),
    [("", "cat"), ("cat", ""), ("", ""), ("?!", "..."), ("the a an", "the cat"),
     ("...", "cat")],
)
def test_unigram_f1_of_an_empty_side_is_zero(guess: str, answer: str) -> None:
    assert unigram_f1(guess, answer) == 0.0


@pytest.mark.parametrize(
    ("scores", "hits"),
    [
        ([[3.0, 1.0, 2.0]], 1.0),
        ([[1.0, 2.0, 0.0]], 0.0),
        ([[2.0, 2.0, 1.0]], 0.0),  # a tie with the true reply is a miss
        ([[3.0, 1.0, 2.0], [1.0, 2.0, 0.0], [2.0, 2.0, 1.0]], 1 / 3),
        ([[0.5, -1.0], [-0.5, -0.4], [1e-9, 0.0], [7.0, 6.0]], 3 / 4),
        ([[5.0]], 1.0),  # nothing to beat
        ([], 0.0),
    ],
)
def test_hits_at_1_golden(scores: list[list[float]], hits: float) -> None:
    assert hits_at_1(scores) == pytest.approx(hits, abs=1e-12)

"""Candidates for a turn: gathering generated and retrieved replies, drop reasons, the best."""

from __future__ import annotations

import pytest

from chatbot.data.corpora import Conversation
from chatbot.replies.filter import ReplyFilter
from chatbot.replies.index import Hit, ReplyIndex
from chatbot.replies.select import ReplyCandidate, best, gather

CONVERSATIONS = [
    Conversation("d1", ("I just adopted a dog", "Damn, dogs are great", "They really are")),
    Conversation("d2", ("I just adopted a puppy", "I love dogs", "Me too")),
    Conversation("d3", ("We adopted a dog last year", "What breed is your dog?", "A beagle")),
]
USER = "I just adopted a dog"
FILTER = ReplyFilter(("damn",))


def flags(text: str) -> tuple[str, ...]:
    """A stand-in for the generator's degeneracy checks."""
    if " ".join(text.casefold().split()) == USER.casefold():
        return ("echo",)
    if text == "Me too":
        return ("too short", "generic")
    return ()


@pytest.fixture(scope="module")
def index() -> ReplyIndex:
    return ReplyIndex.build(CONVERSATIONS)


@pytest.fixture(scope="module")
def hits(index: ReplyIndex) -> list[Hit]:
    [found] = index.search([USER], k=5)
    return found


def test_the_index_finds_the_replies_in_this_order(index: ReplyIndex, hits: list[Hit]) -> None:
    assert [index.reply(h.entry) for h in hits] == [
        "Damn, dogs are great", "I love dogs", "What breed is your dog?", "A beagle", "Me too",
    ]
    assert [h.similarity for h in hits] == pytest.approx(
        [1.0, 0.879522, 0.713545, 0.306977, 0.198032], abs=1e-5
    )


def test_gather_lists_generated_then_retrieved_with_reasons(
    index: ReplyIndex, hits: list[Hit]
) -> None:
    generated = ["  I love dogs ", "Tell me about your dog", "i LOVE   dogs",
                 "I just adopted a dog", "damn!", "DAMN!"]
    candidates = gather(generated, hits, index, flags=flags, reply_filter=FILTER)
    sims = [h.similarity for h in hits]
    assert candidates == [
        ReplyCandidate("I love dogs", "generated"),
        ReplyCandidate("Tell me about your dog", "generated"),
        ReplyCandidate("i LOVE   dogs", "generated", dropped="duplicate"),
        ReplyCandidate("I just adopted a dog", "generated", dropped="degenerate: echo"),
        ReplyCandidate("damn!", "generated", dropped="blocked: word 'damn'"),
        ReplyCandidate("DAMN!", "generated", dropped="duplicate"),
        ReplyCandidate("Damn, dogs are great", "retrieved", similarity=sims[0],
                       origin="conversation d1, turn 1", answered="I just adopted a dog",
                       dropped="blocked: word 'damn'"),
        ReplyCandidate("I love dogs", "retrieved", similarity=sims[1],
                       origin="conversation d2, turn 1", answered="I just adopted a puppy",
                       dropped="duplicate"),
        ReplyCandidate("What breed is your dog?", "retrieved", similarity=sims[2],
                       origin="conversation d3, turn 1", answered="We adopted a dog last year"),
        ReplyCandidate("A beagle", "retrieved", similarity=sims[3],
                       origin="conversation d3, turn 2", answered="What breed is your dog?"),
        ReplyCandidate("Me too", "retrieved", similarity=sims[4],
                       origin="conversation d2, turn 2", answered="I love dogs",
                       dropped="degenerate: too short, generic"),
    ]
    assert all(c.score is None and c.features == () for c in candidates)


def test_retrieved_hits_keep_the_order_given(index: ReplyIndex) -> None:
    hits = [Hit(5, 0.25), Hit(0, 0.5)]
    candidates = gather([], hits, index, flags=lambda _: (), reply_filter=ReplyFilter.empty())
    assert [(c.text, c.similarity, c.origin) for c in candidates] == [
        ("A beagle", 0.25, "conversation d3, turn 2"),
        ("Damn, dogs are great", 0.5, "conversation d1, turn 1"),
    ]
    assert all(c.dropped is None and c.source == "retrieved" for c in candidates)


def test_without_an_index_hits_are_ignored(hits: list[Hit]) -> None:
    candidates = gather([" hello "], hits, None, flags=flags, reply_filter=FILTER)
    assert candidates == [ReplyCandidate("hello", "generated")]


def test_a_degenerate_reply_is_not_also_reported_as_blocked(index: ReplyIndex) -> None:
    [candidate] = gather(["damn"], [], index, flags=lambda _: ("loop",), reply_filter=FILTER)
    assert candidate.dropped == "degenerate: loop"


def scored(text: str, score: float | None, dropped: str | None = None) -> ReplyCandidate:
    return ReplyCandidate(text, "generated", score=score, dropped=dropped)


def test_best_is_the_highest_score_not_dropped() -> None:
    candidates = [scored("a", 0.3), scored("b", 9.0, dropped="duplicate"), scored("c", 0.7),
                  scored("d", None), scored("e", 0.5)]
    assert best(candidates) == scored("c", 0.7)


def test_best_takes_the_first_on_ties_and_handles_negative_scores() -> None:
    assert best([scored("a", -2.0), scored("b", -0.5), scored("c", -0.5)]) == scored("b", -0.5)
    assert best([scored("a", 0.0), scored("b", -1.0)]) == scored("a", 0.0)


def test_best_is_none_without_a_scored_candidate() -> None:
    assert best([]) is None
    assert best([scored("a", 1.0, dropped="blocked: word 'damn'"), scored("b", None)]) is None

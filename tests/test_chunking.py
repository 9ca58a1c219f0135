"""chunking.split: budgets hold, nothing is lost, order and page numbers are kept."""

from __future__ import annotations

import math
import random
import re

import pytest

from offgrid.inputs.chunking import Chunk, page_marker, split
from offgrid.inputs.documents import Page

MARKER = re.compile(r"\[p\. (\d+)\]\n")


def words(text: str) -> int:
    return len(text.split())


def chars(text: str) -> int:
    """A BPE-like counter that is not additive over joins."""
    return math.ceil(len(text) / 4)


def lumpy(text: str) -> int:
    """A counter where the whole costs more than the sum of its parts (joins are expensive)."""
    return len(text.split()) + text.count("\n") * 2 + len(text) // 40


def convex(text: str) -> int:
    """Strongly superadditive: a piece next to its page marker costs more than both alone."""
    return len(text.split()) + len(text) ** 2 // 3000


def content(text: str) -> list[str]:
    """The words of a text with page markers removed: what must survive chunking."""
    return MARKER.sub(" ", text).split()


def random_pages(rng: random.Random) -> list[Page]:
    vocabulary = ["alpha", "beta", "gamma", "delta", "total", "EUR", "12.50", "due", "2024"]
    pages = []
    for number in range(1, rng.randint(1, 12) + 1):
        if rng.random() < 0.15:
            pages.append(Page(number, ""))
            continue
        paragraphs = []
        for _ in range(rng.randint(1, 6)):
            sentences = []
            for _ in range(rng.randint(1, 8)):
                length = rng.choice([1, 3, 8, 20, 60])
                sentence = " ".join(rng.choice(vocabulary) for _ in range(length))
                sentences.append(sentence + rng.choice([".", "!", "?", ";", ""]))
            joiner = rng.choice([" ", "\n"])
            paragraphs.append(joiner.join(sentences))
        if rng.random() < 0.1:
            paragraphs.append("x" * rng.randint(50, 400))  # one enormous "word"
        pages.append(Page(number, "\n\n".join(paragraphs)))
    return pages


def check(pages: list[Page], chunks: list[Chunk], count, budget: int) -> None:
    # no chunk exceeds its budget, and each knows its real size
    for chunk in chunks:
        assert count(chunk.text) <= budget
        assert chunk.tokens == count(chunk.text)
    # nothing dropped, order kept
    expected = [word for page in pages for word in page.text.split()]
    got = [word for chunk in chunks for word in content(chunk.text)]
    assert "".join(got) == "".join(expected)
    # page numbers: every chunk opens with a marker, markers match its pages and ascend
    seen: list[int] = []
    for chunk in chunks:
        assert chunk.text.startswith("[p. ")
        marked = [int(number) for number in MARKER.findall(chunk.text)]
        assert marked == chunk.pages == sorted(set(marked))
        seen.extend(chunk.pages)
    assert seen == sorted(seen)
    assert set(seen) == {page.number for page in pages if page.text.strip()}


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("counter", [words, chars, lumpy, convex], ids=["words", "chars", "lumpy", "convex"])
def test_random_documents(seed, counter):
    rng = random.Random(seed)
    pages = random_pages(rng)
    budget = rng.choice([12, 16, 25, 60, 200, 1000])
    check(pages, split(pages, counter, budget), counter, budget)


def test_small_document_is_one_chunk():
    pages = [Page(1, "Hello there."), Page(2, "Second page.\n\nWith two paragraphs.")]
    chunks = split(pages, words, 100)
    assert chunks == [
        Chunk("[p. 1]\nHello there.\n\n[p. 2]\nSecond page.\n\nWith two paragraphs.", [1, 2], 11)
    ]


def test_chunks_break_on_paragraphs_and_reopen_the_page():
    paragraph = " ".join(["word"] * 10)
    pages = [Page(7, "\n\n".join([paragraph] * 3))]
    chunks = split(pages, words, 20)  # a marker (2) + one paragraph (10) fits, two do not
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk.text == f"{page_marker(7)}\n{paragraph}"
        assert chunk.pages == [7]


def test_long_paragraph_splits_on_sentences_first():
    sentences = [f"Sentence {n} has exactly six words." for n in range(10)]
    chunks = split([Page(1, " ".join(sentences))], words, 20)
    for chunk in chunks:
        body = chunk.text.removeprefix("[p. 1]\n")
        assert body.endswith("words.")  # never cut inside a sentence
    assert len(chunks) == 4


def test_huge_word_is_cut_hard_but_kept():
    blob = "z" * 1000
    chunks = split([Page(1, f"before {blob} after")], chars, 50)
    assert sum(chunk.text.count("z") for chunk in chunks) == 1000
    assert content(chunks[0].text)[0] == "before" and content(chunks[-1].text)[-1] == "after"
    assert all(chars(chunk.text) <= 50 for chunk in chunks)


def test_empty_pages_produce_no_chunks():
    assert split([Page(1, ""), Page(2, "  \n ")], words, 10) == []


def test_budget_too_small_is_a_value_error():
    with pytest.raises(ValueError):
        split([Page(1, "some text")], words, 2)


def test_token_counts_are_cached_and_few():
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return words(text)

    paragraph = "one two three four five six seven eight nine ten"
    pages = [Page(n, "\n\n".join(f"{paragraph} {n}-{k}" for k in range(5))) for n in range(1, 21)]
    chunks = split(pages, counting, 120)
    n_paragraphs = 100
    # each paragraph once, each chunk once, plus a couple of separators/markers
    assert len(calls) <= n_paragraphs + len(chunks) + 5
    assert len(calls) == len(set(calls))
    assert all(chunk.tokens > 90 for chunk in chunks[:-1])  # most of the budget is used

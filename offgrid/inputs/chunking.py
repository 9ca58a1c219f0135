"""Split pages into token-budgeted chunks that remember their page numbers.

Chunks break on paragraph and page boundaries where they can; a paragraph too long for one chunk
is split on lines, then sentences, then words, then (for one enormous "word") characters. Every
chunk starts with a page marker such as "[p. 4]" and gets another one wherever a new page begins,
so a model reading any single chunk can cite pages.

Token counts come from the caller (the model's own tokenizer). Each distinct piece of text is
counted once and chunks are packed from the sums; then each chunk is counted once as a whole and
shrunk if the sum was optimistic, so no chunk ever exceeds the budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from offgrid.inputs.documents import Page

PARAGRAPH_BREAK = "\n\n"
_PARAGRAPHS = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?;:…])\s+|(?<=[。！？])")


@dataclass(frozen=True)
class Chunk:
    """Text for one model call, the pages it covers, and its measured size in tokens."""

    text: str
    pages: list[int]
    tokens: int = 0


def page_marker(number: int) -> str:
    """The marker that opens each page's text inside a chunk."""
    return f"[p. {number}]"


@dataclass(frozen=True)
class _Piece:
    page: int
    text: str
    tokens: int
    joiner: str  # what separates it from the previous piece of the same page


class _Counter:
    """count_tokens with a cache, so repeated text (headers, footers) is counted once."""

    def __init__(self, count_tokens: Callable[[str], int]):
        self._count = count_tokens
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if text not in self._cache:
            self._cache[text] = self._count(text)
        return self._cache[text]


def split(pages: list[Page], count_tokens: Callable[[str], int], budget: int) -> list[Chunk]:
    """Pack the pages' text into chunks of at most `budget` tokens each, in order, losing nothing.

    Raises ValueError when `budget` cannot even hold a page marker and one token of text.
    """
    count = _Counter(count_tokens)
    last_page = max((page.number for page in pages if page.text.strip()), default=0)
    if not last_page:
        return []
    marker_cost = count(PARAGRAPH_BREAK + page_marker(last_page) + "\n")
    piece_limit = budget - marker_cost
    if piece_limit < 1:
        raise ValueError(f"a budget of {budget} tokens cannot hold a page marker and text")
    pieces = [piece for page in pages for piece in _page_pieces(page, count, piece_limit)]
    return _pack(pieces, count, budget, marker_cost)


def _page_pieces(page: Page, count: _Counter, limit: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for paragraph in _PARAGRAPHS.split(page.text):
        paragraph = paragraph.strip()
        if paragraph:
            for text, tokens, joiner in _fit(paragraph, count, limit, level=0):
                pieces.append(_Piece(page.number, text, tokens, joiner if pieces else PARAGRAPH_BREAK))
    if pieces:
        pieces[0] = _Piece(page.number, pieces[0].text, pieces[0].tokens, PARAGRAPH_BREAK)
    return pieces


# Each level splits text that is still too long: (splitter, joiner that restores it).
_LEVELS: tuple[tuple[Callable[[str], list[str]], str], ...] = (
    (lambda text: text.split("\n"), "\n"),
    (lambda text: _SENTENCE_END.split(text), " "),
    (lambda text: text.split(), " "),
)


def _fit(text: str, count: _Counter, limit: int, level: int) -> list[tuple[str, int, str]]:
    """Split `text` into (text, tokens, joiner) parts of at most `limit` tokens each.

    The first part's joiner is PARAGRAPH_BREAK; callers replace it as needed.
    """
    tokens = count(text)
    if tokens <= limit:
        return [(text, tokens, PARAGRAPH_BREAK)]
    while level < len(_LEVELS):
        splitter, joiner = _LEVELS[level]
        parts = [part.strip() for part in splitter(text)]
        parts = [part for part in parts if part]
        level += 1
        if len(parts) > 1:
            fitted: list[tuple[str, int, str]] = []
            for part in parts:
                for index, (sub, sub_tokens, sub_joiner) in enumerate(_fit(part, count, limit, level)):
                    fitted.append((sub, sub_tokens, joiner if index == 0 else sub_joiner))
            fitted[0] = (fitted[0][0], fitted[0][1], PARAGRAPH_BREAK)
            return fitted
    return _hard_split(text, count, limit)


def _hard_split(text: str, count: _Counter, limit: int) -> list[tuple[str, int, str]]:
    """Cut a run of text with no usable boundary into character slices that fit."""
    parts: list[tuple[str, int, str]] = []
    rest = text
    while rest:
        rest_tokens = count(rest)
        if rest_tokens <= limit:
            parts.append((rest, rest_tokens, ""))
            break
        size = max(1, int(len(rest) * limit / rest_tokens))
        while size > 1 and count(rest[:size]) > limit:
            size = max(1, int(size * 0.8))
        head_tokens = count(rest[:size])
        if head_tokens > limit:
            raise ValueError(f"a budget of {limit} tokens cannot hold a single character")
        parts.append((rest[:size], head_tokens, ""))
        rest = rest[size:]
    parts[0] = (parts[0][0], parts[0][1], PARAGRAPH_BREAK)
    return parts


def _render(pieces: list[_Piece]) -> str:
    out: list[str] = []
    page = None
    for piece in pieces:
        if piece.page != page:
            if out:
                out.append(PARAGRAPH_BREAK)
            out.append(page_marker(piece.page) + "\n")
            page = piece.page
        elif out:
            out.append(piece.joiner)
        out.append(piece.text)
    return "".join(out)


def _pack(pieces: list[_Piece], count: _Counter, budget: int, marker_cost: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    start = 0
    while start < len(pieces):
        end = _greedy_end(pieces, start, count, budget, marker_cost)
        text = _render(pieces[start:end])
        tokens = count(text)
        while tokens > budget and end - start > 1:
            end -= 1
            text = _render(pieces[start:end])
            tokens = count(text)
        if tokens > budget:
            # One piece plus its marker is still too long: cut that piece smaller and retry.
            piece = pieces[start]
            limit = piece.tokens - (tokens - budget) - 1
            if limit < 1:
                raise ValueError(f"a budget of {budget} tokens cannot hold a page marker and text")
            smaller = [
                _Piece(piece.page, sub, sub_tokens, piece.joiner if index == 0 else joiner)
                for index, (sub, sub_tokens, joiner) in enumerate(_fit(piece.text, count, limit, 0))
            ]
            pieces[start : start + 1] = smaller
            continue
        pages = sorted({piece.page for piece in pieces[start:end]})
        chunks.append(Chunk(text, pages, tokens))
        start = end
    return chunks


def _greedy_end(pieces: list[_Piece], start: int, count: _Counter, budget: int, marker_cost: int) -> int:
    """Index after the last piece that still fits by the (cheap) estimate; at least one piece."""
    total = 0
    page = None
    end = start
    while end < len(pieces):
        piece = pieces[end]
        cost = piece.tokens + (marker_cost if piece.page != page else count(piece.joiner))
        if end > start and total + cost > budget:
            break
        total += cost
        page = piece.page
        end += 1
    return end

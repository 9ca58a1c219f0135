"""Separate a thinking model's `<think>…</think>` text from its answer, while streaming."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

OPEN, CLOSE = "<think>", "</think>"


def split_thinking(pieces: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Yield ("think", text) and ("text", text) pieces; tags may span the pieces' boundaries."""
    buffer, thinking = "", False
    for piece in pieces:
        buffer += piece
        while buffer:
            tag = CLOSE if thinking else OPEN
            index = buffer.find(tag)
            if index >= 0:
                if index:
                    yield ("think" if thinking else "text", buffer[:index])
                buffer = buffer[index + len(tag):]
                thinking = not thinking
                continue
            keep = _partial_tag_suffix(buffer, tag)
            emit = buffer[:len(buffer) - keep]
            if emit:
                yield ("think" if thinking else "text", emit)
            buffer = buffer[len(buffer) - keep:]
            break
    if buffer:
        yield ("think" if thinking else "text", buffer)


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of *text* that could be the start of *tag*."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


def strip_thinking(text: str) -> str:
    """The answer without any thinking, trimmed."""
    return "".join(t for kind, t in split_thinking([text]) if kind == "text").strip()

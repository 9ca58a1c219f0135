"""The loop guard: stop a reply that repeats itself or echoes offgrid's own prompt markup.

Small and base (non-instruct) models fall into loops: the same sentence again and again, or
the prompt's `<document>` block copied back, until --max-tokens. Every engine runs its reply
through `RepetitionGuard`; when it trips, generation stops, the text is cut where the loop (or
the markup) began, and `GenerationStats.finish_reason` is "repetition".

What counts as a loop: the reply ends with one stretch of text repeated back to back
`REPEATS` times or more, the whole run at least `MIN_RUN` characters long (so "ha ha ha",
a row of dashes or three short table rows of zeros are left alone), or with any stretch
repeated `MANY_REPEATS` times. Lists and tables whose lines differ never match: a repeat must
be exact, character for character.
"""

from __future__ import annotations

MIN_UNIT = 8  # characters: shorter repeats are words and punctuation, not loops
MAX_UNIT = 600  # the longest block looked for (a paragraph)
REPEATS = 3
MIN_RUN = 120  # characters the repeated run must cover for REPEATS to count
MANY_REPEATS = 8  # any unit (≥ MIN_UNIT) repeated this often is a loop, however short
# offgrid's own prompt markup (grounded.prompts): never part of an answer
ECHO_MARKERS = ("<document>", "</document>", "<notes>", "</notes>")
REPETITION_WARNING = ("the model began repeating itself, so its reply was stopped "
                      "(a base model? an instruct model answers better)")


class RepetitionGuard:
    """Fed the reply piece by piece; hands back what may be shown, and trips on a loop."""

    def __init__(self) -> None:
        self.text = ""  # the reply so far, cut where a loop or an echo began once tripped
        self.shown = 0  # how much of it was handed back
        self.tripped = False

    def feed(self, piece: str) -> str:
        """Add *piece*; return the text that may be shown now. A tail that could be the start
        of a prompt marker is held back until it is known; once `tripped`, generation must
        stop and nothing more is shown."""
        if self.tripped:
            return ""
        start = len(self.text)
        self.text += piece
        cut = self._echo_at(start)
        if cut is None:
            cut = self._loop_at()
        if cut is not None:
            self.tripped = True
            self.text = self.text[:max(cut, self.shown)]
            return self._take(len(self.text))
        return self._take(len(self.text) - _marker_prefix(self.text))

    def flush(self) -> str:
        """The rest, held back in case a marker began there (the reply has ended)."""
        return "" if self.tripped else self._take(len(self.text))

    def _take(self, end: int) -> str:
        out = self.text[self.shown:end]
        self.shown = max(self.shown, end)
        return out

    def _echo_at(self, start: int) -> int | None:
        window = max(0, start - 12)
        found = [i for i in (self.text.find(m, window) for m in ECHO_MARKERS) if i >= 0]
        return min(found) if found else None

    def _loop_at(self) -> int | None:
        """Where the repeats after the first copy begin, if the text ends in a loop."""
        text = self.text
        size = len(text)
        last = text[-1:] if text else ""
        for unit in range(MIN_UNIT, min(MAX_UNIT, size // REPEATS) + 1):
            if text[size - 1 - unit] != last:  # cheap test before comparing whole blocks
                continue
            block = text[size - unit:]
            count = 1
            while count < MANY_REPEATS and size - (count + 1) * unit >= 0 and \
                    text[size - (count + 1) * unit:size - count * unit] == block:
                count += 1
            looped = count >= MANY_REPEATS or (count >= REPEATS and count * unit >= MIN_RUN)
            if looped and _is_words(block):
                return size - (count - 1) * unit  # keep one copy
        return None


def _is_words(block: str) -> bool:
    """A loop repeats words: a rule of dashes or a run of dots is layout."""
    return any(c.isalnum() for c in block) and len(set(block)) > 2


def _marker_prefix(text: str) -> int:
    """Length of the longest end of *text* that is the start of an ECHO_MARKER."""
    at = text.rfind("<", max(0, len(text) - 11))
    if at < 0:
        return 0
    tail = text[at:]
    return len(tail) if any(m.startswith(tail) for m in ECHO_MARKERS) else 0

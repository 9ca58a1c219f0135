"""Extracted values checked against the document: a value the text does not contain is not
printed as found.

Small models invent values (`VAT number: ="#">`) or fill a field from another one. A value
counts as found when, after normalising both sides, it appears in the document's text, or
every one of its numbers and words does: spaces, case, thousands separators ("4 500",
"4,500", "4500"), currency signs ("€" and "EUR"), leading zeros and month names ("15 March
2026", "March 15, 2026", "2026-03-15") do not matter.
"""

from __future__ import annotations

import re

from offgrid.grounded.prompts import NOT_MENTIONED

MONTHS = {name: str(number) for number, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
    ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
    ("october", "oct"), ("november", "nov"), ("december", "dec")), start=1) for name in names}
CURRENCIES = {"€": " eur ", "$": " usd ", "£": " gbp ", "¥": " jpy "}
_THOUSANDS = re.compile(r"(?<=\d)[\s,.'’\u00a0\u202f](?=\d{3}(?!\d))")
_CITATION = re.compile(r"\(\s*(?:pp?\.|pages?)\s*[\d\s,–—-]+\)", re.I)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_FILLER = {"the", "and", "of", "per", "a", "an", "to", "in", "on", "at", "by", "is"}


def normalise(text: str) -> str:
    """Lower case, one space between words, digits joined, currency signs as codes."""
    text = text.lower()
    for sign, code in CURRENCIES.items():
        text = text.replace(sign, code)
    text = _THOUSANDS.sub("", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    """Words and numbers, months as numbers, numbers without leading zeros."""
    out = []
    for token in _TOKEN.findall(text):
        token = MONTHS.get(token, token)
        out.append((token.lstrip("0") or "0") if token.isdigit() else token)
    return out


class DocumentText:
    """A document's text, normalised once for checking many values."""

    def __init__(self, pages: dict[int, str]):
        self.text = normalise(" ".join(pages.values()))
        self.tokens = set(_tokens(self.text))

    def contains(self, value: str) -> bool:
        """Whether *value* (its citation and Markdown left out) is in the document."""
        bare = normalise(_CITATION.sub("", value).strip(" *_`\"'"))
        if not bare:
            return False
        if bare in self.text:
            return True
        needed = [t for t in _tokens(bare) if t not in _FILLER]
        return bool(needed) and all(token in self.tokens for token in needed)


def verify(values: dict[str, str], pages: dict[int, str]) -> tuple[dict[str, str], dict[str, bool | None]]:
    """(values with the ones the text lacks turned into NOT_MENTIONED, per field: True found
    in the text, False given by the model but not in the text, None not mentioned). A field
    with several values ("a; b") keeps those the text has."""
    document = DocumentText(pages)
    checked: dict[str, str] = {}
    verified: dict[str, bool | None] = {}
    for name, value in values.items():
        if value == NOT_MENTIONED:
            checked[name], verified[name] = value, None
            continue
        kept = [part for part in value.split("; ") if document.contains(part)]
        checked[name] = "; ".join(kept) if kept else NOT_MENTIONED
        verified[name] = bool(kept)
    return checked, verified

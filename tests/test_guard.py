"""The loop guard (engines/guard.py) on hand-written replies: loops and echoed prompt markup
are cut, legitimate lists, tables and prose are not."""

from __future__ import annotations

import pytest

from offgrid.engines.guard import RepetitionGuard


def run(text: str, size: int = 3) -> tuple[str, bool]:
    """Feed *text* in pieces of *size* characters, as an engine would; (shown, tripped)."""
    guard, shown = RepetitionGuard(), ""
    for start in range(0, len(text), size):
        shown += guard.feed(text[start:start + size])
        if guard.tripped:
            return shown, True
    return shown + guard.flush(), False


def test_a_sentence_said_again_and_again_is_cut_to_one() -> None:
    loop = "The notice period is thirty days from the date of the letter. "
    shown, tripped = run("Answer: " + loop * 12)
    assert tripped
    assert shown.startswith("Answer: " + loop) and shown.count("notice period") <= 3


def test_a_short_phrase_repeated_many_times_is_a_loop() -> None:
    shown, tripped = run("Yes. Okay! " * 30)
    assert tripped and len(shown) < 120


def test_the_prompt_markup_echoed_is_cut_before_it() -> None:
    shown, tripped = run("The total is 4 500 €. <document>\n[p. 1]\nInvoice", size=4)
    assert tripped and shown == "The total is 4 500 €. "
    shown, tripped = run("Fine.</notes> more", size=1)  # markers split over pieces
    assert tripped and shown == "Fine."
    assert run("a < b and <b>bold</b> <doc", size=2) == ("a < b and <b>bold</b> <doc", False)


@pytest.mark.parametrize("text", [
    "".join(f"- item {n}: {name}\n" for n, name in enumerate(["apples", "pears", "plums"] * 9)),
    "| year | total |\n| --- | --- |\n" + "".join(f"| {2000 + n} | {n * 7} |\n" for n in range(40)),
    "| a | b |\n| --- | --- |\n" + "| 0 | 0 |\n" * 3 + "| 1 | 2 |\n",
    "ha ha ha ha ha, that is funny. " + "-" * 80 + "\n",
    "def f():\n    return 1\n\n\ndef g():\n    return 2\n\n\ndef h():\n    return 3\n",
    "Step 1. Mix.\nStep 2. Stir.\nStep 3. Bake.\nStep 4. Cool.\nStep 5. Serve.\n" * 2,
    "Payment is due within 30 days. Late payment incurs a penalty of 2% per month. " * 2,
])
def test_legitimate_replies_are_left_alone(text: str) -> None:
    assert run(text) == (text, False)

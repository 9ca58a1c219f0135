"""`offgrid chat --clipboard / --copy` with fake clipboard programs on PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from offgrid.history import History
from tests.fakebin import FakeBin


@pytest.fixture
def clip(tmp_path: Path) -> FakeBin:
    bins = FakeBin(tmp_path / "fake")
    bins.add("termux-clipboard-get", stdout="The meeting moved to Friday 10:00.")
    bins.add("termux-clipboard-set")
    bins.add("termux-wake-lock")
    bins.add("termux-wake-unlock")
    return bins


def _env(bins: FakeBin) -> dict[str, str]:
    return {"PATH": str(bins.dir), "TERMUX_VERSION": "0.118.1"}


def test_clipboard_is_context_and_copy_puts_the_answer_back(offgrid, tiny_llama: Path,
                                                            clip: FakeBin) -> None:
    result = offgrid("chat", "-m", str(tiny_llama), "when is the meeting?", "-n", "6",
                     "--clipboard", "--copy", env=_env(clip))
    assert result.returncode == 0, result.stderr
    (copied,) = clip.calls("termux-clipboard-set")
    assert copied["stdin"] == result.stdout.rstrip("\n") and copied["stdin"]
    (record,) = History().list()
    question = History().get(record.id).messages[0]["content"]
    assert "The meeting moved to Friday 10:00." in question and "when is the meeting?" in question
    names = [c["name"] for c in clip.calls()]
    assert names.index("termux-wake-lock") < names.index("termux-wake-unlock")


def test_clipboard_alone_is_the_question(offgrid, tiny_llama: Path, clip: FakeBin) -> None:
    result = offgrid("chat", "-m", str(tiny_llama), "-n", "4", "--clipboard", env=_env(clip))
    assert result.returncode == 0, result.stderr
    (record,) = History().list()
    assert History().get(record.id).messages[0]["content"] == "The meeting moved to Friday 10:00."


def test_clipboard_errors_are_one_line(offgrid, tiny_llama: Path, clip: FakeBin) -> None:
    clip.add("termux-clipboard-get", stdout="  \n")
    empty = offgrid("chat", "-m", str(tiny_llama), "hi", "--clipboard", env=_env(clip))
    assert empty.returncode == 1 and empty.stderr == "offgrid: error: the clipboard is empty\n"
    both = offgrid("chat", "-m", str(tiny_llama), "--clipboard", input="piped", env=_env(clip))
    assert both.returncode == 2 and "cannot be combined" in both.stderr
    desktop = offgrid("chat", "-m", str(tiny_llama), "hi", "--copy", "-n", "2",
                      env={"PATH": str(clip.dir), "PREFIX": "/usr"})
    assert desktop.returncode == 1
    assert desktop.stderr.splitlines()[-2].startswith("offgrid: error: the clipboard needs one of")

"""History: full-text search (FTS5, LIKE fallback), erasing for real, surviving a crash."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from offgrid import history as history_module
from offgrid.history import SCHEMA, History, fts_query

ROOT = Path(__file__).resolve().parents[1]
SECRET = "zebraquokka7731"


def _on_disk(history: History) -> bytes:
    """Every byte of the database and its WAL / shared-memory files."""
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(f"{history.path}{suffix}")
        if path.exists():
            data += path.read_bytes()
    return data


@pytest.fixture
def filled() -> tuple[History, dict[str, str]]:
    history = History()
    ids = {
        "penalty": history.record_run("summarize", "m", "contract.pdf",
                                      "Late payment carries a penalty of 2% per month."),
        "cafe": history.record_run("chat", "m", "where to eat?", "Try the Café Müller downtown."),
        "bus": history.record_run("transcribe", "m", "memo.m4a", "The bus leaves at nine."),
    }
    return history, ids


def test_full_text_search_words_prefixes_and_accents(filled) -> None:
    history, ids = filled
    assert history.fts
    assert [r.id for r in history.list(search="penalt")] == [ids["penalty"]]  # a word's start
    assert [r.id for r in history.list(search="cafe muller")] == [ids["cafe"]]  # accents, AND
    assert [r.id for r in history.list(search="month late")] == [ids["penalty"]]  # any order
    assert history.list(search="late bus") == []
    assert [r.id for r in history.list(search="memo.m4a")] == [ids["bus"]]  # titles still match
    assert history.list(search="bus", command="chat") == []
    for odd in ('"', "-", "AND", "NEAR(", "*", "'"):
        history.list(search=odd)  # never a database error


def test_fts_query_quotes_every_word() -> None:
    assert fts_query('late "fee" OR') == '"late"* "fee"* "OR"*'
    assert fts_query("  ") == ""


def test_an_older_database_is_indexed_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO conversations VALUES ('c1','chat',NULL,'m','t',1,1,'{}')")
    conn.execute("INSERT INTO messages (conversation_id, role, content, created) VALUES "
                 "('c1','user','an old note about tomatoes',1)")
    conn.commit()
    conn.close()
    assert [r.id for r in History(path).list(search="tomato")] == ["c1"]


def test_substring_search_without_fts5(filled, monkeypatch: pytest.MonkeyPatch) -> None:
    history, ids = filled
    monkeypatch.setattr(history_module, "_ensure_fts", lambda conn: False)
    assert [r.id for r in history.list(search="alty of 2%")] == [ids["penalty"]]


def test_rm_all_leaves_no_text_in_the_files(filled) -> None:
    history, _ = filled
    history.record_run("chat", "m", f"my secret is {SECRET}", f"noted: {SECRET}")
    assert SECRET.encode() in _on_disk(history)
    assert history.delete_all() == 4
    data = _on_disk(history)
    for word in (SECRET, "penalty", "Müller", "contract.pdf"):
        assert word.encode() not in data, word
    assert history.list() == [] and history.list(search="penalty") == []


def test_rm_one_entry_erases_its_text(filled) -> None:
    history, ids = filled
    secret = history.record_run("chat", "m", f"my secret is {SECRET}", "noted")
    assert history.delete(secret)
    assert SECRET.encode() not in _on_disk(history)
    assert [r.id for r in history.list(search="penalty")] == [ids["penalty"]]


WRITER = """
import sys
from offgrid.history import History
history = History()
for i in range(100000):
    history.record_run("chat", "m", f"question {i} " + "x" * 2000, f"answer {i} " + "y" * 2000)
    if i == 20:
        print("writing", flush=True)
"""


def test_a_process_killed_mid_write_leaves_a_usable_database() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    writer = subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.PIPE, env=env,
                              text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)  # mid-write, as a crash or Android's killer would
    finally:
        writer.wait(timeout=30)
    history = History()
    records = history.list(limit=1000)
    assert len(records) > 20
    assert all(len(history.get(r.id).messages) in (1, 2) for r in records[:5])
    conn = sqlite3.connect(history.path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert history.list(search="question")
    history.record_run("chat", "m", "after the crash", "fine")


def test_listing_says_when_filters_match_nothing(offgrid) -> None:
    assert offgrid("history").stderr == "no history yet\n"
    History().record_run("transcribe", "m", "call.wav", "Hello world.", {})
    assert offgrid("history", "--command", "imagine").stderr == "no entries match\n"
    assert offgrid("history", "--search", "lighthouse").stderr == "no entries match\n"
    assert "call.wav" in offgrid("history", "--search", "hello").stdout

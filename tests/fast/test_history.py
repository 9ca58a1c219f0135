"""`offgrid history` in-process: list, search, show, export, rm — over entries made by
chat runs with the fake engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from offgrid.history import History
from tests.fast.helpers import hint, one_line_error


@pytest.fixture
def entries(cli, fake_model: Path) -> dict[str, str]:
    """Two chats: an unnamed one and a session named "work"; title -> id."""
    assert cli("chat", "-m", str(fake_model), "first question about taxes").returncode == 0
    assert cli("chat", "-m", str(fake_model), "--session", "work", "named one").returncode == 0
    return {r.title: r.id for r in History().list()}


def test_empty_history(cli) -> None:
    result = cli("history")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "no history yet\n"
    assert json.loads(cli("history", "--json").stdout) == []


def test_list_newest_first(cli, entries) -> None:
    result = cli("history")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"{entries['named one']}  \d\d-\d\d \d\d:\d\d  chat       \[work\] named one",
                        lines[0])
    assert lines[1].endswith("chat       first question about taxes")
    data = json.loads(cli("history", "--json", "--limit", "1").stdout)
    assert [r["title"] for r in data] == ["named one"] and data[0]["name"] == "work"


def test_filters(cli, entries) -> None:
    found = json.loads(cli("history", "--search", "taxes", "--json").stdout)
    assert [r["id"] for r in found] == [entries["first question about taxes"]]
    assert json.loads(cli("history", "--search", "Answer", "--json").stdout) != []  # reply text too
    nothing = cli("history", "--command", "see")
    assert nothing.stdout == "" and nothing.stderr == "no entries match\n"
    one_line_error(cli("history", "--limit", "0"), "Invalid value for '--limit'", 2)


def test_show(cli, entries, fake_model: Path) -> None:
    conv = entries["first question about taxes"]
    text = cli("history", "show", conv)
    assert text.returncode == 0
    assert text.stdout.startswith(f"# first question about taxes\n\n- command: chat\n"
                                  f"- model: {fake_model}\n- started: ")
    assert text.stdout.endswith("## user\n\nfirst question about taxes\n\n## assistant\n\n"
                                "Answer 1: first question about taxes\n")
    data = json.loads(cli("history", "show", conv, "--json").stdout)
    assert data["id"] == conv and [m["role"] for m in data["messages"]] == ["user", "assistant"]
    missing = cli("history", "show", "nope")
    one_line_error(missing, "no history entry 'nope'", 2)
    assert hint(missing) == "see `offgrid history`"


def test_export(cli, entries, tmp_path: Path) -> None:
    conv = entries["named one"]
    md = cli("history", "export", conv)
    assert md.stdout.startswith("# named one\n") and "## assistant" in md.stdout
    as_json = json.loads(cli("history", "export", conv, "-f", "json").stdout)
    assert as_json["name"] == "work" and len(as_json["messages"]) == 2
    target = tmp_path / "chat.md"
    written = cli("history", "export", conv, "-o", str(target))
    assert written.stdout == "" and written.stderr == f"wrote {target}\n"
    assert target.read_text() == md.stdout
    assert (target.stat().st_mode & 0o777) == 0o600  # private, like the history itself
    again = cli("history", "export", conv, "-o", str(target), "-f", "json")
    one_line_error(again, f"{target} already exists", 2)
    assert target.read_text() == md.stdout
    forced = cli("history", "export", conv, "-o", str(target), "-f", "json", "--force")
    assert forced.returncode == 0 and json.loads(target.read_text())["id"] == conv
    one_line_error(cli("history", "export", conv, "-f", "docx"), "unknown format 'docx'", 2)
    one_line_error(cli("history", "export", "nope"), "no history entry 'nope'", 2)


def test_rm(cli, entries) -> None:
    conv = entries["named one"]
    removed = cli("history", "rm", conv)
    assert removed.returncode == 0 and removed.stderr == f"deleted {conv}\n"
    assert [r.id for r in History().list()] == [entries["first question about taxes"]]
    one_line_error(cli("history", "rm", conv), f"no history entry '{conv}'", 2)
    one_line_error(cli("history", "rm"), "give an entry id, or --all", 2)
    everything = cli("history", "rm", "--all")
    assert everything.stderr == "deleted 1 entries\n"
    assert History().list() == []


def test_a_corrupt_database_is_one_error(cli) -> None:
    path = History().path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not sqlite" * 100)
    result = cli("history")
    one_line_error(result, f"the history database {path} is unreadable")
    assert hint(result) == f"move it aside to start afresh: mv {path} {path}.broken"

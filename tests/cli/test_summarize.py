"""`offgrid summarize` through the CLI, on the real llama.cpp engine with tiny generated models.

The tiny model's words are gibberish, so these tests check what offgrid guarantees around the
model: inputs, errors, chunking, JSON shape, page references, cache reuse, files written.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.pdfs import pdf_bytes, write_pdf

# Small answers keep the real engine fast; 2048 is the tiny model's trained context.
FAST = ("-n", "8", "--ctx", "2048", "--seed", "3", "--no-save")
CONTRACT = ["Service agreement between Acme and Bob.", "Total due: 1,200 EUR.", "Late penalty: 2% per month."]


@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> Path:
    return write_pdf(tmp_path_factory.mktemp("docs") / "contract.pdf", CONTRACT)


def run(offgrid, model: Path, *args: str, **kwargs):
    return offgrid("summarize", "-m", str(model), *FAST, *args, **kwargs)


def one_line_error(result, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("offgrid: error: ")
    for needle in needles:
        assert needle in result.stderr
    assert len(result.stderr.splitlines()) <= 2  # the error and at most one hint


# --- inputs --------------------------------------------------------------------------------


def test_pdf_summary_to_a_pipe(offgrid, tiny_llama: Path, contract: Path) -> None:
    result = run(offgrid, tiny_llama, str(contract))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr == ""  # no progress bar or spinner in a pipe


def test_text_markdown_and_html_files(offgrid, tiny_llama: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Notes\n\nThe meeting moved to Friday.\n")
    (tmp_path / "page.html").write_text("<html><script>x()</script><p>Invoice total 90 EUR</p></html>")
    result = run(offgrid, tiny_llama, str(tmp_path / "notes.md"), str(tmp_path / "page.html"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["name"] for d in data["documents"]] == [str(tmp_path / "notes.md"), str(tmp_path / "page.html")]
    assert all(d["summary"] for d in data["documents"])


def test_piped_text_and_piped_pdf(offgrid, tiny_llama: Path) -> None:
    text = run(offgrid, tiny_llama, "--json", input="Minutes: budget approved.\fPage two: 5 votes.")
    assert text.returncode == 0, text.stderr
    assert json.loads(text.stdout)["documents"][0]["pages"] == [1, 2]  # form feeds split pages
    pdf = run(offgrid, tiny_llama, "-", "--json", input=pdf_bytes(CONTRACT))
    assert pdf.returncode == 0, pdf.stderr
    assert json.loads(pdf.stdout)["documents"][0] == {**json.loads(pdf.stdout)["documents"][0],
                                                      "name": "<stdin>", "pages": [1, 2, 3]}


def test_page_ranges(offgrid, tiny_llama: Path, contract: Path) -> None:
    result = run(offgrid, tiny_llama, str(contract), "--pages", "2-3", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["documents"][0]["pages"] == [2, 3]
    one_line_error(run(offgrid, tiny_llama, str(contract), "--pages", "2-9"), "outside", "3 pages")
    bad = run(offgrid, tiny_llama, str(contract), "--pages", "x")
    assert bad.returncode == 2 and "invalid page range" in bad.stderr


def test_encrypted_pdf(offgrid, tiny_llama: Path, tmp_path: Path) -> None:
    locked = write_pdf(tmp_path / "locked.pdf", CONTRACT, password="hunter2")
    one_line_error(run(offgrid, tiny_llama, str(locked)), "encrypted", "--password")
    one_line_error(run(offgrid, tiny_llama, str(locked), "--password", "nope"), "wrong password")
    opened = run(offgrid, tiny_llama, str(locked), "--password", "hunter2")
    assert opened.returncode == 0, opened.stderr


def test_scanned_pdf_suggests_see(offgrid, tiny_llama: Path, tmp_path: Path) -> None:
    scan = write_pdf(tmp_path / "scan.pdf", [None, None])
    one_line_error(run(offgrid, tiny_llama, str(scan)), "no extractable text", f"offgrid see {scan} --page 1")


def test_corrupt_pdf(offgrid, tiny_llama: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(pdf_bytes(CONTRACT)[:300])
    one_line_error(run(offgrid, tiny_llama, str(broken)), "not a readable PDF")


def test_empty_inputs(offgrid, tiny_llama: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    one_line_error(run(offgrid, tiny_llama, str(empty)), "is empty")
    one_line_error(run(offgrid, tiny_llama, input=b"  \n"), "<stdin> is empty")
    one_line_error(run(offgrid, tiny_llama, str(tmp_path / "missing.pdf")), "no such file")


def test_stray_bytes_do_not_crash(offgrid, tiny_llama: Path) -> None:
    result = run(offgrid, tiny_llama, input=b"Caf\xe9 bill: 12 \x80 \xff\xfe\x00 total")
    assert result.returncode == 0, result.stderr


# --- modes and output ----------------------------------------------------------------------


def test_ask_json_shape(offgrid, tiny_llama: Path, contract: Path) -> None:
    result = run(offgrid, tiny_llama, str(contract), "--ask", "What is the total?", "--ask", "Who signs?", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"model", "role", "answer", "documents", "timings"} <= set(data)
    assert data["model"].endswith(tiny_llama.name) and data["role"] == "general"
    document = data["documents"][0]
    assert document["summary"] is None  # --ask alone: answers only
    assert [a["question"] for a in document["answers"]] == ["What is the total?", "Who signs?"]
    for answer in document["answers"]:
        assert set(answer) == {"question", "answer", "pages"}
        assert answer["answer"]
        # an answer either says exactly "Not mentioned" or cites pages of the document
        assert answer["answer"] == "Not mentioned" or (answer["pages"] and set(answer["pages"]) <= {1, 2, 3})
    assert set(document["pages_used"]) <= {1, 2, 3}
    assert data["timings"]["calls"] == 2 and data["timings"]["prompt_tokens"] > 0
    assert data["timings"]["prompt_tokens_cached"] > 0  # the second question reused the document


def test_extract_lines_and_json(offgrid, tiny_llama: Path, contract: Path) -> None:
    lines = run(offgrid, tiny_llama, str(contract), "--extract", "total amount, due date")
    assert lines.returncode == 0, lines.stderr
    rows = lines.stdout.strip().splitlines()
    assert [row.split(":")[0] for row in rows] == ["total amount", "due date"]
    as_json = run(offgrid, tiny_llama, str(contract), "--extract", "total amount, due date", "--json")
    fields = json.loads(as_json.stdout)["documents"][0]["fields"]
    assert list(fields) == ["total amount", "due date"]
    assert all(isinstance(value, str) and value for value in fields.values())


def test_several_questions_get_headings(offgrid, tiny_llama: Path, contract: Path) -> None:
    result = run(offgrid, tiny_llama, str(contract), "--points", "3", "--ask", "Total?")
    assert result.returncode == 0, result.stderr
    assert "## Total?" in result.stdout


def test_long_document_is_chunked_with_cache_reuse(offgrid, tiny_llama: Path, tmp_path: Path) -> None:
    rng = random.Random(4)
    vocabulary = "the a and of to in is it you that hello world answer total due date".split()
    pages = [" ".join(rng.choice(vocabulary) for _ in range(80)) + "." for _ in range(10)]
    path = tmp_path / "long.txt"
    path.write_text("\f".join(pages))
    result = run(offgrid, tiny_llama, str(path), "--ask", "total?", "--extract", "due date", "--json", "--stats")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    document = data["documents"][0]
    assert document["chunks"] >= 3  # several times the context window
    assert data["timings"]["calls"] >= 2 * document["chunks"]  # every task read every chunk
    assert data["timings"]["prompt_tokens_cached"] > 0  # chunk prompts share their prefix
    answer = document["answers"][0]
    assert answer["answer"] == "Not mentioned" or answer["pages"]
    assert f"{document['chunks']} chunks" in result.stderr and "from cache" in result.stderr


def test_output_file_and_overwrite_protection(offgrid, tiny_llama: Path, contract: Path, tmp_path: Path) -> None:
    target = tmp_path / "summary.txt"
    first = run(offgrid, tiny_llama, str(contract), "-o", str(target))
    assert first.returncode == 0, first.stderr
    assert first.stdout == "" and target.read_text().strip()
    assert f"wrote {target}" in first.stderr
    before = target.read_text()
    again = run(offgrid, tiny_llama, str(contract), "-o", str(target))
    one_line_error(again, "already exists", "--force")
    assert target.read_text() == before
    forced = run(offgrid, tiny_llama, str(contract), "-o", str(target), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(target.read_text())["documents"][0]["name"] == str(contract)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.txt"]  # no temporary files left


def test_roles(offgrid, tiny_llama: Path, contract: Path, isolated_home: Path) -> None:
    roles_dir = isolated_home / "offgrid" / "roles"
    roles_dir.mkdir(parents=True)
    (roles_dir / "auditor.toml").write_text('description = "checks invoices"\nsystem = "You audit invoices."\n')
    listed = offgrid("summarize", "--list-roles")
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == ["analyst", "auditor", "general", "legal"]
    assert "checks invoices" in listed.stdout
    used = run(offgrid, tiny_llama, str(contract), "--role", "auditor", "--json")
    assert json.loads(used.stdout)["role"] == "auditor"
    unknown = run(offgrid, tiny_llama, str(contract), "--role", "pirate")
    assert unknown.returncode == 2 and "auditor" in unknown.stderr


def test_history_records_the_run(offgrid, tiny_llama: Path, contract: Path) -> None:
    saved = offgrid("summarize", "-m", str(tiny_llama), "-n", "4", "--ctx", "2048", str(contract), "--ask", "Total?")
    assert saved.returncode == 0, saved.stderr
    listed = offgrid("history", "--command", "summarize", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "summarize" in listed.stdout and "Total?" in listed.stdout


def test_clipboard_in_and_copy_out_on_the_phone(offgrid, tiny_llama: Path, tmp_path: Path) -> None:
    from tests.fakebin import FakeBin

    phone = FakeBin(tmp_path / "phone")
    phone.add("termux-clipboard-get", stdout="Invoice 7. Total due: 40 EUR.")
    for name in ("termux-clipboard-set", "termux-wake-lock", "termux-wake-unlock"):
        phone.add(name)
    env = {"PATH": f"{phone.dir}:/usr/bin:/bin", "TERMUX_VERSION": "0.118.1"}
    result = run(offgrid, tiny_llama, "--clipboard", "--copy", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["documents"][0]["name"] == "<clipboard>"
    (copied,) = phone.calls("termux-clipboard-set")
    assert copied["stdin"] == data["answer"]
    names = [c["name"] for c in phone.calls()]
    assert names.index("termux-wake-lock") < names.index("termux-wake-unlock")  # held while working
    both = run(offgrid, tiny_llama, "--clipboard", str(tmp_path), env=env)
    assert both.returncode == 2 and "--clipboard" in both.stderr


def test_config_speed_keys_are_honoured(offgrid, tiny_llama: Path, contract: Path) -> None:
    """`config set summarize.kv_cache …` (a key the config accepts) reaches the engine."""
    assert offgrid("config", "set", "summarize.kv_cache", "q5_9").returncode == 0
    result = run(offgrid, tiny_llama, str(contract))
    assert result.returncode == 2
    assert "unknown KV-cache type 'q5_9'" in result.stderr


def test_too_small_a_context_names_what_can_work(offgrid, tiny_llama_small_ctx: Path,
                                                 tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Minutes: the budget was approved.")
    result = offgrid("summarize", "-m", str(tiny_llama_small_ctx), str(notes), "-n", "200",
                     "--no-save")
    assert result.returncode == 2
    assert result.stderr.startswith("offgrid: error: the context window (256 tokens) is too "
                                    "small for this task\n")
    assert result.stderr.endswith("hint: lower --max-tokens, or use a model with a longer "
                                  "context (this one holds 256 tokens)\n")

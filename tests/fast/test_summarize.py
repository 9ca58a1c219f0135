"""`offgrid summarize` in-process with the fake text engine: inputs, modes, output files,
errors, history. The fake answers "Answer N: <first words of the prompt>" unless a test
gives it a reply function, so a test can see which text reached the model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.fast.helpers import files_in, hint, one_line_error, saved
from tests.pdfs import pdf_bytes, write_pdf

CONTRACT = ["Service agreement between Acme and Bob.", "Total due: 1,200 EUR.",
            "Late penalty: 2% per month."]


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "contract.pdf", CONTRACT)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("Minutes: budget approved.\fPage two: 5 votes.")
    return path


@pytest.fixture
def run(cli, fake_model: Path):  # type: ignore[no-untyped-def]
    def summarize(*args: str, **kwargs):  # type: ignore[no-untyped-def]
        return cli("summarize", "-m", str(fake_model), *args, **kwargs)
    return summarize


def grounded(messages) -> str:  # type: ignore[no-untyped-def]
    """A reply function for the fake: answers like a grounded model would."""
    last = messages[-1]["content"]
    if "Question: What is the total?" in last:
        return "The total due is 1,200 EUR."
    if "Question:" in last:
        return "Not mentioned."
    if "extract these fields" in last:
        return '{"total": "1,200 EUR", "due date": "Not mentioned"}'
    return "Acme hires Bob (p. 1)."


# --- inputs ------------------------------------------------------------------------------


def test_text_file_summary_to_a_pipe(run, notes: Path, fake_engines) -> None:
    result = run(str(notes))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answer 1: (p. 1) Minutes: budget approved.\n"
    assert result.stderr == ""
    system, user = fake_engines.calls.prompts[0]
    assert system["role"] == "system" and "careful assistant" in system["content"]
    assert user["content"].startswith("<document>\n[p. 1]\nMinutes: budget approved.\n\n"
                                      "[p. 2]\nPage two: 5 votes.\n</document>\n\n"
                                      "Task: summarise the document above.")
    settings = fake_engines.calls.settings[0]
    assert settings.temperature == 0.2 and settings.think is False  # grounded defaults


@pytest.mark.parametrize("args", [(), ("-",)], ids=["piped", "dash"])
def test_stdin_text(run, fake_engines, args) -> None:
    result = run(*args, "--json", input="Minutes: budget approved.\fPage two: 5 votes.")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)["documents"][0]
    assert document["name"] == "<stdin>" and document["pages"] == [1, 2]
    assert "Page two: 5 votes." in fake_engines.calls.prompts[0][-1]["content"]


def test_pdf_file_and_piped_pdf(run, contract: Path, fake_engines) -> None:
    from_file = json.loads(run(str(contract), "--json").stdout)["documents"][0]
    assert from_file["name"] == str(contract) and from_file["pages"] == [1, 2, 3]
    piped = run("-", "--json", input=pdf_bytes(CONTRACT))
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["documents"][0]["name"] == "<stdin>"
    assert "[p. 2]\nTotal due: 1,200 EUR." in fake_engines.calls.prompts[1][-1]["content"]


def test_several_documents_get_headings(run, notes: Path, contract: Path) -> None:
    result = run(str(notes), str(contract))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"# {notes}\nAnswer 1: (p. 1) Minutes: budget approved.\n"
                             f"# {contract}\nAnswer 2: (p. 1) Service agreement between\n")


def test_page_ranges(run, contract: Path, fake_engines) -> None:
    result = run(str(contract), "--pages", "2-3", "--json")
    assert json.loads(result.stdout)["documents"][0]["pages"] == [2, 3]
    prompt = fake_engines.calls.prompts[0][-1]["content"]
    assert "Acme and Bob" not in prompt and "[p. 3]\nLate penalty" in prompt
    one_line_error(run(str(contract), "--pages", "2-9"),
                   f"{contract}: page range 2-9 is outside the document (3 pages)")
    bad = run(str(contract), "--pages", "x")
    one_line_error(bad, "invalid page range 'x'", code=2)
    assert hint(bad) == "use e.g. --pages 3-7,10"


def test_encrypted_pdf(run, tmp_path: Path) -> None:
    locked = write_pdf(tmp_path / "locked.pdf", CONTRACT, password="hunter2")
    no_password = run(str(locked))
    one_line_error(no_password, "encrypted")
    assert "--password" in no_password.stderr
    one_line_error(run(str(locked), "--password", "nope"), "wrong password")
    opened = run(str(locked), "--password", "hunter2")
    assert opened.returncode == 0 and opened.stdout.startswith("Answer 1: (p. 1) Service")


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: write_pdf(d / "scan.pdf", [None, None]), "no extractable text"),
    (lambda d: (d / "broken.pdf").write_bytes(pdf_bytes(CONTRACT)[:300]) and d / "broken.pdf",
     "not a readable PDF"),
    (lambda d: (d / "empty.txt").write_text("") or d / "empty.txt", "empty.txt is empty"),
    (lambda d: d / "missing.pdf", "no such file"),
])
def test_unusable_documents(run, tmp_path: Path, fake_engines, make, message) -> None:
    path = make(tmp_path)
    one_line_error(run(str(path)), message)
    assert fake_engines.calls.prompts == []


def test_scanned_pdf_suggests_see(run, tmp_path: Path) -> None:
    scan = write_pdf(tmp_path / "scan.pdf", [None, None])
    assert f"offgrid see {scan} --page 1" in run(str(scan)).stderr


def test_empty_stdin(run, fake_engines) -> None:
    result = run(input=b"  \n")
    one_line_error(result, "<stdin> is empty")
    assert hint(result) == "pipe some text in, e.g.  pdftotext file.pdf - | offgrid summarize"
    assert fake_engines.calls.loads == []


def test_stray_bytes_do_not_crash(run, fake_engines) -> None:
    result = run(input=b"Caf\xe9 bill: 12 \x80 \xff\xfe\x00 total")
    assert result.returncode == 0, result.stderr
    assert "bill: 12" in fake_engines.calls.prompts[0][-1]["content"]


# --- modes -------------------------------------------------------------------------------


def test_ask_and_extract_sections(run, contract: Path, fake_engines) -> None:
    fake_engines.reply = grounded
    result = run(str(contract), "--ask", "What is the total?", "--ask", "Who signs?",
                 "--extract", "total, due date")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("## What is the total?\nThe total due is 1,200 EUR. (p. 2)\n"
                             "## Who signs?\nNot mentioned\n"
                             "## Fields\ntotal: 1,200 EUR (p. 2)\ndue date: Not mentioned\n")


def test_ask_and_extract_json(run, contract: Path, fake_engines) -> None:
    fake_engines.reply = grounded
    result = run(str(contract), "--ask", "What is the total?", "--ask", "Who signs?",
                 "--extract", "total, due date", "--json")
    data = json.loads(result.stdout)
    assert data["role"] == "general" and data["model"].endswith("fake-model.gguf")
    document = data["documents"][0]
    assert document["summary"] is None  # questions and fields only: no summary
    assert document["answers"] == [
        {"question": "What is the total?", "answer": "The total due is 1,200 EUR. (p. 2)",
         "pages": [2]},
        {"question": "Who signs?", "answer": "Not mentioned", "pages": []}]
    assert document["fields"] == {"total": "1,200 EUR (p. 2)", "due date": "Not mentioned"}
    assert document["field_pages"] == {"total": [2]} and document["pages_used"] == [2]
    assert data["timings"]["calls"] == 3 and len(fake_engines.calls.prompts) == 3


def test_extract_plain_lines(run, contract: Path, fake_engines) -> None:
    fake_engines.reply = grounded
    result = run(str(contract), "-x", "total, due date")
    assert result.stdout == "total: 1,200 EUR (p. 2)\ndue date: Not mentioned\n"
    assert fake_engines.calls.settings[0].max_tokens is not None  # fields are short


def test_points_length_lang_and_role_shape_the_prompt(run, contract: Path, fake_engines) -> None:
    fake_engines.reply = grounded
    result = run(str(contract), "--points", "3", "--lang", "fr", "--role", "legal", "--json")
    assert json.loads(result.stdout)["role"] == "legal"
    system, user = fake_engines.calls.prompts[0]
    assert system["content"].startswith("You are a meticulous contract reviewer.")
    assert "Give exactly 3 key points as a Markdown bullet list" in user["content"]
    assert user["content"].endswith('Write your answer in French, but keep quoted names, '
                                    'numbers and the phrase "Not mentioned" unchanged.')
    run(str(contract), "--length", "long")
    assert "Write a detailed summary in several paragraphs" in fake_engines.calls.prompts[1][-1]["content"]


def test_points_and_a_question_get_headings(run, contract: Path, fake_engines) -> None:
    fake_engines.reply = grounded
    result = run(str(contract), "--points", "3", "--ask", "Who signs?")
    assert result.stdout == "Acme hires Bob (p. 1).\n## Who signs?\nNot mentioned\n"


def test_custom_roles(run, cli, contract: Path, isolated_home: Path) -> None:
    roles = isolated_home / "offgrid" / "roles"
    roles.mkdir(parents=True)
    (roles / "auditor.toml").write_text('description = "checks invoices"\n'
                                        'system = "You audit invoices."\n')
    listed = cli("summarize", "--list-roles")
    assert listed.returncode == 0 and listed.stderr == ""
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "analyst", "auditor", "general", "legal"]
    assert "auditor  checks invoices  (" in listed.stdout
    as_json = json.loads(cli("summarize", "--list-roles", "--json").stdout)
    assert {"name": "general", "description": "careful reader for any document",
            "source": "built-in"} in as_json
    assert json.loads(run(str(contract), "--role", "auditor", "--json").stdout)["role"] == "auditor"
    unknown = run(str(contract), "--role", "pirate")
    one_line_error(unknown, "unknown role 'pirate' (known: analyst, auditor, general, legal)", 2)


@pytest.mark.parametrize(("args", "message"), [
    (("--length", "huge"), "--length must be short, medium or long, not 'huge'"),
    (("--ask", "  "), "--ask needs a question"),
    (("--extract", " , "), "--extract needs at least one field name"),
    (("--points", "0"), "Invalid value for '--points'"),
    (("-", "-"), "stdin (`-`) can be read only once"),
])
def test_usage_errors(run, fake_engines, args, message) -> None:
    one_line_error(run(*args, input="some text"), message, code=2)
    assert fake_engines.calls.loads == []


def test_generation_flags_reach_the_engine(run, notes: Path, fake_engines) -> None:
    result = run(str(notes), "-n", "3", "--temperature", "0.7", "--seed", "5", "--threads", "2",
                 "--ctx", "1024", "--plain")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answer 1: [p.\n"  # three tokens
    settings = fake_engines.calls.settings[0]
    assert (settings.max_tokens, settings.temperature, settings.seed) == (3, 0.7, 5)
    options = fake_engines.calls.loads[0][2]
    assert (options.threads, options.ctx, options.seed) == (2, 1024, 5)


# --- output -------------------------------------------------------------------------------


def test_output_file_and_overwrite_protection(run, contract: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "summary.txt"
    first = run(str(contract), "-o", str(target))
    assert first.returncode == 0, first.stderr
    assert first.stdout == "" and first.stderr == f"wrote {target}\n"
    assert target.read_text() == "Answer 1: (p. 1) Service agreement between\n"
    again = run(str(contract), "-o", str(target))
    one_line_error(again, f"{target} already exists", code=2)
    assert hint(again) == "add --force to replace it, or choose another name"
    assert target.read_text() == "Answer 1: (p. 1) Service agreement between\n"
    forced = run(str(contract), "-o", str(target), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(target.read_text())["documents"][0]["name"] == str(contract)
    assert files_in(out_dir) == ["summary.txt"]  # no temporary file left behind


def test_a_failed_run_writes_no_file(run, cli, contract: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    bad = tmp_path / "broken.bad"
    bad.write_bytes(b"junk")
    result = cli("summarize", "-m", str(bad), str(contract), "-o", str(out_dir / "s.txt"))
    one_line_error(result, "broken.bad is not a GGUF file (bad magic)")
    assert files_in(out_dir) == []
    one_line_error(run(str(contract), "-o", str(out_dir)), f"{out_dir} is a directory", code=2)
    one_line_error(run(str(contract), "-o", str(tmp_path / "no" / "s.txt")),
                   "the folder", code=2)


def test_no_clipboard_for_copy_is_said_before_the_work(run, tmp_path: Path, bare_path,
                                                        fake_engines) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run("-", "--copy", "-o", str(out_dir / "s.txt"), input="some text here")
    one_line_error(result, "the clipboard needs one of: ")
    assert fake_engines.calls.loads == []  # nothing was done, so nothing is lost
    assert files_in(out_dir) == []


def test_a_clipboard_that_fails_at_the_end_keeps_the_result(run, tmp_path: Path, phone,
                                                            fake_engines) -> None:
    phone.add("termux-clipboard-set", stderr="Termux:API is not installed", code=1)
    out = tmp_path / "s.txt"
    result = run("-", "--copy", "-o", str(out), input="some text here")
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("Answer 1:")
    assert "offgrid: warning: not copied: " in result.stderr


def test_stats_on_stderr(run, notes: Path) -> None:
    result = run(str(notes), "--stats")
    assert result.stdout == "Answer 1: (p. 1) Minutes: budget approved.\n"
    assert re.fullmatch(r"1 chunk · 1 call · prompt \d+ tok \(0 from cache\) · reply 7 tok · "
                        r"[\d.]+ s\n", result.stderr), result.stderr


def test_a_long_document_is_chunked(run, tmp_path: Path, fake_engines) -> None:
    pages = [" ".join(f"word{page}x{i}" for i in range(120)) for page in range(8)]
    path = tmp_path / "long.txt"
    path.write_text("\f".join(pages))
    result = run(str(path), "--ctx", "512", "--ask", "total?", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)["documents"][0]
    assert document["chunks"] >= 3
    assert len(fake_engines.calls.prompts) >= document["chunks"]
    assert all(sum(len(m["content"].split()) + 2 for m in p) < 512
               for p in fake_engines.calls.prompts)


def test_context_too_small_for_the_task(run, notes: Path, fake_engines) -> None:
    fake_engines.n_ctx = 100
    result = run(str(notes))
    one_line_error(result, "the context window (100 tokens) is too small for this task", 2)
    assert hint(result) == ("lower --max-tokens, or use a model with a longer context "
                            "(this one holds 100 tokens)")
    fake_engines.n_ctx_max = 2048  # the model was trained for more: --ctx can help
    assert hint(run(str(notes))) == ("lower --max-tokens, or raise --ctx "
                                     "(this model allows up to 2048 tokens)")


# --- history and config -----------------------------------------------------------------


def test_history_records_the_run_unless_no_save(run, cli, contract: Path) -> None:
    assert run(str(contract), "--ask", "Total?").returncode == 0
    (record,) = saved("summarize")
    assert record.messages[0]["content"] == f"{contract}: Total?"
    assert record.title == f"{contract}: Total?"[:80]
    assert record.meta["questions"] == ["Total?"] and record.meta["role"] == "general"
    assert run(str(contract), "--no-save").returncode == 0
    assert cli("config", "set", "history.enabled", "false").returncode == 0
    assert run(str(contract)).returncode == 0
    assert len(saved()) == 1


def test_config_defaults(cli, contract: Path, fake_model: Path, fake_engines) -> None:
    for key, value in (("summarize.model", str(fake_model)), ("summarize.temperature", "0.6"),
                       ("summarize.lang", "de"), ("summarize.role", "analyst")):
        assert cli("config", "set", key, value).returncode == 0
    result = cli("summarize", str(contract), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["role"] == "analyst"
    assert fake_engines.calls.loads[0][1].path == fake_model
    assert fake_engines.calls.settings[0].temperature == 0.6
    assert "Write your answer in German" in fake_engines.calls.prompts[0][-1]["content"]


# --- the phone ----------------------------------------------------------------------------


def test_clipboard_in_and_copy_out(run, fake_engines, phone, tmp_path: Path) -> None:
    phone.add("termux-clipboard-get", stdout="Invoice 7. Total due: 40 EUR.")
    phone.add("termux-clipboard-set")
    result = run("--clipboard", "--copy", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["documents"][0]["name"] == "<clipboard>"
    assert "Invoice 7. Total due: 40 EUR." in fake_engines.calls.prompts[0][-1]["content"]
    (copied,) = phone.calls("termux-clipboard-set")
    assert copied["stdin"] == data["answer"]
    assert result.stderr == "copied to the clipboard\n"
    one_line_error(run("--clipboard", str(tmp_path)), "--clipboard and files cannot be combined", 2)


def test_an_invented_page_is_never_cited(run, contract: Path, fake_engines) -> None:
    fake_engines.reply = lambda messages: "The late penalty is 2% per month (p. 38)."
    result = run(str(contract), "--ask", "late penalty?")
    assert result.returncode == 0, result.stderr
    assert "(p. 38)" not in result.stdout
    assert result.stdout == "The late penalty is 2% per month. (p. 3)\n"  # located instead
    fake_engines.reply = lambda messages: "Penalty 2% a month (p. 3). Total 1,200 EUR (p. 2)."
    summary = run(str(contract), "--pages", "1-2")  # p. 3 is outside what was read
    assert summary.stdout == "Penalty 2% a month. Total 1,200 EUR (p. 2).\n"


def test_an_extracted_value_the_text_lacks_is_not_shown_as_found(run, contract: Path,
                                                                 fake_engines) -> None:
    fake_engines.reply = lambda messages: '{"total amount": "1,200 EUR", "VAT number": "GB999"}'
    result = run(str(contract), "--extract", "total amount, VAT number")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "total amount: 1,200 EUR (p. 2)\nVAT number: Not mentioned\n"
    data = json.loads(run(str(contract), "--extract", "total amount, VAT number",
                          "--json").stdout)["documents"][0]
    assert data["verified"] == {"total amount": True, "VAT number": False}
    assert data["fields"]["VAT number"] == "Not mentioned" and "VAT number" not in data["field_pages"]

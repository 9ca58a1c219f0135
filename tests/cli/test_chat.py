"""`offgrid chat` through the CLI, on the real llama.cpp engine with tiny generated models."""

from __future__ import annotations

import json
import re
from pathlib import Path

ANSI = re.compile(r"\x1b\[")


def test_one_shot_prints_plain_answer(offgrid, tiny_llama: Path) -> None:
    result = offgrid("chat", "-m", str(tiny_llama), "hello there", "-n", "12", "--temperature", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert not ANSI.search(result.stdout)
    assert result.stderr == ""  # a pipe gets only the answer: no banner, no spinner


def test_same_seed_same_answer(offgrid, tiny_llama: Path) -> None:
    args = ("chat", "-m", str(tiny_llama), "hi", "-n", "10", "--seed", "7", "--no-save")
    assert offgrid(*args).stdout == offgrid(*args).stdout


def test_json_shape_and_counts(offgrid, tiny_llama: Path) -> None:
    result = offgrid("chat", "-m", str(tiny_llama), "hi", "-n", "8", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"text", "model", "prompt_tokens", "completion_tokens", "timings",
                         "finish_reason", "conversation_id"}
    assert 0 < data["completion_tokens"] <= 9
    assert data["prompt_tokens"] == data["timings"]["prompt_tokens"] > 5
    assert data["finish_reason"] in ("stop", "length")


def test_stats_go_to_stderr_only(offgrid, tiny_llama: Path) -> None:
    plain = offgrid("chat", "-m", str(tiny_llama), "hi", "-n", "6", "--seed", "1", "--no-save")
    stats = offgrid("chat", "-m", str(tiny_llama), "hi", "-n", "6", "--seed", "1", "--no-save",
                    "--stats")
    assert stats.stdout == plain.stdout
    assert "tok/s" in stats.stderr and "first token" in stats.stderr


def test_stdin_is_context_for_the_question(offgrid, tiny_llama: Path) -> None:
    with_ctx = offgrid("chat", "-m", str(tiny_llama), "list the deadlines", "-n", "4", "--json",
                       input="Report due 3 May.\nInvoice due 9 June.\n")
    alone = offgrid("chat", "-m", str(tiny_llama), "list the deadlines", "-n", "4", "--json")
    assert with_ctx.returncode == 0, with_ctx.stderr
    assert json.loads(with_ctx.stdout)["prompt_tokens"] > json.loads(alone.stdout)["prompt_tokens"]


def test_stdin_is_the_prompt(offgrid, tiny_llama: Path) -> None:
    piped = offgrid("chat", "-m", str(tiny_llama), "-n", "4", "--json", input="what is this?")
    dash = offgrid("chat", "-m", str(tiny_llama), "-", "-n", "4", "--json", input="what is this?")
    assert piped.returncode == 0 and dash.returncode == 0, piped.stderr + dash.stderr
    assert json.loads(piped.stdout)["prompt_tokens"] == json.loads(dash.stdout)["prompt_tokens"]


def test_empty_stdin_is_an_error(offgrid, tiny_llama: Path) -> None:
    result = offgrid("chat", "-m", str(tiny_llama), "-", input="  \n")
    assert result.returncode == 1
    assert result.stderr.startswith("offgrid: error: nothing to ask")
    assert "Traceback" not in result.stderr


def test_model_without_template_still_answers(offgrid, tiny_llama_no_template: Path) -> None:
    result = offgrid("--debug", "chat", "-m", str(tiny_llama_no_template), "hi", "-n", "8",
                     "--json")
    assert result.returncode == 0, result.stderr
    assert "has no chat template; using the 'chatml' format" in result.stderr
    assert json.loads(result.stdout)["completion_tokens"] > 0


def test_prompt_larger_than_context(offgrid, tiny_llama_small_ctx: Path) -> None:
    result = offgrid("chat", "-m", str(tiny_llama_small_ctx), "-", input="word " * 600)
    assert result.returncode == 1
    assert re.search(r"the prompt has \d+ tokens but the context window holds 256", result.stderr)
    assert "Traceback" not in result.stderr


def test_conversation_drops_oldest_turns(offgrid, tiny_llama_small_ctx: Path) -> None:
    base = ("chat", "-m", str(tiny_llama_small_ctx), "--session", "long", "-n", "20")
    notices = []
    for i in range(6):
        result = offgrid(*base, f"message {i}: " + "tell me more " * 6)
        assert result.returncode == 0, result.stderr
        notices.append("dropped the" in result.stderr)
    assert any(notices)
    shown = json.loads(offgrid("history", "--json").stdout)
    assert len([r for r in shown if r["name"] == "long"]) == 1


def test_continue_session_and_no_save(offgrid, tiny_llama: Path) -> None:
    model = ("-m", str(tiny_llama), "-n", "4")
    first = offgrid("chat", *model, "first question", "--json")
    conv = json.loads(first.stdout)["conversation_id"]
    second = offgrid("chat", *model, "-c", "second question", "--json")
    assert json.loads(second.stdout)["conversation_id"] == conv
    assert json.loads(second.stdout)["prompt_tokens"] > json.loads(first.stdout)["prompt_tokens"]
    offgrid("chat", *model, "--session", "work", "named one")
    offgrid("chat", *model, "--no-save", "secret question")
    shown = json.loads(offgrid("history", "show", conv, "--json").stdout)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"] * 2
    listing = offgrid("history").stdout
    assert "first question" in listing and "named one" in listing
    assert "secret" not in listing
    exported = offgrid("history", "export", conv, "--format", "md").stdout
    assert "## user" in exported and "second question" in exported


def test_usage_errors_exit_2(offgrid, tiny_llama: Path) -> None:
    for args in (["--temperature", "hot"], ["--max-tokens", "-3"], ["--bogus"]):
        result = offgrid("chat", "-m", str(tiny_llama), "hi", *args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("offgrid: error:"), result.stderr
    both = offgrid("chat", "-m", str(tiny_llama), "-c", "--session", "x", "hi")
    assert both.returncode == 2


def test_missing_and_bad_model_files(offgrid, tmp_path: Path) -> None:
    missing = offgrid("chat", "-m", str(tmp_path / "nope.gguf"), "hi")
    assert missing.returncode == 1 and "model file not found" in missing.stderr
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all" * 10)
    result = offgrid("chat", "-m", str(bad), "hi")
    assert result.returncode == 1 and "not a usable GGUF model" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_model_not_cached_offline(offgrid) -> None:
    result = offgrid("chat", "hello")
    assert result.returncode == 1
    assert "is not downloaded" in result.stderr
    assert "hint: offgrid models pull" in result.stderr


def test_ctrl_c_in_a_pipe_exits_130_and_keeps_the_partial_turn(offgrid, tiny_llama_endless: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "offgrid", "chat", "-m", str(tiny_llama_endless),
                             "--ctx", "2048", "-n", "100000", "--temperature", "1.5", "go on"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    proc.stdout.read(20)  # the answer is streaming
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    record = json.loads(offgrid("history", "--json").stdout)[0]
    shown = json.loads(offgrid("history", "show", record["id"], "--json").stdout)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    assert shown["messages"][1]["meta"]["finish_reason"] == "cancelled"


def test_speed_options(offgrid, tiny_llama: Path) -> None:
    ok = offgrid("chat", "-m", str(tiny_llama), "hi", "-n", "3", "--no-save", "--flash-attn",
                 "--batch", "16")
    assert ok.returncode == 0, ok.stderr
    clash = offgrid("chat", "-m", str(tiny_llama), "hi", "--kv-cache", "q8_0",
                    "--no-flash-attn")
    assert clash.returncode == 2 and "needs flash attention" in clash.stderr
    typo = offgrid("chat", "-m", str(tiny_llama), "hi", "--kv-cache", "q3")
    assert typo.returncode == 2 and "unknown KV-cache type" in typo.stderr


def test_system_and_system_file_conflict(offgrid, tiny_llama: Path, tmp_path: Path) -> None:
    """--system-file silently won over --system; two system prompts are a usage error."""
    (tmp_path / "sys.txt").write_text("be brief")
    result = offgrid("chat", "-m", str(tiny_llama), "-s", "be long", "--system-file",
                     str(tmp_path / "sys.txt"), "hi")
    assert result.returncode == 2
    assert "--system or --system-file" in result.stderr and "Traceback" not in result.stderr


def test_continue_from_another_folder_after_a_relative_model_path(offgrid, tiny_llama: Path,
                                                                  tmp_path: Path) -> None:
    """History kept `-m tiny-llama.gguf` as typed, so `chat -c` elsewhere lost the model."""
    first = offgrid("chat", "-m", tiny_llama.name, "hi", "-n", "3", cwd=tiny_llama.parent)
    assert first.returncode == 0, first.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = offgrid("chat", "-c", "and then?", "-n", "3", "--json", cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["model"] == str(tiny_llama)


def test_continue_keeps_the_conversations_model_and_system(offgrid, tiny_llama: Path,
                                                           tiny_llama_no_template: Path) -> None:
    """`chat -c` swapped in the config's default model and system prompt mid-conversation."""
    assert offgrid("config", "set", "chat.model", str(tiny_llama_no_template)).returncode == 0
    assert offgrid("config", "set", "chat.system", "word " * 100).returncode == 0
    first = offgrid("chat", "-m", str(tiny_llama), "-s", "be brief", "hi", "-n", "3", "--json")
    assert first.returncode == 0, first.stderr
    again = offgrid("chat", "-c", "more", "-n", "3", "--json")
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["model"] == str(tiny_llama)
    # the short system prompt and one more turn, not the 100-word config system prompt
    assert data["prompt_tokens"] - json.loads(first.stdout)["prompt_tokens"] < 60


def test_a_whisper_model_as_a_text_model_says_what_it_is(offgrid, tiny_whisper: Path) -> None:
    """A whisper.cpp .bin given to chat said only "bad magic"."""
    result = offgrid("chat", "-m", str(tiny_whisper), "hi")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "whisper.cpp speech model" in result.stderr and "offgrid transcribe" in result.stderr


def test_help_uses_plain_placeholders(offgrid) -> None:
    for command in ("chat", "summarize", "see", "imagine", "transcribe"):
        text = offgrid(command, "--help", env={"COLUMNS": "60"}).stdout
        assert "<int" not in text and "<str>" not in text and "<list[" not in text, command
    chat_help = offgrid("chat", "--help").stdout
    assert "--ctx N" in chat_help and "--model TEXT" in chat_help and "PROMPT" in chat_help


def test_ctx_above_what_the_model_knows_is_said_once(offgrid, tiny_llama_small_ctx: Path) -> None:
    result = offgrid("chat", "-m", str(tiny_llama_small_ctx), "hi", "-n", "3", "--ctx", "1024",
                     "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("offgrid: warning: --ctx 1024 is more than "
                             f"{tiny_llama_small_ctx} was trained for; using 256 tokens\n")
    overflow = offgrid("chat", "-m", str(tiny_llama_small_ctx), "-", input="word " * 600)
    assert overflow.stderr.endswith("hint: shorten it, or use a model with a longer context "
                                    "(this one holds 256 tokens)\n")


def test_a_base_model_is_named_once(offgrid, tiny_llama_no_template: Path) -> None:
    first = offgrid("chat", "-m", str(tiny_llama_no_template), "hi", "-n", "2", "--no-save")
    assert first.returncode == 0, first.stderr
    assert first.stderr == ("offgrid: warning: tiny-base.gguf looks like a base model (no chat "
                            "template, not instruction-tuned): it continues text rather than "
                            "answering; for answers pull an instruct model: offgrid models "
                            "pull qwen3-1.7b\n")
    again = offgrid("chat", "-m", str(tiny_llama_no_template), "hi", "-n", "2", "--no-save")
    assert again.returncode == 0 and again.stderr == ""

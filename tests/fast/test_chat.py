"""`offgrid chat` in-process with the fake text engine: flags, pipes, errors, history."""

from __future__ import annotations

import json
from pathlib import Path


def test_one_shot_answer_reaches_stdout(cli, fake_model: Path, fake_engines) -> None:
    result = cli("chat", "-m", str(fake_model), "what is due?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answer 1: what is due?\n"
    assert result.stderr == ""
    task, model, options = fake_engines.calls.loads[0]
    assert task == "text" and model.path == fake_model


def test_piped_text_is_context(cli, fake_model: Path, fake_engines) -> None:
    result = cli("chat", "-m", str(fake_model), "list the deadlines", input="Report due 3 May.")
    assert result.returncode == 0, result.stderr
    user = fake_engines.calls.prompts[0][-1]["content"]
    assert user.startswith("list the deadlines") and "Report due 3 May." in user


def test_json_and_flags_reach_the_engine(cli, fake_model: Path, fake_engines) -> None:
    result = cli("chat", "-m", str(fake_model), "hi", "--json", "--temperature", "0.3",
                 "--ctx", "1024", "--no-think", "-n", "2")
    data = json.loads(result.stdout)
    assert data["text"] == "Answer 1:" and data["finish_reason"] == "length"
    settings = fake_engines.calls.settings[0]
    assert settings.temperature == 0.3 and settings.think is False and settings.max_tokens == 2
    assert fake_engines.calls.loads[0][2].ctx == 1024


def test_continue_keeps_the_conversation(cli, fake_model: Path, fake_engines) -> None:
    assert cli("chat", "-m", str(fake_model), "first question").returncode == 0
    again = cli("chat", "-c", "and then?")
    assert again.returncode == 0, again.stderr
    assert [m["role"] for m in fake_engines.calls.prompts[1]] == ["user", "assistant", "user"]


def test_bad_model_file_is_one_error_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "broken.bad"
    bad.write_bytes(b"junk")
    result = cli("chat", "-m", str(bad), "hi")
    assert result.returncode == 1
    assert result.stderr == "offgrid: error: broken.bad is not a GGUF file (bad magic)\n"

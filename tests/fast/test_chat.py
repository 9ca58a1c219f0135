"""`offgrid chat` in-process with the fake text engine: flags, pipes, errors, history."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from offgrid.history import History
from offgrid.models import store
from tests.fakes import fake_model_file
from tests.fast.helpers import hint, one_line_error, saved


def test_one_shot_answer_reaches_stdout(cli, fake_model: Path, fake_engines) -> None:
    result = cli("chat", "-m", str(fake_model), "what is due?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answer 1: what is due?\n"
    assert result.stderr == ""
    task, model, _ = fake_engines.calls.loads[0]
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


# --- where the question comes from ---------------------------------------------------------


@pytest.mark.parametrize("args", [("-",), ()], ids=["dash", "piped-alone"])
def test_stdin_is_the_question(cli, fake_model: Path, fake_engines, args) -> None:
    result = cli("chat", "-m", str(fake_model), *args, input="what is this?\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answer 1: what is this?\n"
    assert fake_engines.calls.prompts[0] == [{"role": "user", "content": "what is this?\n"}]


@pytest.mark.parametrize(("args", "stdin", "message", "code"), [
    (("-",), "  \n", "nothing to ask: stdin was empty", 1),
    ((), "", "nothing to ask: stdin was empty", 1),
    (("   ",), None, "the question is empty", 2),
])
def test_empty_questions_never_load_a_model(cli, fake_model: Path, fake_engines, args, stdin,
                                            message, code) -> None:
    one_line_error(cli("chat", "-m", str(fake_model), *args, input=stdin), message, code)
    assert fake_engines.calls.loads == []


# --- options -----------------------------------------------------------------------------


def test_sampling_and_speed_flags_reach_the_engine(cli, fake_model: Path, fake_engines) -> None:
    result = cli("chat", "-m", str(fake_model), "hi", "--top-p", "0.5", "--top-k", "7",
                 "--min-p", "0.1", "--repeat-penalty", "1.3", "--seed", "9", "--stop", "X",
                 "--stop", "Y", "--think", "--threads", "2", "--flash-attn", "--kv-cache",
                 "q8_0", "--batch", "16")
    assert result.returncode == 0, result.stderr
    settings = fake_engines.calls.settings[0]
    assert (settings.top_p, settings.top_k, settings.min_p, settings.repeat_penalty) == (
        0.5, 7, 0.1, 1.3)
    assert settings.seed == 9 and settings.stop == ["X", "Y"] and settings.think is True
    options = fake_engines.calls.loads[0][2]
    assert (options.threads, options.flash_attn, options.kv_cache, options.batch, options.seed) == (
        2, True, "q8_0", 16, 9)


def test_stop_text_ends_the_answer(cli, fake_model: Path) -> None:
    result = cli("chat", "-m", str(fake_model), "a b c d e", "--stop", "c d", "--json")
    data = json.loads(result.stdout)
    assert data["text"] == "Answer 1: a b" and data["finish_reason"] == "stop"


def test_system_prompt_from_flag_or_file(cli, fake_model: Path, fake_engines, tmp_path: Path) -> None:
    assert cli("chat", "-m", str(fake_model), "-s", "be brief", "hi").returncode == 0
    (tmp_path / "sys.txt").write_text("  answer in French \n")
    assert cli("chat", "-m", str(fake_model), "--system-file", str(tmp_path / "sys.txt"),
               "hi", "--no-save").returncode == 0
    first, second = fake_engines.calls.prompts
    assert first[0] == {"role": "system", "content": "be brief"}
    assert second[0] == {"role": "system", "content": "answer in French"}
    one_line_error(cli("chat", "-m", str(fake_model), "--system-file", str(tmp_path / "nope"),
                       "hi"), f"cannot read {tmp_path / 'nope'}: No such file or directory")


def test_thinking_is_hidden_in_a_pipe_and_kept_in_json(cli, fake_model: Path) -> None:
    plain = cli("chat", "-m", str(fake_model), "hi", "--think")
    assert plain.stdout == "Answer 1: hi\n" and "think" not in plain.stdout
    data = json.loads(cli("chat", "-m", str(fake_model), "hi", "--think", "--json").stdout)
    assert data["text"] == "Answer 1: hi" and data["thinking"] == "Let me think."
    assert json.loads(cli("chat", "-m", str(fake_model), "hi", "--json").stdout)["thinking"] is None


def test_every_token_spent_thinking_is_a_warning(cli, fake_model: Path) -> None:
    result = cli("chat", "-m", str(fake_model), "hi", "--think", "-n", "2")
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ("offgrid: warning: the model spent every token thinking; raise "
                             "--max-tokens or pass --no-think\n")


def test_stats_go_to_stderr_only(cli, fake_model: Path) -> None:
    plain = cli("chat", "-m", str(fake_model), "hi there", "--no-save", "--plain")
    stats = cli("chat", "-m", str(fake_model), "hi there", "--no-save", "--stats")
    assert stats.stdout == plain.stdout == "Answer 1: hi there\n"
    assert re.fullmatch(r"prompt 4 tok \(4 new, [\d.]+ tok/s\) · reply 4 tok, [\d.]+ tok/s · "
                        r"first token [\d.]+ s\n", stats.stderr), stats.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--temperature", "hot"), "Invalid value for '--temperature'"),
    (("--max-tokens", "-3"), "Invalid value for '--max-tokens' / '-n'"),
    (("--top-p", "2"), "Invalid value for '--top-p'"),
    (("--ctx", "100"), "Invalid value for '--ctx'"),
    (("--bogus",), "No such option: --bogus"),
    (("-c", "--session", "x"), "--continue and --session cannot be combined"),
    (("-s", "a", "--system-file", "b.txt"), "give --system or --system-file, not both"),
])
def test_usage_errors_exit_2(cli, fake_model: Path, fake_engines, args, message) -> None:
    one_line_error(cli("chat", "-m", str(fake_model), "hi", *args), message, code=2)
    assert fake_engines.calls.loads == []


# --- models ------------------------------------------------------------------------------


def test_model_errors(cli, tmp_path: Path) -> None:
    one_line_error(cli("chat", "-m", str(tmp_path / "nope.gguf"), "hi"),
                   f"model file not found: {tmp_path / 'nope.gguf'}")
    not_cached = cli("chat", "hello")
    default = store.default_spec("text")  # the catalog default for this device's memory
    one_line_error(not_cached, f"model {default} is not downloaded")
    assert hint(not_cached) == f"offgrid models pull {default}"
    wrong_task = cli("chat", "-m", "whisper-base", "hi")
    one_line_error(wrong_task, "whisper-base is a speech model, not a text model", code=2)
    one_line_error(cli("chat", "-m", "no-such-alias", "hi"), "unknown model 'no-such-alias'", 2)
    offline = cli("chat", "-m", "qwen3-0.6b", "hi", "--yes")  # offline, --yes cannot download
    one_line_error(offline, "model qwen3-0.6b is not downloaded")
    assert hint(offline) == "offgrid models pull qwen3-0.6b"


def test_memory_check_and_force(cli, fake_model: Path, fake_engines) -> None:
    fake_engines.extra_mb = 1 << 40
    refused = cli("chat", "-m", str(fake_model), "hi")
    one_line_error(refused, "not enough memory: this model needs about")
    assert "--force" in hint(refused)
    assert fake_engines.calls.loads == []
    forced = cli("chat", "-m", str(fake_model), "hi", "--force")
    assert forced.returncode == 0 and forced.stdout == "Answer 1: hi\n"


def test_prompt_larger_than_the_context(cli, fake_model: Path, fake_engines) -> None:
    fake_engines.n_ctx = 5
    result = cli("chat", "-m", str(fake_model), "one two three four five")
    one_line_error(result, "the prompt has 7 tokens but the context window holds 5")
    assert hint(result) == ("shorten it, or use a model with a longer context "
                            "(this one holds 5 tokens)")
    assert saved() == []  # the question that never fitted is not kept either


def test_a_long_conversation_drops_its_oldest_turns(cli, fake_model: Path, fake_engines) -> None:
    fake_engines.n_ctx = 300  # 150 tokens for the prompt; each question is 32
    question = " ".join(["word"] * 30)
    warnings = []
    for _ in range(4):
        result = cli("chat", "-m", str(fake_model), "--session", "long", question)
        assert result.returncode == 0, result.stderr
        warnings.append(result.stderr)
    assert warnings[:3] == ["", "", ""]
    assert warnings[3] == ("offgrid: warning: the conversation outgrew the 300-token context: "
                           "dropped the 2 oldest message(s)\n")
    assert len(fake_engines.calls.prompts[3]) == 5  # 7 messages, the first turn dropped
    (record,) = saved("chat")
    assert record.name == "long" and len(record.messages) == 8  # history keeps every turn


# --- history -----------------------------------------------------------------------------


def test_sessions_are_named_conversations(cli, fake_model: Path, fake_engines) -> None:
    model = ("-m", str(fake_model))
    first = json.loads(cli("chat", *model, "--session", "work", "plan the week", "--json").stdout)
    cli("chat", *model, "other topic")
    again = json.loads(cli("chat", "--session", "work", "and friday?", "--json").stdout)
    assert again["conversation_id"] == first["conversation_id"]
    assert [m["content"] for m in fake_engines.calls.prompts[2]] == [
        "plan the week", "Answer 1: plan the week", "and friday?"]
    work = History().find(command="chat", name="work")
    assert [m["role"] for m in work.messages] == ["user", "assistant"] * 2


def test_no_save_keeps_nothing(cli, fake_model: Path) -> None:
    result = cli("chat", "-m", str(fake_model), "secret question", "--no-save", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["conversation_id"] is None
    assert saved() == []
    one_line_error(cli("chat", "-m", str(fake_model), "--no-save", "-c", "more"),
                   "--continue/--session need a saved history (drop --no-save)", code=2)


def test_history_disabled_in_config_keeps_nothing(cli, fake_model: Path) -> None:
    assert cli("config", "set", "history.enabled", "false").returncode == 0
    assert cli("chat", "-m", str(fake_model), "secret question").returncode == 0
    assert cli("chat", "-m", str(fake_model), "--session", "s", "hi").returncode == 2
    assert saved() == []
    listed = cli("history", "--json")
    assert json.loads(listed.stdout) == []


def test_nothing_to_continue_yet(cli, fake_model: Path, fake_engines) -> None:
    one_line_error(cli("chat", "-m", str(fake_model), "-c", "more"),
                   "there is no conversation to continue yet", code=2)
    assert fake_engines.calls.loads == []


# --- config ------------------------------------------------------------------------------


def test_config_defaults_apply_and_flags_win(cli, fake_model: Path, fake_engines) -> None:
    for key, value in (("chat.model", str(fake_model)), ("chat.temperature", "0.1"),
                       ("chat.system", "from config"), ("chat.max_tokens", "50")):
        assert cli("config", "set", key, value).returncode == 0
    assert cli("chat", "hi").returncode == 0
    assert cli("chat", "hi", "--temperature", "0.9", "-s", "from flag").returncode == 0
    (_, model, _), _ = fake_engines.calls.loads
    assert model.path == fake_model
    first, second = fake_engines.calls.settings
    assert (first.temperature, first.max_tokens, second.temperature, second.max_tokens) == (
        0.1, 50, 0.9, 50)
    assert fake_engines.calls.prompts[0][0]["content"] == "from config"
    assert fake_engines.calls.prompts[1][0]["content"] == "from flag"


def test_continue_keeps_the_conversations_model_and_system(cli, fake_model: Path, fake_engines,
                                                           tmp_path: Path) -> None:
    other = fake_model_file(tmp_path / "other", "other.gguf")
    assert cli("config", "set", "chat.model", str(other)).returncode == 0
    assert cli("config", "set", "chat.system", "config system").returncode == 0
    assert cli("chat", "-m", str(fake_model), "-s", "be brief", "hi").returncode == 0
    again = cli("chat", "-c", "more", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["model"] == str(fake_model)
    assert fake_engines.calls.loads[1][1].path == fake_model
    assert fake_engines.calls.prompts[1][0] == {"role": "system", "content": "be brief"}


def test_continue_from_another_folder_after_a_relative_model_path(cli, fake_model: Path,
                                                                  tmp_path: Path) -> None:
    first = cli("chat", "-m", fake_model.name, "hi", cwd=fake_model.parent)
    assert first.returncode == 0, first.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = cli("chat", "-c", "and then?", "--json", cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["model"] == str(fake_model)


# --- failures ------------------------------------------------------------------------------


def test_an_engine_crash_is_one_line_and_the_engine_is_closed(cli, fake_model: Path,
                                                              fake_engines) -> None:
    def crash(messages):
        raise RuntimeError("kaboom")

    fake_engines.reply = crash
    result = cli("chat", "-m", str(fake_model), "hi")
    one_line_error(result, "unexpected RuntimeError: kaboom")
    assert hint(result) == "run again with --debug and report it"
    assert fake_engines.calls.closed == 1
    debug = cli("--debug", "chat", "-m", str(fake_model), "hi")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "RuntimeError: kaboom" in debug.stderr
    assert debug.stderr.endswith("offgrid: error: unexpected RuntimeError: kaboom\n"
                                 "hint: run again with --debug and report it\n")


def test_ctrl_c_exits_130_and_keeps_the_cut_turn(cli, fake_model: Path, fake_engines) -> None:
    def interrupted(messages):
        raise KeyboardInterrupt

    fake_engines.reply = interrupted
    result = cli("chat", "-m", str(fake_model), "go on")
    assert result.returncode == 130
    assert result.stdout == "" and "Traceback" not in result.stderr
    (record,) = saved("chat")
    assert [m["role"] for m in record.messages] == ["user", "assistant"]
    assert record.messages[1]["meta"]["finish_reason"] == "cancelled"
    assert fake_engines.calls.closed == 1


# --- the phone: clipboard and notifications --------------------------------------------------


def test_clipboard_is_context_and_copy_puts_the_answer_back(cli, fake_model: Path, fake_engines,
                                                            phone) -> None:
    phone.add("termux-clipboard-get", stdout="The meeting moved to Friday.")
    phone.add("termux-clipboard-set")
    result = cli("chat", "-m", str(fake_model), "when is it?", "--clipboard", "--copy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Answer 1: when is it?")
    assert result.stderr == "copied to the clipboard\n"
    question = fake_engines.calls.prompts[0][-1]["content"]
    assert question.startswith("when is it?") and "The meeting moved to Friday." in question
    (copied,) = phone.calls("termux-clipboard-set")
    assert copied["stdin"] == result.stdout.rstrip("\n")


def test_clipboard_alone_is_the_question(cli, fake_model: Path, fake_engines, phone) -> None:
    phone.add("termux-clipboard-get", stdout="What is 2 + 2?")
    result = cli("chat", "-m", str(fake_model), "--clipboard")
    assert result.returncode == 0, result.stderr
    assert fake_engines.calls.prompts[0][-1]["content"] == "What is 2 + 2?"


def test_clipboard_errors(cli, fake_model: Path, fake_engines, phone) -> None:
    phone.add("termux-clipboard-get", stdout="  \n")
    one_line_error(cli("chat", "-m", str(fake_model), "hi", "--clipboard"),
                   "the clipboard is empty")
    one_line_error(cli("chat", "-m", str(fake_model), "--clipboard", input="piped"),
                   "--clipboard and text on stdin cannot be combined", code=2)
    assert fake_engines.calls.loads == []


def test_notify_after_a_long_job(cli, fake_model: Path, phone, monkeypatch) -> None:
    from offgrid.ui import phone as phone_ui

    monkeypatch.setattr(phone_ui, "NOTIFY_AFTER_SECONDS", -1.0)  # every job is "long"
    phone.add("termux-notification")
    assert cli("chat", "-m", str(fake_model), "hi", "--notify").returncode == 0
    (sent,) = phone.calls("termux-notification")
    assert sent["args"][:5] == ["--id", "offgrid", "--title", "offgrid chat", "--content"]
    assert sent["args"][5].startswith("answer ready after ")
    assert cli("chat", "-m", str(fake_model), "hi", "--no-notify").returncode == 0
    assert len(phone.calls("termux-notification")) == 1
    phone.add("termux-notification", stderr="no permission", code=1)
    failed = cli("chat", "-m", str(fake_model), "hi", "--notify")
    assert failed.returncode == 0 and failed.stdout == "Answer 1: hi\n"
    assert failed.stderr.startswith("offgrid: warning: no notification: ")


# --- the interactive chat (stdin made to look like a terminal) --------------------------------


@pytest.fixture
def terminal(monkeypatch):  # type: ignore[no-untyped-def]
    """Make chat believe stdin is a terminal and type *lines* into its REPL."""
    from offgrid.commands import chat as chat_command

    typed: dict[str, object] = {"lines": [], "persist": None}

    def reader(persist: bool = True):  # type: ignore[no-untyped-def]
        typed["persist"] = persist
        lines = iter(typed["lines"])  # type: ignore[call-overload]

        def read(prompt: str) -> str:
            try:
                return next(lines)
            except StopIteration:
                raise EOFError from None
        return read

    monkeypatch.setattr(chat_command, "stdin_is_tty", lambda: True)
    monkeypatch.setattr(chat_command, "prompt_toolkit_reader", reader)
    return typed


def test_repl_answers_and_runs_slash_commands(cli, fake_model: Path, fake_engines, terminal) -> None:
    terminal["lines"] = ["hello there", "/set temperature 0.3", "again", "/stats", "/bogus", "/exit"]
    result = cli("chat", "-m", str(fake_model))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answer 1: hello there\nAnswer 2: again\n"
    assert "/help for commands" in result.stderr and "temperature = 0.3" in result.stderr
    assert "error: unknown command /bogus" in result.stderr
    assert len(fake_engines.calls.prompts) == 2
    assert fake_engines.calls.settings[-1].temperature == 0.3
    assert terminal["persist"] is True
    (record,) = saved("chat")
    assert record.title == "hello there" and len(record.messages) == 4


def test_repl_with_no_save_keeps_nothing(cli, fake_model: Path, terminal) -> None:
    terminal["lines"] = ["my secret"]
    result = cli("chat", "-m", str(fake_model), "--no-save")
    assert result.returncode == 0, result.stderr
    assert terminal["persist"] is False  # typed lines stay in memory too
    assert saved() == []


def test_json_without_a_question_on_a_terminal(cli, fake_model: Path, fake_engines, terminal) -> None:
    one_line_error(cli("chat", "-m", str(fake_model), "--json"), "--json needs a question", 2)
    assert fake_engines.calls.loads == []


def test_a_reply_that_loops_is_stopped_and_said_once(cli, fake_model: Path, fake_engines) -> None:
    loop = "The notice period is thirty days from the date of the letter."
    fake_engines.reply = lambda messages: " ".join([loop] * 20)
    result = cli("chat", "-m", str(fake_model), "notice period?", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["finish_reason"] == "repetition"
    assert data["text"].startswith(loop) and data["text"].count("notice period") < 4
    assert result.stderr == ("offgrid: warning: the model began repeating itself, so its reply "
                             "was stopped (a base model? an instruct model answers better)\n")


def test_echoed_prompt_markup_never_reaches_the_answer(cli, fake_model: Path,
                                                      fake_engines) -> None:
    fake_engines.reply = lambda messages: "It is due in May. <document> [p. 1] Invoice total"
    result = cli("summarize", "-m", str(fake_model), "-", "--ask", "when due?",
                 input="Invoice. Payment due in May.")
    assert result.returncode == 0, result.stderr
    assert "<document>" not in result.stdout and result.stdout.startswith("It is due in May.")
    assert "repeating itself" in result.stderr

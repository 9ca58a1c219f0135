"""The chat session and REPL on the real engine: slash commands, KV reuse, cancellation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from offgrid.chat.conversation import Conversation
from offgrid.engines.base import GenerationSettings
from offgrid.engines.llama import LlamaEngine
from offgrid.history import History
from offgrid.ui.output import Output
from offgrid.chat.repl import ChatSession, read_message


@pytest.fixture
def engine(tiny_llama: Path):
    eng = LlamaEngine(tiny_llama, n_ctx=1024, seed=3)
    yield eng
    eng.close()


def _session(engine, history=None, out=None) -> tuple[ChatSession, io.StringIO, io.StringIO]:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = out or Output(stdout=stdout, stderr=stderr)
    session = ChatSession(engine, Conversation(system="be brief"),
                          GenerationSettings(temperature=0, max_tokens=12), out, history=history)
    return session, stdout, stderr


def test_follow_up_turns_evaluate_only_new_tokens(engine) -> None:
    session, _, _ = _session(engine)
    first = session.ask("hello there, how are you")
    cached = first.stats.prompt_tokens + first.stats.completion_tokens - 1
    second = session.ask("and what about tomorrow")
    # The engine's own eval calls: the second prompt re-uses everything already in the cache.
    assert second.stats.prompt_tokens > cached
    assert second.stats.prompt_tokens_evaluated == second.stats.prompt_tokens - cached
    third = session.ask("ok")
    assert third.stats.prompt_tokens_evaluated < third.stats.prompt_tokens // 3


def test_repl_slash_commands_and_eof(engine, tmp_path: Path) -> None:
    history = History(tmp_path / "h.sqlite3")
    session, stdout, stderr = _session(engine, history)
    lines = iter(["/help", "first message", "/set temperature 0.5", "/stats",
                  "/system talk like a pirate", "/retry", f"/save {tmp_path / 'c.md'}",
                  "/nonsense", "/reset", "second \\", "line", "/exit", "never read"])
    session.repl(lambda prompt: next(lines))
    assert next(lines) == "never read"  # /exit stopped the loop
    err = stderr.getvalue()
    assert "/retry" in err and "temperature = 0.5" in err and "tok/s" in err
    assert "unknown command /nonsense" in err
    assert session.settings.temperature == 0.5
    assert session.conversation.system == "talk like a pirate"
    assert "## user" in (tmp_path / "c.md").read_text()
    assert session.conversation.turns[0]["content"] == "second \nline"
    record = history.get(session.conversation_id)
    assert [m["content"] for m in record.messages if m["role"] == "user"] == ["second \nline"]


def test_repl_ctrl_d_leaves(engine) -> None:
    session, _, _ = _session(engine)

    def eof(prompt: str) -> str:
        raise EOFError

    session.repl(eof)  # returns instead of raising


def test_cancel_mid_stream_keeps_consistent_history(engine, tmp_path: Path) -> None:
    class StopAfterTwo(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            StopAfterTwo.writes += 1
            if StopAfterTwo.writes == 2:
                raise KeyboardInterrupt
            return super().write(text)

    history = History(tmp_path / "h.sqlite3")
    out = Output(stdout=StopAfterTwo(), stderr=io.StringIO())
    session, _, _ = _session(engine, history, out)
    with pytest.raises(KeyboardInterrupt):
        session.ask("write a long story")
    record = history.get(session.conversation_id)
    assert [m["role"] for m in record.messages] == ["user", "assistant"]
    assert record.messages[1]["meta"]["finish_reason"] == "cancelled"
    # The session goes on normally after a cancelled reply.
    session.out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    assert session.ask("next").stats.finish_reason in ("stop", "length")


def test_read_message_block() -> None:
    lines = iter(['"""', "a", "b", '"""'])
    assert read_message(lambda p: next(lines)) == "a\nb"


class _FakeThinker:
    """A TextEngine stand-in whose replies start with a thinking block."""

    model_name, n_ctx, n_ctx_max = "fake", 4096, 4096

    def __init__(self) -> None:
        from offgrid.engines.base import GenerationStats

        self.stats = GenerationStats()

    def count_chat_tokens(self, messages, think=None) -> int:
        return 10

    def chat(self, messages, settings):
        yield from ["<think>", "secret plan", "</think>", "\n\nThe ", "answer."]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_hidden_thinking_on_a_terminal_shows_only_the_answer() -> None:
    stdout = _Terminal()
    out = Output(stdout=stdout, stderr=io.StringIO())
    session = ChatSession(_FakeThinker(), Conversation(), GenerationSettings(), out, history=None)
    reply = session.ask("why?")
    assert reply.text == "The answer." and reply.thinking == "secret plan"
    assert "The answer." in stdout.getvalue() and "secret plan" not in stdout.getvalue()
    assert out.live_note is None  # the "thinking…" note is gone once the answer streams


def test_save_to_a_missing_folder_is_an_error_not_the_end(engine, tmp_path: Path) -> None:
    """/save into a folder that does not exist ended the whole chat with an unexpected error."""
    session, _, stderr = _session(engine, None)
    lines = iter([f"/save {tmp_path / 'nope' / 'c.md'}", "/exit", "never read"])
    session.repl(lambda prompt: next(lines))
    assert next(lines) == "never read"  # the loop went on to /exit
    assert "error: cannot write" in stderr.getvalue()


def test_set_keeps_the_bounds_of_the_flags() -> None:
    """/set temperature 9 was taken although --temperature refuses anything above 5."""
    from offgrid.errors import UsageError
    from offgrid.chat.repl import set_setting

    settings = GenerationSettings()
    for key, value in (("temperature", "9"), ("top_p", "1.5"), ("max_tokens", "0")):
        with pytest.raises(UsageError, match=key):
            set_setting(settings, key, value)
    set_setting(settings, "temperature", "0.3")
    assert settings.temperature == 0.3


def test_help_fits_a_phone_in_portrait() -> None:
    """/help lines were up to 52 columns: the terminal broke them mid-word at 40."""
    from offgrid.chat.repl import HELP

    assert max(len(line) for line in HELP.splitlines()) <= 40
    assert all(f"/{name}" in HELP for name in ("exit", "reset", "system", "model", "set",
                                                "stats", "save", "retry"))

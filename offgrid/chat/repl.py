"""The chat session behind `offgrid chat`: one-shot turns and the interactive REPL.

ChatSession owns a loaded engine, a Conversation and where it is saved; it streams each reply
through the Output object. The REPL reads lines through an injectable function, so tests can
drive it without a terminal; on a terminal, prompt_toolkit gives history and editing.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from offgrid import config
from offgrid.device import paths
from offgrid.chat.conversation import Conversation, PromptTooLarge
from offgrid.engines.base import GenerationSettings, GenerationStats, TextEngine
from offgrid.engines.guard import REPETITION_WARNING
from offgrid.errors import ContextOverflowError, InputError, OffgridError, UsageError
from offgrid.history import History
from offgrid.ui.output import Output
from offgrid.ui.stats import generation_line

HELP = """\
/help           this list
/exit           leave (or Ctrl-D)
/reset          forget the conversation
/system TEXT    set the system prompt
/model NAME     switch model
/set KEY VALUE  change a setting:
  temperature, top_p, top_k, min_p,
  repeat_penalty, max_tokens, seed
/stats          speed of the last reply
/save FILE      save it as Markdown
/retry          answer the last again
End a line with \\ to continue it;
\"\"\" starts and ends a multi-line
message. Ctrl-C stops a reply."""  # 40 columns: a phone in portrait


@dataclass
class Reply:
    text: str
    thinking: str
    stats: GenerationStats
    dropped: int


class ChatSession:
    """A conversation with one engine, saved (or not) as it goes."""

    def __init__(self, engine: TextEngine, conversation: Conversation,
                 settings: GenerationSettings, out: Output, *, history: History | None,
                 conversation_id: str | None = None, name: str | None = None,
                 show_thinking: bool = False, loader: Callable[[str], TextEngine] | None = None,
                 command: str = "chat", meta: dict[str, Any] | None = None):
        self.engine, self.conversation, self.settings, self.out = engine, conversation, settings, out
        self.history, self.conversation_id, self.name = history, conversation_id, name
        self.command_name, self.meta = command, dict(meta or {})
        self.show_thinking = show_thinking
        self.loader = loader
        self.last: Reply | None = None

    # --- one turn ---------------------------------------------------------------------------
    def ask(self, text: str, *, render: bool = True) -> Reply:
        """Send a user message, stream the reply (if *render*), save both."""
        self.conversation.add_user(text)
        try:
            dropped = self.conversation.fit(self.engine, self.settings.think)
        except PromptTooLarge as exc:
            self.conversation.turns.pop()
            raise ContextOverflowError(exc.tokens, exc.n_ctx,
                                       self.engine.n_ctx_max) from None
        if dropped:
            self.out.warn(f"the conversation outgrew the {self.engine.n_ctx}-token context: "
                          f"dropped the {dropped} oldest message(s)")
        self._save("user", text)
        reply = self._stream(render)
        reply.dropped = dropped
        return reply

    def _stream(self, render: bool) -> Reply:
        thinking: list[str] = []
        answer: list[str] = []

        def pieces() -> Any:
            for kind, piece in self.conversation.reply(self.engine, self.settings):
                if kind == "think":
                    thinking.append(piece)
                    if render and self.show_thinking:
                        self.out.dim(piece)
                    else:
                        self.out.live_note = "thinking…"
                    continue
                self.out.live_note = None
                answer.append(piece)
                yield piece

        interrupted = False
        try:
            if render:
                self.out.stream(_lstrip_first(pieces()))
            else:
                for _ in pieces():
                    pass
        except KeyboardInterrupt:
            interrupted = True
        text = "".join(answer).strip()
        stats = self.engine.stats
        if interrupted:
            stats.finish_reason = "cancelled"
        elif stats.finish_reason == "repetition":
            self.out.warn(REPETITION_WARNING)
        self.conversation.add_reply(text)
        self._save("assistant", text, {"finish_reason": stats.finish_reason,
                                       "thinking": "".join(thinking).strip() or None})
        self.last = Reply(text, "".join(thinking), stats, 0)
        if interrupted:
            raise KeyboardInterrupt
        return self.last

    def _save(self, role: str, content: str, meta: dict[str, Any] | None = None) -> None:
        if self.history is None:
            return
        if self.conversation_id is None:
            self.conversation_id = self.history.start(
                self.command_name, self.engine.model_name, name=self.name,
                meta={"system": self.conversation.system, **self.meta})
        self.history.add(self.conversation_id, role, content, meta)

    # --- REPL ---------------------------------------------------------------------------------
    def repl(self, read_line: Callable[[str], str]) -> None:
        """Read messages and slash commands until /exit or EOF (Ctrl-D)."""
        self.out.info(f"offgrid {self.command_name} · {self.engine.model_name} · /help for commands, "
                      "Ctrl-D to leave")
        while True:
            try:
                line = read_message(read_line)
            except EOFError:
                return
            except KeyboardInterrupt:
                continue
            if not line.strip():
                continue
            try:
                if line.startswith("/"):
                    if not self.command(line):
                        return
                    continue
                self.ask(line)
            except KeyboardInterrupt:
                self.out.info("[stopped]")
            except OffgridError as exc:
                self.out.err.print(f"error: {exc.message}", style="red", markup=False)
                if exc.hint:
                    self.out.info(f"hint: {exc.hint}")

    def command(self, line: str) -> bool:
        """Run one slash command; False means leave."""
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        name = name.lower()
        if name in ("exit", "quit", "q"):
            return False
        handler = getattr(self, f"_cmd_{name}", None)
        if handler is None:
            raise UsageError(f"unknown command /{name}", hint="/help lists them")
        handler(arg)
        return True

    def _cmd_help(self, arg: str) -> None:
        self.out.info(HELP)

    def _cmd_reset(self, arg: str) -> None:
        self.conversation.turns.clear()
        self.conversation_id = None if not self.name else self.conversation_id
        if self.history and self.conversation_id:
            self.history.clear_messages(self.conversation_id)
        self.out.info("conversation cleared")

    def _cmd_system(self, arg: str) -> None:
        self.conversation.system = arg or None
        self.out.info("system prompt " + ("set" if arg else "cleared"))

    def _cmd_model(self, arg: str) -> None:
        if not arg:
            self.out.info(f"model: {self.engine.model_name}")
            return
        if self.loader is None:
            raise UsageError("switching models is not available here")
        new_engine = self.loader(arg)
        self.engine.close()
        self.engine = new_engine
        self.out.info(f"model: {self.engine.model_name}")

    def _cmd_set(self, arg: str) -> None:
        parts = shlex.split(arg)
        if len(parts) != 2:
            raise UsageError("usage: /set KEY VALUE  (e.g. /set temperature 0.2)")
        key, value = parts[0].replace("-", "_"), parts[1]
        set_setting(self.settings, key, value)
        self.out.info(f"{key} = {getattr(self.settings, key)}")

    def _cmd_stats(self, arg: str) -> None:
        self.out.info(generation_line(self.last.stats) if self.last else "no reply yet")

    def _cmd_save(self, arg: str) -> None:
        if not arg:
            raise UsageError("usage: /save FILE")
        target = Path(arg).expanduser()
        if target.exists():
            raise UsageError(f"{target} exists; choose another name")
        try:
            target.write_text(conversation_markdown(self.conversation), encoding="utf-8")
        except OSError as exc:  # a missing folder or a read-only place: the chat goes on
            raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
        self.out.info(f"saved to {target}")

    def _cmd_retry(self, arg: str) -> None:
        turns = self.conversation.turns
        if len(turns) < 2 or turns[-1]["role"] != "assistant":
            raise UsageError("nothing to retry yet")
        turns.pop()
        user = turns.pop()
        if self.history and self.conversation_id:
            self.history.pop_last(self.conversation_id, "assistant")
            self.history.pop_last(self.conversation_id, "user")
        self.ask(user["content"])


def read_message(read_line: Callable[[str], str]) -> str:
    """One message: a line, lines joined by a trailing backslash, or a \"\"\" block."""
    line = read_line("> ")
    if line.strip() == '"""':
        parts = []
        while (nxt := read_line("… ")).strip() != '"""':
            parts.append(nxt)
        return "\n".join(parts)
    parts = [line]
    while parts[-1].endswith("\\"):
        parts[-1] = parts[-1][:-1]
        parts.append(read_line("… "))
    return "\n".join(parts)


def set_setting(settings: GenerationSettings, key: str, value: str) -> None:
    """Set one GenerationSettings field from text, with its type checked."""
    types = {f.name: f.type for f in fields(settings) if f.name != "stop"}
    if key not in types:
        raise UsageError(f"unknown setting {key!r}", hint="settings: " + ", ".join(types))
    kind = int if "int" in str(types[key]) else float
    try:
        number = kind(value)
    except ValueError:
        raise UsageError(f"{key} must be a number, not {value!r}") from None
    if number < 0:
        raise UsageError(f"{key} must not be negative")
    config.check_range(key, number)  # the bounds of the matching flag (--temperature 0-5, …)
    setattr(settings, key, number)


def conversation_markdown(conversation: Conversation) -> str:
    lines = []
    for message in conversation.messages():
        lines += [f"## {message['role']}", "", str(message["content"]).rstrip(), ""]
    return "\n".join(lines)


def _lstrip_first(pieces: Any) -> Any:
    """Drop the whitespace a reply starts with (after a hidden thinking block)."""
    started = False
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            if not piece:
                continue
            started = True
        yield piece


def stdin_line_reader() -> Callable[[str], str]:
    """Lines from a piped stdin (no prompt shown); EOFError at its end."""
    import sys

    def read(prompt: str) -> str:
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return read


def prompt_toolkit_reader(persist: bool = True) -> Callable[[str], str]:
    """A line reader with editing and input history (arrow keys), kept on disk only when
    *persist* (not with --no-save or history.enabled=false)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    lines: InMemoryHistory | FileHistory = InMemoryHistory()
    if persist:
        history_file = paths.private_dir(paths.data_dir()) / "chat_input_history"
        if not history_file.exists():
            history_file.touch(mode=0o600)
        lines = FileHistory(str(history_file))
    session: PromptSession[str] = PromptSession(history=lines)
    return lambda prompt: session.prompt(prompt)

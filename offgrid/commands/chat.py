"""`offgrid chat`: one-shot answers, piped context, or an interactive REPL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from offgrid import config, history
from offgrid.chat.conversation import Conversation, with_context
from offgrid.chat.repl import ChatSession, prompt_toolkit_reader
from offgrid.chat.thinking import strip_thinking
from offgrid.engines import loader
from offgrid.engines.base import GenerationSettings
from offgrid.engines.loader import EngineOptions
from offgrid.errors import InputError, UsageError
from offgrid.history import History
from offgrid.ui import completion, options, phone
from offgrid.ui.loading import TerminalHooks
from offgrid.ui.output import Output, read_stdin_text, stdin_is_tty
from offgrid.ui.stats import generation_line


def chat(
    prompt: Annotated[Optional[list[str]], typer.Argument(
        help="The question. Omit it on a terminal for an interactive chat; `-` reads it "
             "from stdin. Piped stdin is context for the question.", show_default=False)] = None,
    model: options.ModelOpt = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")] = None,
    system_file: Annotated[Optional[Path], typer.Option(
        "--system-file", help="Read the system prompt from a file.")] = None,
    temperature: options.TemperatureOpt = None,
    top_p: Annotated[Optional[float], typer.Option("--top-p", min=0.0, max=1.0,
                                                   help="Nucleus sampling.")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=0, help="Top-k sampling.")] = None,
    min_p: Annotated[Optional[float], typer.Option("--min-p", min=0.0, max=1.0,
                                                   help="Min-p sampling.")] = None,
    repeat_penalty: Annotated[Optional[float], typer.Option(
        "--repeat-penalty", min=0.0, help="Penalty for repeated tokens (1 = none).")] = None,
    max_tokens: options.MaxTokensOpt = None,
    ctx: options.CtxOpt = None,
    threads: options.ThreadsOpt = None,
    seed: options.SeedOpt = None,
    stop: Annotated[Optional[list[str]], typer.Option(
        "--stop", help="Stop when this text appears (repeatable).")] = None,
    continue_: Annotated[bool, typer.Option("--continue", "-c",
                                            help="Continue the last conversation.")] = False,
    session: Annotated[Optional[str], typer.Option(
        "--session", help="Continue (or start) the conversation with this name.",
        autocompletion=completion.session_names)] = None,
    no_save: options.NoSaveOpt = False,
    think: Annotated[Optional[bool], typer.Option(
        "--think/--no-think", help="Let a thinking model (Qwen3) think first, or not.",
        show_default=False)] = None,
    clipboard: options.ClipboardOpt = False,
    copy: options.CopyOpt = False,
    notify: options.NotifyOpt = None,
    flash_attn: options.FlashAttnOpt = None,
    kv_cache: options.KvCacheOpt = None,
    batch: options.BatchOpt = None,
    server: options.ServerOpt = None,
    api_key: options.ApiKeyOpt = None,
    json_: options.JsonOpt = False,
    stats: options.StatsOpt = False,
    plain: options.PlainOpt = False,
    yes: options.YesOpt = False,
    force: options.ForceOpt = False,
) -> None:
    """Ask a local language model: one question, piped text, or an interactive chat."""
    out = Output(plain=plain or json_)
    phone.check_copy(copy)
    question = _question(prompt, clipboard)
    if continue_ and session:
        raise UsageError("--continue and --session cannot be combined")
    if system is not None and system_file is not None:
        raise UsageError("give --system or --system-file, not both")
    if question is None and json_:
        raise UsageError("--json needs a question", hint='offgrid chat --json "your question"')
    conf = config.load()
    saved = history.open_for(no_save, conf)
    record = _previous(saved, continue_, session)
    # A continued conversation keeps its own model and system prompt; flags still win, and
    # config defaults only fill in what it lacks.
    spec = model or (record.model if record else None) or conf.get("chat.model")
    flags = dict(temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
                 repeat_penalty=repeat_penalty, max_tokens=max_tokens, seed=seed, ctx=ctx,
                 threads=threads, system=_system(system, system_file), think=think,
                 flash_attn=flash_attn, kv_cache=kv_cache, batch=batch)
    chosen = config.settings("chat", flags, config=conf)
    if server is None and record and not model:  # -c goes back to the conversation's server
        server = record.meta.get("server")
    engine_options = EngineOptions.from_choices(chosen, yes=yes, force=force, server=server,
                                                api_key=api_key)
    hooks = TerminalHooks(out)
    engine = loader.open_text(spec, engine_options, hooks)
    conversation = Conversation(system=chosen.get("system"))
    if record:
        conversation.system = flags["system"] or record.meta.get("system") or chosen.get("system")
        conversation.turns = [{"role": m["role"], "content": m["content"]}
                              for m in record.messages if m["role"] in ("user", "assistant")]
    chat_session = ChatSession(
        engine, conversation, GenerationSettings.from_choices(chosen, stop), out, history=saved,
        conversation_id=record.id if record else None, name=session,
        show_thinking=question is None, meta={"server": server} if server else None,
        loader=lambda alias: loader.open_text(alias, engine_options, hooks))
    try:
        if question is None:
            chat_session.repl(prompt_toolkit_reader(persist=saved is not None))
            _copy_last_reply(out, conversation, copy)
            return
        with phone.long_job(out, notify=notify, title="offgrid chat") as job:
            reply = chat_session.ask(question, render=not json_)
            job.done = "answer ready"
    finally:
        chat_session.engine.close()
    if not reply.text and reply.thinking.strip() and reply.stats.finish_reason == "length":
        out.warn("the model spent every token thinking; raise --max-tokens or pass --no-think")
    phone.deliver(out, reply.text, copy=copy)
    if json_:
        out.json({"text": reply.text, "model": engine.model_name,
                  "conversation_id": chat_session.conversation_id,
                  "finish_reason": reply.stats.finish_reason,
                  "thinking": reply.thinking.strip() or None,
                  "prompt_tokens": reply.stats.prompt_tokens,
                  "completion_tokens": reply.stats.completion_tokens,
                  "timings": reply.stats.to_dict()})
    if stats:
        out.info(generation_line(reply.stats))


def _question(prompt: list[str] | None, clipboard: bool = False) -> str | None:
    """The question from arguments, the clipboard and stdin; None means an interactive
    session. Clipboard or piped text is context for a question given as arguments."""
    text = " ".join(prompt) if prompt else None
    piped = sys.stdin is not None and not stdin_is_tty()
    if clipboard:
        if text == "-" or (piped and text is None and read_stdin_text().strip()):
            raise UsageError("--clipboard and text on stdin cannot be combined")
        clip = phone.clipboard_text()
        return with_context(text, clip) if text and text.strip() else clip
    if text == "-" or (text is None and piped):
        text = read_stdin_text()
        if not text.strip():
            raise InputError("nothing to ask: stdin was empty")
        return text
    if text is not None and not text.strip():
        raise UsageError("the question is empty")
    if text is not None and piped:
        context = read_stdin_text()
        if context.strip():
            return with_context(text, context)
    if text is None and not stdin_is_tty():
        raise UsageError("no question given", hint='offgrid chat "your question"')
    return text


def _copy_last_reply(out: Output, conversation: Conversation, copy: bool) -> None:
    """--copy in the interactive chat: the last answer goes on the clipboard at the end."""
    replies = [t["content"] for t in conversation.turns if t["role"] == "assistant"]
    if copy and replies:
        phone.deliver(out, strip_thinking(replies[-1]).strip(), copy=True)


def _system(system: str | None, system_file: Path | None) -> str | None:
    if system_file is None:
        return system
    try:
        return system_file.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        raise InputError(f"cannot read {system_file}: {exc.strerror}") from None


def _previous(saved: History | None, continue_: bool, session: str | None):  # type: ignore[no-untyped-def]
    if saved is None or not (continue_ or session):
        if continue_ or session:
            raise UsageError("--continue/--session need a saved history (drop --no-save)")
        return None
    record = saved.find(command="chat", name=session)
    if record is None and continue_:
        raise UsageError("there is no conversation to continue yet")
    return record


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)

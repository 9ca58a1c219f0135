"""`offgrid see`: ask a vision model about photos, scans, PDF pages or a camera shot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offgrid import config, history
from offgrid.chat.conversation import Conversation
from offgrid.chat.repl import ChatSession, prompt_toolkit_reader, stdin_line_reader
from offgrid.engines import loader
from offgrid.engines.base import GenerationSettings
from offgrid.engines.loader import EngineOptions
from offgrid.errors import UsageError
from offgrid.grounded import prompts
from offgrid.inputs import images
from offgrid.ui import options, phone
from offgrid.ui.loading import TerminalHooks
from offgrid.ui.output import Output, stdin_is_tty
from offgrid.ui.stats import generation_line

DEFAULTS = {"temperature": 0.2, "max_tokens": 512, "max_side": images.DEFAULT_MAX_SIDE}


def see(
    inputs: Annotated[Optional[list[str]], typer.Argument(
        help="Images (JPEG, PNG, WebP; `-` reads stdin; a PDF with --page), then the question "
             "(the last argument, when it is not a file).", show_default=False,
        metavar="IMAGE... [QUESTION]")] = None,
    prompt: Annotated[Optional[str], typer.Option(
        "--prompt", "-p", help="The question (then every argument is an image).")] = None,
    model: options.ModelOpt = None,
    server: options.ServerOpt = None,
    api_key: options.ApiKeyOpt = None,
    mmproj: Annotated[Optional[str], typer.Option(
        "--mmproj", help="The vision projector for --model PATH (default: the mmproj*.gguf "
                         "next to it).")] = None,
    extract: Annotated[Optional[str], typer.Option(
        "--extract", "-e", help='Fields to read off the image, e.g. "total, due date".')] = None,
    chat: Annotated[bool, typer.Option(
        "--chat", help="Keep the image in context and ask follow-up questions.")] = False,
    camera: Annotated[bool, typer.Option(
        "--camera", help="Take a photo first (Termux:API's termux-camera-photo).")] = False,
    camera_id: Annotated[int, typer.Option("--camera-id", min=0,
                                           help="Camera for --camera: 0 back, 1 front.")] = 0,
    page: Annotated[Optional[int], typer.Option(
        "--page", min=1, help="Page of a PDF input to look at (default 1).")] = None,
    password: Annotated[Optional[str], typer.Option(
        "--password", help="Password of an encrypted PDF.")] = None,
    max_side: Annotated[Optional[int], typer.Option(
        "--max-side", min=64, help="Downscale images so the longest side is at most this "
                                   "(default 1024).")] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")] = None,
    temperature: options.TemperatureOpt = None,
    max_tokens: options.MaxTokensOpt = None,
    ctx: options.CtxOpt = None,
    threads: options.ThreadsOpt = None,
    seed: options.SeedOpt = None,
    no_save: options.NoSaveOpt = False,
    copy: options.CopyOpt = False,
    json_: options.JsonOpt = False,
    stats: options.StatsOpt = False,
    plain: options.PlainOpt = False,
    yes: options.YesOpt = False,
    force: options.ForceOpt = False,
) -> None:
    """Ask a local vision model about images: describe, answer, extract fields, or chat."""
    out = Output(plain=plain or json_)
    phone.check_copy(copy)
    specs, question = split_arguments(inputs or [], prompt, camera)
    _check_modes(specs, question, extract, chat, json_, page, camera)
    fields = prompts.parse_fields(extract) if extract is not None else None
    conf = config.load()
    chosen = config.settings("see", dict(temperature=temperature, max_tokens=max_tokens, ctx=ctx,
                                         threads=threads, seed=seed, max_side=max_side,
                                         mmproj=mmproj), DEFAULTS, conf)
    if fields and temperature is None:
        chosen["temperature"] = 0.0  # copy values, don't invent them
    pictures = _load_images(out, specs, camera, camera_id, page, password, chosen["max_side"])
    engine = loader.open_vision(model or chosen.get("model"),
                                EngineOptions.from_choices(chosen, yes=yes, force=force,
                                                           mmproj=mmproj, server=server,
                                                           api_key=api_key), TerminalHooks(out))
    engine.attach(pictures)
    system, task = _prompt(fields, question, system)
    saved = history.open_for(no_save, conf)
    session = ChatSession(engine, Conversation(system=system),
                          GenerationSettings.from_choices(chosen), out, history=saved,
                          command="see", meta={"images": [p.source for p in pictures]})
    try:
        if chat:
            if question:
                session.ask(question)
            session.repl(prompt_toolkit_reader(persist=saved is not None) if stdin_is_tty() else stdin_line_reader())
            return
        reply = session.ask(task, render=not (json_ or fields))
    finally:
        session.engine.close()
    _print_result(out, reply, fields, json_, engine.model_name, pictures, session.conversation_id)
    phone.deliver(out, prompts.format_extraction(prompts.parse_extraction(reply.text, fields))
                   if fields else reply.text, copy=copy)
    if stats:
        out.info(generation_line(reply.stats))


def _prompt(fields: list[str] | None, question: str | None, system: str | None) -> tuple[str | None, str]:
    """(system prompt, first user message): grounded extraction, or the question."""
    if fields:
        rules, task = prompts.image_extraction(fields, role=prompts.get_role(None, prompts.BUILTIN_ROLES))
        return rules["content"], task["content"]
    return system, question or prompts.DEFAULT_IMAGE_QUESTION


def split_arguments(args: list[str], prompt: str | None, camera: bool) -> tuple[list[str], str | None]:
    """(image specs, question): the last argument is the question when it is not a file
    (nor `-`) and something else is there to look at."""
    specs = list(args)
    question = prompt
    if question is None and specs and (len(specs) > 1 or camera) and not _is_input(specs[-1]):
        question = specs.pop()
    if question is not None and not question.strip():
        raise UsageError("the question is empty")
    return specs, question


# A last argument like "scan.jpg" is a file name with a typo, not a question.
_FILE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic",
                  ".pdf"}


def _is_input(spec: str) -> bool:
    if spec == images.STDIN or Path(spec).expanduser().exists():
        return True
    return not any(c.isspace() for c in spec) and Path(spec).suffix.lower() in _FILE_SUFFIXES


def _check_modes(specs: list[str], question: str | None, extract: str | None, chat: bool,
                 json_: bool, page: int | None, camera: bool) -> None:
    if not specs and not camera:
        raise UsageError("no image given", hint='offgrid see photo.jpg "what is this?"')
    if extract is not None and question is not None:
        raise UsageError("give either a question or --extract, not both")
    if chat and (extract is not None or json_):
        raise UsageError("--chat cannot be combined with --extract or --json")
    if chat and images.STDIN in specs:
        raise UsageError("--chat reads your questions from the terminal; give the image as a file")
    if specs.count(images.STDIN) > 1:
        raise UsageError("stdin (`-`) can be read only once")
    if images.STDIN in specs and stdin_is_tty():  # it waited silently for bytes nobody types
        raise UsageError("`-` reads an image from stdin, but nothing is piped in",
                         hint='cat photo.jpg | offgrid see - "what is this?"')
    if page is not None and not any(images.is_pdf(s) for s in specs):
        raise UsageError("--page applies to a PDF input")


def _load_images(out: Output, specs: list[str], camera: bool, camera_id: int, page: int | None,
                 password: str | None, max_side: int) -> list[images.PreparedImage]:
    loaded = [images.load_input(spec, page=page, password=password, max_side=max_side)
              for spec in specs]
    if camera:
        with out.status("taking a photo"):
            shot = images.take_photo(camera_id)
        loaded.append(images.prepare_image(shot, f"camera {camera_id}", max_side))
    return loaded


def _print_result(out: Output, reply, fields: list[str] | None, json_: bool, model: str,  # type: ignore[no-untyped-def]
                  pictures: list[images.PreparedImage], conversation_id: str | None) -> None:
    sources = [p.source for p in pictures]
    counts = {"conversation_id": conversation_id, "prompt_tokens": reply.stats.prompt_tokens,
              "completion_tokens": reply.stats.completion_tokens,
              "timings": reply.stats.to_dict()}
    if fields:
        values = prompts.parse_extraction(reply.text, fields)
        if json_:
            out.json({"fields": values, "model": model, "images": sources, **counts})
        else:
            out.line(prompts.format_extraction(values))
    elif json_:
        out.json({"text": reply.text, "model": model, "images": sources,
                  "finish_reason": reply.stats.finish_reason, **counts})


def register(app: typer.Typer) -> None:
    app.command("see")(see)

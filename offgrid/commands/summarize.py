"""`offgrid summarize`: documents in, grounded summaries, answers and fields out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from offgrid import config, history
from offgrid.device import paths
from offgrid.device.files import check_output, output_stream
from offgrid.engines import loader, native
from offgrid.engines.base import GenerationSettings, TextEngine
from offgrid.engines.guard import REPETITION_WARNING
from offgrid.engines.loader import EngineOptions
from offgrid.errors import UsageError
from offgrid.lazy import lazy_import
from offgrid.ui import options, phone
from offgrid.ui.loading import TerminalHooks
from offgrid.ui.output import Output, stdin_is_tty
from offgrid.ui.stats import summary_line

# Loaded when a document is read, not for `offgrid --help` (pypdf, html.parser, …).
documents = lazy_import("offgrid.inputs.documents")
prompts = lazy_import("offgrid.grounded.prompts")
summarizer = lazy_import("offgrid.grounded.summarizer")

DEFAULT_TEMPERATURE = 0.2  # grounded answers: stay close to the text


def summarize_command(
    files: Annotated[Optional[list[str]], typer.Argument(
        help="PDF, text, Markdown or HTML files; `-` (or nothing, with a pipe) reads stdin.",
        show_default=False)] = None,
    ask: Annotated[Optional[list[str]], typer.Option(
        "--ask", "-a", help='A question answered from the document only, or "Not mentioned" '
                            "(repeatable).", show_default=False)] = None,
    extract: Annotated[Optional[str], typer.Option(
        "--extract", "-x", help='Fields to extract, comma-separated: "total, due date".',
        show_default=False)] = None,
    points: Annotated[Optional[int], typer.Option(
        "--points", min=1, max=50, help="Summarise as N bullet points.", show_default=False)] = None,
    length: Annotated[Optional[str], typer.Option(
        "--length", help="Summary length: short, medium or long.", show_default=False)] = None,
    lang: Annotated[Optional[str], typer.Option(
        "--lang", help="Answer in this language (e.g. fr, de, Spanish).", show_default=False)] = None,
    role: Annotated[Optional[str], typer.Option(
        "--role", help="Preset persona: general, analyst, legal or your own (see --list-roles).",
        show_default=False)] = None,
    list_roles: Annotated[bool, typer.Option("--list-roles", help="List the role presets and exit.")] = False,
    pages: Annotated[Optional[str], typer.Option(
        "--pages", "-p", help="Only these pages, e.g. 3-7,10.", show_default=False)] = None,
    password: Annotated[Optional[str], typer.Option(
        "--password", help="Password of an encrypted PDF.", show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the result to this file instead of stdout.",
        show_default=False)] = None,
    model: options.ModelOpt = None,
    server: options.ServerOpt = None,
    api_key: options.ApiKeyOpt = None,
    ctx: options.CtxOpt = None,
    threads: options.ThreadsOpt = None,
    max_tokens: options.MaxTokensOpt = None,
    temperature: options.TemperatureOpt = None,
    seed: options.SeedOpt = None,
    json_: options.JsonOpt = False,
    stats: options.StatsOpt = False,
    plain: options.PlainOpt = False,
    no_save: options.NoSaveOpt = False,
    clipboard: options.ClipboardOpt = False,
    copy: options.CopyOpt = False,
    notify: options.NotifyOpt = None,
    yes: options.YesOpt = False,
    force: options.ForceOutputOpt = False,
) -> None:
    """Summarise documents, answer questions from them, or extract fields — offline."""
    conf = config.load()
    roles = prompts.load_roles(paths.config_dir())
    if list_roles:
        _print_roles(Output(plain=plain or json_), roles, json_)
        return
    if output is not None:
        check_output(output, force)
    phone.check_copy(copy)
    request = summarizer.make_request(roles, ask=ask, extract=extract, points=points,
                                      length=length, lang=lang or conf.get("summarize.lang"),
                                      role=role or conf.get("summarize.role"))
    docs = _load_documents(files, pages, password, clipboard)
    flags = dict(model=model, ctx=ctx, threads=threads, max_tokens=max_tokens,
                 temperature=temperature, seed=seed)
    chosen = config.settings("summarize", flags, {"temperature": DEFAULT_TEMPERATURE}, config=conf)
    request.settings = GenerationSettings.from_choices(chosen)
    with output_stream(output) as stream:
        out = Output(plain=plain or json_ or output is not None, stdout=stream)
        engine = loader.open_text(chosen.get("model"),
                                  EngineOptions.from_choices(chosen, yes=yes, force=force,
                                                             server=server, api_key=api_key),
                                  TerminalHooks(out))
        try:
            with phone.long_job(out, notify=notify, title="offgrid summarize") as job:
                results, text = _run(out, engine, docs, request, show=not json_)
                job.done = "summary ready"
        finally:
            engine.close()
        phone.deliver(out, text.strip(), copy=copy)
        if json_:
            out.json(summarizer.to_json(engine.model_name, request, results, text))
    if output is not None:
        Output().info(f"wrote {output}")
    if any(r.usage.repetitions for r in results):
        Output().warn(REPETITION_WARNING)
    if stats:
        Output().info(summary_line(results))
    if history.enabled(no_save, conf):
        summarizer.record(history.History(), engine.model_name, docs, request, results, text)


def _load_documents(sources: list[str] | None, pages: str | None, password: str | None,
                    clipboard: bool) -> list[documents.Document]:
    sources = list(sources or [])
    if clipboard:
        if sources:
            raise UsageError("--clipboard and files cannot be combined")
        text = phone.clipboard_text()
        return [documents.parse("<clipboard>", text.encode("utf-8"), pages=pages)]
    if not sources:
        if stdin_is_tty():
            raise UsageError("no document given",
                             hint="offgrid summarize FILE   or   pdftotext x.pdf - | offgrid summarize")
        sources = ["-"]
    if sources.count("-") > 1:
        raise UsageError("stdin (`-`) can be read only once")
    loaded = [documents.load(source, pages=pages, password=password, stdin=sys.stdin.buffer)
              for source in sources]
    if native.debug_enabled():
        for document in loaded:
            for warning in document.warnings:
                native.record_log(f"pypdf: {document.name}: {warning}")
    return loaded


def _run(out: Output, engine: TextEngine, docs: list[documents.Document], request: summarizer.Request,
         *, show: bool) -> tuple[list[summarizer.Result], str]:
    """Every document through the core; stream the answers (unless JSON); return all text."""
    results, printed = [], []
    for document in docs:
        with out.progress(f"reading {Path(document.name).name}") as bar:
            job = summarizer.prepare(engine, document, request,
                                    progress=lambda done, total: bar.update(completed=done, total=total))
        if len(docs) > 1:
            printed.append(_heading(out, f"# {document.name}", show))
        sections = list(job.sections())
        for section in sections:
            if section.title and len(sections) > 1:
                printed.append(_heading(out, f"## {section.title}", show))
            elif section.kind == "fields" and len(sections) > 1:
                printed.append(_heading(out, "## Fields", show))
            text = out.stream(section.stream, markdown=section.markdown) if show else "".join(section.stream)
            printed.append(text.strip() + "\n")
        results.append(job.result)
    return results, "\n".join(printed)


def _heading(out: Output, text: str, show: bool) -> str:
    if show:
        out.markdown(text)
    return text + "\n"


def _print_roles(out: Output, roles: dict[str, prompts.Role], json_: bool) -> None:
    if json_:
        out.json([{"name": r.name, "description": r.description, "source": r.source} for r in roles.values()])
        return
    width = max(len(name) for name in roles)
    for role in sorted(roles.values(), key=lambda r: r.name):
        origin = "" if role.source == "built-in" else f"  ({role.source})"
        out.line(f"{role.name:<{width}}  {role.description}{origin}")


def register(app: typer.Typer) -> None:
    app.command("summarize")(summarize_command)

"""`offgrid summarize`: documents in, grounded summaries, answers and fields out."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional, TextIO

import typer

from offgrid import config, files, paths
from offgrid.lazy import lazy_import
from offgrid.commands import common
from offgrid.commands.chat import generation_settings
from offgrid.engines import native
from offgrid.errors import UsageError
from offgrid.history import History
from offgrid.output import Output, stdin_is_tty

# Loaded when a document is read, not for `offgrid --help` (pypdf, html.parser, …).
documents = lazy_import("offgrid.documents")
prompts = lazy_import("offgrid.prompts")
summarize = lazy_import("offgrid.summarize")

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
    model: common.ModelOpt = None,
    ctx: common.CtxOpt = None,
    threads: common.ThreadsOpt = None,
    max_tokens: common.MaxTokensOpt = None,
    temperature: common.TemperatureOpt = None,
    seed: common.SeedOpt = None,
    json_: common.JsonOpt = False,
    stats: common.StatsOpt = False,
    plain: common.PlainOpt = False,
    no_save: common.NoSaveOpt = False,
    clipboard: common.ClipboardOpt = False,
    copy: common.CopyOpt = False,
    notify: common.NotifyOpt = None,
    yes: common.YesOpt = False,
    force: common.ForceOutputOpt = False,
) -> None:
    """Summarise documents, answer questions from them, or extract fields — offline."""
    conf = config.load()
    roles = prompts.load_roles(paths.config_dir())
    if list_roles:
        _print_roles(Output(plain=plain or json_), roles, json_)
        return
    _check_output_path(output, force)
    request = _request(conf, roles, ask, extract, points, length, lang, role)
    docs = _load_documents(files, pages, password, clipboard)
    flags = dict(model=model, ctx=ctx, threads=threads, max_tokens=max_tokens,
                 temperature=temperature, seed=seed)
    chosen = config.settings("summarize", flags, {"temperature": DEFAULT_TEMPERATURE}, config=conf)
    request.settings = generation_settings(chosen, None)
    with _destination(output) as stream:
        out = Output(plain=plain or json_ or output is not None, stdout=stream)
        resolved = common.resolve_model(out, chosen.get("model"), "text", yes=yes)
        engine = common.load_text_engine(out, resolved, ctx=chosen.get("ctx"),
                                         n_threads=chosen.get("threads"), seed=chosen.get("seed"),
                                         force=force, **{key: chosen.get(key) for key in
                                                         ("flash_attn", "kv_cache", "batch")})
        try:
            with common.long_job(out, notify=notify, title="offgrid summarize") as job:
                results, text = _run(out, engine, docs, request, show=not json_)
                job.done = "summary ready"
        finally:
            engine.close()
        common.deliver(out, text.strip(), copy=copy)
        if json_:
            out.json(_json(resolved.name, request, results, text))
    if output is not None:
        Output().info(f"wrote {output}")
    if stats:
        Output().info(_stats_line(results))
    if not no_save and conf.get("history.enabled") is not False:
        _record(resolved.name, docs, request, results, text)


def _request(conf: dict[str, Any], roles: dict[str, prompts.Role], ask: list[str] | None,
             extract: str | None, points: int | None, length: str | None, lang: str | None,
             role: str | None) -> summarize.Request:
    questions = [q.strip() for q in ask or []]
    if any(not q for q in questions):
        raise UsageError("--ask needs a question")
    fields = prompts.parse_fields(extract) if extract is not None else []
    if length is not None and length not in prompts.LENGTHS:
        raise UsageError(f"--length must be short, medium or long, not {length!r}")
    wants_summary = not (questions or fields) or points is not None or length is not None
    return summarize.Request(
        role=prompts.get_role(role or conf.get("summarize.role"), roles),
        summary=wants_summary, length=length or "short", points=points,
        language=lang or conf.get("summarize.lang"), questions=questions, fields=fields)


def _load_documents(files: list[str] | None, pages: str | None, password: str | None,
                    clipboard: bool) -> list[documents.Document]:
    sources = list(files or [])
    if clipboard:
        if sources:
            raise UsageError("--clipboard and files cannot be combined")
        text = common.clipboard_text()
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


def _run(out: Output, engine: Any, docs: list[documents.Document], request: summarize.Request,
         *, show: bool) -> tuple[list[summarize.Result], str]:
    """Every document through the core; stream the answers (unless JSON); return all text."""
    results, printed = [], []
    for document in docs:
        with out.progress(f"reading {Path(document.name).name}") as bar:
            job = summarize.prepare(engine, document, request,
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


def _json(model: str, request: summarize.Request, results: list[summarize.Result], text: str) -> dict[str, Any]:
    usage = summarize.Usage()
    for result in results:
        for key in vars(usage):
            setattr(usage, key, getattr(usage, key) + getattr(result.usage, key))
    return {
        "model": model,
        "role": request.role.name,
        "answer": text.strip(),
        "documents": [result.to_dict() for result in results],
        "timings": {"seconds": round(sum(r.seconds for r in results), 3), **usage.to_dict()},
    }


def _stats_line(results: list[summarize.Result]) -> str:
    chunks = sum(r.chunks for r in results)
    calls = sum(r.usage.calls for r in results)
    prompt = sum(r.usage.prompt_tokens for r in results)
    cached = sum(r.usage.prompt_tokens_cached for r in results)
    reply = sum(r.usage.completion_tokens for r in results)
    seconds = sum(r.seconds for r in results)
    return (f"{chunks} chunk{'s' * (chunks != 1)} · {calls} call{'s' * (calls != 1)} · prompt {prompt} tok "
            f"({cached} from cache) · reply {reply} tok · {seconds:.1f} s")


def _print_roles(out: Output, roles: dict[str, prompts.Role], json_: bool) -> None:
    if json_:
        out.json([{"name": r.name, "description": r.description, "source": r.source} for r in roles.values()])
        return
    width = max(len(name) for name in roles)
    for role in sorted(roles.values(), key=lambda r: r.name):
        origin = "" if role.source == "built-in" else f"  ({role.source})"
        out.line(f"{role.name:<{width}}  {role.description}{origin}")


def _check_output_path(output: Path | None, force: bool) -> None:
    if output is not None:
        files.check_output(output, force)


@contextmanager
def _destination(output: Path | None) -> Iterator[TextIO | None]:
    """stdout (None), or a file that replaces `output` only on success."""
    if output is None:
        yield None
        return
    with files.atomic_file(output) as handle:
        yield handle


def _record(model: str, docs: list[documents.Document], request: summarize.Request,
            results: list[summarize.Result], text: str) -> None:
    names = ", ".join(d.name for d in docs)
    asked = "; ".join(request.questions) or (", ".join(request.fields) if request.fields else "summary")
    History().record_run("summarize", model, f"{names}: {asked}", text, meta={
        "documents": [d.name for d in docs], "role": request.role.name,
        "questions": request.questions, "fields": request.fields,
        "pages_used": [r.pages_used for r in results], "timestamp": time.time()})


def register(app: typer.Typer) -> None:
    app.command("summarize")(summarize_command)

"""`offgrid history`: list, show, export and delete what offgrid recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from offgrid.device import files
from offgrid.errors import UsageError
from offgrid.history import History, to_markdown
from offgrid.ui.output import Output

app = typer.Typer(help="Your conversations and runs, stored only on this device.",
                  invoke_without_command=True)


@app.callback()
def list_(
    ctx: typer.Context,
    command: Annotated[Optional[str], typer.Option("--command", help="Only this command.")] = None,
    search: Annotated[Optional[str], typer.Option("--search", help="Only entries containing "
                                                  "this text.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many.")] = 20,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List recent entries (newest first)."""
    if ctx.invoked_subcommand:
        return
    out = Output()
    records = History().list(command=command, search=search, limit=limit)
    if json_:
        out.json([r.to_dict() for r in records])
        return
    if not records:
        out.info("no entries match" if command or search else "no history yet")
    for r in records:
        when = time.strftime("%m-%d %H:%M", time.localtime(r.updated))
        label = f"[{r.name}] " if r.name else ""
        out.line(f"{r.id}  {when}  {r.command:<10} {label}{(r.title or '').splitlines()[0][:50]}"
                 if r.title else f"{r.id}  {when}  {r.command:<10} {label}")


@app.command()
def show(entry: Annotated[str, typer.Argument(help="Entry id (from `offgrid history`).")],
         json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show one entry in full."""
    out = Output()
    record = History().get(entry)
    if json_:
        out.json(record.to_dict())
    else:
        out.markdown(to_markdown(record))


@app.command()
def export(
    entry: Annotated[str, typer.Argument(help="Entry id.")],
    format_: Annotated[str, typer.Option("--format", "-f", help="md or json.")] = "md",
    output: Annotated[Optional[Path], typer.Option("--output", "-o",
                                                   help="Write to this file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Export one entry as Markdown or JSON."""
    if format_ not in ("md", "json"):
        raise UsageError(f"unknown format {format_!r}", hint="use md or json")
    record = History().get(entry)
    text = (json.dumps(record.to_dict(), ensure_ascii=False, indent=2) + "\n"
            if format_ == "json" else to_markdown(record))
    out = Output()
    if output is None:
        out.write(text)
        return
    files.check_output(output, force)
    files.write_atomic(output, text, private=True)
    out.info(f"wrote {output}")


@app.command()
def rm(
    entry: Annotated[Optional[str], typer.Argument(help="Entry id.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Delete everything (really erased).")] = False,
) -> None:
    """Delete one entry, or everything with --all."""
    history, out = History(), Output()
    if all_:
        out.info(f"deleted {history.delete_all()} entries")
        return
    if not entry:
        raise UsageError("give an entry id, or --all")
    if not history.delete(entry):
        raise UsageError(f"no history entry {entry!r}")
    out.info(f"deleted {entry}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="history")

"""`offgrid models`: the catalog, and the models on disk."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from offgrid.engines import loader
from offgrid.ui import options
from offgrid.ui.loading import TerminalHooks
from offgrid.ui.completion import model_aliases
from offgrid.errors import UsageError
from offgrid.lazy import lazy_import
from offgrid.models import catalog, store
from offgrid.models.store import human_size

hub = lazy_import("offgrid.models.hub")  # the network client: loaded when used
from offgrid.ui.output import Output

app = typer.Typer(help="List, download, inspect and remove models.", no_args_is_help=True)

TaskOpt = Annotated[Optional[str], typer.Option(
    "--task", help="Only this task: text, vision, image or speech.")]


def _check_task(task: str | None) -> None:
    if task and task not in catalog.TASKS:
        raise UsageError(f"unknown task {task!r}", hint="tasks: " + ", ".join(catalog.TASKS))


@app.command("list")
def list_(task: TaskOpt = None, json_: options.JsonOpt = False) -> None:
    """The curated catalog: which models are downloaded, and their sizes."""
    _check_task(task)
    out = Output()
    rows = store.list_catalog(task)
    if json_:
        out.json(rows)
        return
    for row in rows:
        mark = "✓" if row["cached"] else " "
        star = " (default)" if row["default"] else ""
        size = human_size(row["size"]) if row["size"] else "?"  # type: ignore[arg-type]
        out.line(f"{mark} {row['alias']:<16} {row['task']:<6} {size:>8}{star}")
        if row["description"]:
            out.line(f"    {row['description']}")


@app.command()
def pull(spec: Annotated[list[str], typer.Argument(
        help="Catalog alias or owner/repo:file.gguf.", autocompletion=model_aliases)]
         ) -> None:
    """Download models (resumes an interrupted download, verifies size and checksum)."""
    out = Output()
    for one in spec:
        resolved = loader.pull(one, TerminalHooks(out))
        for path in resolved.files.values():
            out.line(str(path))


@app.command()
def rm(spec: Annotated[list[str], typer.Argument(
        help="Catalog alias or owner/repo:file.gguf.", autocompletion=model_aliases)]
       ) -> None:
    """Delete downloaded models from the cache."""
    out = Output()
    for one in spec:
        freed = store.remove(one)
        out.info(f"{one}: " + (f"freed {human_size(freed)}" if freed else "was not downloaded"))


@app.command()
def path(spec: Annotated[str, typer.Argument(
        help="Catalog alias or owner/repo:file.gguf.", autocompletion=model_aliases)],
         task: TaskOpt = None) -> None:
    """Print the local path of a downloaded model (for scripts)."""
    files, entry = store.remote_files(spec) if not store.is_local_path(spec) else ([], None)
    resolved = store.resolve(spec, task or (entry.task if entry else "text"))
    out = Output()
    for p in resolved.files.values():
        out.line(str(p))


@app.command()
def info(spec: Annotated[str, typer.Argument(
        help="Alias, owner/repo:file, or a local path.", autocompletion=model_aliases)],
         json_: options.JsonOpt = False) -> None:
    """What a model is: catalog data, files, and (for GGUF) its header."""
    out = Output()
    data: dict[str, object] = {"spec": spec}
    if store.is_local_path(spec):
        data["files"] = {"model": spec}
    else:
        files, entry = store.remote_files(spec)
        if entry:
            data.update(alias=entry.alias, task=entry.task, description=entry.description,
                        repo=entry.repo, license=entry.license, ram_mb=entry.ram_mb,
                        verified=entry.verified, source=entry.source, **entry.options)
        cached = store.cached_files(files)
        data["files"] = {f.role: {"name": f.name, "size": f.size, "sha256": f.sha256,
                                  "path": str(cached[f.role]) if cached[f.role] else None}
                         for f in files}
    _add_gguf_header(data)
    if json_:
        out.json(data)
        return
    for key, value in data.items():
        if key == "files" and isinstance(value, dict):
            out.line("files:")
            for role, file in value.items():
                out.line(f"  {role}: {_describe_file(file)}")
        else:
            out.line(f"{key}: {value}")


def _describe_file(file: object) -> str:
    """'name (size): path' for a Hub file, or the path of a local one."""
    if not isinstance(file, dict):
        return str(file)
    size = f" ({human_size(file['size'])})" if file.get("size") else ""
    return f"{file['name']}{size}: {file['path'] or 'not downloaded'}"


def _add_gguf_header(data: dict[str, object]) -> None:
    from offgrid.models.validate import read_gguf

    files = data.get("files")
    first = next(iter(files.values()), None) if isinstance(files, dict) else None
    path = first.get("path") if isinstance(first, dict) else first
    if isinstance(path, str) and path.endswith(".gguf"):
        from pathlib import Path

        header = read_gguf(Path(path))
        data["architecture"] = header.architecture
        data["context_length"] = header.arch_value("context_length")
        data["tensors"] = len(header.tensors)
        data["chat_template"] = "tokenizer.chat_template" in header.metadata


@app.command()
def search(text: Annotated[str, typer.Argument(help="Words to look for on Hugging Face.")],
           limit: Annotated[int, typer.Option(min=1, max=100, help="How many.")] = 20) -> None:
    """Find GGUF model repos on Hugging Face (needs the network)."""
    out = Output()
    for repo in hub.search_models(text, limit=limit):
        out.line(repo.id)


@app.command()
def files(repo: Annotated[str, typer.Argument(help="owner/repo on Hugging Face.")]) -> None:
    """List a Hugging Face repo's model files with sizes (needs the network)."""
    out = Output()
    for remote in hub.list_files(repo):
        size = human_size(remote.size) if remote.size else "?"
        out.line(f"{size:>9}  {repo}:{remote.name}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")

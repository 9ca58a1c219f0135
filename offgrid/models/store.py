"""The local model store: a --model spec -> local files; pull, list, remove, info.

A spec is a catalog alias (`qwen3-0.6b`), a Hub file (`owner/repo:file.gguf`) or a local path.
Models live in the standard Hugging Face cache. Resolving never touches the network: a model
that is not cached raises ModelNotCachedError naming the `offgrid models pull` line, and only
`pull` (or a download the user confirmed) goes online, through models.hub.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from offgrid import device
from offgrid.errors import ModelFileError, ModelNotCachedError, OffgridError, UsageError
from offgrid.models import catalog
from offgrid.models.catalog import CatalogEntry

MODEL_SUFFIXES = (".gguf", ".bin", ".safetensors", ".ckpt")

# (file name, bytes done, bytes total) -> None
DownloadProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class HubFile:
    """A file to fetch from the Hub for one role of a model."""

    role: str
    repo: str
    name: str
    revision: str = "main"
    size: int | None = None
    sha256: str | None = None


@dataclass
class ResolvedModel:
    """A model whose files are all on disk."""

    spec: str
    files: dict[str, Path]
    entry: CatalogEntry | None = None
    options: dict[str, object] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.files["model"]

    @property
    def name(self) -> str:
        return self.entry.alias if self.entry else self.spec

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files.values() if p.exists())


def is_local_path(spec: str) -> bool:
    """True when *spec* names a file on disk rather than an alias or Hub file."""
    if spec.startswith(("/", "./", "../", "~")) or os.path.exists(spec):
        return True
    return os.sep in spec and spec.lower().endswith(MODEL_SUFFIXES) and ":" not in spec


def remote_files(spec: str) -> tuple[list[HubFile], CatalogEntry | None]:
    """The Hub files a non-local spec stands for (and its catalog entry, if any)."""
    repo, sep, name = spec.partition(":")
    if sep:
        if repo.count("/") != 1 or not name:
            raise UsageError(f"bad model spec {spec!r}", hint="use owner/repo:file.gguf")
        return [HubFile("model", repo, name)], None
    entry = catalog.load().get(spec)
    if entry is None:
        raise UsageError(f"unknown model {spec!r}",
                         hint="see `offgrid models list`, or give a path or owner/repo:file.gguf")
    return [HubFile(f.role, entry.repo, f.name, entry.revision, f.size, f.sha256)
            for f in entry.files], entry


def default_spec(task: str) -> str:
    """The catalog default for *task* on this device."""
    return catalog.load().default_for(task).alias


def _local(spec: str) -> ResolvedModel:
    # Absolute, so the name saved in history still finds the file from another folder (-c).
    path = Path(os.path.abspath(Path(spec).expanduser()))
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file")
    return ResolvedModel(str(path), {"model": path})


def cached_files(files: list[HubFile]) -> dict[str, Path | None]:
    """role -> cached path (or None), with no network access."""
    from offgrid.models import hub  # imported when used: keeps `offgrid --help` quick

    return {f.role: hub.cached_file(f.repo, f.name, f.revision) for f in files}


def resolve(spec: str | None, task: str) -> ResolvedModel:
    """Local files for *spec* (default: the task's catalog default). Never downloads."""
    spec = spec or default_spec(task)
    if is_local_path(spec):
        return _local(spec)
    files, entry = remote_files(spec)
    if entry is not None and entry.task != task:
        raise UsageError(f"{entry.alias} is {_a(entry.task)} model, not {_a(task)} model",
                         hint=f"see `offgrid models list --task {task}`")
    found = cached_files(files)
    missing = [f for f in files if found[f.role] is None]
    if missing:
        size = sum(f.size or 0 for f in missing)
        raise ModelNotCachedError(
            f"model {spec} is not downloaded" + (f" ({human_size(size)})" if size else ""),
            hint=f"offgrid models pull {spec}")
    return ResolvedModel(spec, {r: p for r, p in found.items() if p}, entry,
                         dict(entry.options) if entry else {})


def _a(word: str) -> str:
    """'a text', 'an image'."""
    return ("an " if word[:1] in "aeiou" else "a ") + word


def pull(spec: str, progress: DownloadProgress | None = None) -> ResolvedModel:
    """Download every file of *spec* that is not cached yet (resumable, verified)."""
    if is_local_path(spec):
        return _local(spec)
    from offgrid.models import hub

    files, entry = remote_files(spec)
    found = cached_files(files)
    for f in files:
        if found[f.role] is not None:
            continue

        def report(done: int, total: int, name: str = f.name) -> None:
            if progress:
                progress(name, done, total)

        found[f.role] = hub.download(f.repo, f.name, revision=f.revision, size=f.size,
                                     sha256=f.sha256, progress=report)
    return ResolvedModel(spec, {r: p for r, p in found.items() if p}, entry,
                         dict(entry.options) if entry else {})


def remove(spec: str) -> int:
    """Delete a model's cached files; return the bytes freed."""
    if is_local_path(spec):
        raise UsageError("offgrid only removes models it downloaded",
                         hint=f"delete the file yourself: rm {spec}")
    from offgrid.models import hub

    files, _ = remote_files(spec)
    doomed: set[Path] = set()
    for path in cached_files(files).values():
        if path is not None:
            doomed |= {path, path.resolve()}
    # an interrupted download of a file whose checksum we know
    doomed |= {p for f in files if f.sha256 and (p := hub.partial_file(f.repo, f.sha256)).exists()}
    freed = 0
    for p in doomed:
        try:
            freed += p.stat().st_size if not p.is_symlink() else 0
            p.unlink()
        except FileNotFoundError:
            pass
    return freed


def list_catalog(task: str | None = None) -> list[dict[str, object]]:
    """Catalog entries with whether they are cached and their size on disk."""
    rows = []
    cat = catalog.load()
    defaults = {aliases[0] for aliases in cat.defaults.values() if aliases}
    for entry in cat.entries.values():
        if task and entry.task != task:
            continue
        files, _ = remote_files(entry.alias)
        found = cached_files(files)
        on_disk = sum(p.stat().st_size for p in found.values() if p and p.exists())
        rows.append({"alias": entry.alias, "task": entry.task, "description": entry.description,
                     "size": entry.size, "ram_mb": entry.ram_mb,
                     "cached": all(found.values()), "size_on_disk": on_disk,
                     "verified": entry.verified, "repo": entry.repo,
                     "default": entry.alias in defaults, "license": entry.license})
    return rows


def check_memory(size_bytes: int, extra_mb: int = 0, *, force: bool = False) -> None:
    """Refuse to load what will not fit in available memory, unless forced."""
    available = device.available_ram_mb()
    if force or available is None:
        return
    need = size_bytes // (1 << 20) + extra_mb
    if need > available:
        raise OffgridError(
            f"not enough memory: this model needs about {need} MB, {available} MB is available",
            hint="pick a smaller model (offgrid models list), lower --ctx, or pass --force")


def human_size(n: int | float) -> str:
    """1234567 -> '1.2 MB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# --- vision: a language model and its mmproj ---------------------------------------------------
def mmproj_beside(model_path: Path) -> list[Path]:
    """The `mmproj*.gguf` files in the model's folder (any case), sorted by name."""
    folder = model_path.expanduser().parent
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.lower().startswith("mmproj")
                  and p.name.lower().endswith(".gguf") and p != model_path)


def pair_mmproj(model: ResolvedModel, mmproj: str | None) -> ResolvedModel:
    """Give a vision model its projector: *mmproj* (a path) if given, else the catalog's file,
    else an `mmproj*.gguf` next to a local model file (the first that matches it)."""
    from offgrid.models.validate import check_text_model
    from offgrid.models.validate_vision import choose_mmproj

    files = dict(model.files)
    if mmproj:
        path = Path(mmproj).expanduser()
        if not path.is_file():
            raise ModelFileError(f"mmproj file not found: {mmproj}")
        files["mmproj"] = path
    elif "mmproj" not in files:
        check_text_model(model.path)  # an mmproj given as the model says so, not "no mmproj"
        candidates = mmproj_beside(model.path)
        if not candidates:
            raise ModelFileError(
                f"{model.path.name} has no vision projector (mmproj) beside it, so it cannot see "
                "images", hint="pass --mmproj FILE, or use a vision model: "
                               "offgrid models list --task vision")
        files["mmproj"] = choose_mmproj(model.path, candidates)
    return ResolvedModel(model.spec, files, model.entry, dict(model.options))

"""One way from a `--model` value to a running engine.

    open_text / open_vision / open_image(spec, options, hooks), or resolve() then load()
      resolve the spec to local files (models.store; never online)
      -> pull them if missing and allowed (--yes, config general.yes, or the user said yes)
      -> the task's adapter checks the files, before any engine sees them
      -> the memory check (the files' size plus the adapter's estimate of working memory)
      -> the adapter loads the engine, typed by the protocols in engines/base.py

Each task ("text", "vision", "speech", "image") has an adapter in the registry below. An
adapter owns its validation, its memory estimate and its speed settings; tests register fakes
with `register()` and every command then runs against them, unchanged. The loader never
prints: what the user should see goes through `LoadHooks`, which the command layer implements
(ui.loading) with its spinner, progress bar and download question.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from offgrid import config
from offgrid.errors import ModelNotCachedError, OffgridError, UsageError
from offgrid.models import store
from offgrid.models.store import DownloadProgress, ResolvedModel

if TYPE_CHECKING:
    from offgrid.engines.base import ImageEngine, ImageParams, TextEngine, VisionEngine

TASKS = ("text", "vision", "speech", "image")


@dataclass
class EngineOptions:
    """How to load one engine: the merged flags and config of one run (None: the default)."""

    ctx: int | None = None
    threads: int | None = None
    seed: int | None = None
    flash_attn: bool | None = None
    kv_cache: str | None = None
    batch: int | None = None
    mmproj: str | None = None  # vision: --mmproj, the projector for any model
    mmproj_for_paths: str | None = None  # vision: --mmproj or config, for a model file path
    yes: bool = False  # download a missing model without asking
    force: bool = False  # load even if it looks too big for the memory available
    server: str | None = None  # an OpenAI-compatible server runs the model (engines/remote)
    api_key: str | None = None  # for the server
    timeout: float | None = None  # seconds the server may stay silent

    @classmethod
    def from_choices(cls, chosen: dict[str, Any], *, yes: bool = False, force: bool = False,
                     mmproj: str | None = None, server: str | None = None,
                     api_key: str | None = None) -> EngineOptions:
        """The options from config.settings()' merged flags and config values; *mmproj* is
        the --mmproj flag alone (config's see.mmproj applies to model paths only); *server*
        and *api_key* the --server and --api-key flags (else config general.server and
        OFFGRID_API_KEY)."""
        known = {name: chosen.get(name) for name in
                 ("ctx", "threads", "seed", "flash_attn", "kv_cache", "batch")}
        return cls(**known, mmproj=mmproj, mmproj_for_paths=chosen.get("mmproj"), yes=yes,
                   force=force, server=server, api_key=api_key)


class LoadHooks:
    """What the loader shows and asks while it works. The defaults show nothing and never
    download without `yes`: what a script or a test gets."""

    def confirm_download(self, message: str) -> bool:
        """Ask whether to download a missing model (*message* says which and how big)."""
        return False

    @contextmanager
    def downloading(self, spec: str) -> Iterator[DownloadProgress]:
        """Around a download: yields the per-file progress callback."""
        yield lambda name, done, total: None

    @contextmanager
    def loading(self, what: str) -> Iterator[None]:
        """Around loading an engine (*what*: the model's name)."""
        yield

    def notice(self, message: str) -> None:
        """Something the user should know, such as an option lowered to what the model allows."""


@dataclass
class Checked:
    """An adapter's verdict on a model's files: what to load and what it will cost."""

    model: ResolvedModel
    extra_mb: int  # working memory beyond the files' size
    label: str  # "qwen3-1.7b", "gemma-3-4b and its vision projector"
    details: dict[str, Any] = field(default_factory=dict)  # what the adapter found (GGUF info, …)
    notes: list[str] = field(default_factory=list)  # for the user: an option that was adjusted


class Adapter(Protocol):
    """How one task's engine is checked and loaded."""

    def check(self, model: ResolvedModel, options: EngineOptions) -> Checked:
        """Validate the files (no engine sees a bad one) and estimate working memory."""
        ...

    def load(self, checked: Checked, options: EngineOptions) -> Any:
        """Load the engine; raise OffgridError (never crash) on what the files do not allow."""
        ...


# task -> an adapter, or "module:attribute" naming one (imported when first used)
_ADAPTERS: dict[str, Any] = {
    "text": "offgrid.engines.llama:TextAdapter",
    "vision": "offgrid.engines.llama_vision:VisionAdapter",
    "speech": "offgrid.engines.whisper:SpeechAdapter",
    "image": "offgrid.engines.sd:ImageAdapter",
}


def register(task: str, adapter: Any) -> Any:
    """Put *adapter* behind *task* (tests: a fake engine); returns the one it replaces."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    previous, _ADAPTERS[task] = _ADAPTERS[task], adapter
    return previous


def adapter_for(task: str) -> Adapter:
    adapter = _ADAPTERS[task]
    if isinstance(adapter, str):
        module, _, name = adapter.partition(":")
        adapter = _ADAPTERS[task] = getattr(importlib.import_module(module), name)()
    return adapter


def resolve(spec: str | None, task: str, options: EngineOptions,
            hooks: LoadHooks | None = None) -> ResolvedModel:
    """Local files for *spec* (default: the task's catalog default). A model that is not
    cached is downloaded with --yes (or config general.yes) or when the user agrees; offline
    (HF_HUB_OFFLINE) it stays an error naming the `offgrid models pull` line."""
    hooks = hooks or LoadHooks()
    try:
        return store.resolve(spec, task)
    except ModelNotCachedError as exc:
        if _offline():
            raise
        yes = options.yes or config.load().get("general.yes") is True
        if not yes and not hooks.confirm_download(
                f"{exc.message[:1].upper()}{exc.message[1:]}. Download it now?"):
            raise
        return pull(spec or store.default_spec(task), hooks)


def pull(spec: str, hooks: LoadHooks | None = None) -> ResolvedModel:
    """Download every missing file of *spec*, reporting progress through *hooks*."""
    with (hooks or LoadHooks()).downloading(spec) as progress:
        return store.pull(spec, progress)


def open_engine(task: str, spec: str | None, options: EngineOptions,
                hooks: LoadHooks | None = None) -> Any:
    """Resolve, pull if allowed, check, and load the engine for *task*; with a server
    (--server, or config general.server unless *spec* is a local file) the server's model."""
    server = remote_options(spec, options)
    if server is not None:
        from offgrid.engines import remote

        with (hooks or LoadHooks()).loading(f"{spec or 'the model'} on {server.server}"):
            return remote.open_remote(task, spec, server)
    return load(task, resolve(spec, task, options, hooks), options, hooks)


def remote_options(spec: str | None, options: EngineOptions) -> EngineOptions | None:
    """*options* completed for a server (URL, key, timeout), or None to run on this device."""
    conf = config.load()
    server = options.server
    if server is None and not (spec and store.is_local_path(spec)):
        server = conf.get("general.server")
    if not server:
        return None
    key = options.api_key or os.environ.get("OFFGRID_API_KEY") or None
    timeout = options.timeout or conf.get("general.server_timeout")
    return replace(options, server=server, api_key=key, timeout=timeout)


def load(task: str, model: ResolvedModel, options: EngineOptions,
         hooks: LoadHooks | None = None) -> Any:
    """Check and load an engine for files already on disk."""
    hooks = hooks or LoadHooks()
    adapter = adapter_for(task)
    checked = adapter.check(model, options)
    for note in checked.notes:
        hooks.notice(note)
    store.check_memory(checked.model.size, checked.extra_mb, force=options.force)
    with hooks.loading(checked.label):
        try:
            return adapter.load(checked, options)
        except MemoryError:
            raise OffgridError("not enough memory to load the model",
                               hint="pick a smaller model or lower --ctx") from None


def open_text(spec: str | None, options: EngineOptions,
              hooks: LoadHooks | None = None) -> TextEngine:
    """A TextEngine."""
    return open_engine("text", spec, options, hooks)


def open_vision(spec: str | None, options: EngineOptions,
                hooks: LoadHooks | None = None) -> VisionEngine:
    """A VisionEngine: the model and its projector, checked as a pair."""
    return open_engine("vision", spec, options, hooks)


# component role -> its flag, named like stable-diffusion.cpp's own CLI
COMPONENT_FLAGS = {
    "diffusion_model": "--diffusion-model", "clip_l": "--clip-l", "clip_g": "--clip-g",
    "t5xxl": "--t5xxl", "llm": "--llm", "vae": "--vae", "taesd": "--taesd",
}


def open_image(spec: str | None, options: EngineOptions, hooks: LoadHooks | None = None, *,
               configured: str | None = None, components: dict[str, str] | None = None,
               previous: ImageParams | None = None) -> ImageEngine:
    """An ImageEngine. Its files (role -> file): --model and the component flags
    (*components*: role -> a file or a catalog alias) > the earlier PNG's model (*previous*,
    with --from-png) > config imagine.model (*configured*) > the catalog default."""
    components = components or {}
    files: dict[str, Path] = {}
    replaces_generator = "diffusion_model" in components
    if spec is None and previous is not None and not replaces_generator:
        spec = previous.model
        if spec is None:
            files = {role: Path(path) for role, path in previous.files.items()}
    if spec is None and not files and not replaces_generator:
        spec = configured
    entry = None
    if spec is not None or not (files or components):
        resolved = resolve(spec, "image", options, hooks)
        entry = resolved.entry
        extras = previous.files if previous is not None and spec == previous.model else {}
        files = {**{role: Path(p) for role, p in extras.items()}, **resolved.files}
    for role, value in components.items():
        files[role] = _component_file(role, value, options, hooks)
    name = entry.alias if entry else ", ".join(sorted(str(p) for p in files.values()))
    return load("image", ResolvedModel(name, files, entry), options, hooks)


def _component_file(role: str, value: str, options: EngineOptions, hooks: LoadHooks | None) -> Path:
    """A component flag's value: a local file, or a catalog alias that has a file for the role."""
    if store.is_local_path(value):
        return Path(value).expanduser()
    resolved = resolve(value, "image", options, hooks)
    if role not in resolved.files:
        raise UsageError(f"{value} has no {role} file for {COMPONENT_FLAGS[role]}")
    return resolved.files[role]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")

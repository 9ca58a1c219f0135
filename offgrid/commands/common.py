"""Options and steps that several commands share: model resolution with the first-use
download prompt, engine loading, generation settings."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

import typer

from offgrid import completion, config, device
from offgrid.errors import InputError, ModelNotCachedError, OffgridError, UsageError
from offgrid.models import store
from offgrid.models.store import ResolvedModel
from offgrid.output import Output, stdin_is_tty

# --- shared option declarations -------------------------------------------------------------
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Catalog alias, owner/repo:file.gguf, or a local file path.",
    autocompletion=completion.model_aliases)]
CtxOpt = Annotated[Optional[int], typer.Option(
    "--ctx", min=256, help="Context window in tokens (default: the model's catalog value).")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", "-t", min=1, help="CPU threads (default: one per performance core).")]
MaxTokensOpt = Annotated[Optional[int], typer.Option(
    "--max-tokens", "-n", min=1, help="Stop after this many generated tokens.")]
TemperatureOpt = Annotated[Optional[float], typer.Option(
    "--temperature", min=0.0, max=5.0, help="Sampling temperature (0 = deterministic).")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed, for repeatable output.")]
StatsOpt = Annotated[bool, typer.Option("--stats", help="Print speed and token counts to stderr.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Download a missing model without asking.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Load even if the model looks too big "
                                                     "for available memory.")]
ForceOutputOpt = Annotated[bool, typer.Option(
    "--force", help="Replace an existing output file; load even if the model looks too big "
                    "for available memory.")]
PlainOpt = Annotated[bool, typer.Option("--plain", help="Plain text even on a terminal.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
NoSaveOpt = Annotated[bool, typer.Option("--no-save", help="Keep nothing on disk.")]
FlashAttnOpt = Annotated[Optional[bool], typer.Option(
    "--flash-attn/--no-flash-attn", help="Flash attention (default: off; on with a quantized "
    "KV cache).", show_default=False)]
KvCacheOpt = Annotated[Optional[str], typer.Option(
    "--kv-cache", help="KV-cache type: f16, q8_0 or q4_0 (smaller, needs flash attention).",
    show_default=False)]
BatchOpt = Annotated[Optional[int], typer.Option(
    "--batch", min=1, help="Prompt tokens evaluated per step (default: 128).",
    show_default=False)]

DEFAULT_CTX = 4096
KV_BYTES = {"f16": 2, "q8_0": 1, "q4_0": 1}  # per value, rounded up (q4_0: 0.56)


def download(out: Output, spec: str) -> ResolvedModel:
    """Pull *spec* with one progress bar per file on stderr."""
    bars: dict[str, Any] = {}
    with out.progress("downloading", unit="bytes") as bar:
        def progress(name: str, done: int, total: int) -> None:
            if name not in bars:
                bars[name] = True
                bar.update(completed=0, total=total or None, description=name)
            bar.update(completed=done, total=total or None)

        try:
            return store.pull(spec, progress)
        except KeyboardInterrupt:
            out.info(f"download stopped; `offgrid models pull {spec}` resumes it")
            raise


def resolve_model(out: Output, spec: str | None, task: str, *, yes: bool = False) -> ResolvedModel:
    """Local files for the model; on first use, ask (terminal) or obey --yes (or config
    general.yes) to download it."""
    try:
        return store.resolve(spec, task)
    except ModelNotCachedError as exc:
        yes = yes or config.load().get("general.yes") is True
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        interactive = stdin_is_tty() and out.err_tty
        if offline or not (yes or interactive):
            raise
        if not yes and not out.confirm(f"{exc.message[:1].upper()}{exc.message[1:]}. "
                                       "Download it now?"):
            raise
        return download(out, spec or store.default_spec(task))


def threads(value: int | None) -> int:
    return value or device.default_threads()


def read_stdin_text() -> str:
    """All of stdin as text (UTF-8, never failing on a stray byte)."""
    data = sys.stdin.buffer.read()
    return data.decode("utf-8", errors="replace")


def check_range(name: str, value: float | None, low: float, high: float | None = None) -> None:
    """Reject an option value out of range as a usage error (exit 2)."""
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise UsageError(f"{name} must be {bound}, not {value}")


def load_text_engine(out: Output, model: ResolvedModel, *, ctx: int | None,
                     n_threads: int | None, seed: int | None, force: bool,
                     flash_attn: bool | None = None, kv_cache: str | None = None,
                     batch: int | None = None) -> Any:
    """Validate, check memory, and load a GGUF language model with a spinner on stderr.

    flash_attn, kv_cache and batch are the speed options; None means the measured default.
    """
    from offgrid.engines.llama import LlamaEngine, speed_settings
    from offgrid.models.validate import check_text_model

    speed = speed_settings(flash_attn, kv_cache, batch)
    info = check_text_model(model.path)
    n_ctx = context_size(model, ctx)
    kv_mb = kv_cache_mb(info, n_ctx) * KV_BYTES[speed["kv_cache"]] // 2
    store.check_memory(model.size, kv_mb + 100, force=force)
    with loading(out, model.name):
        return LlamaEngine(model.path, n_ctx=n_ctx, n_threads=threads(n_threads), seed=seed,
                           chat_format=model.options.get("chat_format"),  # type: ignore[arg-type]
                           info=info, model_name=model.name, **speed)


def load_vision_engine(out: Output, model: ResolvedModel, *, ctx: int | None,
                       n_threads: int | None, seed: int | None, force: bool,
                       flash_attn: bool | None = None, kv_cache: str | None = None,
                       batch: int | None = None) -> Any:
    """Validate the model and its mmproj as a pair, check memory, load both with a spinner
    (speed options as in load_text_engine)."""
    from offgrid.engines.llama import speed_settings
    from offgrid.engines.llama_vision import LlamaVisionEngine
    from offgrid.models.validate_vision import check_vision_files

    speed = speed_settings(flash_attn, kv_cache, batch)

    info, _ = check_vision_files(model.path, model.files["mmproj"])
    n_ctx = context_size(model, ctx)
    store.check_memory(model.size, kv_cache_mb(info, n_ctx) + 300, force=force)
    with loading(out, f"{model.name} and its vision projector"):
        return LlamaVisionEngine(model.path, model.files["mmproj"], n_ctx=n_ctx,
                                 n_threads=threads(n_threads), seed=seed,
                                 chat_format=model.options.get("chat_format"),  # type: ignore[arg-type]
                                 info=info, model_name=model.name, **speed)


def context_size(model: ResolvedModel, ctx: int | None) -> int:
    """--ctx, else the catalog's value for the model, else DEFAULT_CTX."""
    return ctx or (model.entry.ctx if model.entry and model.entry.ctx else DEFAULT_CTX)


@contextmanager
def loading(out: Output, what: str) -> Iterator[None]:
    """A spinner while a model loads; running out of memory becomes one clear error."""
    with out.status(f"loading {what}"):
        try:
            yield
        except MemoryError:
            raise OffgridError("not enough memory to load the model",
                               hint="pick a smaller model or lower --ctx") from None


def kv_cache_mb(info: Any, n_ctx: int) -> int:
    """Estimated f16 KV-cache size for *n_ctx* tokens, from the GGUF hyper-parameters."""
    trained = info.arch_value("context_length")
    if isinstance(trained, int) and trained > 0:
        n_ctx = min(n_ctx, trained)  # the engine never allocates more than the model knows
    layers = info.arch_value("block_count", 0) or 0
    embd = info.arch_value("embedding_length", 0) or 0
    heads = info.arch_value("attention.head_count", 1) or 1
    kv_heads = info.arch_value("attention.head_count_kv", heads) or heads
    if isinstance(heads, list) or isinstance(kv_heads, list):
        return 0
    kv_width = embd * kv_heads // max(heads, 1)
    return 2 * layers * n_ctx * kv_width * 2 // (1 << 20)


# --- phone integration: clipboard, notifications, wake lock (offgrid.termux) -----------------
CopyOpt = Annotated[bool, typer.Option("--copy", help="Also put the answer on the clipboard.")]
NotifyOpt = Annotated[Optional[bool], typer.Option(
    "--notify/--no-notify", show_default=False,
    help="Send a notification when a job that took over a minute ends (default: config "
         "general.notify).")]
ClipboardOpt = Annotated[bool, typer.Option("--clipboard",
                                            help="Use the clipboard's text as input.")]

NOTIFY_AFTER_SECONDS = 60.0


def clipboard_text() -> str:
    """The clipboard's text for --clipboard; an empty clipboard is an input error."""
    from offgrid import termux

    text = termux.clipboard_get()
    if not text.strip():
        raise InputError("the clipboard is empty")
    return text


def deliver(out: Output, text: str, *, copy: bool = False, write: bool = False) -> None:
    """Hand the finished answer over: print it (*write*; streamed answers are already out)
    and, with --copy, put it on the clipboard."""
    if write:
        out.write(text if text.endswith("\n") else text + "\n")
    if copy:
        from offgrid import termux

        termux.clipboard_set(text)
        out.info("copied to the clipboard")


@dataclass
class Job:
    """What `long_job` yields: set `.done` to the notification text (default: "finished")."""

    title: str
    done: str = "finished"
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@contextmanager
def long_job(out: Output, *, notify: bool | None = None, title: str = "offgrid") -> Iterator[Job]:
    """Hold the wake lock (Termux) for a long job and, when it took over a minute and
    notifications are on (--notify, or config general.notify), notify at the end, also
    when it failed. A notification that cannot be sent is a warning, never an error."""
    from offgrid import termux

    if notify is None:
        notify = bool(config.load().get("general.notify", False))
    job = Job(title)
    outcome = "failed"
    with termux.wake_lock():
        try:
            yield job
            outcome = job.done
        except KeyboardInterrupt:
            outcome = "stopped"
            raise
        finally:
            if notify and job.elapsed > NOTIFY_AFTER_SECONDS:
                try:
                    termux.notify(title, f"{outcome} after {_duration(job.elapsed)}")
                except OffgridError as exc:
                    out.warn(f"no notification: {exc.message}")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"

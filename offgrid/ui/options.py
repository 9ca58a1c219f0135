"""The option declarations the commands share, so a flag reads and behaves the same in every
command (`--model`, `--ctx`, `--json`, `--force`, …)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from offgrid.ui import completion

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

ServerOpt = Annotated[Optional[str], typer.Option(
    "--server", help="Run the model on an OpenAI-compatible server (llama-server, Ollama, "
    "offgrid serve), e.g. http://192.168.1.20:8080/v1 (default: config general.server).",
    show_default=False)]
ApiKeyOpt = Annotated[Optional[str], typer.Option(
    "--api-key", help="The server's API key (default: $OFFGRID_API_KEY).", show_default=False)]

# phone integration (ui.phone)
CopyOpt = Annotated[bool, typer.Option("--copy", help="Also put the answer on the clipboard.")]
NotifyOpt = Annotated[Optional[bool], typer.Option(
    "--notify/--no-notify", show_default=False,
    help="Send a notification when a job that took over a minute ends (default: config "
         "general.notify).")]
ClipboardOpt = Annotated[bool, typer.Option("--clipboard",
                                            help="Use the clipboard's text as input.")]

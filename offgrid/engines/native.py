"""Lazy imports of the native bindings, with the exact pip line when one is missing,
and the native libraries' log chatter kept off the terminal unless --debug."""

from __future__ import annotations

import collections
import importlib
import os
import sys
from types import ModuleType

from offgrid.errors import EngineMissingError

# extra name, pip package, import name
ENGINES: dict[str, tuple[str, str, str]] = {
    "llama": ("chat", "llama-cpp-python", "llama_cpp"),
    "sd": ("imagine", "stable-diffusion-cpp-python", "stable_diffusion_cpp"),
    "whisper": ("transcribe", "pywhispercpp", "pywhispercpp"),
}

_debug = False
# The last native log lines, kept for error messages (a crash or load failure says why).
native_log: collections.deque[str] = collections.deque(maxlen=40)


def set_debug(enabled: bool) -> None:
    """Let native logs through to stderr (--debug)."""
    global _debug
    _debug = enabled


def debug_enabled() -> bool:
    return _debug or os.environ.get("OFFGRID_DEBUG", "") not in ("", "0")


def record_log(text: str) -> None:
    """Keep a native log line; echo it to stderr under --debug."""
    text = text.rstrip("\n")
    if text:
        native_log.append(text)
    if debug_enabled():
        sys.stderr.write(text + "\n")


def last_native_error(default: str = "") -> str:
    """The most recent native log line that looks like an error, for a one-line message."""
    for line in reversed(native_log):
        lowered = line.lower()
        if "error" in lowered or "failed" in lowered or "invalid" in lowered:
            return line.strip()
    return default


def import_engine(key: str) -> ModuleType:
    """Import a native binding, or raise EngineMissingError with the pip line that fixes it."""
    extra, package, module = ENGINES[key]
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")  # no gdb backtraces on stdout
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EngineMissingError(
            f"the {package} engine is not installed ({exc})",
            hint=f"pip install 'offgrid[{extra}]'   (or: pip install {package})") from None


def engine_version(key: str) -> str | None:
    """Installed version of a binding, without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(ENGINES[key][1])
    except PackageNotFoundError:
        return None

"""config.toml and the precedence rule: flags > config > catalog defaults > built-ins.

Keys are `section.name` (`chat.model`, `chat.temperature`, `history.enabled`). Every key a
user may set is declared in SCHEMA with its type, so `config set` rejects typos and bad values.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from offgrid.device import paths
from offgrid.errors import OffgridError, UsageError

_GENERATION = {"model": str, "temperature": float, "top_p": float, "top_k": int,
               "min_p": float, "repeat_penalty": float, "max_tokens": int, "ctx": int,
               "threads": int, "seed": int,
               "flash_attn": bool, "kv_cache": str, "batch": int}  # speed (engines/llama.py)

SCHEMA: dict[str, type] = {
    **{f"chat.{k}": t for k, t in _GENERATION.items()},
    "chat.system": str,
    "chat.think": bool,
    **{f"summarize.{k}": t for k, t in _GENERATION.items()},
    "summarize.role": str,
    "summarize.lang": str,
    **{f"see.{k}": t for k, t in _GENERATION.items()},
    "see.mmproj": str,
    "see.max_side": int,
    "imagine.model": str,
    "imagine.steps": int,
    "imagine.cfg_scale": float,
    "imagine.sampler": str,
    "imagine.threads": int,
    "transcribe.model": str,
    "transcribe.language": str,
    "transcribe.threads": int,
    "transcribe.format": str,
    "history.enabled": bool,
    "general.notify": bool,
    "general.yes": bool,
    "general.server": str,
    "general.server_timeout": float,
}

# The bounds the matching command-line options enforce (key suffix: (low, high or None)).
RANGES: dict[str, tuple[float, float | None]] = {
    "temperature": (0.0, 5.0), "top_p": (0.0, 1.0), "min_p": (0.0, 1.0), "top_k": (0, None),
    "repeat_penalty": (0.0, None), "max_tokens": (1, None), "ctx": (256, None),
    "threads": (1, None), "batch": (1, None), "max_side": (64, None), "steps": (1, None),
    "cfg_scale": (0.0, None), "server_timeout": (0.0, None)}
ABOVE_LOW = {"cfg_scale", "server_timeout"}  # bounds the value must exceed, not just reach


def check_range(key: str, value: Any) -> None:
    """A value a flag would refuse is refused in the config too (it failed deep in the engine)."""
    low, high = RANGES.get(key.rpartition(".")[2], (None, None))
    if low is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    name = key.rpartition(".")[2]
    too_low = value <= low if name in ABOVE_LOW else value < low
    if too_low or (high is not None and value > high):
        bound = (f"between {low} and {high}" if high is not None else
                 f"greater than {low:g}" if name in ABOVE_LOW else f"at least {low}")
        raise UsageError(f"{key} must be {bound}, not {value}")


def load(path: Path | None = None, *, check_types: bool = True) -> dict[str, Any]:
    """The config as a flat {"section.key": value} dict; {} when there is no file. A known key
    with a value of the wrong type (a hand edit) is an error unless *check_types* is off
    (`config set`/`unset` must still be able to repair it)."""
    path = path or paths.config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise OffgridError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OffgridError(f"config file {path} is malformed: {exc}",
                           hint=f"fix it or delete it: rm {path}") from None
    flat: dict[str, Any] = {}
    for section, values in data.items():
        if isinstance(values, dict):
            for key, value in values.items():
                flat[f"{section}.{key}"] = value
        else:
            flat[section] = values
    if check_types:
        for key, value in flat.items():
            _check_type(path, key, value)
    return flat


def _check_type(path: Path, key: str, value: Any) -> None:
    kind = SCHEMA.get(key)
    if kind is None:
        return  # unknown keys are ignored
    ok = isinstance(value, bool) if kind is bool else (
        isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
        else isinstance(value, kind) and not isinstance(value, bool))
    if not ok:
        raise OffgridError(f"config file {path}: {key} must be {kind.__name__}, not {value!r}",
                           hint=f"offgrid config set {key} VALUE   (or: offgrid config unset {key})")


def parse_value(key: str, text: str) -> Any:
    """Turn the text of `config set KEY VALUE` into the key's declared type."""
    if key not in SCHEMA:
        known = ", ".join(sorted(SCHEMA))
        raise UsageError(f"unknown config key {key!r}", hint=f"known keys: {known}")
    kind = SCHEMA[key]
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise UsageError(f"{key} must be true or false, not {text!r}")
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{key} must be {kind.__name__}, not {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise UsageError(f"{key} must be a finite number, not {text!r}")
    check_range(key, value)
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # JSON's escapes (\n, \r, \u001b…) are TOML's too; TOML also forbids a raw DEL
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def dumps(flat: dict[str, Any]) -> str:
    """Serialise a flat config dict back to TOML, one table per section."""
    sections: dict[str, dict[str, Any]] = {}
    for full_key, value in sorted(flat.items()):
        section, _, key = full_key.partition(".")
        sections.setdefault(section, {})[key] = value
    blocks = []
    for section, values in sections.items():
        lines = [f"[{section}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def save(flat: dict[str, Any], path: Path | None = None) -> Path:
    """Write the config atomically, owner-only."""
    path = path or paths.config_file()
    paths.private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(dumps(flat))
    os.replace(tmp, path)
    return path


def set_value(key: str, text: str) -> Any:
    """`config set`: validate, store and return the typed value."""
    value = parse_value(key, text)
    flat = load(check_types=False)
    flat[key] = value
    save(flat)
    return value


def unset_value(key: str) -> bool:
    """`config unset`: remove a key; True if it was set."""
    flat = load(check_types=False)
    if key not in flat:
        return False
    del flat[key]
    save(flat)
    return True


def settings(section: str, flags: dict[str, Any], defaults: dict[str, Any] | None = None,
             config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge settings for one command: flags (not None) > config > defaults."""
    config = load() if config is None else config
    merged = dict(defaults or {})
    prefix = section + "."
    for key, value in config.items():
        if key.startswith(prefix):
            if flags.get(key[len(prefix):]) is None:
                try:
                    check_range(key, value)  # a hand-edited config.toml
                except UsageError as exc:
                    raise UsageError(exc.message, hint=f"offgrid config set {key} VALUE   "
                                     f"(or: offgrid config unset {key})") from None
            merged[key[len(prefix):]] = value
    merged.update({k: v for k, v in flags.items() if v is not None})
    return merged

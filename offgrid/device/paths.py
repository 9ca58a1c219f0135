"""Where offgrid keeps its files, computed at call time so tests can move them.

`OFFGRID_HOME` puts everything (config, data, logs) in one folder; otherwise the XDG base
directories are used. Models live in the standard Hugging Face cache (`HF_HOME`,
`HF_HUB_CACHE`), never in a second cache of our own.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "offgrid"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def home() -> Path | None:
    """OFFGRID_HOME when set, else None."""
    value = os.environ.get("OFFGRID_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Folder of config.toml and user role presets."""
    root = home()
    return root if root else _xdg("XDG_CONFIG_HOME", ".config") / APP


def data_dir() -> Path:
    """Folder of the history database and input history."""
    root = home()
    return root if root else _xdg("XDG_DATA_HOME", ".local/share") / APP


def config_file() -> Path:
    return config_dir() / "config.toml"


def history_db() -> Path:
    return data_dir() / "history.sqlite3"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, honouring HF_HUB_CACHE and HF_HOME."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME")
    if hf_home:
        return Path(hf_home).expanduser() / "hub"
    return _xdg("XDG_CACHE_HOME", ".cache") / "huggingface" / "hub"


def private_dir(path: Path) -> Path:
    """Create *path* (and parents) readable by the owner only; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        path.chmod(0o700)
    except OSError:
        pass
    return path

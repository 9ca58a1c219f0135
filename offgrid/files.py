"""Writing result files safely: never overwrite silently, never leave half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from offgrid.errors import InputError, UsageError


def check_output(path: Path, force: bool) -> None:
    """Fail before any work when *path* exists (without --force) or cannot be written."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists",
                         hint="add --force to replace it, or choose another name")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"cannot write {path}: {parent} is not a folder")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {path}: the folder {parent} is not writable")


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Write via a temporary file and rename: a failed or interrupted run leaves no
    half-written file. *private* makes it owner-only (0600)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o600 if private else 0o666 & ~umask)  # as open() would have made it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

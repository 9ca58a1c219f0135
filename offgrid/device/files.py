"""Writing result files safely: never overwrite silently, never leave half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

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


@contextmanager
def atomic_file(path: Path, *, private: bool = False) -> Iterator[TextIO]:
    """A text file to stream into; it replaces *path* only when the block succeeds, so a
    failed or interrupted run leaves no half-written file. *private*: owner-only (0600)."""
    path = Path(path)
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="\n",
                                             dir=path.parent, prefix=f".{path.name}.",
                                             delete=False)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with handle:
            yield handle
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o600 if private else 0o666 & ~umask)  # as `>` would make it
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Write *data* whole or not at all (see atomic_file)."""
    with atomic_file(path, private=private) as handle:
        if isinstance(data, bytes):
            handle.flush()
            handle.buffer.write(data)
        else:
            handle.write(data)


@contextmanager
def output_stream(output: Path | None) -> Iterator[TextIO | None]:
    """None (meaning stdout) without *output*; else a file that replaces *output* only when
    the block succeeds (atomic_file)."""
    if output is None:
        yield None
        return
    with atomic_file(output) as handle:
        yield handle

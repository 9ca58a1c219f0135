"""Shared assertions and small inputs for the in-process CLI tests in tests/fast."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

from offgrid.history import History


def one_line_error(result: subprocess.CompletedProcess, text: str, code: int = 1) -> None:
    """The product rule for bad input: exit *code*, nothing on stdout, one
    `offgrid: error: …` line holding *text* and at most one `hint: …` line, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("offgrid: error: "), result.stderr
    assert text in lines[0], result.stderr
    assert len(lines) <= 2, result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr


def hint(result: subprocess.CompletedProcess) -> str | None:
    """The `hint:` line's text, if there is one."""
    lines = result.stderr.splitlines()
    return lines[1][len("hint: "):] if len(lines) > 1 and lines[1].startswith("hint: ") else None


def saved(command: str | None = None) -> list[Any]:
    """Every history entry (newest first), with its messages."""
    history = History()
    return [history.get(r.id) for r in history.list(command=command, limit=1000)]


def png_bytes(colour: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (48, 32)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: Path, colour: tuple[int, int, int] = (255, 0, 0),
              size: tuple[int, int] = (48, 32)) -> Path:
    path.write_bytes(png_bytes(colour, size))
    return path


def files_in(folder: Path) -> list[str]:
    """Names in *folder*, hidden ones (temporary files) included, sorted."""
    return sorted(p.name for p in folder.iterdir())

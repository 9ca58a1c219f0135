"""Cheap structural checks of safetensors files before a native engine opens them.

stable-diffusion.cpp trusts a safetensors header: offsets past the end of a truncated file are
read anyway, and a garbage header leaves the engine with a null context that later segfaults.
So every file is checked here first: the header parses, every dtype is known, every tensor's
byte range matches its shape and lies inside the file, and the ranges tile the data section
exactly (no gaps, no overlap, no missing or trailing bytes). Reading the header only, it costs
milliseconds even for multi-gigabyte files.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from offgrid.errors import ModelFileError

# bytes per element, from the safetensors format description
SAFETENSORS_DTYPE_SIZES: dict[str, float] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
    "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}
HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100 * 1024 * 1024  # same cap as the reference implementation


def check_safetensors_file(path: str | Path) -> dict[str, Any]:
    """Validate a safetensors file's header against its size; return a summary.

    Returns {"format", "path", "file_size", "data_size", "tensor_count", "dtypes" (dtype -> count),
    "tensors" (name -> {"dtype", "shape"}), "metadata"}. Raises ModelFileError with a one-line
    reason when the file cannot be a complete, well-formed safetensors file.
    """
    path = Path(path)
    file_size = _file_size(path)
    header_size, header = _read_header(path, file_size)
    data_size = file_size - HEADER_LENGTH_BYTES - header_size

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise _bad(path, "__metadata__ is not a JSON object")

    tensors: dict[str, dict[str, Any]] = {}
    dtypes: dict[str, int] = {}
    extents: list[tuple[int, int, str]] = []
    for name, info in header.items():
        dtype, shape, begin, end = _tensor_entry(path, name, info)
        tensors[name] = {"dtype": dtype, "shape": shape}
        dtypes[dtype] = dtypes.get(dtype, 0) + 1
        extents.append((begin, end, name))

    _check_extents(path, extents, data_size)
    return {
        "format": "safetensors",
        "path": str(path),
        "file_size": file_size,
        "data_size": data_size,
        "tensor_count": len(tensors),
        "dtypes": dtypes,
        "tensors": tensors,
        "metadata": metadata,
    }


def _bad(path: Path, reason: str) -> ModelFileError:
    return ModelFileError(
        f"{path.name}: not a usable safetensors file: {reason}",
        hint="the file is damaged or incomplete: download it again",
    )


def _file_size(path: Path) -> int:
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size < HEADER_LENGTH_BYTES + 2:
        raise _bad(path, f"only {size} bytes long")
    return size


def _read_header(path: Path, file_size: int) -> tuple[int, dict[str, Any]]:
    with open(path, "rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(HEADER_LENGTH_BYTES))
        if header_size < 2 or header_size > MAX_HEADER_BYTES:
            raise _bad(path, f"implausible header length {header_size}")
        if HEADER_LENGTH_BYTES + header_size > file_size:
            raise _bad(path, f"header of {header_size} bytes runs past the end of the {file_size}-byte file")
        raw = f.read(header_size)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"header is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise _bad(path, "header is not a JSON object")
    return header_size, header


def _tensor_entry(path: Path, name: str, info: Any) -> tuple[str, list[int], int, int]:
    if not isinstance(info, dict):
        raise _bad(path, f"entry for tensor '{name}' is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in SAFETENSORS_DTYPE_SIZES:
        raise _bad(path, f"tensor '{name}' has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise _bad(path, f"tensor '{name}' has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise _bad(path, f"tensor '{name}' has invalid data_offsets {offsets!r}")
    begin, end = offsets
    expected = math.prod(shape) * SAFETENSORS_DTYPE_SIZES[dtype]
    if end < begin or end - begin != expected:
        raise _bad(path, f"tensor '{name}' spans {end - begin} bytes but {dtype}{shape} needs {expected:g}")
    return dtype, shape, begin, end


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_extents(path: Path, extents: list[tuple[int, int, str]], data_size: int) -> None:
    expected_begin = 0
    for begin, end, name in sorted(extents):
        if begin != expected_begin:
            what = "overlaps the previous tensor" if begin < expected_begin else "leaves a gap before it"
            raise _bad(path, f"tensor '{name}' {what}")
        if end > data_size:
            raise _bad(
                path,
                f"truncated: tensor '{name}' ends at byte {end} of the data but the file holds {data_size}",
            )
        expected_begin = end
    if expected_begin != data_size:
        raise _bad(path, f"{data_size - expected_begin} unexpected bytes after the last tensor")

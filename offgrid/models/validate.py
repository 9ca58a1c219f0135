"""Cheap checks of model files before any native engine opens them.

llama.cpp aborts the whole process (GGML_ASSERT) on metadata of the wrong value type, and
loads a file cut short at the tail with garbage weights. This module parses the GGUF header in
pure Python (memory-mapped, bounds-checked at every step) and rejects such files with one line.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offgrid.errors import ModelFileError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
MAX_STRING = 16 << 20  # 16 MiB: no sane key or value is longer
MAX_KEEP_ARRAY = 64  # arrays longer than this are summarised, not kept

# GGUF value types -> (struct format, size); 8 = string, 9 = array.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}
_STRING, _ARRAY = 8, 9
_INTS = {0, 1, 2, 3, 4, 5, 10, 11}
_FLOATS = {6, 12}
_BOOL = {7}

# ggml tensor types -> (block size in elements, bytes per block). From ggml.h / gguf.constants.
_GGML_TYPES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4),
    27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
    39: (32, 17), 40: (64, 36), 41: (128, 18),
}


@dataclass
class GGUFInfo:
    """What the header says: small metadata values, tensor shapes and types, sizes."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, tuple[tuple[int, ...], int]] = field(default_factory=dict)
    file_size: int = 0
    data_size: int = 0
    value_types: dict[str, int] = field(default_factory=dict)  # key -> GGUF value type number

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_value(self, suffix: str, default: Any = None) -> Any:
        """The value of `<architecture>.<suffix>`, e.g. arch_value("context_length")."""
        return self.metadata.get(f"{self.architecture}.{suffix}", default)


_U64 = struct.Struct("<Q")


class _Corrupt(Exception):
    """Internal: the header is inconsistent; the message says how."""


class _Reader:
    """Bounds-checked little-endian reader over a memory map."""

    def __init__(self, buf: mmap.mmap | bytes, size: int):
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, n: int) -> int:
        if n < 0 or self.pos + n > self.size:
            raise _Corrupt("the header runs past the end of the file")
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, n: int) -> Any:
        return struct.unpack_from(fmt, self.buf, self.take(n))[0]

    def string(self) -> str:
        length = self.unpack("<Q", 8)
        if length > MAX_STRING:
            raise _Corrupt(f"a string claims {length} bytes")
        start = self.take(length)
        return bytes(self.buf[start:start + length]).decode("utf-8", errors="replace")

    def raw_strings(self, count: int) -> list[bytes]:
        """*count* strings as raw bytes, bounds-checked (a tight loop: vocabularies are big)."""
        buf, size, pos = self.buf, self.size, self.pos
        unpack = _U64.unpack_from
        found = []
        for _ in range(count):
            if pos + 8 > size:
                raise _Corrupt("the header runs past the end of the file")
            length = unpack(buf, pos)[0]
            pos += 8
            if length > MAX_STRING or pos + length > size:
                raise _Corrupt(f"a string claims {length} bytes")
            found.append(buf[pos:pos + length])
            pos += length
        self.pos = pos
        return found

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            fmt, n = _SCALARS[vtype]
            return self.unpack(fmt, n)
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            return self.array()
        raise _Corrupt(f"unknown value type {vtype}")

    def array(self) -> Any:
        etype = self.unpack("<I", 4)
        count = self.unpack("<Q", 8)
        if etype in _SCALARS:
            fmt, n = _SCALARS[etype]
            if count * n > self.size - self.pos:
                raise _Corrupt(f"an array claims {count} items, more than the file holds")
            if count > MAX_KEEP_ARRAY:
                self.take(count * n)
                return _ArraySummary(etype, count)
            return [self.value(etype) for _ in range(count)]
        if etype == _STRING:
            if count * 8 > self.size - self.pos:
                raise _Corrupt(f"an array claims {count} strings, more than the file holds")
            if count > MAX_KEEP_ARRAY:  # a vocabulary: 150k+ strings, skimmed not decoded
                return _ArraySummary(etype, count, len(set(self.raw_strings(count))))
            return [self.string() for _ in range(count)]
        raise _Corrupt(f"array of unsupported type {etype}")


@dataclass(frozen=True)
class _ArraySummary:
    """A long array: its element type and length, not its items."""

    etype: int
    count: int
    distinct: int | None = None  # for strings: how many differ (llama.cpp needs all unique)

    def __len__(self) -> int:
        return self.count


# Keys whose value type llama.cpp asserts on; suffixes match `<arch>.<suffix>` too.
_INT_KEYS = ("context_length", "embedding_length", "block_count", "vocab_size",
             "rope.dimension_count", "expert_count", "expert_used_count", "image_size",
             "patch_size", "projection_dim", "general.alignment", "_token_id")
_INT_OR_ARRAY_KEYS = ("feed_forward_length", "attention.head_count", "attention.head_count_kv")
_FLOAT_KEYS = ("layer_norm_rms_epsilon", "layer_norm_epsilon", "rope.freq_base")
_STRING_KEYS = ("general.architecture", "tokenizer.ggml.model", "tokenizer.chat_template",
                "clip.projector_type")


def _expect_type(key: str, vtype: int, value: Any) -> None:
    """Raise _Corrupt when a well-known key has a value type the engine would assert on."""
    def is_int_array() -> bool:
        return vtype == _ARRAY and (
            isinstance(value, _ArraySummary) and value.etype in _INTS
            or isinstance(value, list) and all(isinstance(v, int) for v in value))

    if key.endswith(_STRING_KEYS) and vtype != _STRING:
        raise _Corrupt(f"metadata {key} should be a string")
    if key.endswith(_FLOAT_KEYS) and vtype not in _FLOATS:
        raise _Corrupt(f"metadata {key} should be a number")
    if key.endswith(_INT_OR_ARRAY_KEYS) and vtype not in _INTS and not is_int_array():
        raise _Corrupt(f"metadata {key} should be an integer")
    if key.endswith(_INT_KEYS) and vtype not in _INTS:
        raise _Corrupt(f"metadata {key} should be an integer")
    if key == "tokenizer.ggml.scores" and not (vtype == _ARRAY and getattr(
            value, "etype", 6) in _FLOATS):
        raise _Corrupt("metadata tokenizer.ggml.scores should be a list of numbers")
    if key == "tokenizer.ggml.tokens" and not (
            vtype == _ARRAY and getattr(value, "etype", _STRING) == _STRING
            and (not isinstance(value, list) or all(isinstance(v, str) for v in value))):
        raise _Corrupt("metadata tokenizer.ggml.tokens should be a list of strings")


def _distinct(value: Any) -> int:
    return value.distinct if isinstance(value, _ArraySummary) else len(set(value))


def _tensor_nbytes(name: str, dims: tuple[int, ...], ggml_type: int) -> int:
    if ggml_type not in _GGML_TYPES:
        raise _Corrupt(f"tensor {name} has unknown type {ggml_type}")
    block, per_block = _GGML_TYPES[ggml_type]
    if dims[0] % block:
        raise _Corrupt(f"tensor {name} row of {dims[0]} is not a multiple of its block size")
    n = 1
    for d in dims:
        n *= d
    return n // block * per_block


def _parse(buf: mmap.mmap | bytes, size: int, path: Path) -> GGUFInfo:
    r = _Reader(buf, size)
    if bytes(buf[:4]) == b"lmgg":  # whisper.cpp's ggml file magic (0x67676d6c)
        raise _Corrupt("it is a whisper.cpp speech model (for `offgrid transcribe`)")
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise _Corrupt("not a GGUF file (bad magic)")
    r.take(4)
    version = r.unpack("<I", 4)
    if version not in (2, 3):
        raise _Corrupt(f"unsupported GGUF version {version}")
    n_tensors, n_kv = r.unpack("<Q", 8), r.unpack("<Q", 8)
    if n_tensors > size // 24 or n_kv > size // 12:
        raise _Corrupt(f"header claims {n_tensors} tensors and {n_kv} keys")
    metadata: dict[str, Any] = {}
    value_types: dict[str, int] = {}
    for _ in range(n_kv):
        key = r.string()
        vtype = r.unpack("<I", 4)
        value = r.value(vtype)
        _expect_type(key, vtype, value)
        if key == "tokenizer.ggml.tokens" and _distinct(value) != len(value):
            raise _Corrupt("the vocabulary has duplicate tokens")
        if isinstance(value, list) and len(value) > MAX_KEEP_ARRAY:
            value = _ArraySummary(_STRING, len(value))
        metadata[key] = value
        value_types[key] = vtype
    tensors: dict[str, tuple[tuple[int, ...], int]] = {}
    extents: list[tuple[int, int, str]] = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.unpack("<I", 4)
        if not 1 <= n_dims <= MAX_DIMS:
            raise _Corrupt(f"tensor {name} has {n_dims} dimensions")
        dims = tuple(r.unpack("<Q", 8) for _ in range(n_dims))
        if any(d == 0 or d > 1 << 40 for d in dims):
            raise _Corrupt(f"tensor {name} has impossible shape {dims}")
        ggml_type = r.unpack("<I", 4)
        offset = r.unpack("<Q", 8)
        tensors[name] = (dims, ggml_type)
        extents.append((offset, _tensor_nbytes(name, dims, ggml_type), name))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _Corrupt(f"bad alignment {alignment!r}")
    data_start = -(-r.pos // alignment) * alignment
    end = data_start
    for offset, nbytes, name in extents:
        if offset % alignment:
            raise _Corrupt(f"tensor {name} is not aligned")
        end = max(end, data_start + offset + nbytes)
    if end > size:
        raise _Corrupt(f"file is truncated: tensors need {end} bytes, file has {size}")
    if size > -(-end // alignment) * alignment:
        raise _Corrupt(f"file has {size - end} unexpected bytes after the last tensor")
    return GGUFInfo(path, version, metadata, tensors, size, end - data_start, value_types)


def read_gguf(path: Path) -> GGUFInfo:
    """Parse and sanity-check a GGUF file's header; raise ModelFileError when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    size = path.stat().st_size
    if size < 24:
        raise ModelFileError(f"{path.name} is not a GGUF model file (only {size} bytes)")
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(buf, size, path)
    except _Corrupt as exc:
        raise ModelFileError(f"{path.name} is not a usable GGUF model: {exc}") from None
    except (OSError, ValueError, struct.error) as exc:
        raise ModelFileError(f"cannot read {path.name}: {exc}") from None


def check_text_model(path: Path) -> GGUFInfo:
    """A GGUF language model: architecture, tokenizer and token embeddings present."""
    info = read_gguf(path)
    arch = info.architecture
    if not arch:
        raise ModelFileError(f"{info.path.name} has no general.architecture: not a model file")
    if arch == "clip":
        raise ModelFileError(
            f"{info.path.name} is a vision projector (mmproj), not a language model",
            hint="pass it with --mmproj and give the language model with --model")
    if "tokenizer.ggml.tokens" not in info.metadata:
        raise ModelFileError(f"{info.path.name} has no tokenizer: not a usable language model")
    if not info.tensors:
        raise ModelFileError(f"{info.path.name} holds no weights (vocabulary-only file?)")
    return info


def check_mmproj(path: Path) -> GGUFInfo:
    """A GGUF vision projector (llama.cpp's `clip` architecture)."""
    info = read_gguf(path)
    if info.architecture != "clip":
        raise ModelFileError(
            f"{info.path.name} is not a vision projector (mmproj): "
            f"its architecture is {info.architecture or 'unknown'}")
    if not info.tensors:
        raise ModelFileError(f"{info.path.name} holds no weights")
    return info

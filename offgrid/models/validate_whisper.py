"""Cheap structural check of a whisper.cpp ggml model file (`ggml-*.bin`) before loading it.

whisper.cpp (through pywhispercpp) loads a bad file "successfully" and segfaults later, aborts
on a bad ftype, or hangs on corrupt counts. This module mirrors `whisper_model_load` in
whisper.cpp's `src/whisper.cpp` closely enough to refuse such files first: it reads the header,
the mel filters' and vocabulary's lengths, then walks every tensor header with seeks and checks
names, shapes, types and that the last tensor ends exactly at the end of the file. It never
reads weights into memory.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from offgrid.errors import ModelFileError

GGML_FILE_MAGIC = 0x67676D6C  # "ggml", written as a little-endian uint32
_GGUF_MAGIC = b"GGUF"
_HPARAM_NAMES = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                 "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")
_QUANT_VERSION_FACTOR = 1000  # GGML_QNT_VERSION_FACTOR: ftype = qntvr * 1000 + ftype
_VOCAB_SIZES = (51864, 51865, 51866)  # English-only, multilingual, large-v3: special ids derive from it
_N_FFT_BINS = 201  # whisper's 400-point FFT
_MAX_TOKEN_BYTES = 1024

# ggml type id -> (name, block size, bytes per block)
_GGML_TYPES = {
    0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20),
    6: ("q5_0", 32, 22), 7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 10: ("q2_k", 256, 84),
    11: ("q3_k", 256, 110), 12: ("q4_k", 256, 144), 13: ("q5_k", 256, 176),
    14: ("q6_k", 256, 210), 30: ("bf16", 1, 2),
}
# file ftype -> ggml type of the big weights (ggml_ftype_to_ggml_type; others abort whisper.cpp)
_FTYPE_TO_TYPE = {0: 0, 1: 1, 2: 2, 3: 3, 7: 8, 8: 6, 9: 7, 10: 10, 11: 11, 12: 12, 13: 13,
                  14: 14, 24: 30}
_MODEL_SIZES = {4: "tiny", 6: "base", 12: "small", 24: "medium", 32: "large"}


def check_whisper_file(path: Path) -> dict:
    """Return the file's hyperparameters, or raise ModelFileError naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise _bad(path, "no such file")
    file_size = path.stat().st_size
    try:
        with path.open("rb") as f:
            hparams = _read_hparams(f, path)
            _skip_mel_filters(f, path, hparams)
            _skip_vocab(f, path, hparams)
            n_tensors = _walk_tensors(f, path, hparams, file_size)
    except OSError as exc:
        raise _bad(path, f"cannot read it ({exc.strerror or exc})") from exc
    return hparams | {"n_tensors": n_tensors}


def _bad(path: Path, reason: str) -> ModelFileError:
    return ModelFileError(
        f"{path} is not a whisper model: {reason}",
        hint="use a whisper.cpp ggml model (.bin), e.g. `offgrid models pull whisper-base`",
    )


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _bad(path, f"truncated while reading {what}")
    return data


def _read_hparams(f: BinaryIO, path: Path) -> dict:
    magic = f.read(4)
    if magic == _GGUF_MAGIC:
        raise _bad(path, "it is a GGUF file; whisper.cpp needs its ggml .bin format")
    if len(magic) < 4 or struct.unpack("<I", magic)[0] != GGML_FILE_MAGIC:
        raise _bad(path, "wrong magic (expected a whisper.cpp ggml file)")
    values = struct.unpack("<11i", _read_exact(f, 44, path, "the header"))
    hparams = dict(zip(_HPARAM_NAMES, values))
    _check_hparams(path, hparams)
    raw_ftype = hparams["ftype"]
    hparams["quant_version"], hparams["ftype"] = divmod(raw_ftype, _QUANT_VERSION_FACTOR)
    hparams["weight_type"] = _GGML_TYPES[_FTYPE_TO_TYPE[hparams["ftype"]]][0]
    hparams["multilingual"] = hparams["n_vocab"] >= 51865
    hparams["size"] = _MODEL_SIZES.get(hparams["n_audio_layer"], "unknown")
    return hparams


def _check_hparams(path: Path, hp: dict) -> None:
    if hp["n_vocab"] not in _VOCAB_SIZES:
        raise _bad(path, f"n_vocab {hp['n_vocab']} is not a whisper vocabulary size "
                         f"({', '.join(map(str, _VOCAB_SIZES))})")
    limits = {"n_audio_ctx": 1500, "n_text_ctx": 4096, "n_audio_state": 8192,
              "n_text_state": 8192, "n_audio_head": 256, "n_text_head": 256,
              "n_audio_layer": 256, "n_text_layer": 256}
    for name, limit in limits.items():
        if not 1 <= hp[name] <= limit:
            raise _bad(path, f"{name} {hp[name]} is out of range (1..{limit})")
    if hp["n_audio_state"] != hp["n_text_state"]:
        raise _bad(path, f"n_audio_state {hp['n_audio_state']} != n_text_state {hp['n_text_state']}")
    for side in ("audio", "text"):
        if hp[f"n_{side}_state"] % hp[f"n_{side}_head"]:
            raise _bad(path, f"n_{side}_state is not a multiple of n_{side}_head")
    if hp["n_mels"] not in (80, 128):
        raise _bad(path, f"n_mels {hp['n_mels']} is neither 80 nor 128")
    ftype = hp["ftype"]
    if ftype < 0 or ftype % _QUANT_VERSION_FACTOR not in _FTYPE_TO_TYPE:
        raise _bad(path, f"bad ftype {ftype}")


def _skip_mel_filters(f: BinaryIO, path: Path, hp: dict) -> None:
    n_mel, n_fft = struct.unpack("<2i", _read_exact(f, 8, path, "the mel filters"))
    if n_mel != hp["n_mels"] or n_fft != _N_FFT_BINS:
        raise _bad(path, f"mel filters are {n_mel}x{n_fft}, expected {hp['n_mels']}x{_N_FFT_BINS}")
    f.seek(n_mel * n_fft * 4, 1)  # a short file shows up as a truncated vocabulary


def _skip_vocab(f: BinaryIO, path: Path, hp: dict) -> None:
    """Walk the token lengths; whisper.cpp needs n <= n_vocab and a " " token."""
    (n_tokens,) = struct.unpack("<i", _read_exact(f, 4, path, "the vocabulary"))
    if not 0 < n_tokens <= hp["n_vocab"]:
        raise _bad(path, f"vocabulary has {n_tokens} tokens (n_vocab is {hp['n_vocab']})")
    has_space = False
    for _ in range(n_tokens):
        (length,) = struct.unpack("<I", _read_exact(f, 4, path, "the vocabulary"))
        if length > _MAX_TOKEN_BYTES:
            raise _bad(path, f"a vocabulary token claims {length} bytes")
        has_space |= _read_exact(f, length, path, "the vocabulary") == b" "
    if not has_space:
        raise _bad(path, 'the vocabulary has no " " token')


def _expected_tensors(hp: dict) -> dict[str, tuple[tuple[int, ...], int]]:
    """name -> (ne in ggml order, ggml type), as whisper_model_load creates them."""
    weight = _FTYPE_TO_TYPE[hp["ftype"]]
    conv = 0 if weight == 0 else 1
    d, n_ctx_a, n_ctx_t = hp["n_audio_state"], hp["n_audio_ctx"], hp["n_text_ctx"]
    expected = {
        "encoder.positional_embedding": ((d, n_ctx_a), 0),
        "encoder.conv1.weight": ((3, hp["n_mels"], d), conv),
        "encoder.conv1.bias": ((1, d), 0),
        "encoder.conv2.weight": ((3, d, d), conv),
        "encoder.conv2.bias": ((1, d), 0),
        "encoder.ln_post.weight": ((d,), 0),
        "encoder.ln_post.bias": ((d,), 0),
        "decoder.positional_embedding": ((d, n_ctx_t), 0),
        "decoder.token_embedding.weight": ((d, hp["n_vocab"]), weight),
        "decoder.ln.weight": ((d,), 0),
        "decoder.ln.bias": ((d,), 0),
    }

    def block(prefix: str, attentions: tuple[str, ...]) -> None:
        for ln in ("mlp_ln",) + tuple(a + "_ln" for a in attentions):
            expected[f"{prefix}.{ln}.weight"] = ((d,), 0)
            expected[f"{prefix}.{ln}.bias"] = ((d,), 0)
        expected[f"{prefix}.mlp.0.weight"] = ((d, 4 * d), weight)
        expected[f"{prefix}.mlp.0.bias"] = ((4 * d,), 0)
        expected[f"{prefix}.mlp.2.weight"] = ((4 * d, d), weight)
        expected[f"{prefix}.mlp.2.bias"] = ((d,), 0)
        for attn in attentions:
            for proj in ("query", "key", "value", "out"):
                expected[f"{prefix}.{attn}.{proj}.weight"] = ((d, d), weight)
                if proj != "key":
                    expected[f"{prefix}.{attn}.{proj}.bias"] = ((d,), 0)

    for i in range(hp["n_audio_layer"]):
        block(f"encoder.blocks.{i}", ("attn",))
    for i in range(hp["n_text_layer"]):
        block(f"decoder.blocks.{i}", ("attn", "cross_attn"))
    return expected


def _walk_tensors(f: BinaryIO, path: Path, hp: dict, file_size: int) -> int:
    expected = _expected_tensors(hp)
    seen: set[str] = set()
    offset = f.tell()
    while len(seen) < len(expected) and offset < file_size:
        name, offset = _check_tensor(f, path, expected, offset, file_size)
        if name in seen:
            raise _bad(path, f"tensor {name!r} appears twice")
        seen.add(name)
    if len(seen) < len(expected):
        first = next(name for name in expected if name not in seen)
        raise _bad(path, f"truncated: {len(expected) - len(seen)} of {len(expected)} tensors "
                         f"are missing (first: {first!r})")
    if offset != file_size:
        raise _bad(path, f"{file_size - offset} unexpected bytes after the last tensor")
    return len(seen)


def _check_tensor(f: BinaryIO, path: Path, expected: dict, offset: int,
                  file_size: int) -> tuple[str, int]:
    """Check the tensor header at `offset`; return its name and the offset after its data."""
    f.seek(offset)
    n_dims, name_len, ttype = struct.unpack("<3i", _read_exact(f, 12, path, "a tensor header"))
    if not 1 <= n_dims <= 4 or not 1 <= name_len <= 256:
        raise _bad(path, f"corrupt tensor header at byte {offset}")
    ne = struct.unpack(f"<{n_dims}i", _read_exact(f, 4 * n_dims, path, "a tensor header"))
    name = _read_exact(f, name_len, path, "a tensor name").decode("utf-8", "replace")
    if name not in expected:
        raise _bad(path, f"unexpected tensor {name!r} at byte {offset}")
    shape, ggml_type = expected[name]
    type_name, block, block_bytes = _GGML_TYPES[ggml_type]
    if tuple(ne) != shape:
        raise _bad(path, f"tensor {name!r} has shape {list(ne)}, expected {list(shape)}")
    if ttype != ggml_type:
        got = _GGML_TYPES.get(ttype, (f"type {ttype}",))[0]
        raise _bad(path, f"tensor {name!r} is {got}, expected {type_name}")
    if shape[0] % block:
        raise _bad(path, f"tensor {name!r} rows do not fit {type_name} blocks")
    n_elements = 1
    for n in shape:
        n_elements *= n
    end = offset + 12 + 4 * n_dims + name_len + n_elements // block * block_bytes
    if end > file_size:
        raise _bad(path, f"truncated: tensor {name!r} ends at byte {end}, "
                         f"the file has {file_size} bytes")
    return name, end

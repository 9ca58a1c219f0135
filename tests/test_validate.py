"""models.validate: GGUF headers are checked in Python before llama.cpp sees them."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from offgrid.errors import ModelFileError
from offgrid.models import validate
from offgrid.models.validate import check_mmproj, check_text_model, read_gguf


def test_tiny_model_passes(tiny_llama: Path) -> None:
    info = check_text_model(tiny_llama)
    assert info.architecture == "llama"
    assert info.arch_value("context_length") == 2048
    assert "token_embd.weight" in info.tensors
    assert info.file_size == tiny_llama.stat().st_size


def test_type_table_matches_gguf_package() -> None:
    for ggml_type, sizes in gguf.GGML_QUANT_SIZES.items():
        assert validate._GGML_TYPES[int(ggml_type)] == sizes, ggml_type


def _copy(src: Path, dst: Path, data: bytes | None = None) -> Path:
    dst.write_bytes(src.read_bytes() if data is None else data)
    return dst


@pytest.mark.parametrize("cut", [1, 7, 1000])
def test_truncated_file_is_rejected(tiny_llama: Path, tmp_path: Path, cut: int) -> None:
    data = tiny_llama.read_bytes()[:-cut]
    with pytest.raises(ModelFileError, match="truncated"):
        read_gguf(_copy(tiny_llama, tmp_path / "cut.gguf", data))


def test_header_cut_short(tiny_llama: Path, tmp_path: Path) -> None:
    data = tiny_llama.read_bytes()[:300]
    with pytest.raises(ModelFileError, match="claims|past the end|truncated"):
        read_gguf(_copy(tiny_llama, tmp_path / "cut.gguf", data))


def test_trailing_garbage_is_rejected(tiny_llama: Path, tmp_path: Path) -> None:
    data = tiny_llama.read_bytes() + b"\0" * 4096
    with pytest.raises(ModelFileError, match="unexpected bytes"):
        read_gguf(_copy(tiny_llama, tmp_path / "pad.gguf", data))


def test_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ModelFileError, match="bad magic"):
        read_gguf(bad)
    tiny = tmp_path / "tiny.gguf"
    tiny.write_bytes(b"GGUF")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        read_gguf(tiny)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        read_gguf(tmp_path / "nope.gguf")


def test_absurd_counts(tiny_llama: Path, tmp_path: Path) -> None:
    data = bytearray(tiny_llama.read_bytes())
    struct.pack_into("<Q", data, 8, 1 << 60)  # tensor count
    with pytest.raises(ModelFileError, match="claims"):
        read_gguf(_copy(tiny_llama, tmp_path / "n.gguf", bytes(data)))


def _write(path: Path, arch: str, kv: dict, tensors: dict[str, np.ndarray]) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    for key, (kind, value) in kv.items():
        writer.add_key_value(key, value, kind)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_wrong_value_type_is_rejected(tmp_path: Path) -> None:
    # llama.cpp aborts the process (GGML_ASSERT) on a string where a number belongs.
    path = _write(tmp_path / "t.gguf", "llama",
                  {"llama.context_length": (gguf.GGUFValueType.STRING, "4096")},
                  {"w": np.zeros(32, dtype=np.float32)})
    with pytest.raises(ModelFileError, match="context_length should be an integer"):
        read_gguf(path)


def test_duplicate_vocabulary_is_rejected(tmp_path: Path) -> None:
    # llama.cpp aborts on id_to_token.size() != token_to_id.size().
    path = _write(tmp_path / "d.gguf", "llama",
                  {"tokenizer.ggml.tokens": (gguf.GGUFValueType.ARRAY, ["a", "b", "a"])},
                  {"w": np.zeros(32, dtype=np.float32)})
    with pytest.raises(ModelFileError, match="duplicate"):
        read_gguf(path)


def test_text_model_kind_checks(tmp_path: Path) -> None:
    clip = _write(tmp_path / "mmproj.gguf", "clip", {}, {"v": np.zeros(32, dtype=np.float32)})
    with pytest.raises(ModelFileError, match="vision projector"):
        check_text_model(clip)
    assert check_mmproj(clip).architecture == "clip"
    no_vocab = _write(tmp_path / "nv.gguf", "llama", {}, {"w": np.zeros(32, dtype=np.float32)})
    with pytest.raises(ModelFileError, match="no tokenizer"):
        check_text_model(no_vocab)
    with pytest.raises(ModelFileError, match="not a vision projector"):
        check_mmproj(no_vocab)

"""check_safetensors_file on good files and on truncated, padded and garbage copies of them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from offgrid.errors import ModelFileError
from offgrid.models.validate_weights import check_safetensors_file
from tests.tinymodels.sd import write_safetensors


@pytest.fixture
def good(tmp_path: Path) -> Path:
    tensors = {
        "a.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "b.bias": np.ones(5, dtype=np.float16),
    }
    return write_safetensors(tmp_path / "good.safetensors", tensors, {"note": "test"})


def _raw_file(path: Path, header: object, data: bytes = b"") -> Path:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    return path


def test_good_file_summary(good: Path):
    info = check_safetensors_file(good)
    assert info["format"] == "safetensors"
    assert info["tensor_count"] == 2
    assert info["dtypes"] == {"F32": 1, "F16": 1}
    assert info["tensors"]["a.weight"] == {"dtype": "F32", "shape": [3, 4]}
    assert info["metadata"] == {"note": "test"}
    assert info["data_size"] == 12 * 4 + 5 * 2
    assert info["file_size"] == good.stat().st_size


def test_tiny_sd_components_pass(tiny_sd_files):
    for role, path in tiny_sd_files.items():
        assert check_safetensors_file(path)["tensor_count"] > 0, role


def test_truncated_copy_is_rejected(good: Path, tmp_path: Path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(ModelFileError, match="truncated: tensor 'b.bias' ends at byte 58") as info:
        check_safetensors_file(cut)
    assert "\n" not in info.value.message
    assert info.value.hint


def test_file_cut_inside_the_header_is_rejected(good: Path, tmp_path: Path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:20])
    with pytest.raises(ModelFileError, match="runs past the end"):
        check_safetensors_file(cut)


def test_trailing_bytes_are_rejected(good: Path, tmp_path: Path):
    padded = tmp_path / "padded.safetensors"
    padded.write_bytes(good.read_bytes() + b"\0" * 7)
    with pytest.raises(ModelFileError, match="7 unexpected bytes after the last tensor"):
        check_safetensors_file(padded)


def test_garbage_is_rejected(tmp_path: Path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelFileError, match="implausible header length"):
        check_safetensors_file(junk)


def test_gguf_or_text_file_is_rejected(tmp_path: Path):
    text = tmp_path / "model.safetensors"
    text.write_text("GGUF" + "x" * 100)
    with pytest.raises(ModelFileError, match="not a usable safetensors file"):
        check_safetensors_file(text)


def test_header_that_is_not_json(tmp_path: Path):
    blob = b"{not json}"
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * 8)
    with pytest.raises(ModelFileError, match="header is not valid JSON"):
        check_safetensors_file(path)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}, "unknown dtype 'Q4'"),
        ({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}, "invalid shape"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [0]}, "invalid data_offsets"),
        ({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}, "spans 8 bytes but F32\\[3\\] needs 12"),
        ("F32", "is not an object"),
    ],
)
def test_bad_tensor_entries(tmp_path: Path, entry: object, reason: str):
    path = _raw_file(tmp_path / "bad.safetensors", {"t": entry}, b"\0" * 8)
    with pytest.raises(ModelFileError, match=reason):
        check_safetensors_file(path)


def test_overlapping_and_gapped_tensors(tmp_path: Path):
    overlap = _raw_file(
        tmp_path / "overlap.safetensors",
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
        b"\0" * 12,
    )
    with pytest.raises(ModelFileError, match="overlaps"):
        check_safetensors_file(overlap)
    gap = _raw_file(
        tmp_path / "gap.safetensors",
        {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
         "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}},
        b"\0" * 12,
    )
    with pytest.raises(ModelFileError, match="gap"):
        check_safetensors_file(gap)


def test_missing_file_and_directory(tmp_path: Path):
    with pytest.raises(ModelFileError, match="no such file"):
        check_safetensors_file(tmp_path / "nope.safetensors")
    with pytest.raises(ModelFileError, match="not a regular file"):
        check_safetensors_file(tmp_path)

"""check_whisper_file against the tiny generated model and corrupted copies of it."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from offgrid.errors import ModelFileError
from offgrid.models.validate_whisper import check_whisper_file


@pytest.fixture
def tiny_model(tiny_whisper) -> Path:
    return tiny_whisper


@pytest.fixture
def model_bytes(tiny_whisper) -> bytes:
    return tiny_whisper.read_bytes()


def corrupt(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "bad.bin"
    path.write_bytes(data)
    return path


def assert_rejected(path: Path, reason: str) -> None:
    with pytest.raises(ModelFileError) as caught:
        check_whisper_file(path)
    assert caught.value.message.startswith(f"{path} is not a whisper model: ")
    assert reason in caught.value.message


def test_english_only_model(tiny_whisper_en):
    hparams = check_whisper_file(tiny_whisper_en)
    assert hparams["n_vocab"] == 51864
    assert hparams["multilingual"] is False


def test_valid_model_returns_hyperparameters(tiny_model):
    hparams = check_whisper_file(tiny_model)
    assert hparams["n_vocab"] == 51865
    assert hparams["n_audio_ctx"] == 1500
    assert hparams["n_text_layer"] == 1
    assert hparams["ftype"] == 1
    assert hparams["weight_type"] == "f16"
    assert hparams["multilingual"] is True
    assert hparams["n_tensors"] == 11 + 2 * 15 + 1 * 24


def test_missing_file(tmp_path):
    assert_rejected(tmp_path / "nope.bin", "no such file")


def test_directory_is_not_a_model(tmp_path):
    assert_rejected(tmp_path, "no such file")


def test_wrong_magic(tmp_path, model_bytes):
    assert_rejected(corrupt(tmp_path, b"lmgG" + model_bytes[4:]), "wrong magic")


def test_gguf_file_is_named(tmp_path):
    assert_rejected(corrupt(tmp_path, b"GGUF" + struct.pack("<I", 3) + bytes(64)), "GGUF")


def test_empty_and_tiny_files(tmp_path, model_bytes):
    assert_rejected(corrupt(tmp_path, b""), "wrong magic")
    assert_rejected(corrupt(tmp_path, model_bytes[:20]), "truncated while reading the header")


def test_garbage(tmp_path):
    import numpy as np

    noise = np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    assert_rejected(corrupt(tmp_path, noise), "wrong magic")
    assert_rejected(corrupt(tmp_path, struct.pack("<I", 0x67676D6C) + noise), "n_vocab")


def replace_int(data: bytes, index: int, value: int) -> bytes:
    """Replace the index-th int32 after the magic."""
    offset = 4 + 4 * index
    return data[:offset] + struct.pack("<i", value) + data[offset + 4:]


@pytest.mark.parametrize("ftype", [5, 4, -1, 99, 1004])
def test_bad_ftype(tmp_path, model_bytes, ftype):
    assert_rejected(corrupt(tmp_path, replace_int(model_bytes, 10, ftype)), f"bad ftype {ftype}")


@pytest.mark.parametrize("index, value, reason", [
    (0, 50000, "n_vocab 50000"),
    (1, 0, "n_audio_ctx 0 is out of range"),
    (2, -64, "n_audio_state -64 is out of range"),
    (3, 3, "n_audio_state is not a multiple of n_audio_head"),
    (4, 1_000_000, "n_audio_layer 1000000 is out of range"),
    (6, 128, "n_audio_state 64 != n_text_state 128"),
    (9, 7, "n_mels 7"),
])
def test_absurd_hyperparameters(tmp_path, model_bytes, index, value, reason):
    assert_rejected(corrupt(tmp_path, replace_int(model_bytes, index, value)), reason)


def test_quantized_ftype_that_does_not_match_tensors(tmp_path, model_bytes):
    # ftype 2 (q4_0) is valid, but the f16 tensors in the file do not match it
    assert_rejected(corrupt(tmp_path, replace_int(model_bytes, 10, 2)), "expected q4_0")


def test_corrupt_vocabulary_count(tmp_path, model_bytes):
    offset = 48 + 8 + 80 * 201 * 4
    for count in (0, -5, 2_000_000_000):
        data = model_bytes[:offset] + struct.pack("<i", count) + model_bytes[offset + 4:]
        assert_rejected(corrupt(tmp_path, data), "vocabulary has")


def test_corrupt_token_length(tmp_path, model_bytes):
    offset = 48 + 8 + 80 * 201 * 4 + 4
    data = model_bytes[:offset] + struct.pack("<I", 0x7FFFFFFF) + model_bytes[offset + 4:]
    assert_rejected(corrupt(tmp_path, data), "claims")


def test_corrupt_mel_filter_shape(tmp_path, model_bytes):
    data = model_bytes[:48] + struct.pack("<2i", 80, 1_000_000) + model_bytes[56:]
    assert_rejected(corrupt(tmp_path, data), "mel filters are 80x1000000")


def test_truncated_in_the_middle(tmp_path, model_bytes):
    assert_rejected(corrupt(tmp_path, model_bytes[: len(model_bytes) // 2]), "truncated")


def test_truncated_by_one_byte(tmp_path, model_bytes):
    assert_rejected(corrupt(tmp_path, model_bytes[:-1]), "truncated: tensor")


def test_truncated_before_the_tensors(tmp_path, model_bytes):
    assert_rejected(corrupt(tmp_path, model_bytes[:100_000]), "truncated")


def test_header_and_vocab_only(tmp_path, model_bytes):
    # whisper.cpp loads a file without tensors as an "empty test model" and crashes later
    vocab_end = _first_tensor_offset(model_bytes)
    assert_rejected(corrupt(tmp_path, model_bytes[:vocab_end]), "65 of 65 tensors are missing")


@pytest.mark.parametrize("padding", [b"\0", b"\0" * 11, b"\0" * 100])
def test_padded(tmp_path, model_bytes, padding):
    assert_rejected(corrupt(tmp_path, model_bytes + padding), "unexpected bytes after the last tensor")


def test_tensor_with_wrong_shape(tmp_path, model_bytes):
    offset = _first_tensor_offset(model_bytes)  # encoder.positional_embedding [64, 1500]
    data = bytearray(model_bytes)
    struct.pack_into("<i", data, offset + 12, 32)
    assert_rejected(corrupt(tmp_path, bytes(data)), "has shape [32, 1500], expected [64, 1500]")


def test_tensor_with_wrong_type(tmp_path, model_bytes):
    offset = _first_tensor_offset(model_bytes)
    data = bytearray(model_bytes)
    struct.pack_into("<i", data, offset + 8, 1)
    assert_rejected(corrupt(tmp_path, bytes(data)), "is f16, expected f32")


def test_corrupt_tensor_header(tmp_path, model_bytes):
    offset = _first_tensor_offset(model_bytes)
    data = bytearray(model_bytes)
    struct.pack_into("<i", data, offset, 9)  # n_dims 9 would overflow whisper.cpp's ne[4]
    assert_rejected(corrupt(tmp_path, bytes(data)), "corrupt tensor header")


def test_unknown_tensor_name(tmp_path, model_bytes):
    offset = _first_tensor_offset(model_bytes)
    name = b"encoder.positional_embedding"
    start = offset + 12 + 8
    assert model_bytes[start:start + len(name)] == name
    data = model_bytes[:start] + b"X" + model_bytes[start + 1:]
    assert_rejected(corrupt(tmp_path, data), "unexpected tensor 'XncoderXpositional_embedding'"
                    .replace("XncoderX", "Xncoder."))


def test_it_reads_little(tiny_model, monkeypatch):
    """Cheap: the walk seeks over tensor data instead of reading it."""
    read_sizes = []
    real_open = Path.open

    class CountingFile:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, size=-1):
            data = self.handle.read(size)
            read_sizes.append(len(data))
            return data

        def seek(self, *args):
            return self.handle.seek(*args)

        def tell(self):
            return self.handle.tell()

    monkeypatch.setattr(Path, "open", lambda self, *a, **k: CountingFile(real_open(self, *a, **k)))
    check_whisper_file(tiny_model)
    assert sum(read_sizes) < 1_000_000 < tiny_model.stat().st_size


def _first_tensor_offset(data: bytes) -> int:
    offset = 48 + 8 + 80 * 201 * 4
    (count,) = struct.unpack_from("<i", data, offset)
    offset += 4
    for _ in range(count):
        (length,) = struct.unpack_from("<I", data, offset)
        offset += 4 + length
    return offset

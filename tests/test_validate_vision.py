"""offgrid.models.validate_vision against tiny generated GGUF files read with gguf.GGUFReader."""

from __future__ import annotations

from pathlib import Path

import pytest

from offgrid.errors import ModelFileError
from offgrid.models import validate_vision as vv
from tests.tinymodels.mmproj import read_gguf, write_tiny_mmproj, write_tiny_vision_llama


@pytest.fixture(scope="session")
def vision_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("validate-vision")
    return {
        "lm": write_tiny_vision_llama(folder / "lm.gguf", n_embd=64),
        "mmproj": write_tiny_mmproj(folder / "mmproj.gguf", n_embd_text=64),
        "mmproj48": write_tiny_mmproj(folder / "mmproj48.gguf", n_embd_text=48),
    }


def _pair(vision_files, model="lm", mmproj="mmproj"):
    model_meta, _, _ = read_gguf(vision_files[model])
    mm_meta, mm_shapes, mm_types = read_gguf(vision_files[mmproj])
    return model_meta, mm_meta, mm_shapes, mm_types


def test_matching_pair_passes(vision_files):
    model_meta, mm_meta, mm_shapes, mm_types = _pair(vision_files)
    vv.check_mmproj_pair(model_meta, mm_meta, mm_shapes, mmproj_value_types=mm_types)
    assert vv.check_projector(mm_meta, mm_shapes, "mmproj") == 64
    assert vv.check_language_model(model_meta, "lm") == 64


def test_width_mismatch_is_one_line(vision_files):
    model_meta, mm_meta, mm_shapes, _ = _pair(vision_files, mmproj="mmproj48")
    with pytest.raises(ModelFileError) as caught:
        vv.check_mmproj_pair(model_meta, mm_meta, mm_shapes, model_name="lm.gguf", mmproj_name="mmproj48.gguf")
    message = caught.value.message
    assert "mmproj48.gguf does not match lm.gguf" in message
    assert "48" in message and "64" in message and "\n" not in message
    assert caught.value.hint


def test_language_model_given_as_mmproj(vision_files):
    model_meta, _, _, _ = _pair(vision_files)
    lm_meta, lm_shapes, _ = read_gguf(vision_files["lm"])
    with pytest.raises(ModelFileError, match="not a vision projector.*'llama'"):
        vv.check_mmproj_pair(model_meta, lm_meta, lm_shapes)


def test_mmproj_given_as_model(vision_files):
    _, mm_meta, mm_shapes, _ = _pair(vision_files)
    with pytest.raises(ModelFileError, match="is a vision projector"):
        vv.check_mmproj_pair(mm_meta, mm_meta, mm_shapes, model_name="mmproj.gguf")


def test_wrong_value_type_is_caught_before_the_loader_aborts(tmp_path):
    path = write_tiny_mmproj(tmp_path / "i32.gguf", 64, metadata_overrides={"clip.vision.image_size": 32})
    meta, shapes, types = read_gguf(path)
    with pytest.raises(ModelFileError, match="clip.vision.image_size is int32, expected uint32"):
        vv.check_projector(meta, shapes, "i32.gguf", types)


def test_string_projector_type_of_wrong_type(tmp_path):
    path = write_tiny_mmproj(tmp_path / "pt.gguf", 64, metadata_overrides={"clip.projector_type": 7})
    meta, shapes, types = read_gguf(path)
    with pytest.raises(ModelFileError, match="clip.projector_type is int32, expected string"):
        vv.check_projector(meta, shapes, "pt.gguf", types)


def test_unknown_projector_type(tmp_path):
    path = write_tiny_mmproj(tmp_path / "unk.gguf", 64, projector_type="nonsense")
    meta, shapes, types = read_gguf(path)
    with pytest.raises(ModelFileError, match="projector type 'nonsense' is not supported"):
        vv.check_projector(meta, shapes, "unk.gguf", types)


def test_audio_only_projector_has_no_vision_encoder(vision_files):
    _, meta, shapes, _ = _pair(vision_files)
    meta = {**meta, "clip.has_vision_encoder": False, "clip.has_audio_encoder": True}
    with pytest.raises(ModelFileError, match="no vision encoder"):
        vv.check_projector(meta, shapes, "audio.gguf")


def test_missing_hparam_and_zero_patch_size(vision_files):
    _, meta, shapes, _ = _pair(vision_files)
    without = {k: v for k, v in meta.items() if k != "clip.vision.image_size"}
    with pytest.raises(ModelFileError, match="missing metadata clip.vision.image_size"):
        vv.check_projector(without, shapes, "m")
    with pytest.raises(ModelFileError, match="patch_size is 0"):
        vv.check_projector({**meta, "clip.vision.patch_size": 0}, shapes, "m")


def test_mlp_without_second_layer_is_incomplete(vision_files):
    _, meta, shapes, _ = _pair(vision_files)
    shapes = {k: v for k, v in shapes.items() if not k.startswith("mm.2.")}
    with pytest.raises(ModelFileError, match="without mm.2.weight"):
        vv.check_projector(meta, shapes, "m")


@pytest.mark.parametrize(
    ("proj", "shapes", "width"),
    [
        ("qwen2.5vl_merger", {"mm.2.bias": (2048,)}, 2048),
        ("qwen3vl_merger", {"mm.2.bias": (2048,), "v.deepstack.5.fc1.weight": (1, 1), "v.deepstack.8.fc1.weight": (1, 1)}, 6144),
        ("gemma3", {"mm.input_projection.weight": (2560, 1152)}, 2560),
        ("idefics3", {"mm.model.fc.weight": (12288, 576)}, 576),
        ("mlp", {"mm.2.weight": (4096, 2048), "mm.3.weight": (1, 1), "mm.3.bias": (3072,)}, 3072),
        ("cogvlm", {}, None),
    ],
)
def test_projector_output_width_per_type(proj, shapes, width):
    assert vv.projector_output_width(proj, shapes) == width


def test_language_model_width_counts_deepstack_layers():
    meta = {"general.architecture": "qwen3vl", "qwen3vl.embedding_length": 2048, "qwen3vl.n_deepstack_layers": 2}
    assert vv.language_model_input_width(meta) == 6144

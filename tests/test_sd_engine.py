"""engines.sd checks that run before the engine: file kinds, roles, size multiples."""

from __future__ import annotations

from pathlib import Path

import pytest

from offgrid.engines.sd import (StableDiffusionEngine, check_components, file_kind, load_failure,
                                size_multiple)
from offgrid.errors import ModelFileError, UsageError


def test_file_kind_reads_the_first_bytes(tiny_sd_files, tiny_llama: Path, tmp_path: Path):
    assert file_kind(tiny_sd_files["llm"]) == "safetensors"
    assert file_kind(tiny_llama) == "gguf"
    other = tmp_path / "model.safetensors"
    other.write_bytes(b"\x00" * 32)
    assert file_kind(other) is None
    with pytest.raises(ModelFileError, match="not found"):
        file_kind(tmp_path / "missing.gguf")


@pytest.mark.parametrize(
    ("names", "multiple"),
    [
        (["model.diffusion_model.input_blocks.0.0.weight"], 64),  # SD 1.x/2.x/XL UNet
        (["unet.down_blocks.0.resnets.0.conv1.weight"], 64),
        (["double_blocks.0.img_attn.qkv.weight", "double_stream_modulation_img.lin.weight"], 16),
        (["double_blocks.0.img_attn.qkv.weight"], 8),  # FLUX.1
        (["joint_blocks.0.x_block.attn.qkv.weight"], 8),  # SD3
    ],
)
def test_size_multiple_follows_the_architecture(names, multiple):
    assert size_multiple({"model": names}) == multiple


def test_tiny_model_components(tiny_sd_files):
    engine = StableDiffusionEngine(tiny_sd_files)
    assert engine.size_multiple == 16 and engine.default_sampler == "euler"
    assert engine.components.size_bytes == sum(p.stat().st_size for p in tiny_sd_files.values())
    assert engine.model_name == "tiny-flux2-klein.safetensors, tiny-qwen3.safetensors, tiny-taef2.safetensors"


def test_a_text_model_is_not_an_image_model(tiny_llama: Path):
    with pytest.raises(UsageError, match="is a text model, not an image model \\(--model\\)") as info:
        check_components({"model": tiny_llama})
    assert "--llm" in info.value.hint


def test_components_without_a_generator(tiny_sd_files):
    with pytest.raises(UsageError, match="no image model given"):
        check_components({"llm": tiny_sd_files["llm"], "taesd": tiny_sd_files["taesd"]})
    with pytest.raises(UsageError, match="unknown model component"):
        check_components({"model": tiny_sd_files["diffusion_model"], "refiner": tiny_sd_files["llm"]})


def test_unknown_file_format(tmp_path: Path):
    whisper_like = tmp_path / "ggml-tiny.bin"
    whisper_like.write_bytes(b"lmgg" + b"\x00" * 64)
    with pytest.raises(ModelFileError, match="not a GGUF or safetensors file"):
        check_components({"model": whisper_like})


def test_load_failure_names_the_missing_component():
    lines = ["[info] loading", "model.cpp:1067 - tensor 'first_stage_model.decoder.conv_in.weight' not in model file",
             "stable-diffusion.cpp:801  - load tensors from model loader failed"]
    error = load_failure(lines, "load tensors from model loader failed")
    assert "tensor 'first_stage_model.decoder.conv_in.weight' is missing (the --vae component" in error.message
    vague = load_failure(["read tensor data failed"], "read tensor data failed")
    assert vague.message == "could not load the image model: read tensor data failed"

"""Checks of a vision projector (mmproj) GGUF and its language model, before libmtmd opens them.

Everything here mirrors llama.cpp's clip loader (tools/mtmd/clip.cpp, as vendored by
llama-cpp-python 0.3.36). Why check first: a clip key of the wrong value type aborts the whole
process in a GGML_ASSERT, an `mlp` projector without `mm.2.weight` dereferences a null tensor,
and a projector width that does not match the model only fails at the first completion.

Inputs are plain data: `metadata` maps a GGUF key to its Python value, `tensor_shapes` maps a
tensor name to its shape in ggml order (`ne`, as `gguf.GGUFReader` reports it), and the optional
`value_types` maps a key to its GGUF value type number (`gguf.GGUFValueType`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from offgrid.errors import ModelFileError
from offgrid.models.validate import GGUFInfo, check_mmproj, check_text_model

# gguf.GGUFValueType numbers, spelled out so this module needs no import of gguf
_UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY = 4, 5, 6, 7, 8, 9
_TYPE_NAMES = {
    0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32",
    7: "bool", 8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64",
}

#: Vision projector types llama.cpp's clip loader knows (PROJECTOR_TYPE_NAMES in clip-impl.h,
#: audio-only and speech-generation types left out).
VISION_PROJECTORS = frozenset({
    "mlp", "ldp", "ldpv2", "resampler", "adapter", "qwen2vl_merger", "qwen2.5vl_merger",
    "qwen3vl_merger", "ling3vl", "step3vl", "gemma3", "gemma3nv", "gemma4v", "gemma4uv", "phi4",
    "idefics3", "pixtral", "internvl", "llama4", "qwen2.5o", "lfm2", "kimivl", "paddleocr",
    "lightonocr", "cogvlm", "janus_pro", "dots_ocr", "dots3note_v", "deepseekocr",
    "deepseekocr2", "deepseek4v", "glm4v", "glm5v", "youtuvl", "yasa2", "kimik25",
    "nemotron_v2_vl", "exaone4_5", "hunyuanvl", "minicpmv4_6", "mimovl", "minimax_m3",
    "granite4_vision", "muse-glimmer",
})

#: Where each projector's output width lives: (tensor, ggml axis), after clip_n_mmproj_embd().
_OUTPUT_WIDTH = {
    "mlp": ("mm.2.weight", 1),
    "phi4": ("mm.2.weight", 1),
    "pixtral": ("mm.2.weight", 1),
    "lightonocr": ("mm.2.weight", 1),
    "lfm2": ("mm.2.weight", 1),
    "kimivl": ("mm.2.weight", 1),
    "kimik25": ("mm.2.weight", 1),
    "paddleocr": ("mm.2.weight", 1),
    "ldp": ("mm.model.mb_block.1.block.2.1.bias", 0),
    "ldpv2": ("mm.model.peg.0.bias", 0),
    "resampler": ("resampler.proj.weight", 0),
    "adapter": ("mm.model.mlp.3.weight", 1),
    "qwen2vl_merger": ("mm.2.bias", 0),
    "qwen2.5vl_merger": ("mm.2.bias", 0),
    "qwen3vl_merger": ("mm.2.bias", 0),
    "gemma3": ("mm.input_projection.weight", 0),
    "gemma4v": ("mm.input_projection.weight", 1),
    "idefics3": ("mm.model.fc.weight", 1),
    "internvl": ("mm.3.weight", 1),
}

_VISION_U32_KEYS = (
    "clip.vision.embedding_length", "clip.vision.feed_forward_length", "clip.vision.block_count",
    "clip.vision.projection_dim", "clip.vision.attention.head_count", "clip.vision.image_size",
    "clip.vision.patch_size",
)
_REQUIRED_VISION_KEYS = (*_VISION_U32_KEYS, "clip.vision.attention.layer_norm_epsilon")

#: The value type the clip loader reads each key with; any other type aborts the process.
CLIP_KEY_TYPES: dict[str, int] = {
    "general.name": _STRING,
    "general.description": _STRING,
    "clip.projector_type": _STRING,
    "clip.vision.projector_type": _STRING,
    "clip.audio.projector_type": _STRING,
    "clip.vision.mm_patch_merge_type": _STRING,
    "clip.has_vision_encoder": _BOOL,
    "clip.has_audio_encoder": _BOOL,
    "clip.has_gen_audio_encoder": _BOOL,
    "clip.use_gelu": _BOOL,
    "clip.use_silu": _BOOL,
    "clip.minicpmv_version": _INT32,
    "clip.minicpmv_query_num": _UINT32,
    "clip.vision.image_mean": _ARRAY,
    "clip.vision.image_std": _ARRAY,
    **{key: _UINT32 for key in _VISION_U32_KEYS},
    **{
        f"clip.{modality}.{name}": _UINT32
        for modality in ("vision", "audio")
        for name in (
            "embedding_length", "feed_forward_length", "block_count", "projection_dim",
            "attention.head_count", "attention.head_count_kv", "attention.head_dim",
        )
    },
    "clip.vision.attention.layer_norm_epsilon": _FLOAT32,
    "clip.audio.attention.layer_norm_epsilon": _FLOAT32,
    **{
        f"clip.vision.{name}": _UINT32
        for name in (
            "image_min_pixels", "image_max_pixels", "preproc_min_tiles", "preproc_max_tiles",
            "preproc_image_size", "projector.scale_factor", "spatial_merge_size", "n_wa_pattern",
            "window_size",
        )
    },
    "clip.audio.num_mel_bins": _UINT32,
}


def check_value_types(value_types: Mapping[str, int], name: str) -> None:
    """Raise when a clip key has a value type the loader would abort on."""
    for key, expected in CLIP_KEY_TYPES.items():
        actual = value_types.get(key)
        if actual is not None and actual != expected:
            raise ModelFileError(
                f"{name}: metadata {key} is {_TYPE_NAMES.get(actual, actual)}, "
                f"expected {_TYPE_NAMES[expected]}; the file is corrupt or was written by a "
                "broken converter"
            )


def projector_type(metadata: Mapping[str, Any]) -> str:
    """The vision projector type the clip loader will use ("" when none is set)."""
    value = metadata.get("clip.projector_type") or metadata.get("clip.vision.projector_type")
    return str(value or "")


def projector_output_width(proj_type: str, tensor_shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    """Width of the embeddings the projector feeds the language model (None: not known here)."""
    if proj_type == "mlp" and "mm.3.weight" in tensor_shapes:  # Yi-style llava, MLP_NORM
        return _shape_axis(tensor_shapes, "mm.3.bias", 0)
    if proj_type not in _OUTPUT_WIDTH:
        return None
    tensor, axis = _OUTPUT_WIDTH[proj_type]
    width = _shape_axis(tensor_shapes, tensor, axis)
    if width is not None and proj_type == "qwen3vl_merger":
        deepstack = sum(1 for t in tensor_shapes if t.startswith("v.deepstack.") and t.endswith(".fc1.weight"))
        width *= 1 + deepstack
    return width


def language_model_input_width(metadata: Mapping[str, Any]) -> int | None:
    """The embedding width libmtmd compares the projector with (llama_model_n_embd_inp)."""
    arch = metadata.get("general.architecture")
    n_embd = metadata.get(f"{arch}.embedding_length")
    if not isinstance(n_embd, int):
        return None
    deepstack = metadata.get(f"{arch}.n_deepstack_layers") or 0
    return n_embd * (1 + int(deepstack))


def is_mmproj(metadata: Mapping[str, Any]) -> bool:
    """True for a clip/mmproj file (general.architecture == "clip")."""
    return metadata.get("general.architecture") == "clip"


def check_language_model(metadata: Mapping[str, Any], name: str) -> int:
    """Raise unless this is a language model libmtmd can pair; return its input width."""
    arch = metadata.get("general.architecture")
    if arch == "clip":
        raise ModelFileError(
            f"{name} is a vision projector (mmproj), not a language model",
            hint="pass it with --mmproj and give the language model with --model",
        )
    width = language_model_input_width(metadata)
    if width is None:
        raise ModelFileError(f"{name}: no {arch}.embedding_length in its metadata; not a usable language model")
    return width


def check_projector(
    metadata: Mapping[str, Any],
    tensor_shapes: Mapping[str, tuple[int, ...]],
    name: str,
    value_types: Mapping[str, int] | None = None,
) -> int | None:
    """Raise unless this is a vision mmproj the clip loader can open; return its output width."""
    arch = metadata.get("general.architecture")
    if arch != "clip":
        raise ModelFileError(
            f"{name} is not a vision projector (general.architecture is {arch!r}, expected 'clip')",
            hint="--mmproj takes the mmproj*.gguf file that comes with the vision model",
        )
    if value_types is not None:
        check_value_types(value_types, name)
    if metadata.get("clip.has_vision_encoder") is not True:
        raise ModelFileError(f"{name} has no vision encoder (clip.has_vision_encoder is not true)")
    proj = projector_type(metadata)
    if proj not in VISION_PROJECTORS:
        raise ModelFileError(f"{name}: projector type {proj or '(none)'!r} is not supported by this llama-cpp-python")
    _check_vision_hparams(metadata, name)
    if proj == "mlp" and "mm.2.weight" not in tensor_shapes:
        raise ModelFileError(f"{name}: mlp projector without mm.2.weight; the file is incomplete")
    return projector_output_width(proj, tensor_shapes)


def check_mmproj_pair(
    model_metadata: Mapping[str, Any],
    mmproj_metadata: Mapping[str, Any],
    mmproj_tensor_shapes: Mapping[str, tuple[int, ...]],
    *,
    model_name: str = "model",
    mmproj_name: str = "mmproj",
    mmproj_value_types: Mapping[str, int] | None = None,
) -> None:
    """Raise ModelFileError (one line) unless the mmproj is a vision projector made for this model."""
    text_width = check_language_model(model_metadata, model_name)
    projector_width = check_projector(mmproj_metadata, mmproj_tensor_shapes, mmproj_name, mmproj_value_types)
    if projector_width is not None and projector_width != text_width:
        raise ModelFileError(
            f"{mmproj_name} does not match {model_name}: the projector outputs {projector_width}-wide "
            f"embeddings, the model takes {text_width}",
            hint="use the mmproj file published with this model",
        )


def check_vision_files(model_path: Path, mmproj_path: Path) -> tuple[GGUFInfo, GGUFInfo]:
    """Both files of a vision model, checked as files and as a pair, before llama.cpp opens
    them; returns their parsed headers (model, mmproj)."""
    model = check_text_model(model_path)
    mmproj = check_mmproj(mmproj_path)
    check_mmproj_pair(model.metadata, mmproj.metadata, tensor_shapes(mmproj),
                      model_name=model.path.name, mmproj_name=mmproj.path.name,
                      mmproj_value_types=mmproj.value_types)
    return model, mmproj


def choose_mmproj(model_path: Path, candidates: list[Path]) -> Path:
    """The first of *candidates* that pairs with the model; the last reason when none does."""
    model = check_text_model(model_path)
    problem: ModelFileError | None = None
    for candidate in candidates:
        try:
            mmproj = check_mmproj(candidate)
            check_mmproj_pair(model.metadata, mmproj.metadata, tensor_shapes(mmproj),
                              model_name=model.path.name, mmproj_name=candidate.name,
                              mmproj_value_types=mmproj.value_types)
            return candidate
        except ModelFileError as exc:
            problem = exc
    if problem is None:
        raise ModelFileError(f"no mmproj file to pair with {model.path.name}")
    raise problem


def tensor_shapes(info: GGUFInfo) -> dict[str, tuple[int, ...]]:
    """name -> shape (ggml order) from a parsed header."""
    return {name: dims for name, (dims, _) in info.tensors.items()}


def _check_vision_hparams(metadata: Mapping[str, Any], name: str) -> None:
    for key in _REQUIRED_VISION_KEYS:
        if key not in metadata:
            raise ModelFileError(f"{name}: missing metadata {key}")
    for key in _VISION_U32_KEYS:
        if key != "clip.vision.projection_dim" and not metadata[key] > 0:
            raise ModelFileError(f"{name}: metadata {key} is {metadata[key]}, expected a positive number")
    n_embd = metadata["clip.vision.embedding_length"]
    n_head = metadata["clip.vision.attention.head_count"]
    if n_embd % n_head:
        raise ModelFileError(f"{name}: embedding length {n_embd} is not divisible by {n_head} heads")


def _shape_axis(tensor_shapes: Mapping[str, tuple[int, ...]], tensor: str, axis: int) -> int | None:
    shape = tensor_shapes.get(tensor)
    if shape is None or len(shape) <= axis:
        return None
    return int(shape[axis])

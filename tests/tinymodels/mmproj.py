"""Tiny random-weight GGUF models for vision tests: a llama language model and a CLIP mmproj.

The language model is the shared tiny llama with a chat template that takes image messages.
The mmproj is a LLaVA-style CLIP vision encoder with an `mlp` projector, shaped the way
llama.cpp's clip loader (tools/mtmd/clip.cpp) reads it: 32-pixel images, 8-pixel patches
(16 patches → 16 image tokens), and a projector whose output width equals the language
model's embedding width. Both load and run in well under a second on a CPU.

GGUF tensor shapes are written in numpy order, the reverse of ggml's `ne`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tests.tinymodels.llama import write_tiny_llama

# ChatML that also accepts list content (text parts), as the mtmd chat handler sends it
VISION_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_tiny_vision_llama(path: Path, n_embd: int = 64, seed: int = 0) -> Path:
    """The shared tiny llama (tests/tinymodels/llama.py) with a template for image messages."""
    return write_tiny_llama(path, n_embd=n_embd, chat_template=VISION_CHAT_TEMPLATE, seed=seed)


def _weights(rng: np.random.Generator, *shape: int, scale: float = 0.02) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.float32)


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float32)


def write_tiny_mmproj(
    path: Path,
    n_embd_text: int,
    *,
    n_embd: int = 32,
    n_layer: int = 2,
    n_head: int = 2,
    n_ff: int = 48,
    image_size: int = 32,
    patch_size: int = 8,
    projector_hidden: int = 64,
    projector_type: str = "mlp",
    metadata_overrides: Mapping[str, Any] | None = None,
    seed: int = 1,
) -> Path:
    """Write a random-weight CLIP vision encoder + `mlp` projector GGUF (an "mmproj").

    `n_embd_text` is the projector's output width: it must equal the language model's
    embedding length for the pair to load. `metadata_overrides` replaces or adds keys,
    typed from the Python value (str → string, float → f32, bool → bool, int → i32,
    list → array), which is how tests write metadata of the wrong value type.
    """
    import gguf

    rng = np.random.default_rng(seed)
    n_patches = (image_size // patch_size) ** 2
    writer = gguf.GGUFWriter(str(path), "clip")
    metadata: dict[str, tuple[str, Any]] = {
        "general.name": ("string", "tiny-clip"),
        "general.file_type": ("u32", 0),
        "clip.has_vision_encoder": ("bool", True),
        "clip.has_audio_encoder": ("bool", False),
        "clip.projector_type": ("string", projector_type),
        "clip.use_gelu": ("bool", True),
        "clip.vision.image_size": ("u32", image_size),
        "clip.vision.patch_size": ("u32", patch_size),
        "clip.vision.embedding_length": ("u32", n_embd),
        "clip.vision.feed_forward_length": ("u32", n_ff),
        "clip.vision.projection_dim": ("u32", n_embd_text),
        "clip.vision.block_count": ("u32", n_layer),
        "clip.vision.attention.head_count": ("u32", n_head),
        "clip.vision.attention.layer_norm_epsilon": ("f32", 1e-6),
        "clip.vision.image_mean": ("array", [0.5, 0.5, 0.5]),
        "clip.vision.image_std": ("array", [0.5, 0.5, 0.5]),
    }
    for key, value in (metadata_overrides or {}).items():
        metadata[key] = ("infer", value)
    _add_metadata(writer, metadata)

    writer.add_tensor("v.patch_embd.weight", _weights(rng, n_embd, 3, patch_size, patch_size))
    writer.add_tensor("v.patch_embd.bias", _zeros(n_embd))
    writer.add_tensor("v.position_embd.weight", _weights(rng, n_patches, n_embd))
    writer.add_tensor("v.pre_ln.weight", _ones(n_embd))
    writer.add_tensor("v.pre_ln.bias", _zeros(n_embd))
    for i in range(n_layer):
        blk = f"v.blk.{i}"
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            writer.add_tensor(f"{blk}.{name}.weight", _weights(rng, n_embd, n_embd))
            writer.add_tensor(f"{blk}.{name}.bias", _zeros(n_embd))
        for norm in ("ln1", "ln2"):
            writer.add_tensor(f"{blk}.{norm}.weight", _ones(n_embd))
            writer.add_tensor(f"{blk}.{norm}.bias", _zeros(n_embd))
        writer.add_tensor(f"{blk}.ffn_up.weight", _weights(rng, n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_up.bias", _zeros(n_ff))
        writer.add_tensor(f"{blk}.ffn_down.weight", _weights(rng, n_embd, n_ff))
        writer.add_tensor(f"{blk}.ffn_down.bias", _zeros(n_embd))
    writer.add_tensor("mm.0.weight", _weights(rng, projector_hidden, n_embd))
    writer.add_tensor("mm.0.bias", _zeros(projector_hidden))
    writer.add_tensor("mm.2.weight", _weights(rng, n_embd_text, projector_hidden))
    writer.add_tensor("mm.2.bias", _zeros(n_embd_text))
    _finish(writer)
    return path


def _add_metadata(writer: Any, metadata: Mapping[str, tuple[str, Any]]) -> None:
    import gguf

    adders = {
        "string": writer.add_string,
        "u32": writer.add_uint32,
        "f32": writer.add_float32,
        "bool": writer.add_bool,
        "array": writer.add_array,
    }
    for key, (kind, value) in metadata.items():
        if kind == "infer":
            writer.add_key_value(key, value, gguf.GGUFValueType.get_type(value))
        else:
            adders[kind](key, value)


def _finish(writer: Any) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_gguf(path: Path) -> tuple[dict[str, Any], dict[str, tuple[int, ...]], dict[str, int]]:
    """(metadata, tensor shapes in ggml order, value types) of a GGUF file, via gguf.GGUFReader."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    metadata: dict[str, Any] = {}
    value_types: dict[str, int] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        metadata[key] = field.contents()
        value_types[key] = int(field.types[0])
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    return metadata, shapes, value_types


class VisionModels:
    """Tiny vision files for tests, written once per session under *root*:

    - `model` with `mmproj` (mmproj-tiny.gguf) beside it, for auto-pairing;
    - `text_only`: a model alone in its folder (no mmproj to pair);
    - `narrow`: an mmproj whose projector is 48 wide (does not match the 64-wide model);
    - `cut_tail`: the mmproj cut by 4 bytes (llama.cpp would load it silently);
    - `bad_type`: an mmproj with clip.vision.image_size stored as int32 (GGML_ASSERT abort).
    """

    def __init__(self, root: Path):
        paired, alone, odd = root / "paired", root / "alone", root / "odd"
        for folder in (paired, alone, odd):
            folder.mkdir(parents=True, exist_ok=True)
        self.model = write_tiny_vision_llama(paired / "tiny-vlm.gguf")
        self.mmproj = write_tiny_mmproj(paired / "mmproj-tiny.gguf", n_embd_text=64)
        self.text_only = write_tiny_vision_llama(alone / "tiny-text.gguf")
        self.narrow = write_tiny_mmproj(odd / "narrow.gguf", n_embd_text=48)
        self.cut_tail = odd / "cut.gguf"
        self.cut_tail.write_bytes(self.mmproj.read_bytes()[:-4])
        self.bad_type = write_tiny_mmproj(odd / "badtype.gguf", n_embd_text=64,
                                          metadata_overrides={"clip.vision.image_size": 32})

"""Tiny random-weight GGUF models for vision tests: a llama language model and a CLIP mmproj.

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

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_WORDS = [
    "the", "a", "image", "photo", "shows", "total", "amount", "date", "due", "red", "blue",
    "green", "square", "circle", "cat", "dog", "invoice", "not", "mentioned", "is", "of",
]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _weights(rng: np.random.Generator, *shape: int, scale: float = 0.02) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.float32)


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float32)


def _spm_vocab() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocab: specials, 256 byte-fallback tokens, characters, words."""
    normal, unknown, control, byte = 1, 2, 3, 6
    tokens = ["<unk>", "<s>", "</s>"]
    types = [unknown, control, control]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [byte] * 256
    pieces = ["▁"] + [chr(c) for c in range(33, 127)] + ["▁" + w for w in _WORDS]
    tokens += pieces
    types += [normal] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    # longer pieces should win the SentencePiece merge: give words the best scores
    scores[-len(_WORDS):] = [10.0 - i * 0.01 for i in range(len(_WORDS))]
    return tokens, scores, types


def write_tiny_llama(
    path: Path,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    n_ctx: int = 512,
    chat_template: str | None = TINY_CHAT_TEMPLATE,
    seed: int = 0,
) -> Path:
    """Write a random-weight llama GGUF with a SentencePiece tokenizer and a chat template."""
    import gguf

    rng = _rng(seed)
    tokens, scores, types = _spm_vocab()
    n_vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.name", "tiny-llama")
    writer.add_uint32("llama.context_length", n_ctx)
    writer.add_uint32("llama.embedding_length", n_embd)
    writer.add_uint32("llama.block_count", n_layer)
    writer.add_uint32("llama.feed_forward_length", n_ff)
    writer.add_uint32("llama.attention.head_count", n_head)
    writer.add_uint32("llama.attention.head_count_kv", n_head)
    writer.add_uint32("llama.rope.dimension_count", n_embd // n_head)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_uint32("general.file_type", 0)  # all F32
    writer.add_string("tokenizer.ggml.model", "llama")
    writer.add_array("tokenizer.ggml.tokens", tokens)
    writer.add_array("tokenizer.ggml.scores", scores)
    writer.add_array("tokenizer.ggml.token_type", types)
    writer.add_uint32("tokenizer.ggml.unknown_token_id", 0)
    writer.add_uint32("tokenizer.ggml.bos_token_id", 1)
    writer.add_uint32("tokenizer.ggml.eos_token_id", 2)
    writer.add_bool("tokenizer.ggml.add_bos_token", True)
    if chat_template:
        writer.add_string("tokenizer.chat_template", chat_template)

    writer.add_tensor("token_embd.weight", _weights(rng, n_vocab, n_embd, scale=0.5))
    writer.add_tensor("output_norm.weight", _ones(n_embd))
    writer.add_tensor("output.weight", _weights(rng, n_vocab, n_embd, scale=0.5))
    for i in range(n_layer):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", _ones(n_embd))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{blk}.{name}.weight", _weights(rng, n_embd, n_embd))
        writer.add_tensor(f"{blk}.ffn_norm.weight", _ones(n_embd))
        writer.add_tensor(f"{blk}.ffn_gate.weight", _weights(rng, n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_up.weight", _weights(rng, n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_down.weight", _weights(rng, n_embd, n_ff))
    _finish(writer)
    return path


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

    rng = _rng(seed)
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

"""A random-weight image model that stable-diffusion.cpp really loads and runs, in about a second.

Why it is built this way
------------------------
stable-diffusion.cpp decides a model's architecture from its tensor *names*
(`ModelLoader::get_sd_version` in model.cpp) and, for the classic families, fixes every layer
size by version: SD 1.x/2.x/XL UNets, the CLIP and T5 text encoders and the KL-VAE are built with
hard-coded widths, so a shrunken SD 1.5 file is rejected ("wrong shape"). A real SD checkpoint is
gigabytes — too big for a test session, and there is no network to fetch one.

Some newer architectures read their sizes from the tensor *shapes* instead. We use FLUX.2-klein:

* diffusion model (`--diffusion-model`): the Flux DiT takes its depth from the highest
  `double_blocks.N` / `single_blocks.N`, its hidden size and text width from `txt_in.weight`, and
  its head size from `key_norm.scale`. Flux2's rotary axes (4 × 32) pin head_dim to 128, so the
  smallest model is one head of 128: 1 double block + 1 single block (~0.7 M parameters).
  Klein is recognised by `double_stream_modulation_img.lin.weight` without `single_blocks.47`.
* text encoder (`--llm`): a Qwen3 LLM whose layer count, hidden size, vocabulary and MLP width come
  from the shapes (llm.hpp); only heads (32 × 128, 8 KV heads) are fixed. One layer of width 32.
  The vocabulary stays at Qwen's 151,936 rows because the built-in Qwen tokenizer emits ids up to
  ~151,668 (chat-template tokens); a shorter table would be read out of bounds. Klein collects
  hidden states at layers 9/18/27; with a single layer none match and the engine uses the final
  norm output instead, so `txt_in` takes the LLM width (32).
* autoencoder (`--taesd`): a TAESD ("taef2" variant: 32 latent channels, GroupNorm mid-blocks)
  with its fixed 64 channels, ~2.5 M parameters, encoder included so image-to-image works. With a
  TAESD and no `--vae`, the engine uses it for both encoding and decoding.

Weights are random (fixed seed, so files are byte-identical between runs) with 1/sqrt(fan_in)
scaling so activations stay finite; norms are 1, biases 0. Everything is written as safetensors
with numpy alone (no torch, no network). At 64×64 and 1 step the engine runs this in about a
second on one CPU core, which lets tests exercise the real engine end to end.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

SEED = 20240601
DIT_HIDDEN = 128  # one head of 128 (flux2 rope needs head_dim 128)
DIT_HEAD_DIM = 128
DIT_MLP = 3 * DIT_HIDDEN  # flux2 mlp_ratio = 3
LATENT_CHANNELS = 128  # 32 VAE channels packed 2x2
LLM_HIDDEN = 32
LLM_FFN = 64
LLM_VOCAB = 151_936
LLM_HEADS, LLM_KV_HEADS, LLM_HEAD_DIM = 32, 8, 128
TAE_CHANNELS = 64
TAE_Z = 32

_DTYPES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}

Tensors = dict[str, np.ndarray]


def write_safetensors(path: Path, tensors: Tensors, metadata: dict[str, str] | None = None) -> Path:
    """Write `tensors` (name -> array, torch [out, in] order) as a safetensors file."""
    header: dict[str, object] = {"__metadata__": metadata or {}}
    offset = 0
    blobs = []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": _DTYPES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)
    return path


class _Init:
    """Deterministic random weights: scaled normals for matrices, ones for norms, zeros for biases."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def linear(self, out_dim: int, in_dim: int) -> np.ndarray:
        w = self.rng.standard_normal((out_dim, in_dim), dtype=np.float32) / np.sqrt(in_dim)
        return w.astype(np.float16)

    def conv(self, out_ch: int, in_ch: int, k: int) -> np.ndarray:
        fan_in = in_ch * k * k
        w = self.rng.standard_normal((out_ch, in_ch, k, k), dtype=np.float32) / np.sqrt(fan_in)
        return w.astype(np.float16)

    def embedding(self, rows: int, dim: int) -> np.ndarray:
        return self.rng.standard_normal((rows, dim), dtype=np.float32).astype(np.float16)

    @staticmethod
    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    @staticmethod
    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)


def flux2_klein_dit(init: _Init) -> Tensors:
    """A 1 double + 1 single block FLUX.2-klein transformer (no biases, shared modulation)."""
    h, m = DIT_HIDDEN, DIT_MLP
    t: Tensors = {
        "img_in.weight": init.linear(h, LATENT_CHANNELS),
        "txt_in.weight": init.linear(h, LLM_HIDDEN),
        "time_in.in_layer.weight": init.linear(h, 256),
        "time_in.out_layer.weight": init.linear(h, h),
        "double_stream_modulation_img.lin.weight": init.linear(6 * h, h),
        "double_stream_modulation_txt.lin.weight": init.linear(6 * h, h),
        "single_stream_modulation.lin.weight": init.linear(3 * h, h),
    }
    for stream in ("img", "txt"):
        p = f"double_blocks.0.{stream}_"
        t[p + "attn.qkv.weight"] = init.linear(3 * h, h)
        t[p + "attn.norm.query_norm.scale"] = init.ones(DIT_HEAD_DIM)
        t[p + "attn.norm.key_norm.scale"] = init.ones(DIT_HEAD_DIM)
        t[p + "attn.proj.weight"] = init.linear(h, h)
        t[p + "mlp.0.weight"] = init.linear(2 * m, h)  # silu-gated: two halves
        t[p + "mlp.2.weight"] = init.linear(h, m)
    t["single_blocks.0.linear1.weight"] = init.linear(3 * h + 2 * m, h)
    t["single_blocks.0.linear2.weight"] = init.linear(h, h + m)
    t["single_blocks.0.norm.query_norm.scale"] = init.ones(DIT_HEAD_DIM)
    t["single_blocks.0.norm.key_norm.scale"] = init.ones(DIT_HEAD_DIM)
    t["final_layer.linear.weight"] = init.linear(LATENT_CHANNELS, h)
    t["final_layer.adaLN_modulation.1.weight"] = init.linear(2 * h, h)
    return t


def qwen3_text_encoder(init: _Init, hidden: int = LLM_HIDDEN) -> Tensors:
    """A one-layer Qwen3 LLM in Hugging Face tensor names."""
    d, q_dim, kv_dim = hidden, LLM_HEADS * LLM_HEAD_DIM, LLM_KV_HEADS * LLM_HEAD_DIM
    p = "model.layers.0."
    return {
        "model.embed_tokens.weight": init.embedding(LLM_VOCAB, d),
        p + "self_attn.q_proj.weight": init.linear(q_dim, d),
        p + "self_attn.k_proj.weight": init.linear(kv_dim, d),
        p + "self_attn.v_proj.weight": init.linear(kv_dim, d),
        p + "self_attn.o_proj.weight": init.linear(d, q_dim),
        p + "self_attn.q_norm.weight": init.ones(LLM_HEAD_DIM),
        p + "self_attn.k_norm.weight": init.ones(LLM_HEAD_DIM),
        p + "mlp.gate_proj.weight": init.linear(LLM_FFN, d),
        p + "mlp.up_proj.weight": init.linear(LLM_FFN, d),
        p + "mlp.down_proj.weight": init.linear(d, LLM_FFN),
        p + "input_layernorm.weight": init.ones(d),
        p + "post_attention_layernorm.weight": init.ones(d),
        "model.norm.weight": init.ones(d),
    }


def _tae_conv(t: Tensors, init: _Init, name: str, out_ch: int, in_ch: int, k: int = 3, bias: bool = True) -> None:
    t[f"{name}.weight"] = init.conv(out_ch, in_ch, k)
    if bias:
        t[f"{name}.bias"] = init.zeros(out_ch)


def _tae_block(t: Tensors, init: _Init, name: str, with_group_norm: bool) -> None:
    c = TAE_CHANNELS
    if with_group_norm:
        _tae_conv(t, init, f"{name}.pool.0", 4 * c, c, k=1, bias=False)
        t[f"{name}.pool.1.weight"] = init.ones(4 * c)
        t[f"{name}.pool.1.bias"] = init.zeros(4 * c)
        _tae_conv(t, init, f"{name}.pool.3", c, 4 * c, k=1, bias=False)
    for i in (0, 2, 4):
        _tae_conv(t, init, f"{name}.conv.{i}", c, c)


def taef2(init: _Init) -> Tensors:
    """A TAESD for the FLUX.2 latent space (decoder and encoder), layer indices as in tae.hpp."""
    c, t = TAE_CHANNELS, {}
    dec = "decoder.layers"
    _tae_conv(t, init, f"{dec}.0", c, TAE_Z)
    for i in (2, 3, 4):
        _tae_block(t, init, f"{dec}.{i}", with_group_norm=True)
    for conv, blocks in ((6, (7, 8, 9)), (11, (12, 13, 14)), (16, (17,))):
        _tae_conv(t, init, f"{dec}.{conv}", c, c, bias=False)
        for i in blocks:
            _tae_block(t, init, f"{dec}.{i}", with_group_norm=False)
    _tae_conv(t, init, f"{dec}.18", 3, c)

    enc = "encoder.layers"
    _tae_conv(t, init, f"{enc}.0", c, 3)
    _tae_block(t, init, f"{enc}.1", with_group_norm=False)
    for conv, blocks, gn in ((2, (3, 4, 5), False), (6, (7, 8, 9), False), (10, (11, 12, 13), True)):
        _tae_conv(t, init, f"{enc}.{conv}", c, c, bias=False)
        for i in blocks:
            _tae_block(t, init, f"{enc}.{i}", with_group_norm=gn)
    _tae_conv(t, init, f"{enc}.14", TAE_Z, c)
    return t


def write_mismatched_llm(path: Path) -> Path:
    """A text encoder 48 wide: it loads, but the tiny diffusion model expects 32 (engine aborts)."""
    return write_safetensors(path, qwen3_text_encoder(_Init(SEED + 1), hidden=48))


def write_tiny_sd(directory: Path) -> dict[str, Path]:
    """Write the tiny FLUX.2-klein components into `directory`; return role -> file.

    Roles are named like the CLI flags: diffusion_model (--diffusion-model), llm (--llm),
    taesd (--taesd).
    """
    directory.mkdir(parents=True, exist_ok=True)
    init = _Init(SEED)
    note = {"offgrid": "random-weight test model, see tests/tinymodels/sd.py"}
    return {
        "diffusion_model": write_safetensors(directory / "tiny-flux2-klein.safetensors", flux2_klein_dit(init), note),
        "llm": write_safetensors(directory / "tiny-qwen3.safetensors", qwen3_text_encoder(init), note),
        "taesd": write_safetensors(directory / "tiny-taef2.safetensors", taef2(init), note),
    }

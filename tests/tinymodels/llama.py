"""Tiny random-weight llama GGUF models for tests.

The real llama.cpp engine loads these in milliseconds. Output is gibberish, but loading,
tokenizing, chat templates, streaming, context limits and stop paths all run for real.
The vocabulary is a sentencepiece-style ("llama") one: control tokens, 256 byte-fallback
tokens (so any text tokenizes), then letters and a few words.
"""

from __future__ import annotations

import string
from pathlib import Path

import gguf
import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

WORDS = ["the", "a", "and", "of", "to", "in", "is", "it", "you", "that", "hello", "world",
         "answer", "question", "model", "phone", "offline", "total", "due", "date"]


def _vocab(n_vocab: int | None = None) -> tuple[list[str], list[float], list[int]]:
    tokens: list[str] = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL,
             gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(gguf.TokenType.BYTE)
    pieces = ["▁"] + list(string.ascii_letters + string.digits + string.punctuation)
    pieces += ["▁" + c for c in string.ascii_letters]
    pieces += ["▁" + w for w in WORDS if len(w) > 1]
    for piece in pieces:
        tokens.append(piece)
        types.append(gguf.TokenType.NORMAL)
    scores = [0.0] * 5 + [0.0] * 256 + [-float(len(p)) * 0.1 + 10 * (len(p) > 2) for p in pieces]
    for i in range(len(tokens), n_vocab or 0):  # filler words up to a realistic vocab size
        tokens.append(f"▁w{i}")
        types.append(gguf.TokenType.NORMAL)
        scores.append(-20.0)
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    n_ctx_train: int = 2048,
    chat_template: str | None = CHATML_TEMPLATE,
    architecture: str = "llama",
    seed: int = 0,
    name: str = "tiny-llama",
    endless: bool = False,
    n_head_kv: int | None = None,
    n_vocab: int | None = None,
    tie_embeddings: bool = False,
    dtype: type = np.float32,
    weight_scale: float = 0.2,
) -> Path:
    """Write a 2-layer llama with a ~420-token vocab to *path* and return it.

    With *endless*, the model can never emit a control token (so never stops by itself):
    embedding dimension 0 is a constant that no layer writes to, so after the final norm it
    is always positive, and the output rows of every non-text token weigh it strongly negative.

    The other keyword arguments give realistic shapes (benchmarks): grouped-query attention
    (*n_head_kv*), a vocab padded with filler words to *n_vocab*, an output matrix shared with
    the embeddings (*tie_embeddings*), and float16 weights (*dtype*).
    """
    rng = np.random.default_rng(seed)
    n_head_kv = n_head_kv or n_head
    tokens, scores, types = _vocab(n_vocab)
    n_vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(name)
    writer.add_context_length(n_ctx_train)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_space_prefix(True)
    if chat_template:
        writer.add_chat_template(chat_template)

    # float64 draws keep the default models' values; float32 draws are quicker for big ones.
    draw = np.float64 if dtype is np.float32 else np.float32

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=draw) * weight_scale).astype(dtype)

    n_embd_kv = n_embd // n_head * n_head_kv

    embd, output = weight(n_vocab, n_embd), weight(n_vocab, n_embd)
    # Control tokens would end the reply; lone byte tokens spell invalid UTF-8 that the
    # binding holds back. An endless model emits neither, so text streams at once.
    never = [i for i, t in enumerate(types) if t != gguf.TokenType.NORMAL]
    if endless:
        embd[:, 0] = 3.0
        output[never, 0] = -50.0
    writer.add_tensor("token_embd.weight", embd)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    if not tie_embeddings:
        writer.add_tensor("output.weight", output)
    for i in range(n_layer):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for proj, rows in (("attn_q", n_embd), ("attn_k", n_embd_kv), ("attn_v", n_embd_kv)):
            writer.add_tensor(f"{blk}.{proj}.weight", weight(rows, n_embd))
        attn_out, ffn_down = weight(n_embd, n_embd), weight(n_embd, n_ff)
        if endless:
            attn_out[0, :] = 0.0
            ffn_down[0, :] = 0.0
        writer.add_tensor(f"{blk}.attn_output.weight", attn_out)
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_down.weight", ffn_down)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

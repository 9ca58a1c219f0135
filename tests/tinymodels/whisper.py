"""A tiny random-weight whisper model in whisper.cpp's ggml format, for real-engine tests.

The layout follows whisper.cpp's `models/convert-pt-to-ggml.py` (magic, 11 int32 hparams, mel
filters, vocab, then tensors as `n_dims, name_len, ftype, ne[::-1], name, data`), and the
tensor names and shapes follow `whisper_model_load` in `src/whisper.cpp`.

The weights are random except for a small "bigram" circuit in the single decoder block that
makes the decoder's next token depend only on the current token, never on the audio:

    <|startoftranscript|> -> <|en|>            (language detection answers "en";
                                                English-only models: -> <|0.00|>)
    <|transcribe|> / <|translate|> -> <|0.00|>
    <|0.00|> / <|notimestamps|> -> " Hello" -> " world" -> "." -> <|1.50|> (else <|endoftext|>)
    <|1.50|> -> <|endoftext|>

so every 30 s window of any audio decodes to one segment "Hello world." from 0.00 to 1.50 s
(without timestamps: the same text). Attention outputs are zero, so prompts do not change it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

N_AUDIO_CTX = 1500  # keeps whisper.cpp's 20 ms timestamp precision
N_TEXT_CTX = 448
N_STATE = 64
N_HEAD = 2
N_AUDIO_LAYER = 2
N_TEXT_LAYER = 1  # not 2: whisper.cpp treats 2 decoder layers as distil-whisper
N_MELS = 80
N_FFT_BINS = 201

TOKEN_HELLO = 300
TOKEN_WORLD = 301
TOKEN_PERIOD = ord(".")
END_TIMESTAMP_TICKS = 75  # <|1.50|>: 75 ticks of 20 ms

EXPECTED_TEXT = "Hello world."
EXPECTED_START = 0.0
EXPECTED_END = END_TIMESTAMP_TICKS * 0.02

_WORDS = {TOKEN_HELLO: b" Hello", TOKEN_WORLD: b" world"}


class _Tokens:
    """Special token ids as whisper.cpp derives them from n_vocab (struct whisper_vocab)."""

    def __init__(self, multilingual: bool):
        self.n_vocab = 51865 if multilingual else 51864
        shift = 1 if multilingual else 0  # eot, sot +1; the rest +dt = 99 - 98 languages
        self.eot = 50256 + shift
        self.sot = 50257 + shift
        self.en = self.sot + 1
        self.translate = 50357 + shift
        self.transcribe = 50358 + shift
        self.notimestamps = 50362 + shift
        self.beg = 50363 + shift
        self.end = self.beg + END_TIMESTAMP_TICKS

    def bigrams(self, multilingual: bool) -> dict[int, list[tuple[int, float]]]:
        """current token -> [(next token, weight)]; the highest weight wins, the next is the
        fallback when whisper.cpp masks the winner (timestamps off). English-only models start
        decoding right after <|startoftranscript|>; multilingual ones after the task token, and
        detect the language from what follows <|startoftranscript|>."""
        return {
            self.sot: [(self.en if multilingual else self.beg, 1.0)],
            self.transcribe: [(self.beg, 1.0)],
            self.translate: [(self.beg, 1.0)],
            self.notimestamps: [(TOKEN_HELLO, 1.0)],
            self.beg: [(TOKEN_HELLO, 1.0)],
            TOKEN_HELLO: [(TOKEN_WORLD, 1.0)],
            TOKEN_WORLD: [(TOKEN_PERIOD, 1.0)],
            TOKEN_PERIOD: [(self.end, 1.0), (self.eot, 0.6)],
            self.end: [(self.eot, 1.0)],
        }

    def circuit(self) -> list[int]:
        return [self.sot, self.transcribe, self.translate, self.notimestamps, self.beg,
                TOKEN_HELLO, TOKEN_WORLD, TOKEN_PERIOD, self.end, self.eot, self.en]


_EMBED_SCALE = 3.0  # length of a circuit token's embedding
_MLP_GAIN = 3.0  # how strongly the MLP writes the next token's direction
_MLP_BIAS = -3.0  # keeps hidden units of other tokens near gelu(-3) ~ 0
_N_CIRCUIT_DIMS = 16  # dimensions reserved for circuit tokens; random tokens use the rest


def write_tiny_whisper(path: Path, seed: int = 0, multilingual: bool = True) -> Path:
    """Write the tiny model to `path` (about 8 MB) and return `path`; `multilingual=False`
    gives an English-only (".en") model."""
    rng = np.random.default_rng(seed)
    tokens = _Tokens(multilingual)
    path = Path(path)
    with path.open("wb") as out:
        out.write(_header(tokens.n_vocab))
        out.write(_mel_filters())
        out.write(_vocab(tokens.eot))
        for name, data in _tensors(rng, tokens, multilingual):
            _write_tensor(out, name, data)
    return path


def _header(n_vocab: int) -> bytes:
    hparams = (n_vocab, N_AUDIO_CTX, N_STATE, N_HEAD, N_AUDIO_LAYER,
               N_TEXT_CTX, N_STATE, N_HEAD, N_TEXT_LAYER, N_MELS, 1)  # ftype 1 = f16
    return struct.pack("<I", 0x67676D6C) + struct.pack("<11i", *hparams)


def _mel_filters() -> bytes:
    """Triangular mel filters (n_mels x 201 FFT bins of a 400-point FFT at 16 kHz)."""
    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel):
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    bins_hz = np.linspace(0.0, 8000.0, N_FFT_BINS)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(8000.0), N_MELS + 2))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins_hz - lower) / (center - lower)
    falling = (upper - bins_hz) / (upper - center)
    filters = np.maximum(0.0, np.minimum(rising, falling)).astype("<f4")
    return struct.pack("<2i", N_MELS, N_FFT_BINS) + filters.tobytes()


def _vocab(n_text_tokens: int) -> bytes:
    """Text tokens below <|endoftext|>: single bytes (so any prompt tokenizes, and " " exists),
    the circuit's words, and unique fillers. whisper.cpp adds the special tokens itself."""
    parts = [struct.pack("<i", n_text_tokens)]
    for token_id in range(n_text_tokens):
        if token_id < 256:
            text = bytes([token_id])
        else:
            text = _WORDS.get(token_id, b"tok%d" % token_id)
        parts.append(struct.pack("<i", len(text)) + text)
    return b"".join(parts)


def _tensors(rng: np.random.Generator, tokens: _Tokens, multilingual: bool):
    """Yield (name, array) in PyTorch shape order; f16 for 2-D+ weights as the converter does."""
    def rand(*shape, scale=0.02):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def ones(n):
        return np.ones(n, np.float32)

    def zeros(*shape):
        return np.zeros(shape, np.float32)

    d = N_STATE
    yield "encoder.positional_embedding", rand(N_AUDIO_CTX, d)
    yield "encoder.conv1.weight", rand(d, N_MELS, 3, scale=0.1)
    yield "encoder.conv1.bias", rand(d, 1)
    yield "encoder.conv2.weight", rand(d, d, 3, scale=0.1)
    yield "encoder.conv2.bias", rand(d, 1)
    for i in range(N_AUDIO_LAYER):
        prefix = f"encoder.blocks.{i}"
        yield from _attention(prefix + ".attn", rand, zero_output=False)
        yield prefix + ".attn_ln.weight", ones(d)
        yield prefix + ".attn_ln.bias", zeros(d)
        yield prefix + ".mlp.0.weight", rand(4 * d, d)
        yield prefix + ".mlp.0.bias", rand(4 * d)
        yield prefix + ".mlp.2.weight", rand(d, 4 * d)
        yield prefix + ".mlp.2.bias", rand(d)
        yield prefix + ".mlp_ln.weight", ones(d)
        yield prefix + ".mlp_ln.bias", zeros(d)
    yield "encoder.ln_post.weight", ones(d)
    yield "encoder.ln_post.bias", zeros(d)

    token_embedding, circuit = _token_embedding(rng, tokens)
    positional = zeros(N_TEXT_CTX, d)
    positional[:, _N_CIRCUIT_DIMS:] = rand(N_TEXT_CTX, d - _N_CIRCUIT_DIMS, scale=0.01)
    yield "decoder.positional_embedding", positional
    yield "decoder.token_embedding.weight", token_embedding
    for i in range(N_TEXT_LAYER):
        prefix = f"decoder.blocks.{i}"
        last = i == N_TEXT_LAYER - 1
        yield from _attention(prefix + ".attn", rand, zero_output=True)
        yield prefix + ".attn_ln.weight", ones(d)
        yield prefix + ".attn_ln.bias", zeros(d)
        yield from _attention(prefix + ".cross_attn", rand, zero_output=True)
        yield prefix + ".cross_attn_ln.weight", ones(d)
        yield prefix + ".cross_attn_ln.bias", zeros(d)
        mlp_in, mlp_in_bias, mlp_out = _bigram_mlp(circuit, tokens.bigrams(multilingual)) if last else (
            zeros(4 * d, d), zeros(4 * d), zeros(d, 4 * d))
        yield prefix + ".mlp.0.weight", mlp_in
        yield prefix + ".mlp.0.bias", mlp_in_bias
        yield prefix + ".mlp.2.weight", mlp_out
        yield prefix + ".mlp.2.bias", zeros(d)
        yield prefix + ".mlp_ln.weight", ones(d)
        yield prefix + ".mlp_ln.bias", zeros(d)
    yield "decoder.ln.weight", ones(d)
    yield "decoder.ln.bias", zeros(d)


def _attention(prefix: str, rand, zero_output: bool):
    d = N_STATE
    yield prefix + ".query.weight", rand(d, d)
    yield prefix + ".query.bias", rand(d)
    yield prefix + ".key.weight", rand(d, d)
    yield prefix + ".value.weight", rand(d, d)
    yield prefix + ".value.bias", rand(d)
    yield prefix + ".out.weight", np.zeros((d, d), np.float32) if zero_output else rand(d, d)
    yield prefix + ".out.bias", np.zeros(d, np.float32) if zero_output else rand(d)


def _token_embedding(rng: np.random.Generator,
                     tokens: _Tokens) -> tuple[np.ndarray, dict[int, int]]:
    """Random rows outside the circuit dims; circuit tokens get one basis direction each."""
    table = np.zeros((tokens.n_vocab, N_STATE), np.float32)
    table[:, _N_CIRCUIT_DIMS:] = rng.standard_normal(
        (tokens.n_vocab, N_STATE - _N_CIRCUIT_DIMS)) * 0.02
    circuit = {token: dim for dim, token in enumerate(tokens.circuit())}
    for token, dim in circuit.items():
        table[token] = 0.0
        table[token, dim] = _EMBED_SCALE
    return table, circuit


def _bigram_mlp(circuit: dict[int, int], bigrams: dict[int, list[tuple[int, float]]]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hidden unit per bigram: it fires on the current token's direction and writes the
    next token's direction into the residual stream."""
    mlp_in = np.zeros((4 * N_STATE, N_STATE), np.float32)
    mlp_in_bias = np.full(4 * N_STATE, _MLP_BIAS, np.float32)
    mlp_out = np.zeros((N_STATE, 4 * N_STATE), np.float32)
    for unit, (current, successors) in enumerate(bigrams.items()):
        mlp_in[unit, circuit[current]] = 1.0
        for successor, weight in successors:
            mlp_out[circuit[successor], unit] = _MLP_GAIN * weight
    return mlp_in, mlp_in_bias, mlp_out


def _write_tensor(out, name: str, data: np.ndarray) -> None:
    if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
        data = data.reshape(data.shape[0], 1)
    keep_f32 = data.ndim < 2 or name.endswith(("conv1.bias", "conv2.bias", "positional_embedding"))
    data = data.astype("<f4" if keep_f32 else "<f2")
    encoded = name.encode()
    out.write(struct.pack("<3i", data.ndim, len(encoded), 0 if keep_f32 else 1))
    out.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
    out.write(encoded)
    out.write(data.tobytes())

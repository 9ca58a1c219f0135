"""The llama engine's speed options: what the tuning logic decides, and that each setting
loads and generates on the real engine (tiny models; no timing assertions)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from offgrid import config
from offgrid.engines import llama
from offgrid.engines.base import GenerationSettings, GenerationStats
from offgrid.errors import UsageError
from tests.tinymodels.llama import write_tiny_llama


def test_defaults_are_the_measured_ones() -> None:
    assert llama.speed_settings() == {"flash_attn": llama.DEFAULT_FLASH_ATTN,
                                      "kv_cache": llama.DEFAULT_KV_CACHE,
                                      "n_batch": llama.DEFAULT_BATCH}


def test_quantized_kv_cache_turns_flash_attention_on() -> None:
    assert llama.speed_settings(kv_cache="Q8_0") == {"flash_attn": True, "kv_cache": "q8_0",
                                                     "n_batch": llama.DEFAULT_BATCH}
    assert llama.speed_settings(flash_attn=True, kv_cache="q4_0", batch=64)["n_batch"] == 64
    assert llama.speed_settings(flash_attn=False)["flash_attn"] is False


def test_contradictions_and_typos_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="needs flash attention"):
        llama.speed_settings(flash_attn=False, kv_cache="q4_0")
    with pytest.raises(UsageError, match="unknown KV-cache type"):
        llama.speed_settings(kv_cache="q5_1")
    with pytest.raises(UsageError, match="at least 1"):
        llama.speed_settings(batch=0)


def test_config_keys_exist() -> None:
    assert config.parse_value("chat.flash_attn", "on") is True
    assert config.parse_value("chat.kv_cache", "q8_0") == "q8_0"
    assert config.parse_value("chat.batch", "256") == 256


def test_amx_detection(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor: 0\nflags\t\t: fpu sse avx2 amx_bf16 amx_tile amx_int8\n")
    assert llama.cpu_has_amx(cpuinfo)
    cpuinfo.write_text("processor: 0\nFeatures\t: fp asimd evtstrm aes\n")  # a phone
    assert not llama.cpu_has_amx(cpuinfo)
    assert not llama.cpu_has_amx(tmp_path / "absent")


def test_model_params_override_is_undone() -> None:
    class Params:
        use_extra_bufts = True

    class FakeBinding:
        llama_cpp = sys.modules[__name__]  # any module object with an attribute to patch

    module = FakeBinding.llama_cpp
    module.llama_model_default_params = Params  # type: ignore[attr-defined]
    with llama.model_params_override(FakeBinding, use_extra_bufts=False):
        assert module.llama_model_default_params().use_extra_bufts is False
    assert module.llama_model_default_params is Params
    del module.llama_model_default_params


@pytest.fixture(scope="module")
def head32_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Attention heads of 32 values: small enough for tests, big enough for q8_0/q4_0 KV."""
    return write_tiny_llama(tmp_path_factory.mktemp("speed") / "head32.gguf", n_embd=64,
                            n_head=2, n_head_kv=1, seed=3)


@pytest.mark.parametrize("kv_cache", ["f16", "q8_0", "q4_0"])
def test_each_kv_cache_type_generates(head32_llama: Path, kv_cache: str) -> None:
    engine = llama.LlamaEngine(head32_llama, n_ctx=512, n_threads=1,
                               **llama.speed_settings(kv_cache=kv_cache, batch=8))
    try:
        text = "".join(engine.chat([{"role": "user", "content": "hello there world"}],
                                   GenerationSettings(max_tokens=4, temperature=0)))
        assert engine.kv_cache == kv_cache
        assert engine.llm.n_batch == 8
        assert engine.stats.completion_tokens >= 1 and isinstance(text, str)
    finally:
        engine.close()


def test_kv_cache_falls_back_to_f16_when_heads_do_not_fit(tiny_llama: Path) -> None:
    engine = llama.LlamaEngine(tiny_llama, n_ctx=256, flash_attn=True, kv_cache="q8_0")
    try:
        assert engine.kv_cache == "f16"  # 16-value heads: q8_0 blocks hold 32
    finally:
        engine.close()


def test_tokens_per_second_leaves_out_the_first_token() -> None:
    stats = GenerationStats(completion_tokens=11, generation_seconds=2.0)
    assert stats.tokens_per_second == 5.0
    assert GenerationStats(completion_tokens=1).tokens_per_second == 0.0


# --- the sampling loop (engines/llama.py _sample) ----------------------------------------------
def test_stop_helpers() -> None:
    assert llama._first_stop("abc<end>def", ["zz", "<end>"]) == 3
    assert llama._first_stop("abc", ["zz"]) is None
    assert llama._partial_stop("answer <en", ["<end>"]) == 3
    assert llama._partial_stop("answer", ["<end>", "r!"]) == 1
    assert llama._partial_stop("answer", []) == 0


def _reset(engine: llama.LlamaEngine) -> None:
    engine.llm.reset()
    engine._cache_text, engine._cache_tokens = "", []


def test_stop_string_length_and_create_completion_parity(tiny_llama: Path) -> None:
    engine = llama.LlamaEngine(tiny_llama, n_ctx=512, n_threads=1)
    messages = [{"role": "user", "content": "hello world"}]
    try:
        free = GenerationSettings(max_tokens=24, temperature=0.9, seed=5)
        text = "".join(engine.chat(messages, free))
        assert engine.stats.finish_reason == "length" and engine.stats.completion_tokens == 24
        _reset(engine)
        # the same text as llama-cpp-python's own streaming completion, multi-byte characters
        # split over byte tokens aside: create_completion drops them (offgrid keeps them), and
        # skips its max_tokens check after one, so it may run a token or two longer
        _, _, template_stop = engine.render(messages)
        reference = "".join(chunk["choices"][0]["text"] for chunk in engine.llm.create_completion(
            prompt=engine.prompt_tokens(messages), stream=True, max_tokens=24, temperature=0.9,
            top_p=free.top_p, top_k=free.top_k, min_p=free.min_p,
            repeat_penalty=free.repeat_penalty, seed=5, stop=template_stop))
        assert reference.encode("ascii", "ignore").startswith(text.encode("ascii", "ignore"))
        _reset(engine)
        stop = next(text[i:i + 2] for i in range(len(text) // 2, len(text) - 1)
                    if text[i:i + 2].isascii())
        stopped = "".join(engine.chat(messages, GenerationSettings(
            max_tokens=24, temperature=0.9, seed=5, stop=[stop])))
        assert engine.stats.finish_reason == "stop"
        assert stop not in stopped and text.startswith(stopped)
    finally:
        engine.close()


def test_closing_the_engine_before_an_abandoned_stream_is_quiet(tiny_llama: Path) -> None:
    """`offgrid chat … | head -c 5`: the reader leaves, the engine is closed, and the
    half-read reply stream is finalized later; that must not raise (it printed a traceback)."""
    engine = llama.LlamaEngine(tiny_llama, n_ctx=256, n_threads=1)
    stream = engine.chat([{"role": "user", "content": "hello"}], GenerationSettings(max_tokens=8))
    next(stream)
    engine.close()
    stream.close()
    assert engine.stats.finish_reason == "cancelled"

"""llama-cpp-python adapter: load a GGUF language model, count tokens, stream chat replies.

Prompts are rendered with the model's own chat template (GGUF metadata) or, when it has none,
a named llama-cpp-python format picked from its special tokens and architecture. Follow-up
turns are built so their tokens start with exactly the tokens already in the KV cache, so
each turn evaluates only what is new.
"""

from __future__ import annotations

import ctypes
import importlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from offgrid.engines import native
from offgrid.engines.base import GenerationSettings, GenerationStats, Message
from offgrid.errors import EngineError, ModelFileError, OffgridError
from offgrid.models.validate import GGUFInfo, check_text_model

# general.architecture -> llama-cpp-python chat format, for GGUFs without a template.
ARCH_FORMATS = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "qwen": "qwen",
                "qwen2": "chatml", "qwen3": "chatml", "qwen2moe": "chatml", "phi3": "chatml",
                "smollm3": "chatml", "llama": "llama-2", "mistral": "mistral-instruct"}
# A special token whose presence settles the format.
TOKEN_FORMATS = (("<|start_header_id|>", "llama-3"), ("<start_of_turn>", "gemma"),
                 ("<|im_start|>", "chatml"))

_log_callback: Any = None


class ContextOverflowError(OffgridError):
    """A prompt that cannot fit in the context window at all."""

    def __init__(self, prompt_tokens: int, n_ctx: int):
        super().__init__(
            f"the prompt has {prompt_tokens} tokens but the context window holds {n_ctx}",
            hint="shorten it, or raise --ctx if the model and memory allow")
        self.prompt_tokens, self.n_ctx = prompt_tokens, n_ctx


def _route_native_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's (and ggml's) log lines to native.record_log instead of stderr."""
    global _log_callback
    if _log_callback is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        native.record_log(text.decode("utf-8", errors="replace"))

    _log_callback = callback  # keep a reference: the C side holds the pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def native_log_callback() -> Any:
    """The ctypes callback that feeds native.record_log (set up by import_llama()); the
    vision adapter hands it to libmtmd too."""
    return _log_callback


def import_llama() -> Any:
    """Import llama_cpp lazily, with its logs routed."""
    llama_cpp = native.import_engine("llama")
    importlib.import_module("llama_cpp.llama")  # installs the binding's own logger first

    _route_native_logs(llama_cpp)
    return llama_cpp


class LlamaEngine:
    """A loaded GGUF language model behind the TextEngine interface."""

    def __init__(self, model_path: Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 n_batch: int = 512, seed: int | None = None, chat_format: str | None = None,
                 info: GGUFInfo | None = None, model_name: str | None = None,
                 flash_attn: bool = False):
        self.info = info or check_text_model(model_path)
        self.model_name = model_name or model_path.name
        trained = self.info.arch_value("context_length")
        if isinstance(trained, int) and trained > 0:
            n_ctx = min(n_ctx, trained)
        llama_cpp = import_llama()
        kwargs: dict[str, Any] = dict(n_ctx=n_ctx, n_batch=min(n_batch, n_ctx), verbose=False,
                                      use_mmap=True, flash_attn=flash_attn)
        if n_threads:
            kwargs.update(n_threads=n_threads, n_threads_batch=n_threads)
        if seed is not None:
            kwargs["seed"] = seed
        try:
            self.llm = llama_cpp.Llama(str(model_path), **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            reason = native.last_native_error(str(exc))
            raise ModelFileError(f"llama.cpp could not load {model_path.name}: {reason}") from None
        self.n_ctx = self.llm.n_ctx()
        self.stats = GenerationStats()
        self.chat_format_source = "template"
        self._formatter = self._make_formatter(chat_format)
        self._eval_calls: list[list[int]] = []
        self._cache_tokens: list[int] = []
        self._cache_text = ""
        self._wrap_eval()

    # --- prompt building -----------------------------------------------------------------
    def _token_text(self, token_id: int) -> str:
        return self.llm._model.token_get_text(token_id) if token_id >= 0 else ""

    def _is_single_special(self, text: str) -> bool:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True)) == 1

    def _make_formatter(self, chat_format: str | None) -> Callable[..., Any]:
        from llama_cpp import llama_chat_format as fmt

        template = self.llm.metadata.get("tokenizer.chat_template")
        if template and not chat_format:
            eos = self.llm.token_eos()
            return fmt.Jinja2ChatFormatter(
                template=template, eos_token=self._token_text(eos),
                bos_token=self._token_text(self.llm.token_bos()),
                stop_token_ids=[eos])
        name = chat_format or self._guess_format()
        self.chat_format_source = name
        native.record_log(f"offgrid: {self.model_name} has no chat template; using the "
                          f"'{name}' format")
        handler_name = f"format_{name.replace('-', '').replace('.', '_')}"
        formatter = getattr(fmt, handler_name, None) or _registered_formatter(fmt, name)
        if formatter is None:
            raise EngineError(f"unknown chat format {name!r}")
        return formatter

    def _guess_format(self) -> str:
        for token, name in TOKEN_FORMATS:
            if self._is_single_special(token):
                return name
        return ARCH_FORMATS.get(self.info.architecture, "chatml")

    def render(self, messages: list[Message], **template_kwargs: Any) -> tuple[str, bool, list[str]]:
        """The prompt text, whether it already holds BOS, and the stop strings."""
        try:
            response = self._formatter(messages=messages, **template_kwargs)
        except Exception as exc:  # jinja errors in a model's own template
            raise EngineError(f"the model's chat template failed: {exc}") from None
        stop = response.stop if isinstance(response.stop, list) else (
            [response.stop] if response.stop else [])
        return response.prompt, bool(getattr(response, "added_special", False)), stop

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def count_tokens(self, text: str) -> int:
        """Tokens of plain text (no special tokens, no BOS)."""
        return len(self.tokenize(text, special=False))

    def prompt_tokens(self, messages: list[Message], **template_kwargs: Any) -> list[int]:
        """Tokens for a chat prompt, reusing the cached tokens when the text continues them."""
        text, has_bos, _ = self.render(messages, **template_kwargs)
        if self._cache_text and text.startswith(self._cache_text):
            suffix = text[len(self._cache_text):]
            return self._cache_tokens + self.tokenize(suffix)
        return self.tokenize(text, add_bos=not has_bos)

    def count_chat_tokens(self, messages: list[Message], **template_kwargs: Any) -> int:
        return len(self.prompt_tokens(messages, **template_kwargs))

    # --- generation ------------------------------------------------------------------------
    def _wrap_eval(self) -> None:
        original = self.llm.eval

        def counted_eval(tokens: Any) -> None:
            tokens = list(tokens)
            self._eval_calls.append(tokens)
            original(tokens)

        self.llm.eval = counted_eval

    def chat(self, messages: list[Message], settings: GenerationSettings,
             **template_kwargs: Any) -> Iterator[str]:
        """Stream the reply to *messages*; stats are in self.stats when it ends."""
        text, _, stop = self.render(messages, **template_kwargs)
        tokens = self.prompt_tokens(messages, **template_kwargs)
        return self._generate(tokens, text, stop, settings)

    def complete(self, prompt: str, settings: GenerationSettings) -> Iterator[str]:
        """Stream a raw completion of *prompt* (no chat template)."""
        return self._generate(self.tokenize(prompt, add_bos=True), prompt, [], settings)

    def _generate(self, tokens: list[int], text: str, stop: list[str],
                  settings: GenerationSettings) -> Iterator[str]:
        if len(tokens) >= self.n_ctx:
            raise ContextOverflowError(len(tokens), self.n_ctx)
        room = self.n_ctx - len(tokens)
        max_tokens = min(settings.max_tokens or room, room)
        stats = self.stats = GenerationStats(prompt_tokens=len(tokens))
        return self._stream(tokens, text, stop + list(settings.stop), settings, max_tokens, stats)

    def _stream(self, tokens: list[int], text: str, stop: list[str],
                settings: GenerationSettings, max_tokens: int,
                stats: GenerationStats) -> Iterator[str]:
        start = time.perf_counter()
        self._eval_calls = []
        self._cache_text, self._cache_tokens = "", []
        first: float | None = None
        reply: list[str] = []
        stats.finish_reason = "cancelled"
        try:
            stream = self.llm.create_completion(
                prompt=tokens, stream=True, max_tokens=max_tokens,
                temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                min_p=settings.min_p, repeat_penalty=settings.repeat_penalty,
                seed=settings.seed, stop=stop or None)
            for chunk in stream:
                if first is None:
                    first = time.perf_counter()
                choice = chunk["choices"][0]
                piece = choice.get("text") or ""
                if piece:
                    reply.append(piece)
                    yield piece
                if choice.get("finish_reason"):
                    stats.finish_reason = choice["finish_reason"]
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"generation failed: {native.last_native_error(str(exc))}") from None
        finally:
            end = time.perf_counter()
            first = first or end
            stats.time_to_first_token = first - start
            stats.prompt_seconds = first - start
            stats.generation_seconds = end - first
            # generate() evaluates the uncached prompt in one call, then one call per token.
            calls = self._eval_calls
            stats.prompt_tokens_evaluated = len(calls[0]) if calls else 0
            generated = [tok for call in calls[1:] for tok in call]
            stats.completion_tokens = len(generated) + (1 if reply else 0)
            self._remember_cache(tokens, text, generated)

    def _remember_cache(self, prompt: list[int], text: str, generated: list[int]) -> None:
        """Record the tokens now in the KV cache and the text they spell, for the next turn."""
        # Decoded as create_completion decodes its stream, so the texts line up.
        fed_text = self.llm.detokenize(generated).decode("utf-8", errors="ignore")
        self._cache_tokens = list(prompt) + list(generated)
        self._cache_text = text + fed_text

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None


def _registered_formatter(fmt: Any, name: str) -> Callable[..., Any] | None:
    """Find a named format's formatter function among llama_chat_format's `format_*`."""
    for attr in dir(fmt):
        if attr.startswith("format_") and attr.replace("format_", "") == name.replace("-", ""):
            return getattr(fmt, attr)
    return None

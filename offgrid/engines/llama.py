"""llama-cpp-python adapter: load a GGUF language model, count tokens, stream chat replies.

Prompts are rendered with the model's own chat template (GGUF metadata) or, when it has none,
a named llama-cpp-python format picked from its special tokens and architecture. Follow-up
turns are built so their tokens start with exactly the tokens already in the KV cache, so
each turn evaluates only what is new.
"""

from __future__ import annotations

import codecs
import importlib
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from offgrid.engines import native
from offgrid.engines.base import GenerationSettings, GenerationStats, Message, template_arguments
from offgrid.engines.guard import RepetitionGuard
from offgrid.engines.loader import Checked, EngineOptions
from offgrid.models.store import ResolvedModel
from offgrid.errors import ContextOverflowError, EngineError, ModelFileError, UsageError
from offgrid.models.validate import GGUFInfo, check_text_model

# general.architecture -> llama-cpp-python chat format, for GGUFs without a template.
ARCH_FORMATS = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "qwen": "qwen",
                "qwen2": "chatml", "qwen3": "chatml", "qwen2moe": "chatml", "phi3": "chatml",
                "smollm3": "chatml", "llama": "llama-2", "mistral": "mistral-instruct"}
# A special token whose presence settles the format.
TOKEN_FORMATS = (("<|start_header_id|>", "llama-3"), ("<start_of_turn>", "gemma"),
                 ("<|im_start|>", "chatml"))

# Speed defaults, measured on a 0.5B Q4_0 model (benchmarks/bench_settings.py; README,
# "Performance"): flash attention made generation ~30 % slower on CPU; a q8_0/q4_0 KV cache
# costs speed for memory; batch 128 evaluates prompts as fast as 512 with ~40 MB less RSS.
DEFAULT_FLASH_ATTN = False
DEFAULT_KV_CACHE = "f16"
DEFAULT_BATCH = 128
KV_CACHE_TYPES = {"f16": "GGML_TYPE_F16", "q8_0": "GGML_TYPE_Q8_0", "q4_0": "GGML_TYPE_Q4_0"}

_log_callback: Any = None


def _route_native_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's (and ggml's) log lines to native.record_log instead of stderr."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

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


def speed_settings(flash_attn: bool | None = None, kv_cache: str | None = None,
                   batch: int | None = None) -> dict[str, Any]:
    """Llama() keyword arguments for the speed options; None means the measured default.

    A quantized KV cache needs flash attention in llama.cpp (for V), so asking for one
    turns flash attention on unless it was explicitly turned off, which is an error.
    """
    kv_cache = (kv_cache or DEFAULT_KV_CACHE).lower()
    if kv_cache not in KV_CACHE_TYPES:
        raise UsageError(f"unknown KV-cache type {kv_cache!r}",
                         hint="use one of " + ", ".join(KV_CACHE_TYPES))
    if kv_cache != "f16":
        if flash_attn is False:
            raise UsageError(f"a {kv_cache} KV cache needs flash attention",
                             hint="drop --no-flash-attn, or use --kv-cache f16")
        flash_attn = True
    if batch is not None and batch < 1:
        raise UsageError(f"--batch must be at least 1, not {batch}")
    return {"flash_attn": DEFAULT_FLASH_ATTN if flash_attn is None else flash_attn,
            "kv_cache": kv_cache, "n_batch": batch or DEFAULT_BATCH}


def _head_size_fits(info: GGUFInfo, kv_cache: str) -> bool:
    """Quantized KV blocks hold 32 values: the attention head size must be a multiple."""
    if kv_cache == "f16":
        return True
    heads = info.arch_value("attention.head_count") or 1
    size = info.arch_value("attention.key_length") or (
        (info.arch_value("embedding_length") or 0) // heads if isinstance(heads, int) else 0)
    if isinstance(size, int) and size % 32 == 0:
        return True
    native.record_log(f"offgrid: head size {size} does not fit a {kv_cache} KV cache; "
                      "using f16")
    return False


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on x86 CPUs with AMX, whose llama.cpp kernels crash (llama.cpp issue #20824)."""
    try:
        with cpuinfo.open() as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_int8" in line.split()
    except OSError:
        pass
    return False


def safe_model_params() -> dict[str, Any]:
    """llama_model_params fields this CPU needs: AMX weight repacking segfaults on the first
    decode of a quantized model, so skip extra buffer types there (phones never have AMX)."""
    return {"use_extra_bufts": False} if cpu_has_amx() else {}


@contextmanager
def model_params_override(llama_cpp: Any, **fields: Any) -> Iterator[None]:
    """Set llama_model_params fields that Llama() does not expose, while it is built."""
    module = llama_cpp.llama_cpp
    original = module.llama_model_default_params

    def patched() -> Any:
        params = original()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    module.llama_model_default_params = patched
    try:
        yield
    finally:
        module.llama_model_default_params = original


DEFAULT_CTX = 4096
KV_BYTES = {"f16": 2, "q8_0": 1, "q4_0": 1}  # per value, rounded up (q4_0: 0.56)
LOAD_HEADROOM_MB = 100  # llama.cpp's compute buffers beyond weights and KV cache


def trained_context(info: GGUFInfo) -> int | None:
    """The context length the model was trained for, if its GGUF says."""
    trained = info.arch_value("context_length")
    return trained if isinstance(trained, int) and trained > 0 else None


def fit_context(info: GGUFInfo, n_ctx: int) -> int:
    """*n_ctx*, no larger than the context the model was trained for (llama.cpp's own cap)."""
    trained = trained_context(info)
    return min(n_ctx, trained) if trained else n_ctx


def context_notes(model: ResolvedModel, info: GGUFInfo, ctx: int | None) -> list[str]:
    """What to tell the user about --ctx (or config ctx): lowered to what the model knows."""
    trained = trained_context(info)
    if ctx and trained and ctx > trained:
        return [f"--ctx {ctx} is more than {model.name} was trained for; using {trained} tokens"]
    return []


def context_size(model: ResolvedModel, ctx: int | None) -> int:
    """--ctx, else the catalog's value for the model, else DEFAULT_CTX."""
    return ctx or (model.entry.ctx if model.entry and model.entry.ctx else DEFAULT_CTX)


def kv_cache_mb(info: GGUFInfo, n_ctx: int, kv_cache: str = "f16") -> int:
    """Estimated KV-cache size for *n_ctx* tokens, from the GGUF hyper-parameters."""
    n_ctx = fit_context(info, n_ctx)  # the engine never allocates more than the model knows
    layers = info.arch_value("block_count", 0) or 0
    embd = info.arch_value("embedding_length", 0) or 0
    heads = info.arch_value("attention.head_count", 1) or 1
    kv_heads = info.arch_value("attention.head_count_kv", heads) or heads
    if isinstance(heads, list) or isinstance(kv_heads, list):
        return 0
    kv_width = embd * kv_heads // max(heads, 1)
    f16_mb = 2 * layers * n_ctx * kv_width * 2 // (1 << 20)
    return f16_mb * KV_BYTES[kv_cache] // 2


def engine_arguments(model: ResolvedModel, options: EngineOptions, info: GGUFInfo) -> dict[str, Any]:
    """LlamaEngine keyword arguments for *model* under *options* (speed options checked)."""
    from offgrid import device

    return dict(n_ctx=context_size(model, options.ctx),
                n_threads=options.threads or device.default_threads(), seed=options.seed,
                chat_format=model.options.get("chat_format"), info=info, model_name=model.name,
                **speed_settings(options.flash_attn, options.kv_cache, options.batch))


BASE_MODEL = re.compile(r"(?<![a-z])(base|pretrain(ed)?|pt)(?![a-z])", re.I)
INSTRUCT_MODEL = re.compile(r"instruct|chat|(?<![a-z])(it|sft|dpo|rlhf)(?![a-z])", re.I)
NOTICES_FILE = "notices"  # model files already warned about, one a line (device.paths data dir)


def base_model_notes(model: ResolvedModel, info: GGUFInfo) -> list[str]:
    """A warning, once per model file, for a base (not instruction-tuned) model: without a
    chat template it continues text instead of answering."""
    if info.metadata.get("tokenizer.chat_template"):
        return []
    names = " ".join(str(v) for v in (model.path.name, info.metadata.get("general.name", ""),
                                      info.metadata.get("general.finetune", "")))
    if INSTRUCT_MODEL.search(names) or not BASE_MODEL.search(names):
        return []
    from offgrid.device import paths
    from offgrid.models import store

    notices = paths.private_dir(paths.data_dir()) / NOTICES_FILE
    key = str(model.path)
    try:
        seen = notices.read_text(encoding="utf-8").splitlines()
    except OSError:
        seen = []
    if key in seen:
        return []
    try:
        with notices.open("a", encoding="utf-8") as handle:
            handle.write(key + "\n")
        notices.chmod(0o600)
    except OSError:
        pass
    return [f"{model.path.name} looks like a base model (no chat template, not instruction-"
            f"tuned): it continues text rather than answering; for answers pull an instruct "
            f"model: offgrid models pull {store.default_spec('text')}"]


class TextAdapter:
    """The loader's adapter for GGUF language models."""

    def check(self, model: ResolvedModel, options: EngineOptions) -> Checked:
        speed = speed_settings(options.flash_attn, options.kv_cache, options.batch)
        info = check_text_model(model.path)
        kv_mb = kv_cache_mb(info, context_size(model, options.ctx), speed["kv_cache"])
        return Checked(model, kv_mb + LOAD_HEADROOM_MB, model.name, {"info": info},
                       context_notes(model, info, options.ctx) + base_model_notes(model, info))

    def load(self, checked: Checked, options: EngineOptions) -> LlamaEngine:
        model = checked.model
        return LlamaEngine(model.path, **engine_arguments(model, options, checked.details["info"]))


class LlamaEngine:
    """A loaded GGUF language model behind the TextEngine interface."""

    def __init__(self, model_path: Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 n_batch: int = DEFAULT_BATCH, seed: int | None = None,
                 chat_format: str | None = None, info: GGUFInfo | None = None,
                 model_name: str | None = None, flash_attn: bool = DEFAULT_FLASH_ATTN,
                 kv_cache: str = DEFAULT_KV_CACHE, n_ubatch: int | None = None):
        self.info = info or check_text_model(model_path)
        self.model_name = model_name or model_path.name
        n_ctx = fit_context(self.info, n_ctx)
        llama_cpp = import_llama()
        n_batch = min(n_batch, n_ctx)
        self.kv_cache = kv_cache if _head_size_fits(self.info, kv_cache) else "f16"
        kv_type = getattr(llama_cpp, KV_CACHE_TYPES[self.kv_cache])
        kwargs: dict[str, Any] = dict(n_ctx=n_ctx, n_batch=n_batch, verbose=False,
                                      use_mmap=True, flash_attn=flash_attn,
                                      n_ubatch=min(n_ubatch or n_batch, n_batch),
                                      type_k=kv_type, type_v=kv_type)
        if n_threads:
            kwargs.update(n_threads=n_threads, n_threads_batch=n_threads)
        if seed is not None:
            kwargs["seed"] = seed
        try:
            with model_params_override(llama_cpp, **safe_model_params()):
                self.llm = llama_cpp.Llama(str(model_path), **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            reason = native.last_native_error(str(exc))
            raise ModelFileError(f"llama.cpp could not load {model_path.name}: {reason}") from None
        self.n_ctx = self.llm.n_ctx()
        self.n_ctx_max = max(trained_context(self.info) or self.n_ctx, self.n_ctx)
        self.stats = GenerationStats()
        self.chat_format_source = "template"
        self._formatter = self._make_formatter(chat_format)
        self._is_end = lambda token: llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token)
        self._pieces: dict[int, bytes] = {}
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

    def count_chat_tokens(self, messages: list[Message], think: bool | None = None) -> int:
        return len(self.prompt_tokens(messages, **template_arguments(think)))

    # --- generation ------------------------------------------------------------------------
    def _wrap_eval(self) -> None:
        original = self.llm.eval

        def counted_eval(tokens: Any) -> None:
            tokens = list(tokens)
            self._eval_calls.append(tokens)
            original(tokens)

        self.llm.eval = counted_eval

    def chat(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        """Stream the reply to *messages*; stats are in self.stats when it ends."""
        template_kwargs = template_arguments(settings.think)
        text, _, stop = self.render(messages, **template_kwargs)
        tokens = self.prompt_tokens(messages, **template_kwargs)
        return self._generate(tokens, text, stop, settings)

    def complete(self, prompt: str, settings: GenerationSettings) -> Iterator[str]:
        """Stream a raw completion of *prompt*, no chat template (offgrid serve's
        /v1/completions)."""
        return self._generate(self.tokenize(prompt, add_bos=True), prompt, [], settings)

    def _generate(self, tokens: list[int], text: str, stop: list[str],
                  settings: GenerationSettings) -> Iterator[str]:
        if len(tokens) >= self.n_ctx:
            raise ContextOverflowError(len(tokens), self.n_ctx, self.n_ctx_max)
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
        timing = {"first": 0.0}
        stats.finish_reason = "cancelled"
        try:
            for piece in self._sample(tokens, settings, max_tokens, stop, stats, timing):
                yield piece
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"generation failed: {native.last_native_error(str(exc))}") from None
        finally:
            end = time.perf_counter()
            first = timing["first"] or end
            stats.time_to_first_token = first - start
            stats.prompt_seconds = first - start
            stats.generation_seconds = end - first
            # generate() evaluates the uncached prompt in one call, then one call per token.
            calls = self._eval_calls
            stats.prompt_tokens_evaluated = len(calls[0]) if calls else 0
            generated = [tok for call in calls[1:] for tok in call]
            self._remember_cache(tokens, text, generated)

    def _sample(self, tokens: list[int], settings: GenerationSettings, max_tokens: int,
                stop: list[str], stats: GenerationStats, timing: dict[str, float]
                ) -> Iterator[str]:
        """Sample up to *max_tokens* tokens and yield their text as it becomes final.

        The semantics of llama-cpp-python's streaming create_completion (same sampler, same
        seeding, an end-of-generation token or a stop string ends the reply, a stop string
        and text that may begin one are never shown), but each token is decoded once:
        create_completion re-detokenizes the whole reply at every token, which costs more
        per token the longer the reply.
        """
        llm = self.llm
        llm.set_seed(settings.seed if settings.seed is not None
                     else random.Random(llm._seed).randint(0, 2**32))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        guard = RepetitionGuard()
        held, finish, cut_at_stop = "", "length", False
        for count, token in enumerate(llm.generate(
                tokens, top_k=settings.top_k, top_p=settings.top_p, min_p=settings.min_p,
                temp=settings.temperature, repeat_penalty=settings.repeat_penalty), start=1):
            if not timing["first"]:
                timing["first"] = time.perf_counter()
            if self._is_end(token):
                finish = "stop"
                break
            stats.completion_tokens = count
            held += guard.feed(decoder.decode(self._piece(token)))
            if guard.tripped:  # a loop, or the prompt's markup echoed: stop here
                finish = "repetition"
                break
            at = _first_stop(held, stop)
            if at is not None:
                held, finish, cut_at_stop = held[:at], "stop", True
                break
            keep = _partial_stop(held, stop)
            if len(held) > keep:
                yield held[:len(held) - keep]
                held = held[len(held) - keep:]
            if count >= max_tokens:
                break
        if finish == "length":
            held += guard.feed(decoder.decode(b"", final=True))
        if not (guard.tripped or cut_at_stop):
            held += guard.flush()  # what it held back in case a marker began there
        if held:
            yield held
        stats.finish_reason = finish

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.llm.detokenize([token])
        return piece

    def _remember_cache(self, prompt: list[int], text: str, generated: list[int]) -> None:
        """Record the tokens now in the KV cache and the text they spell, for the next turn."""
        if self.llm is None:  # closed before an abandoned stream (Ctrl-C, `| head`) was freed
            return
        # Decoded as create_completion decodes its stream, so the texts line up.
        fed_text = self.llm.detokenize(generated).decode("utf-8", errors="ignore")
        self._cache_tokens = list(prompt) + list(generated)
        self._cache_text = text + fed_text

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None


def _first_stop(text: str, stops: list[str]) -> int | None:
    """Where the earliest-listed stop string found in *text* starts (create_completion's
    rule), or None."""
    for stop in stops:
        if stop and stop in text:
            return text.index(stop)
    return None


def _partial_stop(text: str, stops: list[str]) -> int:
    """Length of the longest end of *text* that is the start of a stop string."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


def _registered_formatter(fmt: Any, name: str) -> Callable[..., Any] | None:
    """Find a named format's formatter function among llama_chat_format's `format_*`."""
    for attr in dir(fmt):
        if attr.startswith("format_") and attr.replace("format_", "") == name.replace("-", ""):
            return getattr(fmt, attr)
    return None

"""Vision through llama-cpp-python's libmtmd: a language model, its mmproj, images in the context.

A `VisionChat` keeps one conversation about a set of images. Each turn renders the whole
conversation with the model's own chat template, tokenizes it with mtmd (text chunks and image
chunks), and evaluates only what the context does not already hold: the images are encoded
once, and follow-up questions cost only their own tokens. Generation then runs through
`Llama.create_completion`, whose prefix match reuses the evaluated context.

(MTMDChatHandler, the binding's own vision path, resets the context and re-encodes every image
on every call, and only opens the mmproj at the first completion; hence this module.)
"""

from __future__ import annotations

import ctypes
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offgrid.errors import EngineError, InputError

_IMAGE_CHUNK_TYPES = (1, 2)  # MTMD_INPUT_CHUNK_TYPE_IMAGE, _AUDIO


@dataclass
class VisionStats:
    """What one answer cost."""

    image_encode_s: float = 0.0
    images_encoded: int = 0
    prompt_tokens: int = 0
    prompt_eval_s: float = 0.0
    completion_tokens: int = 0
    generation_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.generation_s if self.generation_s > 0 else 0.0


@dataclass(frozen=True)
class _ImageSlot:
    """An image chunk in the context: which image, how many cells and positions it takes."""

    key: str
    n_tokens: int
    n_pos: int


@dataclass
class _Turn:
    role: str
    text: str
    images: Sequence[Any] = field(default_factory=tuple)  # PreparedImage-like: .data, .data_uri()


class VisionChat:
    """One conversation about images with a loaded Llama + mtmd context. Close it when done."""

    def __init__(self, llama: Any, mtmd_ctx: Any, *, system_prompt: str | None = None,
                 last_native_error: Callable[[], str | None] = lambda: None):
        self._llama = llama
        self._mtmd_ctx = mtmd_ctx
        self._turns: list[_Turn] = []
        if system_prompt:
            self._turns.append(_Turn("system", system_prompt))
        self._context: list[int | _ImageSlot] = []  # what the KV cache holds, unit by unit
        self._last_native_error = last_native_error
        self._formatter = self._make_formatter()

    # --- public -------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        images: Sequence[Any] = (),
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        stats: VisionStats | None = None,
    ) -> Iterator[str]:
        """Stream the answer to `question` (with `images` attached to it) as text pieces."""
        stats = stats if stats is not None else VisionStats()
        self._turns.append(_Turn("user", question, tuple(images)))
        prompt = self._evaluate_conversation(stats)
        yield from self._generate(prompt, max_tokens, temperature, stats)

    def close(self) -> None:
        """Free the mtmd context (the Llama is closed by its owner)."""
        if self._mtmd_ctx is not None:
            from llama_cpp import mtmd_cpp

            mtmd_cpp.mtmd_free(self._mtmd_ctx)
            self._mtmd_ctx = None

    # --- prompt -------------------------------------------------------------------------

    def _make_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self._llama
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise EngineError("the model has no chat template (tokenizer.chat_template); it cannot take images")
        self._bos = _piece(llama, llama.token_bos())
        self._eos = _piece(llama, llama.token_eos())
        return Jinja2ChatFormatter(template=template, eos_token=self._eos, bos_token=self._bos)

    def _render(self) -> tuple[str, list[str]]:
        from llama_cpp import mtmd_cpp

        marker = mtmd_cpp.mtmd_default_marker().decode("utf-8")
        messages: list[dict[str, Any]] = []
        for turn in self._turns:
            if turn.role == "user":
                parts = [{"type": "text", "text": marker} for _ in turn.images]
                parts.append({"type": "text", "text": turn.text})
                messages.append({"role": "user", "content": parts})
            else:
                messages.append({"role": turn.role, "content": turn.text})
        try:
            text = self._formatter(messages=messages).prompt
        except Exception as exc:  # a template may raise anything (jinja errors, raise_exception)
            raise EngineError(f"the model's chat template failed: {exc}") from exc
        if self._bos and text.startswith(self._bos):
            text = text[len(self._bos):]  # mtmd adds BOS itself when the model wants one
        return text, [t for turn in self._turns for t in _image_keys(turn.images)]

    # --- evaluation ---------------------------------------------------------------------

    def _evaluate_conversation(self, stats: VisionStats) -> list[int]:
        from llama_cpp import mtmd_cpp

        text, _ = self._render()
        images = [image for turn in self._turns for image in turn.images]
        chunks = self._tokenize(text, images)
        try:
            units = self._units(chunks, images)
            reuse = _common_prefix(self._context, units)
            self._truncate_to(reuse)
            self._evaluate_units(chunks, units, reuse, stats)
        finally:
            mtmd_cpp.mtmd_input_chunks_free(chunks)
        return list(self._llama.input_ids[: self._llama.n_tokens])

    def _tokenize(self, text: str, images: Sequence[Any]):
        from llama_cpp import mtmd_cpp

        bitmaps = []
        try:
            for image in images:
                buffer = (ctypes.c_uint8 * len(image.data)).from_buffer_copy(image.data)
                bitmap = mtmd_cpp.mtmd_helper_bitmap_init_from_buf(self._mtmd_ctx, buffer, len(image.data), False)
                if not bitmap:
                    raise InputError(f"the engine could not decode {getattr(image, 'source', 'an image')}")
                mtmd_cpp.mtmd_bitmap_set_id(bitmap, _image_key(image).encode())
                bitmaps.append(bitmap)
            encoded = text.encode("utf-8")
            input_text = mtmd_cpp.mtmd_input_text()
            input_text.text = encoded
            input_text.text_len = len(encoded)
            input_text.add_special = True
            input_text.parse_special = True
            chunks = mtmd_cpp.mtmd_input_chunks_init()
            array = (mtmd_cpp.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
            result = mtmd_cpp.mtmd_tokenize(self._mtmd_ctx, chunks, ctypes.byref(input_text), array, len(bitmaps))
            if result != 0:
                mtmd_cpp.mtmd_input_chunks_free(chunks)
                raise EngineError(self._native_message(f"could not tokenize the prompt with its images (code {result})"))
            return chunks
        finally:
            for bitmap in bitmaps:
                mtmd_cpp.mtmd_bitmap_free(bitmap)

    def _units(self, chunks, images: Sequence[Any]) -> list[list[int] | _ImageSlot]:
        """Per chunk: its text tokens, or an _ImageSlot."""
        from llama_cpp import mtmd_cpp

        units: list[list[int] | _ImageSlot] = []
        for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks)):
            chunk = mtmd_cpp.mtmd_input_chunks_get(chunks, i)
            kind = mtmd_cpp.mtmd_input_chunk_get_type(chunk)
            if kind in _IMAGE_CHUNK_TYPES:
                key = (mtmd_cpp.mtmd_input_chunk_get_id(chunk) or b"").decode()
                units.append(_ImageSlot(key, mtmd_cpp.mtmd_input_chunk_get_n_tokens(chunk),
                                        mtmd_cpp.mtmd_input_chunk_get_n_pos(chunk)))
            else:
                count = ctypes.c_size_t()
                tokens = mtmd_cpp.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                units.append([tokens[j] for j in range(count.value)])
        return units

    def _truncate_to(self, reuse: int) -> None:
        """Keep the first `reuse` context units, drop the rest from the KV cache."""
        llama = self._llama
        kept = self._context[:reuse]
        position = sum(unit.n_pos if isinstance(unit, _ImageSlot) else 1 for unit in kept)
        if reuse == 0:
            llama.reset()
            llama._ctx.kv_cache_clear()
        else:
            llama._ctx.kv_cache_seq_rm(-1, position, -1)
            llama.n_tokens = position
        self._context = kept

    def _evaluate_units(self, chunks, units, reuse: int, stats: VisionStats) -> None:
        from llama_cpp import llama_cpp as lc
        from llama_cpp import mtmd_cpp

        llama = self._llama
        flat = _flatten(units)
        todo = flat[reuse:]
        needed = llama.n_tokens + sum(u.n_pos if isinstance(u, _ImageSlot) else 1 for u in todo)
        if needed >= llama.n_ctx():
            raise InputError(
                f"the images and conversation need {needed} tokens, more than the context of {llama.n_ctx()}",
                hint="raise --ctx, or ask about fewer or smaller images",
            )
        # walk chunk by chunk; the first `reuse` units are already in the cache
        done = 0
        for index, unit in enumerate(units):
            size = 1 if isinstance(unit, _ImageSlot) else len(unit)
            start, done = done, done + size
            if done <= reuse:
                continue
            if isinstance(unit, _ImageSlot):
                self._evaluate_image(mtmd_cpp.mtmd_input_chunks_get(chunks, index), unit, stats, lc)
            else:
                tokens = unit[max(0, reuse - start):]
                began = time.perf_counter()
                llama.eval(tokens)
                stats.prompt_eval_s += time.perf_counter() - began
                stats.prompt_tokens += len(tokens)
                self._context.extend(tokens)

    def _evaluate_image(self, chunk, slot: _ImageSlot, stats: VisionStats, lc) -> None:
        from llama_cpp import mtmd_cpp

        llama = self._llama
        llama._ctx.kv_cache_seq_rm(-1, llama.n_tokens, -1)
        new_n_past = lc.llama_pos(0)
        began = time.perf_counter()
        result = mtmd_cpp.mtmd_helper_eval_chunk_single(
            self._mtmd_ctx, llama._ctx.ctx, chunk, lc.llama_pos(llama.n_tokens), lc.llama_seq_id(0),
            llama.n_batch, False, ctypes.byref(new_n_past),
        )
        stats.image_encode_s += time.perf_counter() - began
        if result != 0:
            raise EngineError(self._native_message(f"could not encode the image (code {result})"))
        stats.images_encoded += 1
        stats.prompt_tokens += slot.n_tokens
        llama.n_tokens = new_n_past.value
        self._context.append(slot)

    # --- generation ---------------------------------------------------------------------

    def _generate(self, prompt: list[int], max_tokens: int, temperature: float, stats: VisionStats) -> Iterator[str]:
        llama = self._llama
        answer: list[str] = []
        began = time.perf_counter()
        try:
            for chunk in llama.create_completion(
                prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                stop=[self._eos] if self._eos else [], stream=True,
            ):
                piece = chunk["choices"][0]["text"]
                if piece:
                    answer.append(piece)
                    yield piece
        except ValueError as exc:  # e.g. "Requested tokens exceed context window"
            raise EngineError(str(exc)) from exc
        finally:
            stats.generation_s += time.perf_counter() - began
            stats.completion_tokens += max(0, llama.n_tokens - len(prompt)) + 1
            self._turns.append(_Turn("assistant", "".join(answer)))
            # whatever the sampler evaluated after the prompt is in the cache too
            self._context.extend(int(t) for t in llama.input_ids[len(prompt):llama.n_tokens])

    def _native_message(self, fallback: str) -> str:
        detail = self._last_native_error()
        return f"{fallback}: {detail}" if detail else fallback


def _flatten(units: Sequence[list[int] | _ImageSlot]) -> list[int | _ImageSlot]:
    flat: list[int | _ImageSlot] = []
    for unit in units:
        if isinstance(unit, _ImageSlot):
            flat.append(unit)
        else:
            flat.extend(unit)
    return flat


def _common_prefix(cached: Sequence[int | _ImageSlot], units: Sequence[list[int] | _ImageSlot]) -> int:
    """How many leading units the cache already holds; never stops inside an image."""
    flat = _flatten(units)
    count = 0
    for have, want in zip(cached, flat):
        if have != want:
            break
        count += 1
    if count == len(flat):  # generation needs fresh logits: re-evaluate the last token
        count -= 1
    return max(count, 0)


def _image_key(image: Any) -> str:
    return hashlib.sha1(image.data).hexdigest()[:16]


def _image_keys(images: Sequence[Any]) -> list[str]:
    return [_image_key(image) for image in images]


def _piece(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    return llama.detokenize([token], special=True).decode("utf-8", errors="ignore")


def open_vision_chat(
    model_path: Path,
    mmproj_path: Path,
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    system_prompt: str | None = None,
    last_native_error: Callable[[], str | None] = lambda: None,
) -> tuple[Any, VisionChat]:
    """Load the model and its mmproj now (not at the first answer); return (llama, chat)."""
    import llama_cpp
    from llama_cpp import mtmd_cpp

    try:
        llama = llama_cpp.Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
    except ValueError as exc:
        raise EngineError(_with_detail(f"could not load {model_path.name}", last_native_error())) from exc
    try:
        params = mtmd_cpp.mtmd_context_params_default()
        params.use_gpu = False
        params.print_timings = False
        params.n_threads = llama.n_threads
        mtmd_ctx = mtmd_cpp.mtmd_init_from_file(str(mmproj_path).encode(), llama.model, params)
        if not mtmd_ctx:
            raise EngineError(_with_detail(f"could not load the vision projector {mmproj_path.name}", last_native_error()))
        chat = VisionChat(llama, mtmd_ctx, system_prompt=system_prompt, last_native_error=last_native_error)
        if not mtmd_cpp.mtmd_support_vision(mtmd_ctx):
            chat.close()
            raise EngineError(f"{mmproj_path.name} has no vision encoder")
    except BaseException:
        llama.close()
        raise
    return llama, chat


def _with_detail(message: str, detail: str | None) -> str:
    return f"{message}: {detail}" if detail else message

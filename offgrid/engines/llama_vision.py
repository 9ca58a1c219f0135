"""Vision through llama-cpp-python's libmtmd: a GGUF language model, its mmproj, and images.

`LlamaVisionEngine` is a `LlamaEngine` (same prompt rendering, sampling, streaming and stats)
whose conversation starts with attached images. Each turn renders the whole conversation with
the model's chat template, puts one media marker per image at the start of the first user
message, tokenizes it with mtmd (text chunks and image chunks), and evaluates only what the
KV cache does not already hold: images are encoded once, and a follow-up question costs only
its own tokens. Generation then runs through the parent's sampling loop (`Llama.generate`),
whose prefix match finds the whole prompt already evaluated.

Why not the binding's MTMDChatHandler: it resets the context and re-encodes every image on
every call, and only opens the mmproj at the first completion (so a bad one fails late).
"""

from __future__ import annotations

import ctypes
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offgrid.engines import native
from offgrid.engines.base import GenerationSettings, Message, VisionStats, template_arguments
from offgrid.engines.llama import (LlamaEngine, context_notes, context_size, engine_arguments,
                                   kv_cache_mb, native_log_callback)
from offgrid.engines.loader import Checked, EngineOptions
from offgrid.models.store import ResolvedModel
from offgrid.errors import ContextOverflowError, EngineError, InputError, ModelFileError
from offgrid.models.validate import GGUFInfo

_MEDIA_CHUNKS = (1, 2)  # MTMD_INPUT_CHUNK_TYPE_IMAGE, MTMD_INPUT_CHUNK_TYPE_AUDIO


@dataclass(frozen=True)
class ImageSlot:
    """An image chunk in the KV cache: which image, and the cells and positions it takes."""

    key: str
    n_tokens: int
    n_pos: int


VISION_HEADROOM_MB = 300  # the projector's compute buffers and encoded images


class VisionAdapter:
    """The loader's adapter for a GGUF language model and its vision projector (mmproj)."""

    def check(self, model: ResolvedModel, options: EngineOptions) -> Checked:
        from offgrid.models import store
        from offgrid.models.validate_vision import check_vision_files

        model = store.pair_mmproj(model, options.mmproj if model.entry else options.mmproj_for_paths)
        info, _ = check_vision_files(model.path, model.files["mmproj"])
        extra = kv_cache_mb(info, context_size(model, options.ctx)) + VISION_HEADROOM_MB
        return Checked(model, extra, f"{model.name} and its vision projector", {"info": info},
                       context_notes(model, info, options.ctx))

    def load(self, checked: Checked, options: EngineOptions) -> LlamaVisionEngine:
        model = checked.model
        return LlamaVisionEngine(model.path, model.files["mmproj"],
                                 **engine_arguments(model, options, checked.details["info"]))


class LlamaVisionEngine(LlamaEngine):
    """A language model plus its vision projector, answering about attached images."""

    def __init__(self, model_path: Path, mmproj_path: Path, *, n_ctx: int = 4096,
                 n_threads: int | None = None, seed: int | None = None,
                 chat_format: str | None = None, info: GGUFInfo | None = None,
                 model_name: str | None = None, **speed: Any):
        super().__init__(model_path, n_ctx=n_ctx, n_threads=n_threads, seed=seed,
                         chat_format=chat_format, info=info, model_name=model_name, **speed)
        try:
            self._mtmd = _open_mtmd(mmproj_path, self.llm)
        except BaseException:
            super().close()
            raise
        self.images: list[Any] = []
        self.stats: VisionStats = VisionStats()
        self._context: list[int | ImageSlot] = []  # what the KV cache holds, in order
        self._image_tokens: dict[str, int] = {}

    # --- the VisionEngine interface --------------------------------------------------------
    def attach(self, images: Sequence[Any]) -> None:
        """Images (with .data bytes and .source) that open the conversation."""
        self.images = list(images)

    def count_chat_tokens(self, messages: list[Message], think: bool | None = None) -> int:
        """Context cells the prompt takes: its text tokens plus every image's tokens."""
        text, has_bos, _ = self.render(self._with_markers(messages), **template_arguments(think))
        text_only = text.replace(_marker(), "")
        images = sum(self._tokens_of_image(image) for image in self._images_in(messages))
        return len(self.tokenize(text_only, add_bos=not has_bos)) + images

    def chat(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        """Stream the reply to *messages*, the attached images going with the first user turn."""
        text, has_bos, stop = self.render(self._with_markers(messages),
                                          **template_arguments(settings.think))
        return self._answer(text, has_bos, stop, self._images_in(messages), settings)

    def close(self) -> None:
        mtmd = getattr(self, "_mtmd", None)
        if mtmd is not None:
            from llama_cpp import mtmd_cpp

            mtmd_cpp.mtmd_free(mtmd)
            self._mtmd = None
        super().close()

    # --- prompt ------------------------------------------------------------------------------
    def _images_in(self, messages: list[Message]) -> list[Any]:
        return self.images if any(m["role"] == "user" for m in messages) else []

    def _with_markers(self, messages: list[Message]) -> list[Message]:
        """The messages with one media marker per attached image opening the first user turn
        (where llama.cpp's own tools put them)."""
        result = [dict(m) for m in messages]
        for message in result:
            if message["role"] == "user" and self.images:
                message["content"] = _marker() * len(self.images) + str(message["content"])
                break
        return result

    # --- evaluation ---------------------------------------------------------------------------
    def _answer(self, text: str, has_bos: bool, stop: list[str], images: list[Any],
                settings: GenerationSettings) -> Iterator[str]:
        stats = self.stats = VisionStats()
        began = time.perf_counter()
        prompt = self._evaluate(text, has_bos, images, stats)
        evaluated_in = time.perf_counter() - began
        if len(prompt) >= self.n_ctx:
            raise ContextOverflowError(len(prompt), self.n_ctx, self.n_ctx_max)
        room = self.n_ctx - len(prompt)
        max_tokens = min(settings.max_tokens or room, room)
        counted = VisionStats()
        try:
            yield from self._stream(prompt, text, stop + list(settings.stop), settings,
                                    max_tokens, counted)
        finally:
            # The prompt was evaluated above, so every eval call in _stream was a reply token.
            reply_evals = sum(len(call) for call in self._eval_calls)
            stats.completion_tokens = reply_evals + (1 if counted.completion_tokens else 0)
            stats.finish_reason = counted.finish_reason
            stats.generation_seconds = counted.generation_seconds
            stats.prompt_seconds = evaluated_in + counted.prompt_seconds
            stats.time_to_first_token = evaluated_in + counted.time_to_first_token
            if self.llm is not None:  # None: closed before an abandoned stream was freed
                self._context.extend(int(t) for t in self.llm.input_ids[len(prompt):self.llm.n_tokens])

    def _evaluate(self, text: str, has_bos: bool, images: list[Any], stats: VisionStats) -> list[int]:
        """Put the prompt in the KV cache, reusing what is there; return its token ids."""
        from llama_cpp import mtmd_cpp

        chunks = self._tokenize(text, has_bos, images)
        try:
            units = self._units(chunks)
            flat = _flatten(units)
            stats.prompt_tokens = sum(u.n_tokens if isinstance(u, ImageSlot) else 1 for u in flat)
            if stats.prompt_tokens >= self.n_ctx:
                raise ContextOverflowError(stats.prompt_tokens, self.n_ctx, self.n_ctx_max)
            reuse = _common_prefix(self._context, flat)
            self._truncate_to(reuse)
            self._evaluate_from(chunks, units, reuse, stats)
        finally:
            mtmd_cpp.mtmd_input_chunks_free(chunks)
        return [int(t) for t in self.llm.input_ids[: self.llm.n_tokens]]

    def _tokenize(self, text: str, has_bos: bool, images: list[Any]) -> Any:
        from llama_cpp import mtmd_cpp

        bitmaps = [self._bitmap(image) for image in images]
        try:
            encoded = text.encode("utf-8")
            source = mtmd_cpp.mtmd_input_text()
            source.text, source.text_len = encoded, len(encoded)
            source.add_special, source.parse_special = not has_bos, True
            chunks = mtmd_cpp.mtmd_input_chunks_init()
            array = (mtmd_cpp.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
            result = mtmd_cpp.mtmd_tokenize(self._mtmd, chunks, ctypes.byref(source), array,
                                            len(bitmaps))
            if result != 0:
                mtmd_cpp.mtmd_input_chunks_free(chunks)
                problem = "the prompt and images do not match" if result == 1 else "preprocessing failed"
                raise EngineError(f"could not prepare the images for the model ({problem}): "
                                  f"{_first_line(native.last_native_error('no details'))}")
            return chunks
        finally:
            for bitmap in bitmaps:
                mtmd_cpp.mtmd_bitmap_free(bitmap)

    def _bitmap(self, image: Any) -> Any:
        from llama_cpp import mtmd_cpp

        data = bytes(image.data)
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        bitmap = mtmd_cpp.mtmd_helper_bitmap_init_from_buf(self._mtmd, buffer, len(data), False)
        if not bitmap:
            raise InputError(f"the engine could not decode {getattr(image, 'source', 'an image')}")
        mtmd_cpp.mtmd_bitmap_set_id(bitmap, _image_key(image).encode())
        return bitmap

    def _tokens_of_image(self, image: Any) -> int:
        """How many context cells an image takes (tokenized once, then remembered)."""
        key = _image_key(image)
        if key not in self._image_tokens:
            from llama_cpp import mtmd_cpp

            chunks = self._tokenize(_marker(), True, [image])
            try:
                units = self._units(chunks)
            finally:
                mtmd_cpp.mtmd_input_chunks_free(chunks)
            self._image_tokens[key] = sum(u.n_tokens for u in units if isinstance(u, ImageSlot))
        return self._image_tokens[key]

    def _units(self, chunks: Any) -> list[list[int] | ImageSlot]:
        """Per chunk: its text tokens, or an ImageSlot."""
        from llama_cpp import mtmd_cpp

        units: list[list[int] | ImageSlot] = []
        for index in range(mtmd_cpp.mtmd_input_chunks_size(chunks)):
            chunk = mtmd_cpp.mtmd_input_chunks_get(chunks, index)
            if mtmd_cpp.mtmd_input_chunk_get_type(chunk) in _MEDIA_CHUNKS:
                key = (mtmd_cpp.mtmd_input_chunk_get_id(chunk) or b"").decode()
                slot = ImageSlot(key, mtmd_cpp.mtmd_input_chunk_get_n_tokens(chunk),
                                 mtmd_cpp.mtmd_input_chunk_get_n_pos(chunk))
                self._image_tokens.setdefault(key, slot.n_tokens)
                units.append(slot)
            else:
                count = ctypes.c_size_t()
                tokens = mtmd_cpp.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                units.append([int(tokens[j]) for j in range(count.value)])
        return units

    def _truncate_to(self, reuse: int) -> None:
        """Keep the first *reuse* units of the cache; drop everything after them."""
        kept = self._context[:reuse]
        position = sum(u.n_pos if isinstance(u, ImageSlot) else 1 for u in kept)
        if position == 0:
            self.llm.reset()
            self.llm._ctx.kv_cache_clear()
        else:
            self.llm._ctx.kv_cache_seq_rm(-1, position, -1)
            self.llm.n_tokens = position
        self._context = kept

    def _evaluate_from(self, chunks: Any, units: list[list[int] | ImageSlot], reuse: int,
                       stats: VisionStats) -> None:
        """Evaluate every unit after the first *reuse* ones, chunk by chunk."""
        from llama_cpp import mtmd_cpp

        done = 0
        for index, unit in enumerate(units):
            start = done
            done += 1 if isinstance(unit, ImageSlot) else len(unit)
            if done <= reuse:
                continue
            if isinstance(unit, ImageSlot):
                self._encode_image(mtmd_cpp.mtmd_input_chunks_get(chunks, index), unit, stats)
            else:
                tokens = unit[max(0, reuse - start):]
                self.llm.eval(tokens)
                stats.prompt_tokens_evaluated += len(tokens)
                self._context.extend(tokens)

    def _encode_image(self, chunk: Any, slot: ImageSlot, stats: VisionStats) -> None:
        from llama_cpp import llama_cpp as lib
        from llama_cpp import mtmd_cpp

        llm = self.llm
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        new_n_past = lib.llama_pos(0)
        began = time.perf_counter()
        result = mtmd_cpp.mtmd_helper_eval_chunk_single(
            self._mtmd, llm._ctx.ctx, chunk, lib.llama_pos(llm.n_tokens), lib.llama_seq_id(0),
            llm.n_batch, False, ctypes.byref(new_n_past))
        stats.image_seconds += time.perf_counter() - began
        if result != 0:
            raise EngineError("the model could not encode the image: "
                              f"{_first_line(native.last_native_error(f'error {result}'))}")
        stats.images_encoded += 1
        stats.prompt_tokens_evaluated += slot.n_tokens
        llm.n_tokens = new_n_past.value
        self._context.append(slot)


def _open_mtmd(mmproj_path: Path, llm: Any) -> Any:
    """libmtmd's context for *mmproj_path* on top of the loaded model, logs routed."""
    from llama_cpp import mtmd_cpp

    mtmd_cpp.mtmd_helper_log_set(native_log_callback(), ctypes.c_void_p(0))
    params = mtmd_cpp.mtmd_context_params_default()
    params.use_gpu = False
    params.print_timings = False
    params.n_threads = llm.n_threads
    ctx = mtmd_cpp.mtmd_init_from_file(str(mmproj_path).encode(), llm.model, params)
    if not ctx:
        reason = _first_line(native.last_native_error("unknown error"))
        raise ModelFileError(f"llama.cpp could not load the vision projector {mmproj_path.name}: {reason}")
    if not mtmd_cpp.mtmd_support_vision(ctx):
        mtmd_cpp.mtmd_free(ctx)
        raise ModelFileError(f"{mmproj_path.name} has no vision encoder")
    return ctx


def _marker() -> str:
    from llama_cpp import mtmd_cpp

    return mtmd_cpp.mtmd_default_marker().decode("utf-8")


def _flatten(units: Sequence[list[int] | ImageSlot]) -> list[int | ImageSlot]:
    flat: list[int | ImageSlot] = []
    for unit in units:
        if isinstance(unit, ImageSlot):
            flat.append(unit)
        else:
            flat.extend(unit)
    return flat


def _common_prefix(cached: Sequence[int | ImageSlot], wanted: Sequence[int | ImageSlot]) -> int:
    """How many leading units of *wanted* the cache already holds. The last one is always
    evaluated again, so that sampling starts from fresh logits."""
    count = 0
    for have, want in zip(cached, wanted):
        if have != want:
            break
        count += 1
    return min(count, max(len(wanted) - 1, 0))


def _image_key(image: Any) -> str:
    return hashlib.sha256(bytes(image.data)).hexdigest()[:24]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text

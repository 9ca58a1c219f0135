"""Fake engines behind the loader's seam (engines/loader.py), for in-process CLI tests.

`FakeEngines.install()` registers one adapter per task; every command then resolves its
`--model` as usual (a fake model is any local file), and the loader hands it these engines
instead of llama.cpp, whisper.cpp or stable-diffusion.cpp. They follow the protocols in
engines/base.py exactly, so what a test sees is the command's own behaviour: flags, pipes,
errors, history, output modes.

Replies are deterministic: the text engine answers "Answer N: <first words of the last
message>" (one token per word; offgrid's own <document> markers left out, which the loop guard
would cut), so a test can tell what reached the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offgrid.engines import loader
from offgrid.engines.base import (GeneratedImage, GenerationSettings, GenerationStats,
                                  ImageParams, ImageProgress, ImageStats, Message, Segment,
                                  TranscriptionSettings, TranscriptionStats, VisionStats)
from offgrid.engines.guard import ECHO_MARKERS, RepetitionGuard
from offgrid.engines.loader import Checked, EngineOptions
from offgrid.errors import ContextOverflowError, ModelFileError
from offgrid.models.store import ResolvedModel


def words(text: str) -> list[str]:
    return text.split()


@dataclass
class Calls:
    """What the fakes were asked, for assertions."""

    loads: list[tuple[str, ResolvedModel, EngineOptions]] = field(default_factory=list)
    prompts: list[list[Message]] = field(default_factory=list)
    settings: list[GenerationSettings] = field(default_factory=list)
    images: list[list[Any]] = field(default_factory=list)
    transcriptions: list[TranscriptionSettings] = field(default_factory=list)
    pictures: list[ImageParams] = field(default_factory=list)
    closed: int = 0


class FakeTextEngine:
    """A TextEngine: a word is a token; the reply names the question."""

    def __init__(self, calls: Calls, model_name: str, n_ctx: int = 4096,
                 reply: Callable[[list[Message]], str] | None = None,
                 n_ctx_max: int | None = None):
        self.calls, self.model_name, self.n_ctx = calls, model_name, n_ctx
        self.n_ctx_max = max(n_ctx, n_ctx_max or n_ctx)
        self.reply = reply
        self.stats: GenerationStats = GenerationStats()
        self._answers = 0

    def count_tokens(self, text: str) -> int:
        return len(words(text))

    def count_chat_tokens(self, messages: list[Message], think: bool | None = None) -> int:
        return sum(len(words(str(m["content"]))) + 2 for m in messages)

    def chat(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        tokens = self.count_chat_tokens(messages, settings.think)
        if tokens >= self.n_ctx:
            raise ContextOverflowError(tokens, self.n_ctx)
        self.calls.prompts.append([dict(m) for m in messages])
        self.calls.settings.append(settings)
        self._answers += 1
        text = self.reply(messages) if self.reply else self._answer(messages)
        if settings.think:
            text = "<think>Let me think.</think>" + text
        return self._stream(text, tokens, settings)

    def _answer(self, messages: list[Message]) -> str:
        last = str(messages[-1]["content"])  # its first six words, offgrid's markup left out
        return f"Answer {self._answers}: " + " ".join(
            w for w in words(last)[:6] if w not in ECHO_MARKERS)

    def _stream(self, text: str, prompt_tokens: int, settings: GenerationSettings) -> Iterator[str]:
        stats = self.stats = self._new_stats(prompt_tokens)
        stats.finish_reason = "cancelled"
        started = time.perf_counter()
        pieces = [piece + " " for piece in words(text)]
        limit = settings.max_tokens or len(pieces)
        finish = "length" if len(pieces) > limit else "stop"
        shown = "".join(pieces[:limit]).rstrip()
        for stop in settings.stop:
            if stop and stop in shown:
                shown, finish = shown[:shown.index(stop)], "stop"
        guard = RepetitionGuard()  # as every real engine does
        for count, word in enumerate(shown.split(" "), start=1):
            stats.completion_tokens = count
            stats.time_to_first_token = stats.time_to_first_token or time.perf_counter() - started
            shown = guard.feed(word if count == 1 else " " + word)
            if shown:
                yield shown
            if guard.tripped:
                finish = "repetition"
                break
        else:
            if rest := guard.flush():
                yield rest
        stats.generation_seconds = time.perf_counter() - started
        stats.finish_reason = finish

    def _new_stats(self, prompt_tokens: int) -> GenerationStats:
        return GenerationStats(prompt_tokens=prompt_tokens, prompt_tokens_evaluated=prompt_tokens)

    def close(self) -> None:
        self.calls.closed += 1


class FakeVisionEngine(FakeTextEngine):
    """A VisionEngine: it 'sees' how many images are attached."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.attached: list[Any] = []
        self.stats = VisionStats()

    def attach(self, images: list[Any]) -> None:
        self.attached = list(images)
        self.calls.images.append(self.attached)

    def _answer(self, messages: list[Message]) -> str:
        return f"I see {len(self.attached)} image(s). " + super()._answer(messages)

    def _new_stats(self, prompt_tokens: int) -> GenerationStats:
        return VisionStats(prompt_tokens=prompt_tokens, prompt_tokens_evaluated=prompt_tokens,
                           images_encoded=len(self.attached))


class FakeSpeechEngine:
    """A SpeechEngine that hears "Hello world." in every second of audio."""

    multilingual = True

    def __init__(self, calls: Calls, model_name: str):
        self.calls, self.model_name = calls, model_name
        self.stats = TranscriptionStats()

    def transcribe(self, samples: Any, settings: TranscriptionSettings,
                   on_segment: Any = None, on_progress: Any = None) -> list[Segment]:
        self.calls.transcriptions.append(settings)
        seconds = len(samples) / 16_000
        self.stats = TranscriptionStats(audio_seconds=seconds, transcribe_seconds=0.01,
                                        language=settings.language or "en")
        segments = []
        for start in range(max(1, int(seconds))):
            text = "Bonjour le monde." if settings.language == "fr" else "Hello world."
            segment = Segment(float(start), min(start + 1.0, max(seconds, 0.5)), text)
            segments.append(segment)
            if on_segment is not None:
                on_segment(segment)
            if on_progress is not None:
                on_progress(int(100 * (start + 1) / max(1, int(seconds))))
        self.stats.segments = len(segments)
        return segments

    def close(self) -> None:
        self.calls.closed += 1


class FakeImageEngine:
    """An ImageEngine painting one flat colour per seed."""

    size_multiple = 16
    default_sampler = "euler"

    def __init__(self, calls: Calls, model: ResolvedModel):
        self.calls = calls
        self.files = dict(model.files)
        self.entry = model.entry
        self.model_name = model.entry.alias if model.entry else ", ".join(
            p.name for p in model.files.values())

    def generate(self, params: ImageParams, count: int = 1, *,
                 on_progress: Callable[[ImageProgress], None] | None = None,
                 on_image: Callable[[GeneratedImage], None] | None = None) -> ImageStats:
        from PIL import Image

        stats = ImageStats()
        for index in range(count):
            picture = params.with_seed(params.seed + index)
            self.calls.pictures.append(picture)
            for step in range(1, params.steps + 1):
                if on_progress is not None:
                    on_progress(ImageProgress(index, count, step, params.steps, 0.001))
            image = Image.new("RGB", (params.width, params.height),
                              (picture.seed % 256, 64, 128))
            stats.image_seconds.append(0.001)
            stats.seconds_per_step.append(0.001)
            if on_image is not None:
                on_image(GeneratedImage(index, picture, image, 0.001, 0.001))
        return stats


class FakeAdapter:
    """The loader's adapter for one task, building fakes; a file named *.bad is refused the
    way a real adapter refuses a corrupt model."""

    def __init__(self, task: str, calls: Calls, engines: FakeEngines):
        self.task, self.calls, self.engines = task, calls, engines

    def check(self, model: ResolvedModel, options: EngineOptions) -> Checked:
        for path in model.files.values():
            if path.suffix == ".bad":
                raise ModelFileError(f"{path.name} is not a GGUF file (bad magic)")
        return Checked(model, self.engines.extra_mb, model.name)

    def load(self, checked: Checked, options: EngineOptions) -> Any:
        model = checked.model
        self.calls.loads.append((self.task, model, options))
        n_ctx = options.ctx or self.engines.n_ctx
        if self.task in ("text", "vision"):
            kind = FakeTextEngine if self.task == "text" else FakeVisionEngine
            return kind(self.calls, model.name, n_ctx, self.engines.reply, self.engines.n_ctx_max)
        if self.task == "speech":
            return FakeSpeechEngine(self.calls, model.name)
        return FakeImageEngine(self.calls, model)


class FakeEngines:
    """Registers a fake adapter for every task; `uninstall()` puts the real ones back."""

    def __init__(self) -> None:
        self.calls = Calls()
        self.n_ctx = 4096
        self.n_ctx_max: int | None = None  # the model's trained context (default: n_ctx)
        self.extra_mb = 0  # working memory each fake claims (for memory-check tests)
        self.reply: Callable[[list[Message]], str] | None = None
        self._previous: dict[str, Any] = {}

    def install(self) -> FakeEngines:
        for task in loader.TASKS:
            self._previous[task] = loader.register(task, FakeAdapter(task, self.calls, self))
        return self

    def uninstall(self) -> None:
        for task, adapter in self._previous.items():
            loader.register(task, adapter)


def fake_model_file(folder: Path, name: str = "fake-model.gguf") -> Path:
    """A local 'model' for the fakes: any file will do."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"GGUF fake weights")
    return path

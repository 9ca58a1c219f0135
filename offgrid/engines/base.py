"""The interfaces every engine adapter implements, and the stats they report.

Nothing above an adapter knows which binding is underneath: commands and core modules talk
to these protocols only, so tests can swap in fakes through the same interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]  # {"role": "system"|"user"|"assistant", "content": str | list}


@dataclass
class GenerationSettings:
    """Sampling settings for one completion; None means the engine's default."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class GenerationStats:
    """What one completion cost, from the engine's own counters and clocks."""

    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0  # not found in the KV cache, so computed now
    completion_tokens: int = 0
    time_to_first_token: float = 0.0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    finish_reason: str = "stop"  # stop | length | cancelled

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds else 0.0

    @property
    def prompt_tokens_per_second(self) -> float:
        return (self.prompt_tokens_evaluated / self.prompt_seconds) if self.prompt_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens_per_second"] = round(self.tokens_per_second, 2)
        data["prompt_tokens_per_second"] = round(self.prompt_tokens_per_second, 2)
        return data


@dataclass
class VisionStats(GenerationStats):
    """GenerationStats plus the cost of encoding images (0 when they were already cached)."""

    images_encoded: int = 0
    image_seconds: float = 0.0


class TextEngine(Protocol):
    """A loaded language model: tokenize, count, stream chat completions."""

    model_name: str
    n_ctx: int
    stats: GenerationStats

    def count_tokens(self, text: str) -> int: ...

    def count_chat_tokens(self, messages: list[Message]) -> int: ...

    def chat(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        """Stream the assistant's reply; closing the iterator stops generation."""
        ...

    def close(self) -> None: ...


class VisionEngine(TextEngine, Protocol):
    """A TextEngine that also sees images: attached ones go with the first user message."""

    def attach(self, images: list[Any]) -> None:
        """Images (offgrid.images.PreparedImage) for the conversation; encoded once."""
        ...


ProgressCallback = Callable[[int, int], None]


# --- speech recognition ---------------------------------------------------------------------

@dataclass
class Segment:
    """A stretch of recognised speech; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str


@dataclass
class TranscriptionSettings:
    """What to ask of a speech model; None means the engine's default."""

    language: str | None = None  # a code like "en"; None or "auto" = detect it
    translate: bool = False  # into English
    prompt: str | None = None  # vocabulary / style hint for the first window
    word_timestamps: bool = False  # one segment per word


@dataclass
class TranscriptionStats:
    """What one transcription cost."""

    audio_seconds: float = 0.0
    load_seconds: float = 0.0
    transcribe_seconds: float = 0.0
    language: str | None = None
    segments: int = 0
    finish_reason: str = "stop"  # stop | cancelled

    @property
    def real_time_factor(self) -> float:
        """Processing time / audio time: below 1 is faster than real time."""
        return self.transcribe_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["real_time_factor"] = round(self.real_time_factor, 4)
        return data


SegmentCallback = Callable[[Segment], None]
PercentCallback = Callable[[int], None]


class SpeechEngine(Protocol):
    """A loaded speech-recognition model."""

    model_name: str
    multilingual: bool
    stats: TranscriptionStats

    def transcribe(self, samples: Any, settings: TranscriptionSettings,
                   on_segment: SegmentCallback | None = None,
                   on_progress: PercentCallback | None = None) -> list[Segment]:
        """Transcribe 16 kHz mono float32 samples; segments also go to `on_segment` as they
        are decoded, progress (0-100) to `on_progress`. Ctrl-C stops early: the segments so
        far are returned and `stats.finish_reason` is "cancelled"."""
        ...

    def close(self) -> None: ...

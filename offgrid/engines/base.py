"""The interfaces every engine adapter implements, and the stats they report.

Nothing above an adapter knows which binding is underneath: commands and core modules talk
to these protocols only, so tests can swap in fakes through the same interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
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
    think: bool | None = None  # a thinking model (Qwen3) thinks first; None: its default

    @classmethod
    def from_choices(cls, chosen: dict[str, Any], stop: list[str] | None = None) -> GenerationSettings:
        """Settings from config.settings()' merged flags and config, built-in defaults for the rest."""
        settings = cls(stop=list(stop or []))
        for key in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens",
                    "seed", "think"):
            if chosen.get(key) is not None:
                setattr(settings, key, chosen[key])
        return settings


def template_arguments(think: bool | None) -> dict[str, Any]:
    """Chat-template variables for *think* (Qwen3-style templates read `enable_thinking`)."""
    return {} if think is None else {"enable_thinking": think}


@dataclass
class GenerationStats:
    """What one completion cost, from the engine's own counters and clocks."""

    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0  # not found in the KV cache, so computed now
    completion_tokens: int = 0
    time_to_first_token: float = 0.0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    finish_reason: str = "stop"  # stop | length | cancelled | repetition (engines/guard.py)

    @property
    def tokens_per_second(self) -> float:
        """Generation speed: the first token's time is prompt time, so it is not counted."""
        produced = max(self.completion_tokens - 1, 0)
        return produced / self.generation_seconds if self.generation_seconds else 0.0

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
    n_ctx: int  # the context window, in tokens
    n_ctx_max: int  # the longest context the model was trained for (--ctx cannot exceed it)
    stats: GenerationStats

    def count_tokens(self, text: str) -> int: ...

    def count_chat_tokens(self, messages: list[Message], think: bool | None = None) -> int:
        """Tokens of the prompt for *messages*, rendered as chat() renders it."""
        ...

    def chat(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        """Stream the assistant's reply in pieces of text; closing the iterator stops
        generation. Raises ContextOverflowError when the prompt cannot fit."""
        ...

    def close(self) -> None: ...


class VisionEngine(TextEngine, Protocol):
    """A TextEngine that also sees images: attached ones go with the first user message."""

    def attach(self, images: list[Any]) -> None:
        """Images (offgrid.inputs.images.PreparedImage) for the conversation; encoded once."""
        ...


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
# --- image generation ---------------------------------------------------------------------------


@dataclass
class ImageParams:
    """Everything that decides the pixels of one picture."""

    prompt: str
    negative: str = ""
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str = "euler_a"
    width: int = 512
    height: int = 512
    seed: int = 0
    init: str | None = None  # image-to-image: the starting picture
    strength: float = 0.75  # only used with init
    model: str | None = None  # catalog alias, when the files came from the catalog
    files: dict[str, str] = field(default_factory=dict)  # role -> file (model, llm, taesd, …)

    def to_metadata(self) -> dict[str, Any]:
        data = asdict(self)
        if self.init is None:
            data.pop("strength")
        return data

    @classmethod
    def from_metadata(cls, data: dict[str, Any]) -> ImageParams:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_seed(self, seed: int) -> ImageParams:
        return replace(self, seed=seed)



@dataclass
class ImageProgress:
    """One sampling step of one picture."""

    image: int  # 0-based index of the picture
    images: int
    step: int
    steps: int
    seconds_per_step: float  # the engine's running mean for this picture; 0 before step 1


@dataclass
class GeneratedImage:
    """A finished picture and the exact parameters (its own seed) it was made with."""

    index: int
    params: ImageParams
    image: Any  # PIL.Image.Image, RGB
    seconds: float
    seconds_per_step: float


@dataclass
class ImageStats:
    """What one run of the image engine cost."""

    load_seconds: float = 0.0
    image_seconds: list[float] = field(default_factory=list)
    seconds_per_step: list[float] = field(default_factory=list)
    total_seconds: float = 0.0

    @property
    def mean_seconds_per_step(self) -> float:
        rates = self.seconds_per_step
        return sum(rates) / len(rates) if rates else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_seconds": round(self.load_seconds, 3),
            "image_seconds": [round(s, 3) for s in self.image_seconds],
            "seconds_per_step": round(self.mean_seconds_per_step, 4),
            "total_seconds": round(self.total_seconds, 3),
        }


class ImageEngine(Protocol):
    """A text-to-image model whose files were checked and can be run."""

    model_name: str
    size_multiple: int  # width and height must be multiples of this
    default_sampler: str
    files: dict[str, Path]  # role (model, diffusion_model, llm, vae, …) -> file
    entry: Any  # the catalog entry (models.catalog.CatalogEntry) the files came from, or None

    def generate(self, params: ImageParams, count: int = 1, *,
                 on_progress: Callable[[ImageProgress], None] | None = None,
                 on_image: Callable[[GeneratedImage], None] | None = None) -> ImageStats:
        """Make `count` pictures with seeds params.seed, +1, …; each goes to on_image when done.

        Ctrl-C (KeyboardInterrupt) stops the run; pictures already passed to on_image stay.
        """
        ...


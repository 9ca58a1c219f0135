"""One line of figures for `--stats` and `/stats`: short enough for a phone screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from offgrid.engines.base import GenerationStats, TranscriptionStats

if TYPE_CHECKING:
    from offgrid.grounded.summarizer import Result


def generation_line(stats: GenerationStats) -> str:
    """Prompt and reply speed of one completion (and image encoding, for vision)."""
    images = getattr(stats, "images_encoded", 0)
    seen = (f"{images} image{'s' * (images != 1)} encoded in {stats.image_seconds:.2f} s · "  # type: ignore[attr-defined]
            if images else "")
    return seen + (f"prompt {stats.prompt_tokens} tok ({stats.prompt_tokens_evaluated} new, "
            f"{stats.prompt_tokens_per_second:.1f} tok/s) · "
            f"reply {stats.completion_tokens} tok, {stats.tokens_per_second:.1f} tok/s · "
            f"first token {stats.time_to_first_token:.2f} s")


def transcription_line(stats: TranscriptionStats) -> str:
    """Audio length, time taken and the real-time factor of one transcription."""
    speed = f" ({1 / stats.real_time_factor:.1f}× real time)" if stats.real_time_factor else ""
    return (f"audio {stats.audio_seconds:.1f} s · transcribed in {stats.transcribe_seconds:.2f} s"
            f" · real-time factor {stats.real_time_factor:.3f}{speed}"
            f" · model load {stats.load_seconds:.2f} s · language {stats.language or '?'}")


def summary_line(results: list[Result]) -> str:
    """Chunks, engine calls, tokens (and how many came from the KV cache) and time."""
    chunks = sum(r.chunks for r in results)
    calls = sum(r.usage.calls for r in results)
    prompt = sum(r.usage.prompt_tokens for r in results)
    cached = sum(r.usage.prompt_tokens_cached for r in results)
    reply = sum(r.usage.completion_tokens for r in results)
    seconds = sum(r.seconds for r in results)
    return (f"{chunks} chunk{'s' * (chunks != 1)} · {calls} call{'s' * (calls != 1)} · prompt {prompt} tok "
            f"({cached} from cache) · reply {reply} tok · {seconds:.1f} s")

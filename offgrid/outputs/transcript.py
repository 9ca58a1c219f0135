"""A transcript's segments rendered as txt, srt, vtt, json or tsv, and written to a file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from offgrid.device import files
from offgrid.engines.base import Segment
from offgrid.errors import UsageError

FORMATS = ("txt", "srt", "vtt", "json", "tsv")


def format_for_path(path: Path | str) -> str | None:
    """The format an output file's extension names, or None."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else None


def choose_format(requested: str | None, output_path: Path | str | None,
                  default: str | None = None) -> str:
    """--format wins, then -o's extension, then the configured default, then txt."""
    for candidate in (requested, output_path and format_for_path(output_path), default):
        if candidate:
            fmt = candidate.lower()
            if fmt not in FORMATS:
                raise UsageError(f"unknown format {candidate!r}",
                                 hint="formats: " + ", ".join(FORMATS))
            return fmt
    return "txt"


def timestamp(seconds: float, decimal: str = ".") -> str:
    """HH:MM:SS.mmm (SRT uses a comma)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def to_txt(segments: Iterable[Segment]) -> str:
    return "".join(segment.text.strip() + "\n" for segment in segments)


def to_srt(segments: Iterable[Segment]) -> str:
    blocks = [f"{index}\n{timestamp(s.start, ',')} --> {timestamp(s.end, ',')}\n{s.text.strip()}\n"
              for index, s in enumerate(segments, start=1)]
    return "\n".join(blocks)


def to_vtt(segments: Iterable[Segment]) -> str:
    blocks = [f"{timestamp(s.start)} --> {timestamp(s.end)}\n{s.text.strip()}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_tsv(segments: Iterable[Segment]) -> str:
    """whisper.cpp's TSV: start and end in integer milliseconds, then the text."""
    rows = ["start\tend\ttext"]
    rows += [f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{_one_line(s.text)}" for s in segments]
    return "\n".join(rows) + "\n"


def to_json(segments: Sequence[Segment], **fields: Any) -> str:
    """`fields` (language, model, real_time_factor, …) first, then text and segments."""
    document = dict(fields)
    document["text"] = " ".join(s.text.strip() for s in segments if s.text.strip())
    document["segments"] = [
        {"id": index, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip()}
        for index, s in enumerate(segments)]
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def render(segments: Sequence[Segment], fmt: str, **fields: Any) -> str:
    """The whole transcript in `fmt`; `fields` only matter for json."""
    if fmt == "json":
        return to_json(segments, **fields)
    renderers = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}
    return renderers[fmt](segments)


def _one_line(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def live_line(segment: Segment, timestamps: bool) -> str:
    """One segment as it is decoded: `[00:00:00.000 --> 00:00:01.500]  text` or the text."""
    text = segment.text.strip()
    if not timestamps:
        return text
    return f"[{timestamp(segment.start)} --> {timestamp(segment.end)}]  {text}"


def write_file(path: Path, text: str) -> None:
    """Write a transcript atomically (see files.write_atomic)."""
    files.write_atomic(Path(path), text)
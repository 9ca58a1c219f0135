"""`offgrid transcribe`: speech to text from a file, stdin or the microphone."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from offgrid import config, history
from offgrid.device import files
from offgrid.engines import loader
from offgrid.engines.base import Segment, TranscriptionSettings
from offgrid.engines.loader import EngineOptions
from offgrid.errors import UsageError
from offgrid.outputs import transcript
from offgrid.ui import options, phone
from offgrid.ui.loading import TerminalHooks
from offgrid.ui.output import Output, ProgressHandle, stdin_is_tty
from offgrid.ui.stats import transcription_line

if TYPE_CHECKING:
    import numpy as np

    from offgrid.engines.base import SpeechEngine

LONG_AUDIO_SECONDS = 30.0  # a progress bar only for audio longer than one whisper window
SAMPLE_RATE = 16_000
STDIN = "-"


def transcribe(
    source: Annotated[Optional[str], typer.Argument(
        help="Audio or video file (WAV/FLAC/OGG; m4a, opus, mp3, mp4… with ffmpeg), `-` for "
             "stdin, or with --mic the seconds to record.", show_default=False)] = None,
    mic: Annotated[bool, typer.Option(
        "--mic", help="Record from the microphone: `--mic 10` for 10 seconds, `--mic` alone "
                      "until Ctrl-C (which still transcribes what was recorded).")] = False,
    model: options.ModelOpt = None,
    language: Annotated[Optional[str], typer.Option(
        "--language", "-l", help="Spoken language: auto, en, fr, de, … (default: auto).")] = None,
    translate: Annotated[bool, typer.Option(
        "--translate", help="Translate the speech into English.")] = False,
    prompt: Annotated[Optional[str], typer.Option(
        "--prompt", help="Initial prompt: names and vocabulary to expect, or the style.")] = None,
    word_timestamps: Annotated[bool, typer.Option(
        "--word-timestamps", help="One segment per word, each with its own times.")] = False,
    format_: Annotated[Optional[str], typer.Option(
        "--format", "-f", help="txt, srt, vtt, json or tsv (default: from -o's extension, "
                               "else txt).", show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the transcript to this file.", show_default=False)] = None,
    threads: options.ThreadsOpt = None,
    no_save: options.NoSaveOpt = False,
    copy: options.CopyOpt = False,
    notify: options.NotifyOpt = None,
    stats: options.StatsOpt = False,
    plain: options.PlainOpt = False,
    yes: options.YesOpt = False,
    force: options.ForceOutputOpt = False,
) -> None:
    """Transcribe speech to text on the device (whisper.cpp)."""
    out = Output(plain=plain)
    output = None if output is not None and str(output) == "-" else output
    if output is not None:
        files.check_output(output, force)
    phone.check_copy(copy)
    conf = config.load()
    fmt = transcript.choose_format(format_, output, default=conf.get("transcribe.format"))
    chosen = config.settings("transcribe", dict(model=model, language=language, threads=threads),
                             config=conf)
    engine_options = EngineOptions.from_choices(chosen, yes=yes, force=force)
    hooks = TerminalHooks(out)
    model_files = loader.resolve(chosen.get("model"), "speech", engine_options, hooks)
    settings = TranscriptionSettings(language=_language(chosen.get("language")),
                                     translate=translate, prompt=prompt,
                                     word_timestamps=word_timestamps)
    samples, source_name = _read_audio(out, source, mic)
    with phone.long_job(out, notify=notify, title="offgrid transcribe") as job:
        engine: SpeechEngine = loader.load("speech", model_files, engine_options, hooks)
        try:
            segments = _transcribe(out, engine, samples, settings,
                                   live=out.rich if output else fmt == "txt",
                                   timestamps=out.rich and (output is not None or format_ is None))
        finally:
            engine.close()
        job.done = "transcript ready"
    if engine.stats.finish_reason == "cancelled":
        raise KeyboardInterrupt
    fields = dict(model=engine.model_name, source=source_name, language=engine.stats.language,
                  duration=round(engine.stats.audio_seconds, 3),
                  real_time_factor=round(engine.stats.real_time_factor, 4))
    _emit(out, segments, fmt, output, fields)
    phone.deliver(out, transcript.render(segments, fmt, **fields), copy=copy)
    if history.enabled(no_save, conf):
        history.History().record_run("transcribe", engine.model_name, source_name, transcript.to_txt(segments),
                             meta={**fields, "format": fmt, "segments": len(segments)})
    if stats:
        out.info(transcription_line(engine.stats))


def _language(language: str | None) -> str | None:
    from offgrid.engines.whisper import normalize_language

    return normalize_language(language)


def _read_audio(out: Output, source: str | None, mic: bool) -> tuple[np.ndarray, str]:
    """(16 kHz samples, a name for the source): the microphone, stdin or a file."""
    from offgrid.inputs import audio  # numpy: only when there is audio to read

    if mic:
        seconds = _mic_seconds(source)
        audio.require_microphone()
        out.info("recording… Ctrl-C stops" + (f" (up to {seconds:g} s)" if seconds else ""))
        with out.progress("recording", total=seconds) as bar:
            samples = audio.record_microphone(
                seconds, on_tick=lambda elapsed: bar.update(
                    completed=min(elapsed, seconds) if seconds else elapsed))
        return samples, "microphone"
    if source is None:
        if stdin_is_tty():
            raise UsageError("no audio given", hint="offgrid transcribe FILE   (or - for stdin, "
                                                    "or --mic)")
        source = STDIN
    elif source == STDIN and stdin_is_tty():  # audio cannot be typed: don't wait for it
        raise UsageError("- reads audio from stdin, but stdin is a terminal",
                         hint="pipe it in: cat voice.wav | offgrid transcribe -")
    name = "stdin" if source == STDIN else source
    with out.status(f"reading {name}"):
        return audio.load_audio(source if source == STDIN else Path(source)), name


def _mic_seconds(source: str | None) -> float | None:
    if source is None:
        return None
    try:
        seconds = float(source)
    except ValueError:
        raise UsageError(f"--mic takes a number of seconds, not {source!r}",
                         hint="offgrid transcribe --mic 10") from None
    if not 0 < seconds <= 24 * 3600:
        raise UsageError(f"cannot record for {source} seconds")
    return seconds


def _transcribe(out: Output, engine: SpeechEngine, samples: np.ndarray,
                settings: TranscriptionSettings, *, live: bool, timestamps: bool) -> list[Segment]:
    """Run the engine; stream segments to stdout when the result is plain text there, and
    show a progress bar on stderr for long audio."""
    long_audio = len(samples) > LONG_AUDIO_SECONDS * SAMPLE_RATE
    bar_context = out.progress("transcribing", total=100) if long_audio else nullcontext(
        ProgressHandle())
    with bar_context as bar:
        def show(segment: Segment) -> None:
            line = transcript.live_line(segment, timestamps)
            if bar.live and out.rich:
                bar.print(line)  # the bar shares the terminal: print above it
            else:
                out.line(line)

        return engine.transcribe(samples, settings, on_segment=show if live else None,
                                 on_progress=lambda percent: bar.update(completed=percent))


def _emit(out: Output, segments: list[Segment], fmt: str, output: Path | None,
          fields: dict[str, Any]) -> None:
    """The finished transcript: to the -o file, or to stdout unless it was streamed already."""
    if output is not None:
        transcript.write_file(output, transcript.render(segments, fmt, **fields))
        out.info(f"wrote {len(segments)} segment{'s' * (len(segments) != 1)} to {output}")
    elif fmt != "txt":
        out.write(transcript.render(segments, fmt, **fields))
    if not segments:
        out.info("no speech found")


def register(app: typer.Typer) -> None:
    app.command("transcribe")(transcribe)

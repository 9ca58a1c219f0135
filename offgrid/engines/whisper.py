"""pywhispercpp adapter: validate a whisper.cpp model, load it, transcribe 16 kHz audio.

What the binding does that this adapter guards against (pywhispercpp 1.5.1, whisper.cpp 1.8.5;
see /work/notes/transcribe.md):
- a bad file loads "fine" and segfaults later, so every file goes through check_whisper_file;
- a model name that is not a path makes it download, so only validated paths reach it;
- parameters passed to transcribe() stick for later calls, so every call sets all of them;
- an unknown language silently means auto-detect, so codes are checked here;
- native logs go to stderr: they are routed to native.record_log (and reset at exit, or the
  interpreter aborts);
- a Python exception inside a callback would unwind through C++: callbacks never raise, they
  ask whisper.cpp to abort and the error is re-raised afterwards. Ctrl-C works the same way.
"""

from __future__ import annotations

import atexit
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from offgrid.engines import native
from offgrid.engines.base import (PercentCallback, Segment, SegmentCallback,
                                  TranscriptionSettings, TranscriptionStats)
from offgrid.errors import EngineError, UsageError
from offgrid.engines.loader import Checked, EngineOptions
from offgrid.models.store import ResolvedModel
from offgrid.models.validate_whisper import check_whisper_file

SAMPLE_RATE = 16_000
_CENTISECONDS = 100.0  # whisper.cpp segment times are in 10 ms units
_logs_routed = False


def import_whisper() -> tuple[Any, Any]:
    """(pywhispercpp.model.Model, the _pywhispercpp extension), imported lazily, logs routed."""
    native.import_engine("whisper")
    import _pywhispercpp
    from pywhispercpp.model import Model

    _route_native_logs(_pywhispercpp)
    return Model, _pywhispercpp


def _route_native_logs(binding: Any) -> None:
    global _logs_routed
    if _logs_routed:
        return
    binding.whisper_log_set(lambda level, text: native.record_log(text))
    atexit.register(binding.whisper_log_set, None)  # a Python callback at exit aborts
    _logs_routed = True


def language_codes() -> list[str]:
    """Every language code whisper knows ("en", "fr", …)."""
    _, binding = import_whisper()
    return [binding.whisper_lang_str(i) for i in range(binding.whisper_lang_max_id() + 1)]


def normalize_language(language: str | None) -> str | None:
    """A whisper language code, None for auto-detect; UsageError for anything else."""
    if language is None or language.strip().lower() in ("", "auto"):
        return None
    code = language.strip().lower()
    codes = language_codes()
    if code in codes:
        return code
    _, binding = import_whisper()
    index = binding.whisper_lang_id(code)  # also accepts full names: "french"
    if index >= 0:
        return binding.whisper_lang_str(index)
    raise UsageError(f"unknown language {language!r}",
                     hint="use a code like en, fr, de, es, ja, or auto")


SPEECH_HEADROOM_MB = 150  # whisper.cpp's buffers beyond the weights (no catalog figure)


class SpeechAdapter:
    """The loader's adapter for whisper.cpp models."""

    def check(self, model: ResolvedModel, options: EngineOptions) -> Checked:
        info = check_whisper_file(model.path)
        size_mb = model.size >> 20
        ram_mb = model.entry.ram_mb if model.entry and model.entry.ram_mb else size_mb + SPEECH_HEADROOM_MB
        return Checked(model, max(0, ram_mb - size_mb), model.name, {"info": info})

    def load(self, checked: Checked, options: EngineOptions) -> WhisperEngine:
        from offgrid import device

        return WhisperEngine(checked.model.path, model_name=checked.model.name,
                             n_threads=options.threads or device.default_threads(),
                             info=checked.details["info"])


class WhisperEngine:
    """A loaded whisper.cpp model behind the SpeechEngine interface."""

    def __init__(self, model_path: Path, *, n_threads: int | None = None,
                 model_name: str | None = None, info: dict | None = None):
        self.info = info or check_whisper_file(model_path)
        self.model_name = model_name or Path(model_path).name
        self.multilingual = bool(self.info["multilingual"])
        self.n_threads = n_threads
        self.stats = TranscriptionStats()
        model_class, self._binding = import_whisper()
        started = time.perf_counter()
        params: dict[str, Any] = dict(print_progress=False, print_realtime=False)
        if n_threads:
            params["n_threads"] = n_threads
        try:
            self._model = model_class(str(model_path), redirect_whispercpp_logs_to=False, **params)
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(f"whisper.cpp could not load {self.model_name}: "
                              f"{native.last_native_error(str(exc))}") from None
        self.load_seconds = time.perf_counter() - started

    def transcribe(self, samples: np.ndarray, settings: TranscriptionSettings,
                   on_segment: SegmentCallback | None = None,
                   on_progress: PercentCallback | None = None) -> list[Segment]:
        """See SpeechEngine.transcribe."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        duration = len(samples) / SAMPLE_RATE
        language = self._language(settings)
        params = self._params(settings, language, on_progress)
        guard = _CallbackGuard()
        segments: list[Segment] = []

        def collect(raw: Any) -> None:
            segment = _to_segment(raw, duration)
            if segment is not None:
                segments.append(segment)
                if on_segment is not None:
                    on_segment(segment)

        started = time.perf_counter()
        with guard.catching_ctrl_c():
            self._model.transcribe(samples, new_segment_callback=guard.wrap(collect),
                                   abort_callback=guard.should_abort, **params)
        elapsed = time.perf_counter() - started
        guard.reraise()
        self.stats = TranscriptionStats(
            audio_seconds=duration, load_seconds=self.load_seconds, transcribe_seconds=elapsed,
            language=language or self._detected_language(), segments=len(segments),
            finish_reason="cancelled" if guard.interrupted else "stop")
        return segments

    def _language(self, settings: TranscriptionSettings) -> str | None:
        language = normalize_language(settings.language)
        if not self.multilingual:
            if language not in (None, "en"):
                raise UsageError(f"{self.model_name} understands only English",
                                 hint="use a multilingual model (e.g. whisper-base), or drop "
                                      "--language")
            if settings.translate:
                raise UsageError(f"{self.model_name} is English-only: nothing to translate",
                                 hint="use a multilingual model for --translate")
            return "en"  # auto-detection is meaningless without language tokens
        return language

    def _params(self, settings: TranscriptionSettings, language: str | None,
                on_progress: PercentCallback | None) -> dict[str, Any]:
        """Every parameter, every call: the binding remembers the previous call's values."""
        params: dict[str, Any] = dict(
            language=language or "", translate=settings.translate,
            initial_prompt=settings.prompt or "", no_context=True, no_timestamps=False,
            single_segment=False, print_realtime=False,
            token_timestamps=settings.word_timestamps, max_len=1 if settings.word_timestamps else 0,
            split_on_word=settings.word_timestamps)
        if self.n_threads:
            params["n_threads"] = self.n_threads
        if on_progress is None:
            params["print_progress"] = False  # else the C++ side prints "Progress: n%"
        else:
            params["print_progress"] = True
            params["progress_callback"] = _CallbackGuard.quiet(
                lambda percent: on_progress(max(0, min(100, int(percent)))))
        return params

    def _detected_language(self) -> str | None:
        try:
            index = self._binding.whisper_full_lang_id(self._model._ctx)
        except (AttributeError, RuntimeError):
            return None
        return self._binding.whisper_lang_str(index) if index >= 0 else None

    def close(self) -> None:
        """Free the native context now, while logging is still routed."""
        model = getattr(self, "_model", None)
        if model is not None and getattr(model, "_ctx", None) is not None:
            self._binding.whisper_free(model._ctx)
            model._ctx = None
        self._model = None


def _to_segment(raw: Any, duration: float) -> Segment | None:
    """pywhispercpp's Segment (10 ms units) -> ours, clamped to the audio (no-timestamps mode
    reports a negative start and the 30 s window's end)."""
    text = (raw.text or "").strip()
    if not text:
        return None
    start = min(max(raw.t0 / _CENTISECONDS, 0.0), duration)
    end = min(max(raw.t1 / _CENTISECONDS, start), duration)
    return Segment(round(start, 3), round(end, 3), text)


class _CallbackGuard:
    """Keeps exceptions and Ctrl-C out of the C++ stack: remember them, ask to abort."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.interrupted = False

    def should_abort(self) -> bool:
        return self.interrupted or self.error is not None

    def wrap(self, callback: Any) -> Any:
        def guarded(*args: Any) -> None:
            if self.should_abort():
                return
            try:
                callback(*args)
            except BaseException as exc:  # noqa: BLE001 (re-raised after whisper returns)
                self.error = exc
        return guarded

    @staticmethod
    def quiet(callback: Any) -> Any:
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:  # noqa: BLE001 (progress is cosmetic)
                pass
        return guarded

    @contextmanager
    def catching_ctrl_c(self) -> Iterator[None]:
        """While whisper.cpp runs, Ctrl-C only sets a flag that the abort callback reports."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.interrupted = True

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error

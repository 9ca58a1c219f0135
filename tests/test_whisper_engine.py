"""The pywhispercpp adapter, with the real engine and the tiny generated model."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest

from offgrid.engines import native
from offgrid.engines.base import Segment, TranscriptionSettings
from offgrid.engines.whisper import WhisperEngine, _to_segment, normalize_language
from offgrid.errors import ModelFileError, UsageError
from tests.audiofiles import speechlike
from tests.tinymodels.whisper import EXPECTED_END, EXPECTED_START, EXPECTED_TEXT

HELLO = Segment(EXPECTED_START, EXPECTED_END, EXPECTED_TEXT)
CLIP = speechlike(2.5)


@pytest.fixture(scope="module")
def engine(tiny_whisper):
    loaded = WhisperEngine(tiny_whisper, n_threads=1)
    yield loaded
    loaded.close()


def test_transcribes_and_streams(engine):
    streamed, progress = [], []
    segments = engine.transcribe(CLIP, TranscriptionSettings(), on_segment=streamed.append,
                                 on_progress=progress.append)
    assert segments == [HELLO]
    assert streamed == [HELLO]
    assert progress[-1] == 100 and all(0 <= p <= 100 for p in progress)
    assert engine.stats.audio_seconds == 2.5
    assert engine.stats.language == "en"  # detected
    assert engine.stats.segments == 1 and engine.stats.finish_reason == "stop"
    assert engine.stats.real_time_factor == engine.stats.transcribe_seconds / 2.5


def test_native_logs_stay_off_stderr(tiny_whisper, capfd):
    WhisperEngine(tiny_whisper, n_threads=1).close()
    assert capfd.readouterr().err == ""
    assert any("whisper" in line for line in native.native_log)


def test_every_window_of_long_audio(engine):
    segments = engine.transcribe(np.zeros(16_000 * 65, np.float32), TranscriptionSettings())
    assert [(s.start, s.text) for s in segments] == [(0.0, EXPECTED_TEXT), (30.0, EXPECTED_TEXT),
                                                      (60.0, EXPECTED_TEXT)]


def test_settings_do_not_stick_between_calls(engine):
    """pywhispercpp keeps every parameter of the previous call; the adapter resets them."""
    words = engine.transcribe(CLIP, TranscriptionSettings(word_timestamps=True, prompt="Hi.",
                                                          language="fr", translate=True))
    assert [w.text for w in words] == ["Hello", "world."]
    assert words[0].start == 0.0 and words[0].end <= words[1].start < words[1].end == 1.5
    assert engine.stats.language == "fr"
    assert engine.transcribe(CLIP, TranscriptionSettings()) == [HELLO]
    assert engine.stats.language == "en"


@pytest.mark.parametrize("given, code", [(None, None), ("auto", None), (" EN ", "en"),
                                         ("french", "fr"), ("de", "de")])
def test_normalize_language(given, code):
    assert normalize_language(given) == code


def test_unknown_language():
    with pytest.raises(UsageError, match="unknown language 'klingon'"):
        normalize_language("klingon")


def test_english_only_model(tiny_whisper_en):
    engine = WhisperEngine(tiny_whisper_en, n_threads=1)
    try:
        assert not engine.multilingual
        assert engine.transcribe(CLIP, TranscriptionSettings()) == [HELLO]
        assert engine.stats.language == "en"
        with pytest.raises(UsageError, match="understands only English"):
            engine.transcribe(CLIP, TranscriptionSettings(language="fr"))
        with pytest.raises(UsageError, match="nothing to translate"):
            engine.transcribe(CLIP, TranscriptionSettings(translate=True))
    finally:
        engine.close()


def test_an_error_in_a_callback_stops_decoding_and_is_raised(engine):
    seen = []

    def broken_pipe(segment):
        seen.append(segment)
        raise BrokenPipeError("reader went away")

    with pytest.raises(BrokenPipeError):
        engine.transcribe(np.zeros(16_000 * 65, np.float32), TranscriptionSettings(),
                          on_segment=broken_pipe)
    assert len(seen) == 1  # whisper.cpp was asked to stop after the first window


def test_ctrl_c_stops_early_and_keeps_the_segments(engine):
    previous = signal.getsignal(signal.SIGINT)
    segments = engine.transcribe(np.zeros(16_000 * 65, np.float32), TranscriptionSettings(),
                                 on_segment=lambda s: os.kill(os.getpid(), signal.SIGINT))
    assert 1 <= len(segments) < 3
    assert engine.stats.finish_reason == "cancelled"
    assert signal.getsignal(signal.SIGINT) is previous


def test_a_bad_file_never_reaches_the_binding(tmp_path):
    bad = tmp_path / "ggml-base.bin"
    bad.write_bytes(b"<html>Not Found</html>")
    with pytest.raises(ModelFileError, match="is not a whisper model"):
        WhisperEngine(bad)


def test_segment_times_are_clamped_to_the_audio():
    """No-timestamps mode reports a negative start and the 30 s window's end."""
    raw = SimpleNamespace(t0=-100728, t1=3000, text=" Hello ")
    assert _to_segment(raw, duration=2.5) == Segment(0.0, 2.5, "Hello")
    assert _to_segment(SimpleNamespace(t0=0, t1=0, text=""), duration=2.5) is None

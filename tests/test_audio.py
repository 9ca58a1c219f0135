"""offgrid.inputs.audio: decoding, downmixing and resampling to 16 kHz mono float32."""

from __future__ import annotations

import io
import os
import struct
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from offgrid.inputs import audio
from offgrid.inputs.audio import SAMPLE_RATE, load_audio, resample
from offgrid.errors import InputError
from tests.audiofiles import float_wav_bytes, tone, wav_bytes


def assert_close_to(decoded: np.ndarray, expected: np.ndarray, tolerance: float) -> None:
    assert decoded.dtype == np.float32
    assert decoded.ndim == 1
    assert len(decoded) == len(expected)
    assert np.abs(decoded - expected).max() < tolerance


@pytest.mark.parametrize("width, tolerance", [(1, 0.01), (2, 1e-4), (3, 1e-6), (4, 1e-6)])
def test_pcm_wav_widths(tmp_path, width, tolerance):
    samples = tone(SAMPLE_RATE)
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(samples, SAMPLE_RATE, width))
    assert_close_to(load_audio(path), samples, tolerance)


@pytest.mark.parametrize("extensible", [False, True])
def test_float_wav(extensible):
    samples = tone(SAMPLE_RATE)
    decoded = load_audio(float_wav_bytes(samples, SAMPLE_RATE, extensible=extensible))
    assert_close_to(decoded, samples, 1e-7)


def test_streamed_wav_with_unknown_size():
    """arecord writing to a pipe leaves 0xFFFFFFFF in the size fields."""
    samples = tone(SAMPLE_RATE)
    decoded = load_audio(float_wav_bytes(samples, SAMPLE_RATE, data_size=0xFFFFFFFF))
    assert_close_to(decoded, samples, 1e-7)


def test_stereo_is_averaged():
    left, right = tone(SAMPLE_RATE, freq=440), tone(SAMPLE_RATE, freq=660)
    decoded = load_audio(wav_bytes(np.stack([left, right], axis=1), SAMPLE_RATE, 2, channels=2))
    assert_close_to(decoded, (left + right) / 2, 1e-4)


def test_wav_at_44100_is_resampled():
    decoded = load_audio(wav_bytes(tone(44_100, seconds=1.0, freq=1000), 44_100))
    expected = tone(SAMPLE_RATE, seconds=1.0, freq=1000)
    assert len(decoded) == SAMPLE_RATE
    assert np.abs(decoded - expected)[200:-200].max() < 1e-3


def test_loud_float_audio_is_clipped():
    decoded = load_audio(float_wav_bytes(tone(SAMPLE_RATE, amplitude=3.0), SAMPLE_RATE))
    assert decoded.max() == pytest.approx(1.0)
    assert decoded.min() == pytest.approx(-1.0)


def test_stdin(monkeypatch):
    samples = tone(SAMPLE_RATE)
    fake_stdin = io.TextIOWrapper(io.BytesIO(wav_bytes(samples, SAMPLE_RATE)))
    monkeypatch.setattr(sys, "stdin", fake_stdin)
    assert_close_to(load_audio("-"), samples, 1e-4)


@pytest.mark.parametrize("src_rate", [8_000, 11_025, 22_050, 32_000, 44_100, 48_000, 44_056])
def test_resample_keeps_a_tone(src_rate):
    out = resample(tone(src_rate, seconds=1.0, freq=1000), src_rate)
    expected = tone(SAMPLE_RATE, seconds=1.0, freq=1000)
    assert len(out) == SAMPLE_RATE
    assert np.abs(out - expected)[200:-200].max() < 1e-3


@pytest.mark.parametrize("src_rate", [44_100, 48_000])
def test_resample_removes_what_16k_cannot_hold(src_rate):
    """A 10 kHz tone is above the 8 kHz Nyquist limit: it must vanish, not alias to 6 kHz."""
    out = resample(tone(src_rate, seconds=1.0, freq=10_000), src_rate)
    assert np.sqrt(np.mean(out[200:-200] ** 2)) < 1e-3


def test_resample_identity_and_empty():
    samples = tone(SAMPLE_RATE)
    assert resample(samples, SAMPLE_RATE) is samples
    assert resample(np.zeros(0, np.float32), 44_100).size == 0


# --- errors -----------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        load_audio(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        load_audio(tmp_path / "empty.wav")


def test_wav_without_samples():
    with pytest.raises(InputError, match="contains no audio samples"):
        load_audio(wav_bytes(np.zeros(0, np.float32), SAMPLE_RATE))


def test_corrupt_wav_header():
    data = wav_bytes(tone(SAMPLE_RATE), SAMPLE_RATE)
    broken = data[:12] + b"junk" + data[16:]  # the fmt chunk is gone
    with pytest.raises(InputError, match="corrupt WAV"):
        load_audio(broken)


def test_truncated_wav_keeps_what_is_there():
    data = wav_bytes(tone(SAMPLE_RATE), SAMPLE_RATE)
    decoded = load_audio(data[: len(data) // 2 + 1])
    assert 0 < len(decoded) < SAMPLE_RATE // 2


def test_unsupported_wav_encoding():
    data = bytearray(wav_bytes(tone(SAMPLE_RATE), SAMPLE_RATE))
    struct.pack_into("<H", data, 20, 2)  # format tag 2 = MS ADPCM
    with pytest.raises(InputError, match="unsupported WAV encoding"):
        load_audio(bytes(data))


@pytest.fixture
def no_ffmpeg(monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)


@pytest.fixture
def no_soundfile(monkeypatch):
    monkeypatch.setattr(audio, "_soundfile", lambda: None)


M4A_HEADER = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + bytes(200)


def test_ffmpeg_missing_names_the_install_command(no_ffmpeg, no_soundfile, monkeypatch):
    monkeypatch.setenv("PREFIX", "/usr")
    with pytest.raises(InputError) as caught:
        load_audio(M4A_HEADER)
    assert "needs ffmpeg" in caught.value.message
    assert "apt install ffmpeg" in caught.value.hint


def test_ffmpeg_missing_on_termux(no_ffmpeg, no_soundfile, monkeypatch):
    monkeypatch.setenv("PREFIX", "/data/data/com.termux/files/usr")
    with pytest.raises(InputError) as caught:
        load_audio(M4A_HEADER)
    assert caught.value.hint == "pkg install ffmpeg"


def test_flac_without_soundfile_or_ffmpeg(no_ffmpeg, no_soundfile):
    with pytest.raises(InputError, match="FLAC audio needs ffmpeg"):
        load_audio(b"fLaC" + bytes(100))


def test_text_file_is_not_audio(tmp_path, no_ffmpeg):
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(InputError, match="it is not WAV, FLAC or OGG audio"):
        load_audio(path)


# --- ffmpeg, with a stand-in executable ---------------------------------------------------

FAKE_FFMPEG = """#!{python}
import sys, struct, math
args = sys.argv[1:]
open({log!r}, "w").write("\\n".join(args))
source = args[args.index("-i") + 1]
if open(source, "rb").read(4) == b"BAD!":
    sys.stderr.write("[mov] moov atom not found\\n{name}: Invalid data found when processing input\\n")
    sys.exit(1)
samples = [0.25 * math.sin(2 * math.pi * 440 * n / 16000) for n in range(8000)]
sys.stdout.buffer.write(struct.pack("<%df" % len(samples), *samples))
"""


@pytest.fixture
def fake_ffmpeg(tmp_path, monkeypatch, no_soundfile):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ffmpeg-args.txt"
    script = bin_dir / "ffmpeg"
    script.write_text(FAKE_FFMPEG.format(python=sys.executable, log=str(log), name="input"))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def test_ffmpeg_decodes_other_formats(tmp_path, fake_ffmpeg):
    path = tmp_path / "voice.opus"
    path.write_bytes(b"OpusHead" + bytes(100))
    decoded = load_audio(path)
    assert_close_to(decoded, tone(SAMPLE_RATE, freq=440, amplitude=0.25), 1e-6)
    args = fake_ffmpeg.read_text().split("\n")
    assert args[args.index("-i") + 1] == str(path)
    assert ["-ac", "1"] == args[args.index("-ac"):args.index("-ac") + 2]
    assert ["-ar", "16000"] == args[args.index("-ar"):args.index("-ar") + 2]
    assert ["-f", "f32le", "pipe:1"] == args[-3:]


def test_ffmpeg_reads_stdin_bytes_through_a_temporary_file(fake_ffmpeg):
    decoded = load_audio(M4A_HEADER)
    assert len(decoded) == 8000
    args = fake_ffmpeg.read_text().split("\n")
    source = Path(args[args.index("-i") + 1])
    assert not source.exists()  # cleaned up


def test_ffmpeg_failure_is_one_clear_line(tmp_path, fake_ffmpeg):
    path = tmp_path / "broken.m4a"
    path.write_bytes(b"BAD!" + bytes(100))
    with pytest.raises(InputError) as caught:
        load_audio(path)
    assert caught.value.message == (
        f"cannot decode {path} (not audio, or corrupt): input: Invalid data found when processing input")


# --- soundfile (FLAC / OGG) ------------------------------------------------------------------

@pytest.mark.parametrize("fmt, subtype, tolerance", [("FLAC", "PCM_16", 1e-4), ("OGG", "VORBIS", 0.05)])
def test_soundfile_formats(tmp_path, fmt, subtype, tolerance):
    soundfile = pytest.importorskip("soundfile", reason="soundfile is optional")
    samples = tone(22_050, seconds=1.0)
    path = tmp_path / f"a.{fmt.lower()}"
    soundfile.write(path, samples, 22_050, format=fmt, subtype=subtype)
    decoded = load_audio(path)
    expected = tone(SAMPLE_RATE, seconds=1.0)
    assert len(decoded) == SAMPLE_RATE
    assert np.abs(decoded - expected)[400:-400].max() < tolerance


def test_corrupt_flac_without_ffmpeg(no_ffmpeg):
    pytest.importorskip("soundfile", reason="soundfile is optional")
    with pytest.raises(InputError, match="cannot decode stdin"):
        load_audio(b"fLaC" + bytes(100))


def test_a_big_video_is_decoded_from_its_path_not_read_into_memory(tmp_path, fake_ffmpeg, monkeypatch):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(3 * 65_536))
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read the whole file"))
    reads: list[int] = []
    real_open = Path.open

    def counting_open(self, *args, **kwargs):
        handle = real_open(self, *args, **kwargs)
        real_read = handle.read
        handle.read = lambda n=-1: (reads.append(n), real_read(n))[1]
        return handle

    monkeypatch.setattr(Path, "open", counting_open)
    assert len(load_audio(path)) == 8000
    assert reads and all(n > 0 for n in reads)  # only a bounded head was read


def test_a_pipe_path_such_as_process_substitution_is_read_once(tmp_path, fake_ffmpeg):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(M4A_HEADER,))
    writer.start()
    decoded = load_audio(fifo)  # ffmpeg gets a temporary copy, not the drained pipe
    writer.join(timeout=10)
    assert len(decoded) == 8000
    args = fake_ffmpeg.read_text().split("\n")
    assert args[args.index("-i") + 1] != str(fifo)

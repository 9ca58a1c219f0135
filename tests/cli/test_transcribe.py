"""`offgrid transcribe` through the CLI, on the real whisper.cpp engine with a tiny model
that hears "Hello world." (0.00-1.50 s) in every 30 s window of any audio."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from offgrid.history import History
from tests.audiofiles import speechlike, tone, write_wav
from tests.conftest import ROOT

ANSI = re.compile(r"\x1b\[")
HELLO = "Hello world.\n"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2.5 s of voice-like sound at 44.1 kHz stereo-less 16-bit (resampled by offgrid)."""
    rate = 44_100
    samples = np.interp(np.arange(int(2.5 * rate)) / rate, np.arange(40_000) / 16_000,
                        speechlike(2.5))
    return write_wav(tmp_path_factory.mktemp("audio") / "clip.wav", samples, rate)


@pytest.fixture
def run(offgrid, tiny_whisper):
    """offgrid transcribe with the tiny model and one thread."""
    def transcribe(*args: str, model: Path = tiny_whisper, **kwargs):
        return offgrid("transcribe", "-m", str(model), "-t", "1", *args, **kwargs)
    return transcribe


def test_pipe_gets_plain_text_only(run, clip):
    result = run(str(clip))
    assert result.returncode == 0, result.stderr
    assert result.stdout == HELLO
    assert result.stderr == ""
    assert not ANSI.search(result.stdout)


def test_stdin_dash_and_piped_stdin(run, clip):
    assert run("-", input=clip.read_bytes()).stdout == HELLO
    assert run(input=clip.read_bytes()).stdout == HELLO


def test_srt(run, clip):
    result = run(str(clip), "--format", "srt")
    assert result.stdout == "1\n00:00:00,000 --> 00:00:01,500\nHello world.\n"


def test_vtt(run, clip):
    result = run(str(clip), "-f", "vtt")
    assert result.stdout == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello world.\n"


def test_tsv(run, clip):
    assert run(str(clip), "-f", "tsv").stdout == "start\tend\ttext\n0\t1500\tHello world.\n"


def test_json(run, clip, tiny_whisper):
    result = run(str(clip), "-f", "json")
    document = json.loads(result.stdout)
    assert document["segments"] == [{"id": 0, "start": 0.0, "end": 1.5, "text": "Hello world."}]
    assert document["text"] == "Hello world."
    assert document["language"] == "en"  # detected
    assert document["model"] == str(tiny_whisper)
    assert document["source"] == str(clip)
    assert document["duration"] == 2.5
    assert document["real_time_factor"] > 0


def test_language_and_translate_options(run, clip):
    document = json.loads(run(str(clip), "-f", "json", "--language", "fr", "--translate",
                              "--prompt", "Bonjour.").stdout)
    assert document["language"] == "fr"
    assert document["text"] == "Hello world."


def test_word_timestamps(run, clip):
    document = json.loads(run(str(clip), "-f", "json", "--word-timestamps").stdout)
    words = document["segments"]
    assert [w["text"] for w in words] == ["Hello", "world."]
    assert words[0]["start"] == 0.0 and words[-1]["end"] == 1.5
    assert words[0]["end"] <= words[1]["start"]


def test_output_file_format_from_extension(run, clip, tmp_path):
    target = tmp_path / "talk.srt"
    result = run(str(clip), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert target.read_text() == "1\n00:00:00,000 --> 00:00:01,500\nHello world.\n"
    assert result.stderr == f"wrote 1 segment to {target}\n"


def test_format_option_beats_the_extension(run, clip, tmp_path):
    target = tmp_path / "talk.txt"
    run(str(clip), "-o", str(target), "--format", "vtt")
    assert target.read_text().startswith("WEBVTT\n\n")


def test_long_audio_has_a_segment_per_window(run, tmp_path):
    long_file = write_wav(tmp_path / "long.wav", tone(16_000, seconds=65, amplitude=0.1))
    result = run(str(long_file), "-f", "srt")
    assert [line for line in result.stdout.splitlines() if "-->" in line] == [
        "00:00:00,000 --> 00:00:01,500", "00:00:30,000 --> 00:00:31,500",
        "00:01:00,000 --> 00:01:01,500"]
    assert result.stdout.splitlines()[0::4] == ["1", "2", "3"]


def test_stats_go_to_stderr(run, clip):
    result = run(str(clip), "--stats")
    assert result.stdout == HELLO
    assert re.fullmatch(r"audio 2\.5 s · transcribed in [\d.]+ s · real-time factor [\d.]+ "
                        r"\([\d.]+× real time\) · model load [\d.]+ s · language en\n",
                        result.stderr)


def test_history_records_the_run_unless_no_save(run, clip):
    run(str(clip))
    record = History().find(command="transcribe")
    assert record is not None and record.title == str(clip)
    full = History().get(record.id)
    assert [m["content"] for m in full.messages] == [str(clip), HELLO]
    assert full.meta["language"] == "en" and full.meta["format"] == "txt"
    run(str(clip), "--no-save")
    assert len(History().list(command="transcribe")) == 1


def test_model_from_config(offgrid, tiny_whisper, clip):
    assert offgrid("config", "set", "transcribe.model", str(tiny_whisper)).returncode == 0
    assert offgrid("config", "set", "transcribe.format", "tsv").returncode == 0
    result = offgrid("transcribe", str(clip), "-t", "1")
    assert result.stdout == "start\tend\ttext\n0\t1500\tHello world.\n", result.stderr


# --- errors: one line, non-zero, nothing written ----------------------------------------------

def assert_one_line_error(result, message: str, code: int = 1) -> None:
    assert result.returncode == code
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("offgrid: error: ") and message in lines[0], result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: "))


def test_missing_file(run, tmp_path):
    assert_one_line_error(run(str(tmp_path / "nope.wav")), "no such file")


def test_corrupt_audio_writes_nothing(run, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    target = tmp_path / "out.srt"
    assert_one_line_error(run(str(broken), "-o", str(target)), "corrupt WAV")
    assert not target.exists()


def test_zero_length_audio(run, tmp_path):
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    assert_one_line_error(run(str(empty)), "contains no audio samples")
    assert_one_line_error(run("-", input=b""), "stdin is empty")


def test_ffmpeg_missing(run, tmp_path):
    voice_note = tmp_path / "voice.m4a"
    voice_note.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(300))
    result = run(str(voice_note), env={"PATH": str(tmp_path)})
    assert_one_line_error(result, "needs ffmpeg")
    assert "apt install ffmpeg" in result.stderr
    termux = run(str(voice_note), env={"PATH": str(tmp_path),
                                      "PREFIX": "/data/data/com.termux/files/usr"})
    assert termux.stderr.splitlines()[1] == "hint: pkg install ffmpeg"


def test_ffmpeg_decodes_a_voice_note(run, tmp_path):
    """A stand-in ffmpeg that 'decodes' anything to 2 s of 16 kHz float samples."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").write_text(
        f"#!{sys.executable}\nimport sys\nsys.stdout.buffer.write(bytes(4 * 32000))\n")
    (bin_dir / "ffmpeg").chmod(0o755)
    voice_note = tmp_path / "voice.opus"
    voice_note.write_bytes(b"OggS-not-really" + bytes(300))
    result = run(str(voice_note), env={"PATH": str(bin_dir)})
    assert result.stdout == HELLO, result.stderr


def test_not_a_whisper_model(run, clip, tmp_path, tiny_llama):
    assert_one_line_error(run(str(clip), model=tiny_llama), "it is a GGUF file")
    truncated = tmp_path / "ggml-base.bin"
    truncated.write_bytes(b"lmgg" + bytes(10))
    assert_one_line_error(run(str(clip), model=truncated), "is not a whisper model")


def test_default_model_not_downloaded(offgrid, clip):
    result = offgrid("transcribe", str(clip))
    assert_one_line_error(result, "model whisper-base is not downloaded")
    assert result.stderr.splitlines()[1] == "hint: offgrid models pull whisper-base"


def test_usage_errors(run, clip, tiny_whisper_en):
    assert_one_line_error(run(str(clip), "-l", "klingon"), "unknown language 'klingon'", 2)
    assert_one_line_error(run(str(clip), "-f", "docx"), "unknown format 'docx'", 2)
    assert_one_line_error(run(str(clip), "--translate", model=tiny_whisper_en),
                          "English-only", 2)
    assert_one_line_error(run("--mic", "soon"), "--mic takes a number of seconds", 2)


def test_english_only_model(run, clip, tiny_whisper_en):
    assert run(str(clip), model=tiny_whisper_en).stdout == HELLO


# --- microphone, with a stand-in arecord -----------------------------------------------------------

FAKE_ARECORD = """#!{python}
import sys, wave
path, seconds = sys.argv[-1], float(sys.argv[sys.argv.index("-d") + 1])
with wave.open(path, "wb") as out:
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(16000)
    out.writeframes(bytes(2 * int(16000 * seconds)))
"""


def test_mic_records_then_transcribes(run, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "arecord").write_text(FAKE_ARECORD.format(python=sys.executable))
    (bin_dir / "arecord").chmod(0o755)
    result = run("--mic", "2", "-f", "json", env={"PATH": str(bin_dir)})
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["source"] == "microphone" and document["duration"] == 2.0
    assert document["text"] == "Hello world."
    assert "recording" in result.stderr


def test_no_microphone_recorder(run, tmp_path):
    result = run("--mic", "1", env={"PATH": str(tmp_path)})
    assert_one_line_error(result, "no microphone recorder found")


# --- a terminal ---------------------------------------------------------------------------------

def run_in_terminal(args: list[str], timeout: float = 120) -> str:
    """Run offgrid with stdout and stderr on a pseudo-terminal; return what it showed."""
    controller, terminal = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100", TERM="xterm")
    process = subprocess.Popen([sys.executable, "-m", "offgrid", *args], stdin=subprocess.DEVNULL,
                               stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: the terminal closed
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=timeout)
    os.close(controller)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_terminal_shows_timestamped_segments(tiny_whisper, tmp_path):
    long_file = write_wav(tmp_path / "long.wav", tone(16_000, seconds=35, amplitude=0.1))
    shown = run_in_terminal(["transcribe", "-m", str(tiny_whisper), "-t", "1", str(long_file),
                             "--no-save"])
    assert "[00:00:00.000 --> 00:00:01.500]  Hello world." in shown
    assert "[00:00:30.000 --> 00:00:31.500]  Hello world." in shown


def test_ctrl_c_stops_transcribing_cleanly(tiny_whisper, tmp_path):
    """SIGINT while whisper.cpp runs: no crash, the segments so far are out, exit 130, no file."""
    long_file = write_wav(tmp_path / "long.wav", tone(16_000, seconds=600, amplitude=0.1))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "offgrid", "transcribe", "-m", str(tiny_whisper), "-t", "1",
         str(long_file), "-f", "txt"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=120)
    assert first == b"Hello world.\n"
    assert process.returncode == 130, stderr
    assert len(rest.splitlines()) < 19  # stopped well before the 20th window
    assert b"error" not in stderr


def test_dash_with_stdin_on_a_terminal_is_a_usage_error_not_a_wait(tiny_whisper):
    main_fd, tty_fd = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "offgrid", "transcribe", "-", "-m", str(tiny_whisper)],
                          stdin=tty_fd, capture_output=True, text=True, env=env, timeout=60)
    os.close(tty_fd)
    os.close(main_fd)
    assert proc.returncode == 2
    assert proc.stderr.startswith("offgrid: error: - reads audio from stdin, but stdin is a terminal")

"""`offgrid transcribe` in-process with the fake speech engine, which hears "Hello world."
in every second of audio ("Bonjour le monde." with --language fr)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from offgrid.models import store
from tests.audiofiles import tone, wav_bytes, write_wav
from tests.fast.helpers import files_in, hint, one_line_error, saved

HELLO_TWICE = "Hello world.\nHello world.\n"
SRT = ("1\n00:00:00,000 --> 00:00:01,000\nHello world.\n\n"
       "2\n00:00:01,000 --> 00:00:02,000\nHello world.\n")


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """2.5 s of a quiet tone at 16 kHz: two segments from the fake."""
    return write_wav(tmp_path / "clip.wav", tone(16_000, seconds=2.5, amplitude=0.1))


@pytest.fixture
def run(cli, fake_model: Path):  # type: ignore[no-untyped-def]
    def transcribe(*args: str, **kwargs):  # type: ignore[no-untyped-def]
        return cli("transcribe", "-m", str(fake_model), *args, **kwargs)
    return transcribe


def test_a_pipe_gets_plain_text_only(run, clip: Path, fake_engines) -> None:
    result = run(str(clip))
    assert result.returncode == 0, result.stderr
    assert result.stdout == HELLO_TWICE
    assert result.stderr == ""
    (settings,) = fake_engines.calls.transcriptions
    assert (settings.language, settings.translate, settings.prompt, settings.word_timestamps) == (
        None, False, None, False)
    assert fake_engines.calls.loads[0][0] == "speech" and fake_engines.calls.closed == 1


@pytest.mark.parametrize("args", [("-",), ()], ids=["dash", "piped"])
def test_audio_from_stdin(run, clip: Path, args) -> None:
    result = run(*args, "-f", "json", input=clip.read_bytes())
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["source"] == "stdin" and document["duration"] == 2.5


def test_resampled_input(run, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "cd.wav", tone(44_100, seconds=1.0, amplitude=0.1), 44_100)
    document = json.loads(run(str(wav), "-f", "json").stdout)
    assert document["duration"] == 1.0 and document["text"] == "Hello world."


@pytest.mark.parametrize(("fmt", "expected"), [
    ("srt", SRT),
    ("vtt", ("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello world.\n\n"
             "00:00:01.000 --> 00:00:02.000\nHello world.\n")),
    ("tsv", "start\tend\ttext\n0\t1000\tHello world.\n1000\t2000\tHello world.\n"),
    ("txt", HELLO_TWICE),
])
def test_formats_on_stdout(run, clip: Path, fmt: str, expected: str) -> None:
    result = run(str(clip), "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected and result.stderr == ""


def test_json_document(run, clip: Path, fake_model: Path) -> None:
    document = json.loads(run(str(clip), "-f", "json").stdout)
    assert document["segments"] == [
        {"id": 0, "start": 0.0, "end": 1.0, "text": "Hello world."},
        {"id": 1, "start": 1.0, "end": 2.0, "text": "Hello world."}]
    assert document["text"] == "Hello world. Hello world."
    assert document["language"] == "en" and document["model"] == str(fake_model)
    assert document["source"] == str(clip) and document["duration"] == 2.5
    assert document["real_time_factor"] > 0


def test_language_translate_prompt_and_word_flags_reach_the_engine(run, clip: Path,
                                                                   fake_engines) -> None:
    result = run(str(clip), "-f", "json", "--language", "fr", "--translate", "--prompt",
                 "Bonjour.", "--word-timestamps", "-t", "2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["language"] == "fr"
    (settings,) = fake_engines.calls.transcriptions
    assert (settings.language, settings.translate, settings.prompt, settings.word_timestamps) == (
        "fr", True, "Bonjour.", True)
    assert fake_engines.calls.loads[0][2].threads == 2
    run(str(clip), "-l", "French")  # a language name is normalised to its code
    assert fake_engines.calls.transcriptions[1].language == "fr"


def test_output_file_with_format_from_extension(run, clip: Path, tmp_path: Path) -> None:
    target = tmp_path / "talk.srt"
    result = run(str(clip), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert target.read_text() == SRT
    assert result.stderr == f"wrote 2 segments to {target}\n"


def test_format_option_beats_the_extension(run, clip: Path, tmp_path: Path) -> None:
    target = tmp_path / "talk.txt"
    assert run(str(clip), "-o", str(target), "--format", "vtt").returncode == 0
    assert target.read_text().startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n")


def test_dash_output_is_stdout(run, clip: Path, tmp_path: Path) -> None:
    result = run(str(clip), "-o", "-", cwd=tmp_path)
    assert result.stdout == HELLO_TWICE and not (tmp_path / "-").exists()


def test_existing_output_needs_force(run, clip: Path, tmp_path: Path, fake_engines) -> None:
    target = tmp_path / "talk.srt"
    target.write_text("mine")
    refused = run(str(clip), "-o", str(target))
    one_line_error(refused, f"{target} already exists", code=2)
    assert hint(refused) == "add --force to replace it, or choose another name"
    assert target.read_text() == "mine" and fake_engines.calls.loads == []
    forced = run(str(clip), "-o", str(target), "--force")
    assert forced.returncode == 0 and target.read_text() == SRT


def test_stats_go_to_stderr(run, clip: Path) -> None:
    result = run(str(clip), "--stats")
    assert result.stdout == HELLO_TWICE
    assert re.fullmatch(r"audio 2\.5 s · transcribed in [\d.]+ s · real-time factor [\d.]+ "
                        r"\([\d.]+× real time\) · model load [\d.]+ s · language en\n",
                        result.stderr), result.stderr


def test_history_records_the_run_unless_no_save(run, cli, clip: Path) -> None:
    assert run(str(clip)).returncode == 0
    (record,) = saved("transcribe")
    assert record.title == str(clip)
    assert [m["content"] for m in record.messages] == [str(clip), HELLO_TWICE]
    assert record.meta["format"] == "txt" and record.meta["segments"] == 2
    assert run(str(clip), "--no-save").returncode == 0
    assert cli("config", "set", "history.enabled", "false").returncode == 0
    assert run(str(clip)).returncode == 0
    assert len(saved()) == 1


def test_model_format_and_language_from_config(cli, clip: Path, fake_model: Path,
                                               fake_engines) -> None:
    for key, value in (("transcribe.model", str(fake_model)), ("transcribe.format", "tsv"),
                       ("transcribe.language", "fr")):
        assert cli("config", "set", key, value).returncode == 0
    result = cli("transcribe", str(clip))
    assert result.stdout == ("start\tend\ttext\n0\t1000\tBonjour le monde.\n"
                             "1000\t2000\tBonjour le monde.\n"), result.stderr
    assert fake_engines.calls.loads[0][1].path == fake_model
    assert cli("transcribe", str(clip), "-f", "txt", "-l", "en").stdout == HELLO_TWICE


# --- errors: one line, non-zero, nothing written ------------------------------------------


def test_missing_corrupt_and_empty_audio(run, tmp_path: Path, fake_engines) -> None:
    one_line_error(run(str(tmp_path / "nope.wav")), f"{tmp_path / 'nope.wav'}: no such file")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    one_line_error(run(str(broken), "-o", str(out_dir / "t.srt")), "is a corrupt WAV file")
    assert files_in(out_dir) == []
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    one_line_error(run(str(empty)), "contains no audio samples")
    one_line_error(run("-", input=b""), "stdin is empty")
    one_line_error(run(input=b""), "stdin is empty")
    assert fake_engines.calls.transcriptions == []


def test_compressed_audio_needs_ffmpeg(run, tmp_path: Path, bare_path) -> None:
    voice_note = tmp_path / "voice.m4a"
    voice_note.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(300))
    result = run(str(voice_note))
    one_line_error(result, "needs ffmpeg")
    assert "install ffmpeg" in hint(result)


def test_a_stand_in_ffmpeg_decodes_a_voice_note(run, tmp_path: Path, bare_path) -> None:
    bare_path.add("ffmpeg", action="sys.stdout.buffer.write(bytes(4 * 32000)); sys.exit(0)")
    voice_note = tmp_path / "voice.opus"
    voice_note.write_bytes(b"OggS-not-really" + bytes(300))
    result = run(str(voice_note))
    assert result.stdout == HELLO_TWICE, result.stderr


def test_bad_models(cli, clip: Path, tmp_path: Path) -> None:
    bad = tmp_path / "ggml-broken.bad"
    bad.write_bytes(b"junk")
    one_line_error(cli("transcribe", "-m", str(bad), str(clip)),
                   "ggml-broken.bad is not a GGUF file (bad magic)")
    default = cli("transcribe", str(clip))
    alias = store.default_spec("speech")  # the catalog default for this device's memory
    one_line_error(default, f"model {alias} is not downloaded")
    assert hint(default) == f"offgrid models pull {alias}"
    one_line_error(cli("transcribe", "-m", "qwen3-0.6b", str(clip)),
                   "qwen3-0.6b is a text model, not a speech model", code=2)


@pytest.mark.parametrize(("args", "message"), [
    (("CLIP", "-l", "klingon"), "unknown language 'klingon'"),
    (("CLIP", "-f", "docx"), "unknown format 'docx'"),
    (("--mic", "soon"), "--mic takes a number of seconds, not 'soon'"),
    (("--mic", "0"), "cannot record for 0 seconds"),
    (("CLIP", "-t", "0"), "Invalid value for '--threads' / '-t'"),
])
def test_usage_errors(run, clip: Path, fake_engines, args, message) -> None:
    args = tuple(str(clip) if a == "CLIP" else a for a in args)
    one_line_error(run(*args), message, code=2)
    assert fake_engines.calls.transcriptions == []


# --- the microphone, with a stand-in recorder ---------------------------------------------

FAKE_ARECORD = ("import wave\nw = wave.open(args[-1], 'wb'); w.setnchannels(1); w.setsampwidth(2); "
                "w.setframerate(16000)\nw.writeframes(bytes(2 * 16000 * int(args[args.index('-d') + 1])))\n"
                "w.close()")


def test_mic_records_then_transcribes(run, bare_path) -> None:
    bare_path.add("arecord", action=FAKE_ARECORD)
    result = run("--mic", "1", "-f", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["source"] == "microphone" and document["duration"] == 1.0
    assert document["text"] == "Hello world."
    assert result.stderr == "recording… Ctrl-C stops (up to 1 s)\n"
    (call,) = bare_path.calls("arecord")
    assert call["args"][-3:-1] == ["-d", "1"]


def test_no_microphone_recorder(run, bare_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not importable, even if installed
    result = run("--mic", "1")
    one_line_error(result, "no microphone recorder found")


# --- the phone --------------------------------------------------------------------------


def test_copy_puts_the_transcript_on_the_clipboard(run, clip: Path, phone) -> None:
    phone.add("termux-clipboard-set")
    result = run(str(clip), "--copy")
    assert result.returncode == 0, result.stderr
    assert result.stdout == HELLO_TWICE and result.stderr == "copied to the clipboard\n"
    (copied,) = phone.calls("termux-clipboard-set")
    assert copied["stdin"].split() == ["Hello", "world.", "Hello", "world."]


def test_notify_after_a_long_job(run, clip: Path, phone, monkeypatch) -> None:
    from offgrid.ui import phone as phone_ui

    monkeypatch.setattr(phone_ui, "NOTIFY_AFTER_SECONDS", -1.0)
    phone.add("termux-notification")
    assert run(str(clip), "--notify", "--plain").stdout == HELLO_TWICE
    (sent,) = phone.calls("termux-notification")
    assert sent["args"][3] == "offgrid transcribe"
    assert sent["args"][5].startswith("transcript ready after ")
    assert run(str(clip)).returncode == 0  # the default: config general.notify, off
    assert len(phone.calls("termux-notification")) == 1


def test_wav_bytes_of_every_width(run, tmp_path: Path) -> None:
    for width in (1, 2, 3, 4):
        path = tmp_path / f"w{width}.wav"
        path.write_bytes(wav_bytes(tone(16_000, seconds=1.0, amplitude=0.1), width=width))
        assert run(str(path)).stdout == "Hello world.\n", width

"""Recording from the microphone, with stand-in recorder executables on PATH."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from offgrid.inputs import audio
from offgrid.inputs.audio import SAMPLE_RATE, record_microphone
from offgrid.errors import InputError

# writes a 16 kHz mono 16-bit WAV of a 440 Hz tone: -d seconds long, or as long as it ran
# until SIGINT (the way arecord finishes its file on Ctrl-C)
FAKE_ARECORD = """#!{python}
import math, signal, struct, sys, time, wave
args = sys.argv[1:]
path = args[-1]
seconds = float(args[args.index("-d") + 1]) if "-d" in args else None
stopped = []
signal.signal(signal.SIGINT, lambda *a: stopped.append(1))
started = time.monotonic()
while not stopped and (seconds is None or time.monotonic() - started < min(seconds, 0.3)):
    time.sleep(0.02)
length = seconds if seconds is not None else round(time.monotonic() - started, 1)
frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / 16000)))
                  for n in range(int(16000 * length)))
with wave.open(path, "wb") as out:
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(16000); out.writeframes(frames)
"""

# Termux:API's client returns at once; the "service" here writes a WAV file (content is
# sniffed, so the .m4a name does not matter) when it is told to stop with -q
FAKE_TERMUX = """#!{python}
import json, math, os, struct, sys, wave
state = os.path.join({tmp!r}, "termux-state.json")
args = sys.argv[1:]
with open(os.path.join({tmp!r}, "termux-calls.txt"), "a") as log:
    log.write(" ".join(args) + "\\n")
if "-q" in args:
    path = json.load(open(state))["path"]
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / 16000)))
                      for n in range(8000))
    with wave.open(path, "wb") as out:
        out.setnchannels(1); out.setsampwidth(2); out.setframerate(16000); out.writeframes(frames)
    print("Recording finished: " + path)
else:
    json.dump({{"path": args[args.index("-f") + 1]}}, open(state, "w"))
    print("Recording started: " + args[args.index("-f") + 1])
"""


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    monkeypatch.setattr(audio, "_soundfile", lambda: None)
    return directory


def install(bin_dir, name: str, script: str, **values) -> None:
    path = bin_dir / name
    path.write_text(script.format(python=sys.executable, **values))
    path.chmod(0o755)


def test_no_recorder(bin_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    assert audio.microphone_backend() is None
    with pytest.raises(InputError, match="no microphone recorder found"):
        record_microphone(1)


def test_zero_seconds_is_refused(bin_dir):
    with pytest.raises(InputError, match="more than 0 seconds"):
        record_microphone(0)


def test_arecord_for_a_fixed_time(bin_dir):
    install(bin_dir, "arecord", FAKE_ARECORD)
    ticks = []
    samples = record_microphone(1, on_tick=ticks.append)
    assert samples.dtype == np.float32
    assert len(samples) == SAMPLE_RATE
    assert 0.2 < np.abs(samples).max() < 0.3
    assert ticks and ticks == sorted(ticks)


def test_arecord_ctrl_c_keeps_what_was_recorded(bin_dir):
    install(bin_dir, "arecord", FAKE_ARECORD)

    def interrupt_soon(elapsed: float) -> None:
        if elapsed > 0.3:
            raise KeyboardInterrupt

    samples = record_microphone(None, on_tick=interrupt_soon)
    assert 0 < len(samples) < 5 * SAMPLE_RATE


def test_termux_records_stops_and_decodes(bin_dir, tmp_path):
    install(bin_dir, "termux-microphone-record", FAKE_TERMUX, tmp=str(tmp_path))
    install(bin_dir, "ffmpeg", "#!/bin/sh\nexit 1\n")  # present, but the WAV is decoded natively
    assert audio.microphone_backend() == "termux"
    samples = record_microphone(0.2)
    assert len(samples) == 8000
    calls = (tmp_path / "termux-calls.txt").read_text().splitlines()
    assert calls[0].startswith("-f ") and "-l 1" in calls[0] and "-e aac" in calls[0]
    assert calls[-1] == "-q"


def test_termux_without_any_decoder(bin_dir, tmp_path, monkeypatch):
    install(bin_dir, "termux-microphone-record", FAKE_TERMUX, tmp=str(tmp_path))
    monkeypatch.setenv("PREFIX", "/data/data/com.termux/files/usr")
    with pytest.raises(InputError) as caught:
        record_microphone(1)
    assert caught.value.hint == "pkg install ffmpeg"
    assert not (tmp_path / "termux-calls.txt").exists()  # failed before recording anything

"""Decode audio to what speech models take: 16 kHz mono float32 samples in [-1, 1].

WAV is parsed here (PCM 8/16/24/32-bit and IEEE float, including WAVE_FORMAT_EXTENSIBLE),
FLAC, OGG (and whatever else libsndfile reads) go through `soundfile` when it is installed, and
everything else (m4a, aac, opus, mp3, video) through `ffmpeg` when it is on PATH. Resampling happens in-process with a
Kaiser-windowed sinc filter.
"""

from __future__ import annotations

import io
import math
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from offgrid import device
from offgrid.errors import InputError

SAMPLE_RATE = 16_000
STDIN = "-"

_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZE = 0xFFFFFFFF  # what streaming writers (arecord to a pipe) put in size fields
_HEAD_BYTES = 65_536  # enough to tell a format from a file's first bytes


def load_audio(source: Path | str | bytes) -> np.ndarray:
    """Decode `source` (a path, raw file bytes, or "-" for stdin) to 16 kHz mono float32."""
    name, data, path = _open_source(source)
    if not data:
        raise InputError(f"{name} is empty")
    samples, rate = _decode(data, path, name)
    return _finish(samples, rate, name)


def _decode(data: bytes, path: Path | None, name: str) -> tuple[np.ndarray, int]:
    """WAV here; then soundfile (FLAC, OGG/Vorbis/Opus, MP3, AIFF…) if installed; then ffmpeg."""
    kind = _sniff(data)
    if kind == "wav":
        return _decode_wav(data, name)
    soundfile_error = None
    if _soundfile() is not None:
        try:
            return _decode_soundfile(data if path is None else path, name)
        except InputError as exc:
            soundfile_error = exc
    if shutil.which("ffmpeg") is None and soundfile_error is not None and kind != "other":
        raise soundfile_error  # a FLAC/OGG file that libsndfile itself calls corrupt
    return _decode_ffmpeg(data, path, name, kind)


def ffmpeg_install_hint() -> str:
    """The command that installs ffmpeg on this system."""
    if device.is_termux():
        return "pkg install ffmpeg"
    if sys.platform == "darwin":
        return "brew install ffmpeg"
    return "sudo apt install ffmpeg"


def _open_source(source: Path | str | bytes) -> tuple[str, bytes, Path | None]:
    """Return (display name, file bytes, path if it is a regular file). Of a regular file that
    is not WAV/FLAC/OGG only the first bytes are read: ffmpeg or soundfile read it by path."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "stdin", bytes(source), None
    if str(source) == STDIN:
        return "stdin", sys.stdin.buffer.read(), None
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an audio file")
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
            regular = path.is_file()  # not a pipe such as <(cmd), which can be read only once
            if regular and _sniff(head) == "other":  # m4a, mp3, a video…: decoded from the
                return str(path), head, path  # path, so a 2 GB video never fills the memory
            return str(path), head + handle.read(), path if regular else None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _sniff(data: bytes) -> str:
    if data[:4] in (b"RIFF", b"RIFX", b"RF64") and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    return "other"


def _looks_like_media(data: bytes) -> bool:
    """True for the signatures of common compressed audio/video containers."""
    if data[:3] == b"ID3" or data[4:8] == b"ftyp" or data[:4] in (b"\x1aE\xdf\xa3", b"caff",
                                                                   b"FORM", b"#!AM"):
        return True
    return len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0  # MPEG / ADTS sync


# --- WAV ---------------------------------------------------------------------------------

def _decode_wav(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """Parse RIFF chunks; return (frames x channels float32, sample rate)."""
    if data[:4] == b"RIFX":
        raise InputError(f"{name}: big-endian WAV (RIFX) is not supported")
    fmt, payload = _wav_chunks(data, name)
    if fmt is None or len(fmt) < 16:
        raise InputError(f"{name} is a corrupt WAV file (no fmt chunk)")
    if payload is None:
        raise InputError(f"{name} is a corrupt WAV file (no data chunk)")
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # first two bytes of the sub-format GUID
    if channels == 0 or rate == 0 or bits == 0:
        raise InputError(f"{name} is a corrupt WAV file (channels {channels}, rate {rate}, bits {bits})")
    width = block_align // channels if block_align else (bits + 7) // 8
    dtype = _wav_dtype(tag, width)
    if dtype is None:
        raise InputError(f"{name}: unsupported WAV encoding (format {tag}, {bits}-bit)")
    usable = len(payload) - len(payload) % (width * channels)
    raw = payload[:usable]
    if width == 3:
        samples = _int24_to_float(raw)
    else:
        samples = np.frombuffer(raw, dtype=dtype).astype(np.float32)
        if dtype == "u1":
            samples = (samples - 128.0) / 128.0
        elif dtype[1] == "i":
            samples /= float(2 ** (8 * width - 1))
    return samples.reshape(-1, channels), rate


def _wav_chunks(data: bytes, name: str) -> tuple[bytes | None, bytes | None]:
    fmt = payload = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        body_start = offset + 8
        if chunk_id == b"data":
            end = len(data) if size in (0, _UNKNOWN_SIZE) else min(len(data), body_start + size)
            payload = data[body_start:end]
            if fmt is not None:
                break
        elif chunk_id == b"fmt ":
            fmt = data[body_start:body_start + size]
        if size == _UNKNOWN_SIZE:
            break
        offset = body_start + size + (size & 1)
    return fmt, payload


def _wav_dtype(tag: int, width: int) -> str | None:
    if tag == _WAVE_FORMAT_PCM:
        return {1: "u1", 2: "<i2", 3: "<i3", 4: "<i4"}.get(width)
    if tag == _WAVE_FORMAT_FLOAT:
        return {4: "<f4", 8: "<f8"}.get(width)
    return None


def _int24_to_float(raw: bytes) -> np.ndarray:
    triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
    values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
    values = np.where(values >= 1 << 23, values - (1 << 24), values)
    return values.astype(np.float32) / float(1 << 23)


# --- soundfile and ffmpeg -------------------------------------------------------------

def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the package is there but libsndfile is not
        return None
    return soundfile


def _decode_soundfile(source: bytes | Path, name: str) -> tuple[np.ndarray, int]:
    soundfile = _soundfile()
    try:
        samples, rate = soundfile.read(source if isinstance(source, Path) else io.BytesIO(source),
                                       dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own LibsndfileError and RuntimeError
        raise InputError(f"cannot decode {name}: {exc}") from exc
    return samples, rate


def _decode_ffmpeg(data: bytes, path: Path | None, name: str, kind: str) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        if kind == "other" and not _looks_like_media(data):
            raise InputError(f"cannot decode {name}: it is not WAV, FLAC or OGG audio, and "
                             "ffmpeg (for other formats) is not installed",
                             hint=ffmpeg_install_hint())
        what = f"{kind.upper()} audio" if kind in ("flac", "ogg") else "this format"
        raise InputError(
            f"cannot decode {name}: {what} needs ffmpeg, which is not installed "
            "(WAV works without it)",
            hint=ffmpeg_install_hint(),
        )
    if path is not None:
        return _run_ffmpeg(ffmpeg, path, name), SAMPLE_RATE
    # ffmpeg cannot seek in a pipe (m4a keeps its index at the end), so give it a file
    with tempfile.TemporaryDirectory(prefix="offgrid-audio-") as tmp:
        tmp_path = Path(tmp) / "input"
        tmp_path.write_bytes(data)
        return _run_ffmpeg(ffmpeg, tmp_path, name), SAMPLE_RATE


def _run_ffmpeg(ffmpeg: str, path: Path, name: str) -> np.ndarray:
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
               "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"]
    try:
        result = subprocess.run(command, capture_output=True, check=False)
    except OSError as exc:
        raise InputError(f"cannot run ffmpeg: {exc}") from exc
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise InputError(f"cannot decode {name} (not audio, or corrupt): {reason}")
    usable = len(result.stdout) - len(result.stdout) % 4
    return np.frombuffer(result.stdout[:usable], dtype="<f4").reshape(-1, 1)


# --- to 16 kHz mono ---------------------------------------------------------------------

def _finish(samples: np.ndarray, rate: int, name: str) -> np.ndarray:
    if samples.size == 0:
        raise InputError(f"{name} contains no audio samples")
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    mono = np.nan_to_num(mono.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=-1.0)
    resampled = resample(mono, rate, SAMPLE_RATE)
    return np.ascontiguousarray(np.clip(resampled, -1.0, 1.0), dtype=np.float32)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int = SAMPLE_RATE,
             zero_crossings: int = 16, rolloff: float = 0.95, beta: float = 8.6,
             chunk: int = 16_384) -> np.ndarray:
    """Band-limited resampling with a Kaiser-windowed sinc (polyphase, rational ratio)."""
    samples = np.asarray(samples, dtype=np.float32)
    if src_rate == dst_rate or samples.size == 0:
        return samples
    divisor = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // divisor, src_rate // divisor
    cutoff = min(1.0, dst_rate / src_rate) * rolloff  # in units of the input Nyquist
    half = int(math.ceil(zero_crossings / cutoff))
    table = _sinc_table(up, half, cutoff, beta)  # (up phases, 2*half taps)
    padded = np.concatenate([np.zeros(half, np.float32), samples, np.zeros(half + 1, np.float32)])
    n_out = (len(samples) * up + down - 1) // down
    taps = np.arange(-half + 1, half + 1)
    out = np.empty(n_out, np.float32)
    for start in range(0, n_out, chunk):
        n = np.arange(start, min(start + chunk, n_out), dtype=np.int64)
        base, phase = np.divmod(n * down, up)
        windows = padded[base[:, None] + taps[None, :] + half]
        out[start:start + len(n)] = np.einsum("ij,ij->i", windows, table[phase])
    return out


def _sinc_table(up: int, half: int, cutoff: float, beta: float) -> np.ndarray:
    """Filter taps per output phase; each row sums to one (unity gain at DC)."""
    frac = np.arange(up, dtype=np.float64)[:, None] / up
    offsets = np.arange(-half + 1, half + 1, dtype=np.float64)[None, :]
    distance = offsets - frac  # input samples between a tap and the output instant
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (distance / half) ** 2, 0.0, 1.0))) / np.i0(beta)
    taps = cutoff * np.sinc(cutoff * distance) * window
    taps /= taps.sum(axis=1, keepdims=True)
    return taps.astype(np.float32)


# --- microphone -----------------------------------------------------------------------------

TickCallback = Callable[[float], None]


def microphone_backend() -> str | None:
    """The recorder this system has: "termux", "arecord", "sounddevice", or None."""
    if shutil.which("termux-microphone-record"):
        return "termux"
    if shutil.which("arecord"):
        return "arecord"
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        return None
    return "sounddevice"


def require_microphone() -> str:
    """The recorder to use (see microphone_backend); InputError, before anything is recorded,
    when there is none or its recording could not be decoded."""
    backend = microphone_backend()
    if backend is None:
        raise InputError(
            "no microphone recorder found (termux-microphone-record, arecord or sounddevice)",
            hint=_recorder_install_hint())
    if backend == "termux" and not shutil.which("ffmpeg") and _soundfile() is None:
        raise InputError("decoding the phone's recording needs ffmpeg, which is not installed",
                         hint=ffmpeg_install_hint())
    return backend


def record_microphone(seconds: float | None = None, on_tick: TickCallback | None = None) -> np.ndarray:
    """Record from the microphone for `seconds` (None: until Ctrl-C) as 16 kHz mono float32.

    Ctrl-C ends the recording early and returns what was recorded. `on_tick(elapsed)` is
    called about ten times a second while recording.
    """
    if seconds is not None and seconds <= 0:
        raise InputError("the recording length must be more than 0 seconds")
    backend = require_microphone()
    tick = on_tick or (lambda elapsed: None)
    if backend == "sounddevice":
        samples = _record_sounddevice(seconds, tick)
    else:
        with tempfile.TemporaryDirectory(prefix="offgrid-mic-") as tmp:
            recorder = _record_termux if backend == "termux" else _record_arecord
            samples = load_audio(recorder(Path(tmp), seconds, tick))
    if samples.size == 0:
        raise InputError("the microphone recorded nothing")
    return samples


def _recorder_install_hint() -> str:
    if device.is_termux():
        return "install the Termux:API app, then: pkg install termux-api"
    return "sudo apt install alsa-utils   (or: pip install sounddevice)"


def _wait(seconds: float | None, tick: TickCallback, finished: Callable[[], bool]) -> None:
    """Sleep until `seconds` pass or `finished()`; Ctrl-C just ends the wait."""
    started = time.monotonic()
    try:
        while not finished():
            elapsed = time.monotonic() - started
            tick(elapsed)
            if seconds is not None and elapsed >= seconds:
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass


def _record_termux(directory: Path, seconds: float | None, tick: TickCallback) -> Path:
    """Termux:API records in the background; start it, wait, stop it, wait for the file."""
    if shutil.which("ffmpeg"):
        path, encoder = directory / "mic.m4a", "aac"
    else:  # require_microphone made sure soundfile is there: libsndfile reads Ogg Opus
        path, encoder = directory / "mic.ogg", "opus"
    limit = "0" if seconds is None else str(max(1, math.ceil(seconds)))
    started = _run_quiet(["termux-microphone-record", "-f", str(path), "-l", limit,
                          "-e", encoder, "-r", str(SAMPLE_RATE), "-c", "1"])
    if "error" in started.lower() or "denied" in started.lower():
        raise InputError(f"termux-microphone-record: {started.strip()}",
                         hint="grant Termux:API the microphone permission in Android settings")
    try:
        _wait(seconds, tick, finished=lambda: False)
    finally:
        _run_quiet(["termux-microphone-record", "-q"])
    _wait_until_written(path)
    return path


def _wait_until_written(path: Path, timeout: float = 5.0) -> None:
    """The recorder finalizes the file after it is told to stop: wait until its size settles."""
    deadline = time.monotonic() + timeout
    last_size = -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else -1
        if size > 0 and size == last_size:
            return
        last_size = size
        time.sleep(0.25)
    if not path.exists():
        raise InputError("the microphone recording was not saved (is Termux:API installed?)")


def _run_quiet(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"{command[0]} failed: {exc}") from exc
    return result.stdout + result.stderr


def _record_arecord(directory: Path, seconds: float | None, tick: TickCallback) -> Path:
    """arecord writes 16 kHz mono WAV; it runs in its own session so Ctrl-C reaches only us,
    then gets SIGINT from us, which makes it finish the file cleanly."""
    path = directory / "mic.wav"
    command = ["arecord", "-q", "-f", "S16_LE", "-r", str(SAMPLE_RATE), "-c", "1", "-t", "wav"]
    if seconds is not None:
        command += ["-d", str(max(1, math.ceil(seconds)))]
    try:
        process = subprocess.Popen(command + [str(path)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True)
    except OSError as exc:
        raise InputError(f"cannot run arecord: {exc}") from exc
    try:
        _wait(seconds, tick, finished=lambda: process.poll() is not None)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    if not path.exists() or path.stat().st_size <= 44:
        reason = stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError("arecord recorded nothing" + (f": {reason[-1]}" if reason else ""))
    return path


def _record_sounddevice(seconds: float | None, tick: TickCallback) -> np.ndarray:
    import sounddevice

    blocks: list[np.ndarray] = []
    recorded = lambda: sum(len(block) for block in blocks) / SAMPLE_RATE  # noqa: E731
    try:
        with sounddevice.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                     callback=lambda data, *_: blocks.append(data[:, 0].copy())):
            _wait(seconds, tick, finished=lambda: seconds is not None and recorded() >= seconds)
    except sounddevice.PortAudioError as exc:
        raise InputError(f"cannot record from the microphone: {exc}") from exc
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return samples[: int(seconds * SAMPLE_RATE)] if seconds is not None else samples

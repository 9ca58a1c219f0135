"""Decode audio to what speech models take: 16 kHz mono float32 samples in [-1, 1].

WAV is parsed here (PCM 8/16/24/32-bit and IEEE float, including WAVE_FORMAT_EXTENSIBLE),
FLAC, OGG (and whatever else libsndfile reads) go through `soundfile` when it is installed, and
everything else (m4a, aac, opus, mp3, video) through `ffmpeg` when it is on PATH. Resampling happens in-process with a
Kaiser-windowed sinc filter.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from offgrid.errors import InputError

SAMPLE_RATE = 16_000
STDIN = "-"

_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZE = 0xFFFFFFFF  # what streaming writers (arecord to a pipe) put in size fields


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
            return _decode_soundfile(data, name)
        except InputError as exc:
            soundfile_error = exc
    if shutil.which("ffmpeg") is None and soundfile_error is not None and kind != "other":
        raise soundfile_error  # a FLAC/OGG file that libsndfile itself calls corrupt
    return _decode_ffmpeg(data, path, name, kind)


def ffmpeg_install_hint() -> str:
    """The command that installs ffmpeg on this system."""
    if "com.termux" in os.environ.get("PREFIX", ""):
        return "pkg install ffmpeg"
    if sys.platform == "darwin":
        return "brew install ffmpeg"
    return "sudo apt install ffmpeg"


def _open_source(source: Path | str | bytes) -> tuple[str, bytes, Path | None]:
    """Return (display name, file bytes, path if it is a real file)."""
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
        return str(path), path.read_bytes(), path
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


def _decode_soundfile(data: bytes, name: str) -> tuple[np.ndarray, int]:
    soundfile = _soundfile()
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own LibsndfileError and RuntimeError
        raise InputError(f"cannot decode {name}: {exc}") from exc
    return samples, rate


def _decode_ffmpeg(data: bytes, path: Path | None, name: str, kind: str) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
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

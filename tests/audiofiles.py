"""Generated audio for tests: tones and WAV files in the formats offgrid.inputs.audio reads."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np


def tone(rate: int = 16_000, seconds: float = 0.5, freq: float = 440.0,
         amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(seconds: float = 2.5, rate: int = 16_000) -> np.ndarray:
    """A voice-like signal: a 140 Hz buzz with harmonics, gated into syllables."""
    t = np.arange(int(rate * seconds)) / rate
    buzz = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    syllables = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    return (0.2 * buzz * syllables).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = 16_000, width: int = 2, channels: int = 1) -> bytes:
    """PCM WAV through the stdlib writer (samples: frames, or frames x channels)."""
    frames = samples.reshape(len(samples), channels)
    if width == 1:
        raw = np.round(frames * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.round(frames * (2**23 - 1)).astype("<i4").reshape(-1, 1).view(np.uint8)
        raw = ints.reshape(-1, 4)[:, :3].tobytes()
    else:
        dtype = {2: "<i2", 4: "<i4"}[width]
        raw = np.round(frames * (2 ** (8 * width - 1) - 1)).astype(dtype).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(raw)
    return buffer.getvalue()


def write_wav(path: Path, samples: np.ndarray, rate: int = 16_000, width: int = 2) -> Path:
    path = Path(path)
    path.write_bytes(wav_bytes(samples, rate, width))
    return path


def float_wav_bytes(samples: np.ndarray, rate: int = 16_000, extensible: bool = False,
                    data_size: int | None = None) -> bytes:
    """IEEE-float WAV, written by hand (the stdlib cannot)."""
    payload = samples.astype("<f4").tobytes()
    if extensible:
        guid = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, rate, rate * 4, 4, 32, 22, 32, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    size = len(payload) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 3) + b"abc\0"  # odd-sized chunk with a pad byte
    body += b"data" + struct.pack("<I", size) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body

"""offgrid transcribe vs a direct pywhispercpp call: same model, same audio, same threads.

Two comparisons, each the median of --repeat runs:
- engine: in one process, offgrid's WhisperEngine.transcribe (pywhispercpp plus offgrid's
  parameter reset, callbacks and Ctrl-C guard) against pywhispercpp's Model.transcribe;
- process: `python -m offgrid transcribe FILE` against a `python -c` script that loads the
  model with pywhispercpp and transcribes the same WAV — start-up, imports, model validation,
  audio decoding and model loading included.

Without --model and --audio it generates the tiny test model and 60 s of audio, so it runs
anywhere in seconds; pass a real model (e.g. the path `offgrid models pull whisper-tiny`
printed) for numbers that mean something on your device.

    python benchmarks/bench_transcribe.py [--model ggml-tiny.bin] [--audio talk.wav]
        [--threads 4] [--repeat 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIRECT_SCRIPT = """
import sys
from pywhispercpp.model import Model
model = Model(sys.argv[1], n_threads=int(sys.argv[3]), language=sys.argv[4], print_progress=False,
              redirect_whispercpp_logs_to=None)
for segment in model.transcribe(sys.argv[2]):
    print(segment.text)
"""


def median_seconds(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_engine(model_path: Path, audio_path: Path, threads: int, language: str,
                 repeat: int) -> dict:
    import pywhispercpp.model

    from offgrid.inputs.audio import load_audio
    from offgrid.engines.base import TranscriptionSettings
    from offgrid.engines.whisper import WhisperEngine

    samples = load_audio(audio_path)
    direct = pywhispercpp.model.Model(str(model_path), n_threads=threads, language=language,
                                      print_progress=False, redirect_whispercpp_logs_to=None)
    engine = WhisperEngine(model_path, n_threads=threads)
    settings = TranscriptionSettings(language=language)
    direct_text = [s.text for s in direct.transcribe(samples)]
    offgrid_text = [s.text for s in engine.transcribe(samples, settings)]
    result = {
        "direct_seconds": median_seconds(lambda: direct.transcribe(samples), repeat),
        "offgrid_seconds": median_seconds(lambda: engine.transcribe(samples, settings), repeat),
        "same_text": direct_text == offgrid_text,
        "audio_seconds": len(samples) / 16_000,
    }
    engine.close()
    return result


def bench_process(model_path: Path, audio_path: Path, threads: int, language: str,
                  repeat: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), GGML_NO_BACKTRACE="1")
    with tempfile.TemporaryDirectory() as home:
        env["OFFGRID_HOME"] = home

        def run(command: list[str]) -> str:
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            return done.stdout

        offgrid = [sys.executable, "-m", "offgrid", "transcribe", str(audio_path), "-m",
                   str(model_path), "-t", str(threads), "-l", language, "--no-save"]
        direct = [sys.executable, "-c", DIRECT_SCRIPT, str(model_path), str(audio_path),
                  str(threads), language]
        same = run(offgrid).split() == run(direct).split()
        return {"direct_seconds": median_seconds(lambda: run(direct), repeat),
                "offgrid_seconds": median_seconds(lambda: run(offgrid), repeat),
                "same_text": same}


def default_inputs(directory: Path, seconds: float) -> tuple[Path, Path]:
    from tests.audiofiles import speechlike, write_wav
    from tests.tinymodels.whisper import write_tiny_whisper

    model = write_tiny_whisper(directory / "ggml-tiny-test.bin")
    audio = write_wav(directory / "speech.wav", speechlike(seconds))  # 16 kHz 16-bit mono
    return model, audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="whisper.cpp ggml model (default: tiny test model)")
    parser.add_argument("--audio", type=Path, help="16 kHz mono 16-bit WAV, the only input "
                        "pywhispercpp reads without ffmpeg (default: generated)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of generated audio")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--language", default="en",
                        help="the same for both (auto-detection costs one more encoder pass)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as tmp:
        model, audio = default_inputs(Path(tmp), args.seconds)
        model, audio = args.model or model, args.audio or audio
        results = {"model": str(model), "audio": str(audio), "threads": args.threads,
                   "language": args.language, "repeat": args.repeat,
                   "engine": bench_engine(model, audio, args.threads, args.language, args.repeat),
                   "process": bench_process(model, audio, args.threads, args.language,
                                            args.repeat)}
    for kind in ("engine", "process"):
        row = results[kind]
        row["ratio"] = round(row["offgrid_seconds"] / row["direct_seconds"], 4)
        print(f"{kind:<8} direct {row['direct_seconds']:7.3f} s   offgrid "
              f"{row['offgrid_seconds']:7.3f} s   ratio {row['ratio']:.3f}   "
              f"same text: {row['same_text']}", file=sys.stderr)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""offgrid imagine vs the bare stable-diffusion-cpp-python binding: same model, same settings.

    python benchmarks/bench_imagine.py                        # the tiny test model, 64x64
    python benchmarks/bench_imagine.py --model sd15.gguf --size 512x512 --steps 20
    python benchmarks/bench_imagine.py --diffusion-model D --llm L --taesd T --json out.json

Both sides load the model and make one picture per run with the same seed. "direct" calls the
binding in this process; "offgrid" goes through StableDiffusionEngine, i.e. file checks plus a
child process that loads and generates (what `offgrid imagine` does). Reported: seconds per
sampling step (the engine's own mean), load and wall time, and offgrid/direct ratios. The
pictures must be pixel-identical, or the comparison is void.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offgrid.engines.sd import ROLE_ARGUMENTS, StableDiffusionEngine  # noqa: E402
from offgrid.outputs.pictures import ImageParams, parse_size  # noqa: E402


_keep_alive: list = []  # ctypes callbacks the C side still points to


def run_direct(files: dict[str, Path], params: ImageParams, threads: int) -> dict:
    """Load and generate with the binding alone."""
    import stable_diffusion_cpp as sd_cpp

    if not _keep_alive:
        @sd_cpp.sd_log_callback
        def quiet(level, text, data):  # keep the engine's log off the benchmark's output
            pass

        _keep_alive.append(quiet)
        sd_cpp.sd_set_log_callback(quiet, None)
    rate = [0.0]

    def progress(step: int, steps: int, seconds_per_step: float) -> None:
        if step:
            rate[0] = seconds_per_step

    started = time.perf_counter()
    engine = sd_cpp.StableDiffusion(**{ROLE_ARGUMENTS[r]: str(p) for r, p in files.items()},
                                    n_threads=threads, vae_decode_only=True, verbose=False)
    loaded = time.perf_counter()
    try:
        image = engine.generate_image(
            prompt=params.prompt, negative_prompt=params.negative, width=params.width,
            height=params.height, cfg_scale=params.cfg_scale, sample_method=params.sampler,
            sample_steps=params.steps, seed=params.seed, progress_callback=progress)[0].convert("RGB")
    finally:
        # the binding's callback dies with generate_image; the C side would call it on the next
        # model load (tensor-loading progress) and segfault
        sd_cpp.sd_set_progress_callback(None, None)
    done = time.perf_counter()
    return {"load_seconds": loaded - started, "wall_seconds": done - started,
            "seconds_per_step": rate[0], "pixels": hashlib.sha256(image.tobytes()).hexdigest()}


def run_offgrid(files: dict[str, Path], params: ImageParams, threads: int) -> dict:
    """Load and generate the way `offgrid imagine` does (checks + isolated child)."""
    pictures = []
    started = time.perf_counter()
    engine = StableDiffusionEngine(files, threads=threads)
    stats = engine.generate(params, on_image=pictures.append)
    done = time.perf_counter()
    return {"load_seconds": stats.load_seconds, "wall_seconds": done - started,
            "seconds_per_step": stats.mean_seconds_per_step,
            "pixels": hashlib.sha256(pictures[0].image.tobytes()).hexdigest()}


def summarize(runs: list[dict]) -> dict:
    keys = ("load_seconds", "wall_seconds", "seconds_per_step")
    return {key: round(statistics.median(run[key] for run in runs), 4) for key in keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for role in ROLE_ARGUMENTS:
        parser.add_argument("--" + role.replace("_", "-"), type=Path, help=f"{role} file")
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--cfg-scale", type=float, default=1.0)
    parser.add_argument("--sampler", default=None, help="default: the model's")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2, help="runs per side, interleaved")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    files = {role: getattr(args, role) for role in ROLE_ARGUMENTS if getattr(args, role)}
    scratch = None
    if not files:  # no model given: the tiny random-weight test model
        from tests.tinymodels.sd import write_tiny_sd

        scratch = tempfile.TemporaryDirectory(prefix="bench-imagine-")
        files = write_tiny_sd(Path(scratch.name))
    width, height = parse_size(args.size)
    checked = StableDiffusionEngine(files)
    params = ImageParams(prompt="a lighthouse on a cliff at dusk", steps=args.steps,
                         cfg_scale=args.cfg_scale, sampler=args.sampler or checked.default_sampler,
                         width=width, height=height, seed=args.seed)

    direct, offgrid = [], []
    for _ in range(args.runs):
        direct.append(run_direct(files, params, args.threads))
        offgrid.append(run_offgrid(files, params, args.threads))
    same_pixels = len({run["pixels"] for run in direct + offgrid}) == 1
    d, o = summarize(direct), summarize(offgrid)
    result = {
        "benchmark": "imagine",
        "model": {role: path.name for role, path in files.items()},
        "settings": {"size": f"{width}x{height}", "steps": params.steps, "sampler": params.sampler,
                     "cfg_scale": params.cfg_scale, "threads": args.threads, "runs": args.runs},
        "machine": {"python": platform.python_version(), "machine": platform.machine()},
        "direct": d,
        "offgrid": o,
        "ratio": {key: round(o[key] / d[key], 3) if d[key] else None for key in d},
        "same_pixels": same_pixels,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(f"seconds/step: direct {d['seconds_per_step']:.4f}, offgrid {o['seconds_per_step']:.4f} "
          f"(x{result['ratio']['seconds_per_step']}); wall: direct {d['wall_seconds']:.2f} s, "
          f"offgrid {o['wall_seconds']:.2f} s (x{result['ratio']['wall_seconds']})", file=sys.stderr)
    if scratch is not None:
        scratch.cleanup()
    return 0 if same_pixels else 1


if __name__ == "__main__":
    raise SystemExit(main())

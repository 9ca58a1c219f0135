"""The small framework every benchmark shares: generated models, child processes with wall
time and peak RSS, a narrow offgrid-vs-direct table, and JSON results.

A benchmark is a module `benchmarks/bench_<name>.py` with `run(opts: Options) -> list[Row]`.
Each row measures one thing twice in the same run, through offgrid and through the bare
engine, so the ratio means something even on a busy machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# Qwen2.5-0.5B's shape: 24 layers, 896 wide, 14 query / 2 KV heads, 4864 FFN, 151936-token
# vocab, tied embeddings (≈ 0.49 B parameters). Speed depends on shapes, not weight values.
SHAPE_05B = dict(n_embd=896, n_layer=24, n_head=14, n_head_kv=2, n_ff=4864, n_vocab=151936,
                 tie_embeddings=True, n_ctx_train=32768)
# A few-MB model for a quick pass (--quick): same code paths, seconds instead of minutes.
SHAPE_SMALL = dict(n_embd=256, n_layer=4, n_head=8, n_head_kv=2, n_ff=768, n_vocab=8000,
                   tie_embeddings=True, n_ctx_train=8192)


@dataclass
class Options:
    """What the runner passes to every benchmark."""

    quick: bool = False  # the small model and fewer repetitions
    threads: int | None = None
    repeat: int = 3

    @property
    def shape(self) -> str:
        return "small" if self.quick else "0.5b"


@dataclass
class Row:
    """One measurement through offgrid and through the bare engine."""

    metric: str
    offgrid: float | None
    direct: float | None = None
    unit: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """offgrid / direct (for tok/s, 1.0 = as fast; for seconds and MB, 1.0 = as cheap)."""
        if self.offgrid is None or not self.direct:
            return None
        return self.offgrid / self.direct

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


# --- models ---------------------------------------------------------------------------------
def cache_dir() -> Path:
    base = os.environ.get("OFFGRID_BENCH_CACHE") or Path.home() / ".cache" / "offgrid-bench"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def bench_model(shape: str = "0.5b") -> Path:
    """A random-weight llama of *shape* quantized to Q4_0 by llama.cpp, built once and cached."""
    target = cache_dir() / f"llama-{shape}-q4_0.gguf"
    if target.exists():
        return target
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from tests.tinymodels.llama import write_tiny_llama

    dims = SHAPE_05B if shape == "0.5b" else SHAPE_SMALL
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        f16 = Path(tmp) / "f16.gguf"
        write_tiny_llama(f16, dtype=np.float16, weight_scale=0.02, name=f"bench-{shape}", **dims)
        quantize(f16, target.with_suffix(".part"))
    target.with_suffix(".part").rename(target)
    return target


def quantize(source: Path, target: Path, ftype: str = "Q4_0") -> None:
    """Quantize a GGUF with llama.cpp's own quantizer."""
    from offgrid.engines.llama import import_llama

    llama_cpp = import_llama()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params) != 0:
        raise RuntimeError(f"llama_model_quantize failed for {source}")


def kv_cache_mb(model: Path, n_ctx: int, bytes_per_value: float = 2.0) -> float:
    """The KV cache of *model* at *n_ctx* tokens, in MiB (f16 unless told)."""
    from offgrid.models.validate import read_gguf

    info = read_gguf(model)
    layers = info.arch_value("block_count")
    heads = info.arch_value("attention.head_count")
    kv_width = info.arch_value("embedding_length") // heads * info.arch_value(
        "attention.head_count_kv", heads)
    return 2 * layers * n_ctx * kv_width * bytes_per_value / (1 << 20)


def mb(n_bytes: float) -> float:
    return n_bytes / (1 << 20)


# --- child processes ------------------------------------------------------------------------
@dataclass
class ChildRun:
    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds from spawn to exit
    peak_rss_mb: float  # the child's own maximum resident set


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for `python -m offgrid`: this checkout first on the path, offline."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra or {})
    return env


def run_child(cmd: list[str], *, input: str | None = None, env: dict[str, str] | None = None,
              stdout: int | None = None, timeout: float = 600) -> ChildRun:
    """Run *cmd* and measure its wall time and peak RSS (os.wait4: this child only)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as stdin:
        if input is not None:
            stdin.write(input.encode())
            stdin.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin if input is not None else subprocess.DEVNULL,
                                stdout=stdout if stdout is not None else out, stderr=err,
                                env=env or child_env())
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                raise TimeoutError(f"{cmd[:4]} ran longer than {timeout} s")
            time.sleep(0.002)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(proc.returncode, out.read().decode(errors="replace"),
                        err.read().decode(errors="replace"), wall, usage.ru_maxrss / 1024)


def first_output(cmd: list[str], *, stream: str = "stdout", timeout: float = 600) -> float:
    """Seconds from spawning *cmd* to the first byte on its *stream* (what a user waits for
    before text appears: start-up, model load, prompt). The rest of the output is drained."""
    import selectors

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=child_env())
    start = time.perf_counter()
    watched = {proc.stdout: "stdout", proc.stderr: "stderr"}
    selector = selectors.DefaultSelector()
    for pipe in watched:
        selector.register(pipe, selectors.EVENT_READ)
    first = None
    while selector.get_map() and time.perf_counter() - start < timeout:
        for key, _ in selector.select(timeout=1):
            data = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
            if not data:
                selector.unregister(key.fileobj)
            elif first is None and watched[key.fileobj] == stream:  # type: ignore[index]
                first = time.perf_counter() - start
    if proc.wait(timeout=60) != 0 or first is None:
        raise RuntimeError(f"{' '.join(cmd[:4])} printed nothing on {stream}")
    return first


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def offgrid_cmd(*args: str) -> list[str]:
    return python("-m", "offgrid", *args)


def check(run: ChildRun, what: str) -> ChildRun:
    if run.returncode != 0:
        raise RuntimeError(f"{what} failed ({run.returncode}): {run.stderr.strip()[-400:]}")
    return run


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def best(values: list[float], *, higher: bool = True) -> float:
    """The best of several runs (as timeit does): on a shared machine the least disturbed
    run is the closest to what the code costs."""
    if not values:
        return 0.0
    return max(values) if higher else min(values)


# --- reporting ------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(name: str, rows: list[Row], columns: tuple[str, str] = ("offgrid", "direct")) -> str:
    """A table narrow enough for a phone: metric, offgrid, direct, ratio."""
    width = max([len(r.metric) + len(r.unit) + 3 for r in rows] + [10])
    lines = [f"== {name}",
             f"{'metric':<{width}} {columns[0]:>8} {columns[1]:>8} {'ratio':>6}"]
    for row in rows:
        label = f"{row.metric} ({row.unit})" if row.unit else row.metric
        ratio = f"{row.ratio:.3f}" if row.ratio is not None else "-"
        lines.append(f"{label:<{width}} {_fmt(row.offgrid):>8} {_fmt(row.direct):>8} {ratio:>6}")
        if row.note:
            lines.append(f"  {row.note}")
    return "\n".join(lines)


def write_results(results: dict[str, Any], target: Path | None = None,
                  meta: dict[str, Any] | None = None) -> Path:
    """JSON results (rows, or a stand-alone script's own JSON): to *target*, or
    benchmarks/results/<time>.json (gitignored)."""
    if target is None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        target = RESULTS / time.strftime("%Y%m%d-%H%M%S.json")
    data = {"meta": meta or {}, "benchmarks": {
        name: [row.to_dict() for row in rows] if isinstance(rows, list) else rows
        for name, rows in results.items()}}
    target.write_text(json.dumps(data, indent=2) + "\n")
    return target

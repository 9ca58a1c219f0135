"""Which llama.cpp speed settings are fastest here: flash attention, KV-cache type, batch
size and threads, each against the baseline (no flash attention, f16 KV cache, batch 512) in
the same run. offgrid's defaults (engines/llama.py) are chosen from this table.

Columns: "setting" is the variant, "base" the baseline measured alongside it.
"""

from __future__ import annotations

import json

from benchmarks import common
from benchmarks.common import Options, Row, best, median

COLUMNS = ("setting", "base")
PROMPT = ("The phone model was tested offline in the field; the total answer to the question "
          "is due on the date in the note. ") * 14 + "What is the total due date?"
MAX_TOKENS = 32
N_CTX = 4096
BASE = {"flash_attn": False, "kv_cache": "f16", "batch": 512}
VARIANTS = {
    "flash attention": {"flash_attn": True},
    "flash + KV q8_0": {"flash_attn": True, "kv_cache": "q8_0"},
    "flash + KV q4_0": {"flash_attn": True, "kv_cache": "q4_0"},
    "batch 128": {"batch": 128},
    "batch 64": {"batch": 64},
}


def measure(model: str, threads: int, flash_attn: bool, kv_cache: str, batch: int) -> dict:
    args = ["-m", "benchmarks.direct", "chat", "--model", model, "--prompt", PROMPT,
            "--max-tokens", str(MAX_TOKENS), "--ctx", str(N_CTX), "--threads", str(threads),
            "--kv-cache", kv_cache, "--batch", str(batch)]
    if flash_attn:
        args.append("--flash-attn")
    run = common.check(common.run_child(common.python(*args)), f"direct {kv_cache}")
    data = json.loads(run.stdout)
    generated = max(data["completion_tokens"] - 1, 0)
    return {"gen": generated / data["generation_seconds"],
            "prompt": data["prompt_tokens_evaluated"] / data["prompt_seconds"],
            "gen_cpu": 1000 * data["generation_cpu"] / max(generated, 1),
            "prompt_cpu": 1000 * data["prompt_cpu"] / data["prompt_tokens_evaluated"],
            "rss": run.peak_rss_mb}


def _rows(name: str, variant: list[dict], base: list[dict]) -> list[Row]:
    def med(runs: list[dict], key: str) -> float:
        """Best run for speeds and CPU costs (least disturbed), median for memory."""
        values = [r[key] for r in runs]
        if key == "rss":
            return median(values)
        return best(values, higher=key in ("gen", "prompt"))

    return [Row(f"{name}: gen", med(variant, "gen"), med(base, "gen"), "tok/s"),
            Row(f"{name}: gen CPU", med(variant, "gen_cpu"), med(base, "gen_cpu"), "ms/tok"),
            Row(f"{name}: prompt", med(variant, "prompt"), med(base, "prompt"), "tok/s"),
            Row(f"{name}: prompt CPU", med(variant, "prompt_cpu"), med(base, "prompt_cpu"),
                "ms/tok"),
            Row(f"{name}: RSS", med(variant, "rss"), med(base, "rss"), "MB")]


def run(opts: Options) -> list[Row]:
    from offgrid import device

    model = str(common.bench_model(opts.shape))
    threads = opts.threads or device.default_threads()
    rows: list[Row] = []
    for name, change in VARIANTS.items():
        variant, base = [], []
        for _ in range(opts.repeat):
            base.append(measure(model, threads, **BASE))
            variant.append(measure(model, threads, **{**BASE, **change}))
        rows += _rows(name, variant, base)
    if device.cpu_count() > 1:
        more, one = [], []
        for _ in range(opts.repeat):
            one.append(measure(model, 1, **BASE))
            more.append(measure(model, device.cpu_count(), **BASE))
        rows += _rows(f"{device.cpu_count()} threads vs 1", more, one)
    return rows

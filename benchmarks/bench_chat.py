"""`offgrid chat` vs a minimal llama-cpp-python loop: the same model, prompt and sampler.

Both run as child processes, alternately, `repeat` times; the best runs are compared (the
median for memory). offgrid runs
in a pipe with --json (its own timings), and once more with stdout on a pseudo-terminal
(Rich live Markdown) with --stats, to see what the terminal rendering costs.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time

from benchmarks import common
from benchmarks.common import Options, Row, best, median

PROMPT = ("Read the note and answer the question. The phone model was tested offline in the "
          "field; the total answer to the question is due on the date in the note, and the "
          "world of the model is the phone in your hand. ") * 3 + "What is the total due date?"
MAX_TOKENS = 32
N_CTX = 2048


def _rate(tokens: int, seconds: float) -> float:
    """Generation tok/s: the first token belongs to the prompt's time."""
    return max(tokens - 1, 0) / seconds if seconds else 0.0


def _chat_args(model: str, opts: Options) -> list[str]:
    args = ["chat", "--model", model, "--temperature", "0", "--max-tokens", str(MAX_TOKENS),
            "--ctx", str(N_CTX), "--no-save", "--threads", str(_threads(opts))]
    return args


def _threads(opts: Options) -> int:
    from offgrid import device

    return opts.threads or device.default_threads()


def run_offgrid(model: str, opts: Options) -> dict:
    run = common.check(common.run_child(common.offgrid_cmd(
        *_chat_args(model, opts), "--json", PROMPT)),
        "offgrid chat")
    data = json.loads(run.stdout)
    timings = data["timings"]
    return {"gen": _rate(timings["completion_tokens"], timings["generation_seconds"]),
            "prompt": timings["prompt_tokens_evaluated"] / timings["prompt_seconds"],
            "ttft": timings["time_to_first_token"], "wall": run.wall, "rss": run.peak_rss_mb,
            "prompt_tokens": timings["prompt_tokens"], "tokens": timings["completion_tokens"]}


def _direct_cmd(model: str, opts: Options, *extra: str) -> list[str]:
    return common.python("-m", "benchmarks.direct", "chat", "--model", model, "--prompt", PROMPT,
                         "--max-tokens", str(MAX_TOKENS), "--ctx", str(N_CTX), "--threads",
                         str(_threads(opts)), *extra)


def first_text(model: str, opts: Options) -> tuple[float, float]:
    """Seconds until the reply's first text appears: offgrid in a pipe, the direct loop."""
    ours = common.first_output(common.offgrid_cmd(*_chat_args(model, opts), PROMPT))
    theirs = common.first_output(_direct_cmd(model, opts, "--show"), stream="stderr")
    return ours, theirs


def run_direct(model: str, opts: Options) -> dict:
    run = common.check(common.run_child(_direct_cmd(model, opts)), "direct loop")
    data = json.loads(run.stdout)
    return {"gen": _rate(data["completion_tokens"], data["generation_seconds"]),
            "prompt": data["prompt_tokens_evaluated"] / data["prompt_seconds"],
            "ttft": data["time_to_first_token"], "wall": run.wall, "rss": run.peak_rss_mb,
            "prompt_tokens": data["prompt_tokens"], "tokens": data["completion_tokens"]}


STATS_LINE = re.compile(r"reply (\d+) tok, ([\d.]+) tok/s")


def run_offgrid_tty(model: str, opts: Options) -> float:
    """Generation tok/s with stdout on a pseudo-terminal (live Markdown), from --stats."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        common.offgrid_cmd(*_chat_args(model, opts), "--stats", PROMPT),
        stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE,
        env=common.child_env({"COLUMNS": "60", "LINES": "30"}))
    os.close(follower)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:  # drain the terminal
        if select.select([leader], [], [], 0.1)[0]:
            try:
                os.read(leader, 65536)
            except OSError:
                break
    stderr = proc.communicate(timeout=60)[1].decode(errors="replace")
    os.close(leader)
    match = STATS_LINE.search(stderr)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"offgrid chat on a terminal failed: {stderr[-400:]}")
    return float(match.group(2))


def run(opts: Options) -> list[Row]:
    model = str(common.bench_model(opts.shape))
    ours, theirs, tty, shown = [], [], [], []
    for _ in range(opts.repeat):
        ours.append(run_offgrid(model, opts))
        theirs.append(run_direct(model, opts))
        tty.append(run_offgrid_tty(model, opts))
        shown.append(first_text(model, opts))

    def med(runs: list[dict], key: str) -> float:
        """Best of the runs for speeds and times; the median for memory."""
        values = [r[key] for r in runs]
        return median(values) if key == "rss" else best(values, higher=key in ("gen", "prompt"))

    size_mb = common.mb(os.path.getsize(model))
    expected = size_mb + common.kv_cache_mb(common.Path(model), N_CTX)
    same = ours[0]["prompt_tokens"] == theirs[0]["prompt_tokens"]
    return [
        Row("generation", med(ours, "gen"), med(theirs, "gen"), "tok/s",
            extra={"runs_offgrid": ours, "runs_direct": theirs}),
        Row("generation, terminal", best(tty), med(theirs, "gen"), "tok/s",
            note="offgrid with stdout on a pty (live Markdown)"),
        Row("prompt", med(ours, "prompt"), med(theirs, "prompt"), "tok/s",
            note=f"{ours[0]['prompt_tokens']} prompt tokens"
                 + ("" if same else f" (direct: {theirs[0]['prompt_tokens']})")),
        Row("first token", med(ours, "ttft"), med(theirs, "ttft"), "s",
            note=f"offgrid - direct = {1000 * (med(ours, 'ttft') - med(theirs, 'ttft')):+.0f} ms"),
        Row("first text shown", best([o for o, _ in shown], higher=False),
            best([t for _, t in shown], higher=False), "s",
            note="from process start: imports, load, prompt, first token"),
        Row("process wall", med(ours, "wall"), med(theirs, "wall"), "s",
            note="start, load, prompt, reply, exit"),
        Row("peak RSS", med(ours, "rss"), med(theirs, "rss"), "MB",
            note=f"model {size_mb:.0f} MB + f16 KV cache at {N_CTX} = {expected:.0f} MB",
            extra={"model_plus_kv_mb": expected}),
    ]

"""Benchmark: `offgrid summarize` on a generated 50-page PDF vs the bare engine reading it.

    python benchmarks/bench_summarize.py                    # a tiny generated model (no download)
    python benchmarks/bench_summarize.py --model qwen3-0.6b # a cached catalog model or a .gguf path

Both sides use the same llama.cpp model and settings, in the same process:
- offgrid: documents.load -> summarizer.prepare (chunking with the model's tokenizer, map) ->
  final reduce, with `--ask` questions as well if given;
- raw: the engine evaluates exactly the document tokens of the same chunks (llama_cpp's
  `Llama.eval`, KV cache cleared per chunk), no instructions and no generation: the least
  work any summariser has to do to read the document once.

Prints a summary on stderr and JSON on stdout (also to --json FILE):
- total_ratio = offgrid seconds (load, chunk, map, reduce, generate) / raw seconds;
- prompt_eval_ratio = seconds offgrid's prompts spent in llama.cpp prompt evaluation / raw
  seconds (timed around Llama.eval, so exact);
- evaluated_ratio = prompt tokens offgrid had the engine evaluate / document tokens (the excess
  is instructions, tasks and reduce notes), and without_cache_ratio = what it would be if every
  prompt were evaluated in full (no KV-cache reuse of the shared prefix).
A random tiny model never stops early, so its generation time is the cap (--map-tokens,
--max-tokens) times its per-token speed; use a real model for realistic totals.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offgrid.inputs import documents  # noqa: E402
from offgrid.grounded import prompts, summarizer
from offgrid.engines.base import GenerationSettings  # noqa: E402

PARTIES = ["Acme Ltd", "Borealis GmbH", "Cobalt SA", "Delta Farms", "Evergreen LLC"]
TOPICS = ["delivery", "payment", "warranty", "liability", "termination", "confidentiality",
          "insurance", "maintenance", "training", "audit"]


def generated_pages(n_pages: int, seed: int = 7) -> list[str]:
    """Contract-like pages, ~150 words each, with a few facts a question can find."""
    rng = random.Random(seed)
    pages = []
    for number in range(1, n_pages + 1):
        lines = [f"Section {number}: {rng.choice(TOPICS).title()}"]
        for _ in range(10):
            lines.append(
                f"{rng.choice(PARTIES)} shall handle {rng.choice(TOPICS)} within "
                f"{rng.randint(5, 90)} days for {rng.randint(100, 9999)} EUR per unit."
            )
        pages.append("\n".join(lines))
    pages[n_pages // 3] += "\nA late penalty of 2% per month applies to unpaid invoices."
    return pages


def write_pdf(path: Path, pages: list[str]) -> Path:
    from tests.pdfs import pdf_bytes

    path.write_bytes(pdf_bytes(pages))
    return path


def model_path(spec: str | None, workdir: Path) -> Path:
    if spec is None:
        from tests.tinymodels.llama import write_tiny_llama

        return write_tiny_llama(workdir / "tiny-llama.gguf", n_ctx_train=8192)
    from offgrid.models import store

    return store.resolve(spec, "text").path


class EvalClock:
    """Times the engine's llama.cpp evaluations: multi-token calls are prompt processing,
    single-token calls are generation steps."""

    def __init__(self, llm) -> None:
        self.prompt_seconds = self.generation_seconds = 0.0
        self.prompt_tokens = self.generated = 0
        inner = llm.eval

        def timed_eval(tokens) -> None:
            tokens = list(tokens)
            start = time.perf_counter()
            inner(tokens)
            elapsed = time.perf_counter() - start
            if len(tokens) > 1:
                self.prompt_seconds += elapsed
                self.prompt_tokens += len(tokens)
            else:
                self.generation_seconds += elapsed
                self.generated += 1

        llm.eval = timed_eval


def raw_prompt_seconds(engine, chunks: list) -> tuple[float, int]:
    """Time for the bare engine to evaluate the chunks' document tokens, cache cleared each time."""
    llm = engine.llm
    seconds, tokens = 0.0, 0
    for chunk in chunks:
        ids = engine.tokenize(chunk.text, add_bos=True)
        llm.reset()  # the next eval overwrites the KV cache from position 0
        start = time.perf_counter()
        llm.eval(ids)
        seconds += time.perf_counter() - start
        tokens += len(ids)
    llm.reset()
    return seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="catalog alias, repo:file or .gguf path (default: a tiny generated model)")
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=64, help="final answer tokens")
    parser.add_argument("--map-tokens", type=int, default=64,
                        help="notes per chunk (a random tiny model always writes the maximum)")
    parser.add_argument("--ask", action="append", default=[], help="also answer this question")
    parser.add_argument("--json", type=Path, help="write the JSON result to this file too")
    args = parser.parse_args()

    from offgrid import device
    from offgrid.engines.llama import LlamaEngine

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        pdf = write_pdf(workdir / "bench.pdf", generated_pages(args.pages))
        path = model_path(args.model, workdir)
        engine = LlamaEngine(path, n_ctx=args.ctx, n_threads=args.threads or device.default_threads(), seed=1)
        try:
            request = summarizer.Request(
                prompts.BUILTIN_ROLES["general"], questions=args.ask, map_tokens=args.map_tokens,
                settings=GenerationSettings(temperature=0.0, seed=1, max_tokens=args.max_tokens))
            raw_seconds, raw_tokens = raw_prompt_seconds(  # warm-up, and the baseline's chunks
                engine, summarizer.Job(engine, documents.load(pdf), request).plan())
            clock = EvalClock(engine.llm)
            start = time.perf_counter()
            document = documents.load(pdf)
            job = summarizer.prepare(engine, document, request)
            for section in job.sections():
                "".join(section.stream)
            total = time.perf_counter() - start
        finally:
            engine.close()

    usage = job.result.usage
    report = {
        "model": path.name if args.model is None else args.model,
        "pages": args.pages,
        "n_ctx": args.ctx,
        "chunks": len(job.chunks),
        "chunk_budget_tokens": job.result.chunk_tokens,
        "document_tokens": raw_tokens,
        "offgrid": {"seconds": round(total, 3),
                    "prompt_eval_seconds": round(clock.prompt_seconds, 3),
                    "generation_eval_seconds": round(clock.generation_seconds, 3),
                    "other_seconds": round(total - clock.prompt_seconds - clock.generation_seconds, 3),
                    **usage.to_dict()},
        "raw": {"prompt_seconds": round(raw_seconds, 3),
                "prompt_tokens_per_second": round(raw_tokens / raw_seconds, 1) if raw_seconds else None},
        "total_ratio": round(total / raw_seconds, 2) if raw_seconds else None,
        "prompt_eval_ratio": round(clock.prompt_seconds / raw_seconds, 2) if raw_seconds else None,
        "evaluated_ratio": round(usage.prompt_tokens_evaluated / raw_tokens, 2) if raw_tokens else None,
        "without_cache_ratio": round(usage.prompt_tokens / raw_tokens, 2) if raw_tokens else None,
    }
    print(f"{args.pages} pages -> {report['chunks']} chunks of <= {report['chunk_budget_tokens']} tokens "
          f"({raw_tokens} document tokens)", file=sys.stderr)
    print(f"raw prompt processing: {raw_seconds:.2f} s   offgrid total: {total:.2f} s "
          f"(prompt eval {clock.prompt_seconds:.2f} s, generation {clock.generation_seconds:.2f} s)   "
          f"ratio {report['total_ratio']}x, prompt eval ratio {report['prompt_eval_ratio']}x",
          file=sys.stderr)
    print(f"prompt tokens: {usage.prompt_tokens} sent, {usage.prompt_tokens_evaluated} evaluated, "
          f"{usage.prompt_tokens_cached} from the KV cache; {usage.completion_tokens} generated",
          file=sys.stderr)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

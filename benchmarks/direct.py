"""The bare engine: minimal llama-cpp-python loops that benchmarks compare offgrid against.

Run as a child process (`python -m benchmarks.direct chat ...`) so its wall time and peak RSS
are its own; prints one JSON object. Takes nothing from offgrid but its speed defaults and the
load-time workaround this CPU needs, so both sides load the model the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

# offgrid's speed defaults, so both sides run the same settings (not its code).
from offgrid.engines.llama import DEFAULT_BATCH, DEFAULT_FLASH_ATTN, DEFAULT_KV_CACHE

CHATML = "<|im_start|>{role}\n{content}<|im_end|>\n"


def chatml(messages: list[dict[str, str]]) -> str:
    """The bench model's template (tests.tinymodels.llama.CHATML_TEMPLATE), by hand."""
    return "".join(CHATML.format(**m) for m in messages) + "<|im_start|>assistant\n"


def load(model: str, *, n_ctx: int, threads: int | None, flash_attn: bool = DEFAULT_FLASH_ATTN,
         kv_cache: str = DEFAULT_KV_CACHE, n_batch: int = DEFAULT_BATCH,
         n_ubatch: int | None = None) -> Any:
    import llama_cpp

    from offgrid.engines.llama import model_params_override, safe_model_params

    kv_type = getattr(llama_cpp, f"GGML_TYPE_{kv_cache.upper()}")
    kwargs: dict[str, Any] = dict(n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_ubatch or n_batch,
                                  flash_attn=flash_attn, type_k=kv_type, type_v=kv_type,
                                  verbose=False, use_mmap=True)
    if threads:
        kwargs.update(n_threads=threads, n_threads_batch=threads)
    with model_params_override(llama_cpp, **safe_model_params()):
        return llama_cpp.Llama(model, **kwargs)


class Counter:
    """Counts the tokens llama.eval() is asked to compute (the uncached prompt, then one per
    generated token)."""

    def __init__(self, llm: Any):
        self.calls: list[int] = []
        original = llm.eval

        def counted(tokens: Any) -> None:
            tokens = list(tokens)
            self.calls.append(len(tokens))
            original(tokens)

        llm.eval = counted


def generate(llm: Any, tokens: list[int], max_tokens: int, *,
             show: Any = None) -> dict[str, Any]:
    """Greedy generation with offgrid's default sampler chain; timings like offgrid's."""
    counter = Counter(llm)
    start, cpu_start = time.perf_counter(), time.process_time()
    first = None
    cpu_first = 0.0
    generated: list[int] = []
    for token in llm.generate(tokens, temp=0.0, top_k=40, top_p=0.95, min_p=0.05,
                              repeat_penalty=1.1):
        if first is None:
            first, cpu_first = time.perf_counter(), time.process_time()
        if llm.token_eos() == token:
            break
        generated.append(token)
        piece = llm.detokenize([token])  # what any streaming UI does per token
        if show is not None:
            show.write(piece)
            show.flush()
        if len(generated) >= max_tokens:
            break
    end, cpu_end = time.perf_counter(), time.process_time()
    first = first or end
    return {"prompt_tokens": len(tokens), "prompt_tokens_evaluated": counter.calls[0],
            "completion_tokens": len(generated), "time_to_first_token": first - start,
            "prompt_seconds": first - start, "generation_seconds": end - first,
            # CPU seconds (all threads): steadier than wall time on a busy machine
            "prompt_cpu": cpu_first - cpu_start, "generation_cpu": cpu_end - cpu_first,
            "text": llm.detokenize(generated).decode("utf-8", errors="replace")}


def chat(args: argparse.Namespace) -> dict[str, Any]:
    llm = load(args.model, n_ctx=args.ctx, threads=args.threads, flash_attn=args.flash_attn,
               kv_cache=args.kv_cache, n_batch=args.batch)
    prompt = chatml([{"role": "user", "content": args.prompt}])
    # Like llama-cpp-python's Jinja chat handler (and offgrid): the template owns BOS.
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    return generate(llm, tokens, args.max_tokens,
                    show=sys.stderr.buffer if args.show else None)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.direct")
    parser.add_argument("what", choices=["chat"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--flash-attn", action="store_true", default=DEFAULT_FLASH_ATTN)
    parser.add_argument("--kv-cache", default=DEFAULT_KV_CACHE)
    parser.add_argument("--show", action="store_true", help="stream the reply to stderr")
    args = parser.parse_args()
    print(json.dumps(chat(args)))


if __name__ == "__main__":
    main()

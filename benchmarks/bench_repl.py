"""The cost of turn 5 of a conversation: offgrid's ChatSession vs a direct loop that keeps the
whole conversation's tokens and lets llama-cpp-python reuse the longest cached prefix.

Both must evaluate only the new tokens (the user's message and the template around it), not
the conversation so far: the table shows the tokens evaluated at turn 5 and its prompt time.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

from benchmarks import common
from benchmarks.common import Options, Row, best

TURNS = ["Hello, what is the phone model?", "And the total due date?",
         "Answer the question in the note.", "Is it offline?", "What is the world of the model?"]
MAX_TOKENS = 16
N_CTX = 2048


def _offgrid_turns(model: Path, threads: int) -> list[dict]:
    from offgrid.chat.conversation import Conversation
    from offgrid.engines.base import GenerationSettings
    from offgrid.engines.llama import LlamaEngine
    from offgrid.ui.output import Output
    from offgrid.chat.repl import ChatSession

    engine = LlamaEngine(model, n_ctx=N_CTX, n_threads=threads)
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    session = ChatSession(engine, Conversation(), GenerationSettings(
        temperature=0, max_tokens=MAX_TOKENS), out, history=None)
    turns = []
    try:
        for text in TURNS:
            started = time.perf_counter()
            reply = session.ask(text)
            turns.append(_turn(reply.stats.prompt_tokens, reply.stats.prompt_tokens_evaluated,
                               reply.stats.completion_tokens, reply.stats.prompt_seconds,
                               time.perf_counter() - started))
    finally:
        engine.close()
    return turns


def _direct_turns(model: Path, threads: int) -> list[dict]:
    from benchmarks.direct import chatml, generate, load

    llm = load(str(model), n_ctx=N_CTX, threads=threads)
    messages: list[dict[str, str]] = []
    turns = []
    try:
        for text in TURNS:
            started = time.perf_counter()
            messages.append({"role": "user", "content": text})
            tokens = llm.tokenize(chatml(messages).encode(), add_bos=False, special=True)
            result = generate(llm, tokens, MAX_TOKENS)
            messages.append({"role": "assistant", "content": result["text"]})
            turns.append(_turn(len(tokens), result["prompt_tokens_evaluated"],
                               result["completion_tokens"], result["prompt_seconds"],
                               time.perf_counter() - started))
    finally:
        llm.close()
    return turns


def _turn(prompt: int, evaluated: int, completion: int, prompt_s: float, total_s: float) -> dict:
    return {"prompt_tokens": prompt, "evaluated": evaluated, "completion": completion,
            "prompt_seconds": prompt_s, "seconds": total_s}


def _new_tokens(turns: list[dict], i: int) -> int:
    """Tokens of turn i's prompt that were not in the cache after turn i-1."""
    if i == 0:
        return turns[0]["prompt_tokens"]
    before = turns[i - 1]
    return turns[i]["prompt_tokens"] - before["prompt_tokens"] - before["completion"]


def run(opts: Options) -> list[Row]:
    from offgrid import device

    model = common.bench_model(opts.shape)
    threads = opts.threads or device.default_threads()
    ours_runs, theirs_runs = [], []
    for _ in range(max(1, opts.repeat - 1)):
        ours_runs.append(_offgrid_turns(model, threads))
        theirs_runs.append(_direct_turns(model, threads))
    ours, theirs = ours_runs[0], theirs_runs[0]
    last = len(TURNS) - 1
    evaluated = [t["evaluated"] for t in ours]
    new = [_new_tokens(ours, i) for i in range(len(ours))]
    return [
        Row("turn 5 tokens evaluated", ours[last]["evaluated"], theirs[last]["evaluated"],
            "tok", note=f"offgrid per turn: {evaluated}; new tokens: {new}",
            extra={"offgrid": ours_runs, "direct": theirs_runs}),
        Row("turn 5 evaluated / new", ours[last]["evaluated"] / max(new[last], 1),
            theirs[last]["evaluated"] / max(_new_tokens(theirs, last), 1), "x",
            note="1.0 = only the new tokens are computed"),
        Row("turn 5 prompt time", best([r[last]["prompt_seconds"] for r in ours_runs], higher=False),
            best([r[last]["prompt_seconds"] for r in theirs_runs], higher=False), "s"),
        Row("turn 5 total time", best([r[last]["seconds"] for r in ours_runs], higher=False),
            best([r[last]["seconds"] for r in theirs_runs], higher=False), "s",
            note=f"{MAX_TOKENS}-token replies; conversation at {ours[last]['prompt_tokens']} "
                 "tokens"),
    ]

"""summarize core with a scripted fake engine (same interface as the llama adapter).

The fake counts words as tokens, simulates llama-cpp's KV-cache prefix reuse, and fails any
call whose prompt plus reply reservation would not fit its context window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from offgrid.grounded import prompts
from offgrid.inputs.documents import Document, Page
from offgrid.engines.base import GenerationSettings, GenerationStats, Message
from offgrid.errors import UsageError
from offgrid.grounded.prompts import NOT_MENTIONED
from offgrid.grounded.summarizer import Request, cited_pages, format_citation, locate, prepare, with_citation

GENERAL = prompts.BUILTIN_ROLES["general"]


def words(messages: list[Message]) -> list[str]:
    return [w for m in messages for w in (f"<{m['role']}>", *m["content"].split())]


def scripted_reply(messages: list[Message]) -> str:
    """Plausible small-model replies, chosen from the task at the end of the prompt."""
    user = messages[-1]["content"]
    data, _, task = user.rpartition("</document>") if "</document>" in user else user.rpartition("</notes>")
    markers = re.findall(r"\[p\. (\d+)\]", data)
    if "one part of a longer document" in task:
        return f"- notes on pages {markers[0]}-{markers[-1]} (p. {markers[0]})"
    if "notes above summarise" in task:
        return "- combined notes" if "Write combined notes" in task else "The whole story, briefly."
    if task.lstrip().startswith("Question:"):
        question = task.strip().split("\n", 1)[0].lower()
        if "notes above are answers" in task:
            return "Combined answer from several parts."
        if "penalty" in question and "late penalty of 2%" in data:
            return "The late penalty is 2% per month."  # no citation: offgrid adds one
        return "The document does not mention this."
    if task.lstrip().startswith("Task: extract"):
        total = "1,200 EUR" if "Total due: 1,200 EUR" in data else NOT_MENTIONED
        return f"**total amount**: {total}\n- due date: Not mentioned"
    if "summarise the document above" in task:
        return "A short summary (p. 1)."
    raise AssertionError(f"unexpected task: {task[:80]}")


class FakeEngine:
    model_name = "fake"

    def __init__(self, n_ctx: int = 2048, reply: Callable[[list[Message]], str] = scripted_reply):
        self.n_ctx = self.n_ctx_max = n_ctx
        self.reply = reply
        self.stats = GenerationStats()
        self.calls: list[tuple[list[Message], GenerationStats]] = []
        self._cache: list[str] = []
        self.thinks: list[bool | None] = []  # settings.think of every chat() call

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_chat_tokens(self, messages: list[Message], think: bool | None = None) -> int:
        return len(words(messages))

    def chat(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        tokens = words(messages)
        assert len(tokens) + (settings.max_tokens or 0) <= self.n_ctx, "prompt + reply would overflow"
        reused = 0
        for cached, new in zip(self._cache, tokens):
            if cached != new:
                break
            reused += 1
        text = self.reply(messages)
        self.thinks.append(settings.think)
        stats = GenerationStats(len(tokens), len(tokens) - reused, len(text.split()))
        self.calls.append((messages, stats))

        def stream() -> Iterator[str]:
            self.stats = stats
            yield from re.split(r"(?<= )", text)
            self._cache = tokens + text.split()

        return stream()

    def close(self) -> None:
        pass


CONTRACT = [
    "Service agreement between Acme and Bob.",
    "Payment terms. Total due: 1,200 EUR within 30 days.",
    "Delays. A late penalty of 2% per month applies to unpaid amounts.",
]


def document(pages: list[str], name: str = "contract.pdf") -> Document:
    return Document(name, [Page(number, text) for number, text in enumerate(pages, 1)])


def long_document(n_pages: int = 24, words_per_page: int = 120) -> Document:
    filler = " ".join(f"word{i}" for i in range(words_per_page))
    pages = [f"Page {n} text. {filler}" for n in range(1, n_pages + 1)]
    pages[6] += " A late penalty of 2% per month applies."
    pages[14] += " Total due: 1,200 EUR."
    return document(pages, "long.txt")


def drain(job) -> dict[str, str]:
    return {f"{s.kind}:{s.title}": "".join(s.stream) for s in job.sections()}


# --- short documents: one call per task ----------------------------------------------------


def test_short_document_one_call_per_task():
    engine = FakeEngine()
    request = Request(GENERAL, questions=["What is the late penalty?", "Who is the CEO?"], fields=["total amount", "due date"])
    job = prepare(engine, document(CONTRACT), request)
    assert job.single and len(engine.calls) == 0
    out = drain(job)
    assert out["summary:None"] == "A short summary (p. 1)."
    assert out["answer:What is the late penalty?"] == "The late penalty is 2% per month. (p. 3)"
    assert out["answer:Who is the CEO?"] == NOT_MENTIONED
    assert out["fields:None"] == "total amount: 1,200 EUR (p. 2)\ndue date: Not mentioned"
    result = job.result
    assert [a.pages for a in result.answers] == [[3], []]
    assert result.fields == {"total amount": "1,200 EUR (p. 2)", "due date": NOT_MENTIONED}
    assert result.pages_used == [1, 2, 3]
    assert len(engine.calls) == 4 and result.usage.calls == 4
    assert all(think is False for think in engine.thinks)


def test_tasks_on_one_chunk_reuse_the_cached_document():
    engine = FakeEngine()
    job = prepare(engine, document(CONTRACT), Request(GENERAL, questions=["late penalty?", "who?"]))
    drain(job)
    first, *rest = [stats for _, stats in engine.calls]
    assert first.prompt_tokens_evaluated == first.prompt_tokens
    shared = len(words([{"role": "system", "content": prompts.document_system(GENERAL)},
                        {"role": "user", "content": prompts.document_block(job.chunks[0].text)}]))
    for stats in rest:  # only the task after the document is new
        assert stats.prompt_tokens - stats.prompt_tokens_evaluated >= shared
    assert job.result.usage.prompt_tokens_cached > 0


def test_to_dict_shape():
    engine = FakeEngine()
    job = prepare(engine, document(CONTRACT), Request(GENERAL, summary=False, questions=["late penalty?"]))
    drain(job)
    data = job.result.to_dict()
    assert data["answers"] == [{"question": "late penalty?", "answer": "The late penalty is 2% per month. (p. 3)", "pages": [3]}]
    assert data["summary"] is None and data["fields"] is None and data["chunks"] == 1
    assert data["pages_used"] == [3]
    assert {"seconds", "calls", "prompt_tokens", "prompt_tokens_cached", "completion_tokens"} <= set(data["timings"])


# --- long documents: map, reduce -----------------------------------------------------------


def test_long_document_maps_every_chunk_and_keeps_page_references():
    engine = FakeEngine(n_ctx=1024)
    request = Request(
        GENERAL, questions=["What is the late penalty?", "Who signed?"], fields=["total amount"],
        settings=GenerationSettings(max_tokens=64),
    )
    progress: list[tuple[int, int]] = []
    job = prepare(engine, long_document(), request, progress=lambda done, total: progress.append((done, total)))
    n = len(job.chunks)
    assert n >= 3
    assert progress[0] == (0, 4 * n) and progress[-1][0] == progress[-1][1]
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert all(chunk.tokens <= job.result.chunk_tokens for chunk in job.chunks)
    assert job.result.chunk_tokens > 1024 // 2  # chunks use most of the window
    out = drain(job)
    assert out["answer:What is the late penalty?"] == "The late penalty is 2% per month. (p. 7)"
    assert out["answer:Who signed?"] == NOT_MENTIONED
    assert out["fields:None"] == "total amount: 1,200 EUR (p. 15)"
    assert job.result.field_pages == {"total amount": [15]}
    assert out["summary:None"] == "The whole story, briefly."
    # map calls: chunk by chunk, each chunk's tasks together, so the chunk is evaluated once
    map_calls = [stats for _, stats in engine.calls][: 4 * n]
    for index in range(n):
        first, *same_chunk = map_calls[4 * index : 4 * index + 4]
        assert all(s.prompt_tokens_evaluated < 60 for s in same_chunk)
    # only one final call (the summary reduce): answers found once need no combining
    assert len(engine.calls) == 4 * n + 1


def test_answers_found_in_several_chunks_are_combined():
    doc = long_document()
    doc.pages[20] = Page(21, doc.pages[20].text + " A late penalty of 2% per month applies.")
    engine = FakeEngine(n_ctx=1024)
    job = prepare(engine, doc, Request(GENERAL, summary=False, questions=["late penalty?"],
                                       settings=GenerationSettings(max_tokens=64)))
    out = drain(job)
    # the combined answer cites nothing, so it gets the pages its parts came from
    assert out["answer:late penalty?"] == "Combined answer from several parts. (pp. 7, 21)"
    notes = engine.calls[-1][0][1]["content"]
    assert "(p. 7)" in notes and "(p. 21)" in notes  # partial answers carried their pages


def test_many_notes_are_reduced_recursively_within_the_window():
    engine = FakeEngine(n_ctx=400, reply=lambda m: scripted_reply(m) + " padding" * 40)
    job = prepare(engine, long_document(n_pages=40, words_per_page=60),
                  Request(GENERAL, settings=GenerationSettings(max_tokens=48)))
    drain(job)
    intermediate = [m for m, _ in engine.calls if "Write combined notes" in m[1]["content"]]
    assert intermediate, "notes too long for one call must be combined in rounds"
    assert job.result.summary.startswith("The whole story")


def test_context_too_small_is_a_usage_error():
    with pytest.raises(UsageError, match="too small"):
        prepare(FakeEngine(n_ctx=300), document(CONTRACT), Request(GENERAL))


def test_nothing_to_do_is_a_usage_error():
    with pytest.raises(UsageError):
        prepare(FakeEngine(), document(CONTRACT), Request(GENERAL, summary=False))


# --- citations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pages"),
    [("a (p. 4) b [p. 2]", {2, 4}), ("(pp. 3-5, 9)", {3, 4, 5, 9}), ("(pp. 3–5)", {3, 4, 5}),
     ("(page 7)", {7}), ("(pages 1 and 3)", {1, 3}), ("no citation p 4", set())],
)  # fmt: skip
def test_cited_pages(text, pages):
    assert cited_pages(text) == pages


def test_format_citation():
    assert format_citation([4]) == "(p. 4)"
    assert format_citation([5, 3, 4, 9]) == "(pp. 3–5, 9)"
    assert format_citation([1, 2]) == "(pp. 1, 2)"
    assert format_citation([]) == ""


def test_locate_and_with_citation():
    texts = {1: "Parties: Acme and Bob.", 2: "Total due: 1,200 EUR.", 3: "Penalty 2% per month."}
    assert locate("It is 1,200 EUR", texts) == [2]
    assert locate("something unrelated", texts) == [1, 2, 3]
    assert with_citation("2% per month", texts) == ("2% per month (p. 3)", [3])
    assert with_citation("2% per month (p. 3)", texts) == ("2% per month (p. 3)", [3])
    assert with_citation("2% per month (p. 99)", texts) == ("2% per month (p. 3)", [3])
    assert with_citation(NOT_MENTIONED, texts) == (NOT_MENTIONED, [])


@pytest.mark.parametrize("size", [1, 3, 50])
def test_citations_of_pages_the_document_lacks_are_never_shown(size: int) -> None:
    from offgrid.grounded.summarizer import real_citations

    text = ("The fee is 5% (p. 38). Notice is 30 days (p. 2), see [p. 41] and (pp. 2-3). "
            "Keep (note) and f(x) and [1] as they are (p.")
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    assert "".join(real_citations(pieces, {1, 2, 3})) == (
        "The fee is 5%. Notice is 30 days (p. 2), see and (pp. 2-3). "
        "Keep (note) and f(x) and [1] as they are (p.")


def test_echoed_role_names_and_page_markers_are_not_the_answer() -> None:
    from offgrid.grounded.summarizer import _answer_text, real_citations

    assert "".join(_answer_text(["assis", "tant:\n", "The fee is 5%."])) == "The fee is 5%."
    assert "".join(_answer_text(["user\nWhat", " is due?"])) == "What is due?"
    assert "".join(_answer_text(["Users pay 5%."])) == "Users pay 5%."
    assert "".join(_answer_text(["Ok."])) == "Ok."
    assert "".join(real_citations(["[p. 2]\nTotal 1,200 EUR"], {2})) == "(p. 2)\nTotal 1,200 EUR"

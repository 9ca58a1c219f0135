"""Grounded summaries, answers and field extraction over documents of any length.

A document that fits in the context window is answered in one call per task. A longer one is
split into chunks measured with the model's tokenizer (`chunking.split`); every task reads each
chunk (map), and the partial results are combined (reduce, recursively while they do not fit).

All prompts open with the same system message and put the chunk before the task, and the map
runs every task on a chunk before moving to the next one: the engine then evaluates only the
new tokens of each call (its KV-cache prefix reuse), so the instructions and each chunk are
processed once, not once per task.

Usage:
    job = prepare(engine, document, request, progress=callback)   # chunking + map phase
    for section in job.sections():                                 # final answers, in order
        for text in section.stream: ...                            # exhaust before the next
    job.result                                                     # filled in as streams end
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from offgrid.inputs import chunking
from offgrid.grounded import prompts
from offgrid.inputs.chunking import Chunk
from offgrid.inputs.documents import Document
from offgrid.engines.base import GenerationSettings, GenerationStats, Message, TextEngine
from offgrid.errors import UsageError, context_hint
from offgrid.grounded.prompts import NOT_MENTIONED, Role
from offgrid.grounded.verify import verify
from offgrid.chat.thinking import split_thinking
from offgrid.history import History

DEFAULT_ANSWER_TOKENS = 512  # reserved for a final answer when --max-tokens is not given
MAP_TOKENS = 384  # cap on one chunk's notes (summary map / intermediate reduce)
QUESTION_MAP_TOKENS = 160  # cap on one chunk's answer to a question
FIELD_TOKENS = 48  # per extracted field, per chunk
MARGIN = 16  # tokens kept free for template/tokenizer boundary effects
MIN_CHUNK_TOKENS = 64

ProgressCallback = Callable[[int, int], None]


@dataclass
class Request:
    """What to produce for each document."""

    role: Role
    summary: bool = True
    length: str = "short"
    points: int | None = None
    language: str | None = None
    questions: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    settings: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.2))
    map_tokens: int = MAP_TOKENS  # cap on each chunk's notes (at most 1/8 of the window)


@dataclass
class Answer:
    question: str
    text: str = ""
    pages: list[int] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.text != NOT_MENTIONED


@dataclass
class Usage:
    """Engine work summed over every call of a run."""

    calls: int = 0
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    repetitions: int = 0  # replies the loop guard stopped (engines/guard.py)

    def add(self, stats: GenerationStats) -> None:
        self.calls += 1
        self.repetitions += stats.finish_reason == "repetition"
        self.prompt_tokens += stats.prompt_tokens
        self.prompt_tokens_evaluated += stats.prompt_tokens_evaluated
        self.completion_tokens += stats.completion_tokens
        self.prompt_seconds += stats.prompt_seconds
        self.generation_seconds += stats.generation_seconds

    @property
    def prompt_tokens_cached(self) -> int:
        return self.prompt_tokens - self.prompt_tokens_evaluated

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "prompt_tokens_evaluated": self.prompt_tokens_evaluated,
            "prompt_tokens_cached": self.prompt_tokens_cached,
            "completion_tokens": self.completion_tokens,
            "prompt_seconds": round(self.prompt_seconds, 3),
            "generation_seconds": round(self.generation_seconds, 3),
            "repetitions": self.repetitions,
        }


@dataclass
class Result:
    """Everything produced for one document (filled in as its sections are streamed)."""

    name: str
    pages: list[int]
    chunks: int
    chunk_tokens: int
    summary: str | None = None
    answers: list[Answer] = field(default_factory=list)
    fields: dict[str, str] | None = None
    field_pages: dict[str, list[int]] = field(default_factory=dict)
    field_verified: dict[str, bool | None] = field(default_factory=dict)  # grounded.verify
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0

    @property
    def pages_used(self) -> list[int]:
        """Pages the answers, fields and summary cite (all pages read if nothing is cited)."""
        used: set[int] = set()
        for answer in self.answers:
            used.update(answer.pages)
        for pages in self.field_pages.values():
            used.update(pages)
        if self.summary:
            used.update(cited_pages(self.summary) & set(self.pages))
        return sorted(used)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pages": self.pages,
            "chunks": self.chunks,
            "summary": self.summary,
            "answers": [{"question": a.question, "answer": a.text, "pages": a.pages} for a in self.answers],
            "fields": self.fields,
            "field_pages": self.field_pages if self.fields is not None else None,
            "verified": self.field_verified if self.fields is not None else None,
            "pages_used": self.pages_used,
            "timings": {"seconds": round(self.seconds, 3), **self.usage.to_dict()},
        }


@dataclass
class Section:
    """One part of the final output: the summary, one answer, or the extracted fields.

    `stream` yields the text to show; the job's result is updated when it is exhausted.
    """

    kind: str  # "summary" | "answer" | "fields"
    title: str | None
    stream: Iterator[str]
    markdown: bool = True


# --- page citations ------------------------------------------------------------------------

_CITATION = re.compile(r"[\[(]\s*(?:pp?\.|pages?)\s*([\d\s,–—-]+(?:\s*(?:and|&)\s*\d+)?)\s*[\])]", re.I)


def cited_pages(text: str) -> set[int]:
    """Page numbers cited in `text` as (p. 4), (pp. 3-5, 9), [p. 2] or (page 7)."""
    pages: set[int] = set()
    for match in _CITATION.finditer(text):
        for part in re.split(r",|\band\b|&", match.group(1)):
            bounds = [int(n) for n in re.findall(r"\d+", part)]
            if len(bounds) == 1:
                pages.add(bounds[0])
            elif len(bounds) == 2 and 0 < bounds[1] - bounds[0] < 1000:
                pages.update(range(bounds[0], bounds[1] + 1))
    return pages


def format_citation(pages: Iterable[int]) -> str:
    """[4] -> "(p. 4)"; [3, 4, 5, 9] -> "(pp. 3–5, 9)"."""
    numbers = sorted(set(pages))
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f"(p. {numbers[0]})"
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts = [f"{run[0]}–{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)) for run in runs]
    return f"(pp. {', '.join(parts)})"


_STOPWORDS = set(
    "the and for with that this from into than then them they their there these those have has "
    "been were was are is not but all any each which what when where who whom whose will shall "
    "would could should about after before under over also only such other more most some page "
    "document mentioned text states stated says".split()
)


def locate(answer: str, page_texts: dict[int, str]) -> list[int]:
    """The pages whose text best matches the answer's numbers and rare words (all if none)."""
    terms = {
        term.lower().strip(".,;:()")
        for term in re.findall(r"[\w.,%€$£/-]+", answer)
        if re.search(r"\d", term) or (len(term) >= 4 and term.lower() not in _STOPWORDS)
    }
    terms.discard("")
    scores = {
        number: sum(1 for term in terms if term in text.lower()) for number, text in page_texts.items()
    }
    best = max(scores.values(), default=0)
    if best == 0:
        return sorted(page_texts)
    return sorted(number for number, score in scores.items() if score == best)


def with_citation(answer: str, page_texts: dict[int, str]) -> tuple[str, list[int]]:
    """Make sure an answer cites pages it could have come from; return it and those pages."""
    if answer == NOT_MENTIONED:
        return answer, []
    valid = sorted(cited_pages(answer) & set(page_texts))
    if valid:
        return answer, valid
    cleaned = _CITATION.sub("", answer).rstrip()  # drop citations of pages it never saw
    pages = locate(cleaned, page_texts)
    return f"{cleaned} {format_citation(pages)}", pages


# --- the job -------------------------------------------------------------------------------


class Job:
    """One document's summary, answers and fields: chunks, map results, final sections."""

    def __init__(self, engine: TextEngine, document: Document, request: Request):
        self.engine = engine
        self.document = document
        self.request = request
        self.page_texts = {page.number: page.text for page in document.pages if page.text}
        self.chunks: list[Chunk] = []
        self.result = Result(document.name, document.page_numbers, 0, 0)
        self._started = time.perf_counter()
        self._final_reserve = _final_reserve(engine.n_ctx, request.settings.max_tokens)
        self._map_reserve = max(32, min(request.map_tokens, engine.n_ctx // 8))
        self._notes: list[str] = []  # summary map results, reduced until they fit one call
        self._found: list[list[str]] = [[] for _ in request.questions]  # answers per question
        self._field_parts: list[tuple[dict[str, str], dict[str, list[int]]]] = []
        self._progress: ProgressCallback | None = None
        self._done = self._total = 0

    # --- planning ------------------------------------------------------------------------

    def plan(self) -> list[Chunk]:
        """Split the document into chunks that leave room for the prompt and the reply."""
        reserve = max(self._final_reserve, self._map_reserve)
        budget = self.engine.n_ctx - self._overhead() - reserve - MARGIN
        if budget < MIN_CHUNK_TOKENS:
            raise UsageError(
                f"the context window ({self.engine.n_ctx} tokens) is too small for this task",
                hint=context_hint("lower --max-tokens", self.engine.n_ctx,
                                  self.engine.n_ctx_max),
            )
        self.chunks = chunking.split(self.document.pages, self.engine.count_tokens, budget)
        self.result.chunks = len(self.chunks)
        self.result.chunk_tokens = budget
        return self.chunks

    def _overhead(self) -> int:
        """Tokens of the longest prompt wrapped around an empty chunk."""
        request, role, language = self.request, self.request.role, self.request.language
        probes = [
            prompts.summary("", role=role, length=request.length, points=request.points, language=language),
            prompts.map_summary("", role=role, language=language),
            *(prompts.grounded_answer("", q, role=role, language=language) for q in request.questions),
            prompts.extraction("", request.fields, role=role) if request.fields else [],
        ]
        return max(self._prompt_tokens(messages) for messages in probes if messages)

    @property
    def single(self) -> bool:
        """Whether the whole document fits in one call per task (no map/reduce)."""
        return len(self.chunks) <= 1

    # --- map phase -----------------------------------------------------------------------

    def run_map(self, progress: ProgressCallback | None = None) -> None:
        """Every task on every chunk, chunk by chunk (each chunk's KV cache serves all its
        tasks), then intermediate reductions until each task's final call fits."""
        if self.single:
            return
        request = self.request
        per_chunk = int(request.summary) + len(request.questions) + int(bool(request.fields))
        self._progress, self._total = progress, per_chunk * len(self.chunks)
        self._step(0)
        for chunk in self.chunks:
            self._map_chunk(chunk)
        if request.summary:
            self._notes = self._reduce_until_fits(self._notes, self._reduce_summary)
        for index, question in enumerate(request.questions):
            self._found[index] = self._reduce_until_fits(self._found[index], self._combiner(question))

    def _map_chunk(self, chunk: Chunk) -> None:
        request, role, language = self.request, self.request.role, self.request.language
        texts = {number: self.page_texts.get(number, "") for number in chunk.pages}
        if request.summary:
            self._notes.append(self._generate(prompts.map_summary(chunk.text, role=role, language=language),
                                              self._map_reserve))
            self._step()
        for index, question in enumerate(request.questions):
            messages = prompts.grounded_answer(chunk.text, question, role=role, language=language)
            reply = prompts.normalize_answer(self._generate(messages, QUESTION_MAP_TOKENS))
            if reply != NOT_MENTIONED:
                self._found[index].append(with_citation(reply, texts)[0])
            self._step()
        if request.fields:
            messages = prompts.extraction(chunk.text, request.fields, role=role)
            reply = self._generate(messages, FIELD_TOKENS * len(request.fields) + 16)
            self._field_parts.append(_cite_fields(prompts.parse_extraction(reply, request.fields), texts))
            self._step()

    def _step(self, amount: int = 1) -> None:
        self._done += amount
        if self._progress:
            self._progress(self._done, self._total)

    def _reduce_summary(self, notes: list[str], final: bool) -> list[Message]:
        request = self.request
        return prompts.reduce_summaries(
            notes, role=request.role, length=request.length, points=request.points,
            language=request.language, final=final)

    def _combiner(self, question: str) -> Callable[[list[str], bool], list[Message]]:
        def combine(answers: list[str], final: bool) -> list[Message]:
            return prompts.combine_answers(answers, question, role=self.request.role, language=self.request.language)

        return combine

    def _reduce_until_fits(self, parts: list[str], make: Callable[[list[str], bool], list[Message]]) -> list[str]:
        """Combine partial results in groups until the final call over all of them fits."""
        final_limit = self.engine.n_ctx - self._final_reserve - MARGIN
        group_limit = self.engine.n_ctx - self._map_reserve - MARGIN
        while len(parts) > 1 and self._prompt_tokens(make(parts, True)) > final_limit:
            groups = self._groups(parts, make, group_limit)
            self._total += len(groups)
            reduced = []
            for group in groups:
                reduced.append(self._generate(make(group, False), self._map_reserve))
                self._step()
            parts = reduced
        return parts

    def _groups(self, parts: list[str], make: Callable[[list[str], bool], list[Message]], limit: int) -> list[list[str]]:
        """Consecutive parts packed so each group's prompt stays within `limit` tokens."""
        overhead = self._prompt_tokens(make([], False))
        groups: list[list[str]] = [[]]
        size = overhead
        for part in parts:
            cost = self.engine.count_tokens(part) + 8  # + "Part N:" and blank lines
            if groups[-1] and size + cost > limit:
                groups.append([])
                size = overhead
            groups[-1].append(part)
            size += cost
        if len(groups) == len(parts):  # nothing merged (huge parts): pair them regardless
            groups = [parts[i : i + 2] for i in range(0, len(parts), 2)]
        return groups

    # --- final sections ------------------------------------------------------------------

    def sections(self) -> Iterator[Section]:
        """The final outputs in order; exhaust each section's stream before the next."""
        if self.request.summary:
            yield Section("summary", None, self._summary_stream())
        for index, question in enumerate(self.request.questions):
            yield Section("answer", question, self._answer_stream(index, question))
        if self.request.fields:
            yield Section("fields", None, self._fields_stream(), markdown=False)

    def _summary_stream(self) -> Iterator[str]:
        request = self.request
        if self.single:
            messages = prompts.summary(
                self._only_chunk(), role=request.role, length=request.length, points=request.points,
                language=request.language)
        else:
            messages = self._reduce_summary(self._notes, True)
        parts: list[str] = []
        for piece in self._stream(messages, request.settings.max_tokens):
            parts.append(piece)
            yield piece
        self.result.summary = "".join(parts).strip()
        self._finish()

    def _answer_stream(self, index: int, question: str) -> Iterator[str]:
        answer = Answer(question)
        self.result.answers.append(answer)
        max_tokens = self.request.settings.max_tokens
        found = self._found[index]
        if self.single:
            messages = prompts.grounded_answer(
                self._only_chunk(), question, role=self.request.role, language=self.request.language)
            text = yield from _stream_answer(self._stream(messages, max_tokens), self.page_texts)
        elif len(found) > 1:
            messages = self._combiner(question)(found, True)
            sources = set().union(*(cited_pages(part) for part in found)) & set(self.page_texts)
            texts = {n: t for n, t in self.page_texts.items() if n in sources} or self.page_texts
            text = yield from _stream_answer(self._stream(messages, max_tokens), texts)
        else:
            text = found[0] if found else NOT_MENTIONED
            yield text
        answer.text = text
        answer.pages = sorted(cited_pages(text) & set(self.page_texts))
        self._finish()

    def _fields_stream(self) -> Iterator[str]:
        fields = self.request.fields
        if self.single:
            messages = prompts.extraction(self._only_chunk(), fields, role=self.request.role)
            max_tokens = self.request.settings.max_tokens or FIELD_TOKENS * len(fields) + 32
            reply = self._generate(messages, max_tokens)
            values, pages = _cite_fields(prompts.parse_extraction(reply, fields), self.page_texts)
        else:
            values, pages = _merge_fields(fields, self._field_parts)
        values, verified = verify(values, self.page_texts)
        self.result.fields = values
        self.result.field_verified = verified
        self.result.field_pages = {name: found for name, found in pages.items() if verified[name]}
        self._finish()
        yield prompts.format_extraction(values)

    # --- engine calls --------------------------------------------------------------------

    def _only_chunk(self) -> str:
        return self.chunks[0].text if self.chunks else ""

    def _settings(self, max_tokens: int | None) -> GenerationSettings:
        # Qwen3-style templates: answer, don't think
        return replace(self.request.settings, max_tokens=max_tokens, think=False,
                       stop=list(self.request.settings.stop))

    def _stream(self, messages: list[Message], max_tokens: int | None) -> Iterator[str]:
        """The reply's answer text (thinking dropped, leading blanks trimmed, citations of
        pages the document does not have removed), piece by piece."""
        pieces = self.engine.chat(messages, self._settings(max_tokens))
        try:
            yield from real_citations(_answer_text(pieces), set(self.page_texts))
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
            self.result.usage.add(self.engine.stats)

    def _generate(self, messages: list[Message], max_tokens: int) -> str:
        return "".join(self._stream(messages, max_tokens)).strip()

    def _prompt_tokens(self, messages: list[Message]) -> int:
        return self.engine.count_chat_tokens(messages, think=False)

    def _finish(self) -> None:
        self.result.seconds = time.perf_counter() - self._started


def make_request(roles: dict[str, Role], *, ask: list[str] | None = None,
                 extract: str | None = None, points: int | None = None,
                 length: str | None = None, lang: str | None = None,
                 role: str | None = None) -> Request:
    """The Request for summarize's options (--ask, --extract, --points, --length, --lang,
    --role); a summary is made unless only questions or fields were asked for."""
    questions = [q.strip() for q in ask or []]
    if any(not q for q in questions):
        raise UsageError("--ask needs a question")
    fields = prompts.parse_fields(extract) if extract is not None else []
    if length is not None and length not in prompts.LENGTHS:
        raise UsageError(f"--length must be short, medium or long, not {length!r}")
    wants_summary = not (questions or fields) or points is not None or length is not None
    return Request(
        role=prompts.get_role(role, roles),
        summary=wants_summary, length=length or "short", points=points,
        language=lang, questions=questions, fields=fields)


def prepare(
    engine: TextEngine, document: Document, request: Request, *, progress: ProgressCallback | None = None
) -> Job:
    """Chunk the document and run the map phase; the returned job streams the final answers."""
    if not (request.summary or request.questions or request.fields):
        raise UsageError("nothing to do: ask for a summary, --ask or --extract")
    job = Job(engine, document, request)
    job.plan()
    job.run_map(progress)
    return job


# --- helpers -------------------------------------------------------------------------------


def _final_reserve(n_ctx: int, max_tokens: int | None) -> int:
    """Tokens to keep free for a final answer: --max-tokens (or a default), at most half the window."""
    return max(16, min(max_tokens or DEFAULT_ANSWER_TOKENS, n_ctx // 2))


_REFUSAL_STARTS = ("not ", "n/a", "none", "unknown", "the document", "the text", "the provided", "there is no")


_ECHOED_ROLE = re.compile(r"(?:user|assistant|system|model)\s*(?::|\n)\s*", re.I)
ROLE_HOLD = 12  # characters held at the start of a reply to see whether a role name opens it


def _answer_text(pieces: Iterable[str]) -> Iterator[str]:
    """The text of a reply: thinking dropped, leading blanks and an echoed role name
    ("assistant:", "user\n") trimmed."""
    head: str | None = ""  # None once the start is settled
    for kind, text in split_thinking(pieces):
        if kind != "text":
            continue
        if head is not None:
            head = (head + text).lstrip()
            if len(head) < ROLE_HOLD:
                continue
            text, head = _ECHOED_ROLE.sub("", head, count=1) if _ECHOED_ROLE.match(head) else head, None
        if text:
            yield text
    if head:
        yield _ECHOED_ROLE.sub("", head, count=1) if _ECHOED_ROLE.match(head) else head


CITATION_HOLD = 40  # characters after "(" or "[" held back to see whether a citation follows


def real_citations(pieces: Iterable[str], pages: set[int]) -> Iterator[str]:
    """The streamed text without citations of pages outside *pages* (the document's, or
    those --pages chose): small models cite pages that do not exist."""
    held = ""
    for piece in pieces:
        shown, held = _settle(held + piece, pages, final=False)
        if shown:
            yield shown
    shown, _ = _settle(held, pages, final=True)
    if shown:
        yield shown


def _settle(text: str, pages: set[int], *, final: bool) -> tuple[str, str]:
    """(text that can be shown, text to hold): citations decided, a possible one held back
    with the blanks before it (so a dropped citation takes its space along)."""
    out, pos = [], 0
    while True:
        starts = [i for i in (text.find("(", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            out.append(text[pos:])
            break
        at = min(starts)
        out.append(text[pos:at])
        ends = [i for i in (text.find(")", at), text.find("]", at)) if i >= 0]
        close = min(ends) if ends else -1
        if close < 0 or close - at > CITATION_HOLD:
            if not final and close < 0 and len(text) - at <= CITATION_HOLD:
                return _hold_blanks("".join(out), text[at:])
            out.append(text[at])
            pos = at + 1
            continue
        candidate = text[at:close + 1]
        if _CITATION.fullmatch(candidate) and not cited_pages(candidate) <= pages:
            out[-1] = out[-1].rstrip(" ")  # the citation goes, with the space before it
        elif candidate.startswith("[") and _CITATION.fullmatch(candidate):
            out.append(f"({candidate[1:-1].strip()})")  # a copied page marker: a citation
        else:
            out.append(candidate)
        pos = close + 1
    shown = "".join(out)
    return (shown, "") if final else _hold_blanks(shown, "")


def _hold_blanks(shown: str, held: str) -> tuple[str, str]:
    """Keep trailing spaces back with *held*: a dropped citation after them takes them along."""
    stripped = shown.rstrip(" ")
    return stripped, shown[len(stripped):] + held


def _stream_answer(pieces: Iterator[str], page_texts: dict[int, str]) -> Iterator[str]:
    """Stream an answer and return its final text.

    An answer that starts like a refusal ("Not mentioned.", "The document does not say…") is
    held back to the end so it can be printed as exactly NOT_MENTIONED; an answer without a
    citation of a page it could have come from gets one appended.
    """
    held, streaming, emitted = "", False, []
    for piece in pieces:
        if streaming:
            emitted.append(piece)
            yield piece
            continue
        held += piece
        start = held.lower().lstrip("*_\"' ")
        if not any(prefix.startswith(start) or start.startswith(prefix) for prefix in _REFUSAL_STARTS):
            streaming = True
            emitted.append(held)
            yield held
    if not streaming:
        if prompts.is_not_mentioned(held):
            yield NOT_MENTIONED
            return NOT_MENTIONED
        emitted.append(held)
        yield held
    text = "".join(emitted).strip()
    if cited_pages(text) & set(page_texts):
        return text
    suffix = " " + format_citation(locate(_CITATION.sub("", text), page_texts))
    yield suffix
    return text + suffix


def _cite_fields(values: dict[str, str], page_texts: dict[int, str]) -> tuple[dict[str, str], dict[str, list[int]]]:
    cited: dict[str, str] = {}
    pages: dict[str, list[int]] = {}
    for name, value in values.items():
        cited[name], found = with_citation(value, page_texts)
        if found:
            pages[name] = found
    return cited, pages


def _merge_fields(
    fields: list[str], partials: list[tuple[dict[str, str], dict[str, list[int]]]]
) -> tuple[dict[str, str], dict[str, list[int]]]:
    """Per field, every distinct value found in any chunk (in order), or NOT_MENTIONED."""
    values: dict[str, str] = {}
    pages: dict[str, list[int]] = {}
    for name in fields:
        found: list[str] = []
        seen: set[str] = set()
        field_pages: set[int] = set()
        for chunk_values, chunk_pages in partials:
            value = chunk_values.get(name, NOT_MENTIONED)
            if value == NOT_MENTIONED:
                continue
            key = _CITATION.sub("", value).strip().lower()
            field_pages.update(chunk_pages.get(name, []))
            if key not in seen:
                seen.add(key)
                found.append(value)
        values[name] = "; ".join(found) if found else NOT_MENTIONED
        if field_pages:
            pages[name] = sorted(field_pages)
    return values, pages


def to_json(model: str, request: Request, results: list[Result], text: str) -> dict[str, Any]:
    """The `--json` object of one run over one or more documents."""
    usage = Usage()
    for result in results:
        for key in vars(usage):
            setattr(usage, key, getattr(usage, key) + getattr(result.usage, key))
    return {
        "model": model,
        "role": request.role.name,
        "answer": text.strip(),
        "documents": [result.to_dict() for result in results],
        "timings": {"seconds": round(sum(r.seconds for r in results), 3), **usage.to_dict()},
    }


def record(history: History, model: str, docs: list[Document], request: Request,
           results: list[Result], text: str) -> None:
    """Save the run in *history*: what was asked of which documents, and the answer."""
    names = ", ".join(d.name for d in docs)
    asked = "; ".join(request.questions) or (", ".join(request.fields) if request.fields else "summary")
    history.record_run("summarize", model, f"{names}: {asked}", text, meta={
        "documents": [d.name for d in docs], "role": request.role.name,
        "questions": request.questions, "fields": request.fields,
        "pages_used": [r.pages_used for r in results], "timestamp": time.time()})

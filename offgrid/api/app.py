"""The OpenAI-compatible API over one loaded text engine, as a Starlette app.

    GET  /v1/models             the loaded model (with its context length)
    POST /v1/chat/completions   streaming (server-sent events) or not
    POST /v1/completions        raw text completion (no chat template), streaming or not
    POST /tokenize              llama.cpp's tokenizer endpoint (offgrid's --server client uses it)
    GET  /health

Requests queue for the one engine: each generation runs in a worker thread that holds the
engine's lock for the whole reply, and hands its text pieces to the response through a queue.
A client that goes away sets a stop flag the worker checks between pieces, so its generation
ends at the next token. Errors are OpenAI-style error objects; nothing is logged, and nothing
is kept in history unless the server was started with --save.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from offgrid.engines.base import GenerationSettings, GenerationStats, Message, TextEngine
from offgrid.errors import OffgridError
from offgrid.history import History

MAX_BODY_BYTES = 16 << 20  # a long document or a few photos, as JSON
ROLES = ("system", "user", "assistant")


class ApiError(Exception):
    """An error answered as an OpenAI error object."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code

    def response(self) -> JSONResponse:
        error = {"message": self.message, "type": self.kind, "param": None, "code": self.code}
        return JSONResponse({"error": error}, status_code=self.status)


@dataclass
class Served:
    """What the app serves: one engine, its defaults, who may call it, where runs are kept."""

    engine: TextEngine
    defaults: GenerationSettings
    api_key: str | None = None
    history: History | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()


def create_app(served: Served) -> Starlette:
    """The Starlette app for *served*."""

    def endpoint(handler: Callable[[Request, Served], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            try:
                _check_key(request, served.api_key)
                return await handler(request, served)
            except ApiError as exc:
                return exc.response()
        return run

    return Starlette(routes=[
        Route("/v1/models", endpoint(_models), methods=["GET"]),
        Route("/v1/chat/completions", endpoint(_chat_completions), methods=["POST"]),
        Route("/v1/completions", endpoint(_completions), methods=["POST"]),
        Route("/tokenize", endpoint(_tokenize), methods=["POST"]),
        Route("/health", endpoint(_health), methods=["GET"]),
    ])


def _check_key(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not secrets.compare_digest(given.encode(), api_key.encode()):
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


async def _health(request: Request, served: Served) -> Response:
    return JSONResponse({"status": "ok"})


async def _models(request: Request, served: Served) -> Response:
    engine = served.engine
    return JSONResponse({"object": "list", "data": [{
        "id": engine.model_name, "object": "model", "created": 0, "owned_by": "offgrid",
        "context_length": engine.n_ctx}]})


async def _tokenize(request: Request, served: Served) -> Response:
    body = await _json_body(request)
    content = body.get("content")
    if not isinstance(content, str):
        raise ApiError(400, "'content' must be a string")
    tokenize = getattr(served.engine, "tokenize", None)
    if tokenize is None:
        raise ApiError(404, "this engine cannot tokenize")
    with served.lock:
        return JSONResponse({"tokens": tokenize(content, special=False)})


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"the request body is over {MAX_BODY_BYTES >> 20} MB")
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body is over {MAX_BODY_BYTES >> 20} MB")
    try:
        body = json.loads(data)
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def parse_messages(value: Any) -> list[Message]:
    """The chat messages of a request, as the engine takes them (text content only)."""
    if not isinstance(value, list) or not value:
        raise ApiError(400, "'messages' must be a non-empty list", code="invalid_messages")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ApiError(400, f"messages[{index}] needs a role: system, user or assistant")
        messages.append({"role": message["role"], "content": _text(message.get("content"), index)})
    return messages


def _text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ApiError(400, f"messages[{index}]: only text content parts are supported "
                                    "by this model")
            texts.append(str(part.get("text", "")))
        return "\n".join(texts)
    raise ApiError(400, f"messages[{index}].content must be a string or a list of parts")


_NUMBERS = {"temperature": (0.0, 5.0), "top_p": (0.0, 1.0), "min_p": (0.0, 1.0),
            "repeat_penalty": (0.0, None), "top_k": (0, None), "max_tokens": (1, None),
            "seed": (None, None)}


def parse_settings(body: dict[str, Any], defaults: GenerationSettings) -> GenerationSettings:
    """GenerationSettings from a request's sampling fields, checked like the CLI flags."""
    settings = replace(defaults, stop=list(defaults.stop))
    for name, (low, high) in _NUMBERS.items():
        value = body.get("max_completion_tokens") if name == "max_tokens" and \
            body.get("max_tokens") is None else body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (low is not None and value < low) or (high is not None and value > high):
            raise ApiError(400, f"'{name}' must be a number" + (
                f" between {low} and {high}" if high is not None else
                f" of at least {low}" if low is not None else ""))
        setattr(settings, name, int(value) if name in ("top_k", "max_tokens", "seed") else value)
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise ApiError(400, "'stop' must be a string or a list of strings")
        settings.stop = stops
    think = (body.get("chat_template_kwargs") or {}).get("enable_thinking")
    if isinstance(think, bool):
        settings.think = think
    return settings


async def _chat_completions(request: Request, served: Served) -> Response:
    body = await _json_body(request)
    messages = parse_messages(body.get("messages"))
    settings = parse_settings(body, served.defaults)
    return await _respond(Generation(served, messages, settings), bool(body.get("stream")))


async def _completions(request: Request, served: Served) -> Response:
    body = await _json_body(request)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(400, "'prompt' must be a non-empty string (one prompt a request)")
    if getattr(served.engine, "complete", None) is None:
        raise ApiError(404, "this engine answers chat completions only")
    settings = parse_settings(body, served.defaults)
    return await _respond(Generation(served, [], settings, prompt=prompt), bool(body.get("stream")))


async def _respond(reply: Generation, stream: bool) -> Response:
    if stream:
        first = await reply.first()  # errors before any byte are still a plain error object
        return StreamingResponse(reply.events(first), media_type="text/event-stream")
    text = await reply.collect()
    return JSONResponse(reply.completion(text))


class Generation:
    """One reply: generated in a worker thread, read here piece by piece. A chat completion
    of *messages*, or with *prompt* a raw text completion (/v1/completions)."""

    def __init__(self, served: Served, messages: list[Message], settings: GenerationSettings,
                 *, prompt: str | None = None):
        self.served, self.messages, self.settings = served, messages, settings
        self.prompt = prompt
        self.id = ("cmpl-" if prompt is not None else "chatcmpl-") + secrets.token_hex(12)
        self.created = int(time.time())
        self.stats = GenerationStats()
        self.stop = threading.Event()
        self.text: list[str] = []
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.loop.run_in_executor(None, self._produce)

    def _put(self, kind: str, value: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))

    def _produce(self) -> None:
        with self.served.lock:
            pieces: Iterator[str] | None = None
            try:
                engine = self.served.engine
                pieces = engine.chat(self.messages, self.settings) if self.prompt is None \
                    else engine.complete(self.prompt, self.settings)  # type: ignore[attr-defined]
                self._put("started", None)
                for piece in pieces:
                    self._put("piece", piece)
                    if self.stop.is_set():
                        break
            except OffgridError as exc:
                self._put("error", exc)
            except Exception as exc:  # a bug: the client gets a 500, the server goes on
                self._put("error", exc)
            finally:
                if pieces is not None:
                    close = getattr(pieces, "close", None)
                    if close is not None:
                        close()
                self.stats = self.served.engine.stats
                self._put("done", None)

    async def first(self) -> tuple[str, Any]:
        """The first event; an error before generation starts becomes an ApiError."""
        kind, value = await self.queue.get()
        if kind == "error":
            raise _api_error(value)
        return kind, value

    async def collect(self) -> str:
        parts = []
        async for piece in self._pieces(await self.first()):
            parts.append(piece)
        return "".join(parts)

    async def _pieces(self, first: tuple[str, Any]) -> AsyncIterator[str]:
        kind, value = first
        try:
            while kind != "done":
                if kind == "piece":
                    self.text.append(value)
                    yield value
                elif kind == "error":
                    raise _api_error(value)
                kind, value = await self.queue.get()
        finally:
            self.stop.set()  # the client left (or the reply ended): stop at the next token
        self._record()

    async def events(self, first: tuple[str, Any]) -> AsyncIterator[str]:
        try:
            async for piece in self._pieces(first):
                yield _sse(self._chunk(piece))
        except ApiError as exc:
            yield _sse({"error": {"message": exc.message, "type": exc.kind}})
            return
        yield _sse(self._chunk(None, finish=self._finish()))
        yield _sse({**self._chunk(None), "choices": [], "usage": self._usage()})
        yield "data: [DONE]\n\n"

    def _chunk(self, piece: str | None, finish: str | None = None) -> dict[str, Any]:
        if self.prompt is None:
            choice = {"index": 0, "delta": {"content": piece} if piece else {},
                      "finish_reason": finish}
            kind = "chat.completion.chunk"
        else:
            choice = {"index": 0, "text": piece or "", "logprobs": None, "finish_reason": finish}
            kind = "text_completion"
        return {"id": self.id, "object": kind, "created": self.created,
                "model": self.served.engine.model_name, "choices": [choice]}

    def completion(self, text: str) -> dict[str, Any]:
        if self.prompt is None:
            choice = {"index": 0, "message": {"role": "assistant", "content": text},
                      "finish_reason": self._finish()}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": self._finish()}
        return {"id": self.id, "created": self.created, "model": self.served.engine.model_name,
                "object": "chat.completion" if self.prompt is None else "text_completion",
                "choices": [choice], "usage": self._usage()}

    def _finish(self) -> str:
        return "length" if self.stats.finish_reason == "length" else "stop"

    def _usage(self) -> dict[str, int]:
        stats = self.stats
        return {"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
                "total_tokens": stats.prompt_tokens + stats.completion_tokens}

    def _record(self) -> None:
        history = self.served.history
        if history is None:
            return
        question = self.prompt if self.prompt is not None else next(
            (m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")
        history.record_run("serve", self.served.engine.model_name, question, "".join(self.text), meta={
            "messages": len(self.messages), "usage": self._usage()})


def _api_error(exc: Exception) -> ApiError:
    if isinstance(exc, OffgridError):
        return ApiError(400, exc.message + (f" ({exc.hint})" if exc.hint else ""))
    return ApiError(500, f"the engine failed: {type(exc).__name__}", kind="server_error")


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

"""An OpenAI-compatible server as the engine (`--server URL`): llama.cpp's llama-server,
Ollama, LM Studio, or another device's `offgrid serve`.

The one path in offgrid that uses the network for answers, and only when the user names a
server. It speaks the plain HTTP API (`/v1/models`, streaming `/v1/chat/completions`) with the
standard library, so it adds nothing to install on a phone. Token counts come from the
server's `usage` when it sends them; for planning (summarize's chunks) text is counted with the
server's llama.cpp-style `/tokenize` when it has one, else estimated on the safe side.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from offgrid.engines.base import GenerationSettings, GenerationStats, Message, VisionStats
from offgrid.engines.guard import RepetitionGuard
from offgrid.engines.loader import EngineOptions
from offgrid.errors import EngineError, NetworkError, UsageError

DEFAULT_TIMEOUT = 300.0  # seconds without a byte from the server (config general.server_timeout)
DEFAULT_SERVER_CTX = 4096  # when neither --ctx nor the server says
CHARS_PER_TOKEN = 3  # the estimate when the server cannot tokenize: over-counts, so chunks fit


class ServerClient:
    """JSON over HTTP to one server; every failure is a NetworkError or EngineError line."""

    def __init__(self, base_url: str, api_key: str | None = None,
                 timeout: float | None = None):
        url = base_url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--server needs an http:// or https:// URL, not {base_url!r}",
                             hint="offgrid chat --server http://127.0.0.1:8080/v1 \"…\"")
        self.base_url = url if url.endswith("/v1") else url + "/v1"
        self.api_key = api_key
        self.timeout = timeout or DEFAULT_TIMEOUT

    def get(self, path: str) -> Any:
        with self._open("GET", path) as response:
            return _json(response.read(), self.base_url + path)

    def post(self, path: str, body: dict[str, Any], *, root: bool = False) -> Any:
        with self._open("POST", path, body, root=root) as response:
            return _json(response.read(), self.base_url + path)

    def events(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The server-sent events of a streaming request, as JSON objects."""
        response = self._open("POST", path, body)
        try:
            for raw in response:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                yield _json(data.encode(), self.base_url + path)
        except (TimeoutError, socket.timeout):
            raise NetworkError(f"{self.base_url} stopped answering "
                               f"(no data for {self.timeout:g} s)") from None
        except OSError as exc:
            raise NetworkError(f"lost the connection to {self.base_url}: {exc}") from None
        finally:
            response.close()

    def _open(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              root: bool = False) -> Any:
        base = self.base_url[:-3] if root else self.base_url
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 (http only)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, base + path) from None
        except urllib.error.URLError as exc:
            reason = exc.reason.strerror if isinstance(exc.reason, OSError) and \
                exc.reason.strerror else exc.reason
            raise NetworkError(f"cannot reach {self.base_url}: {str(reason).lower()}",
                               hint="check the URL and that the server is running") from None
        except (TimeoutError, socket.timeout):
            raise NetworkError(f"cannot reach {self.base_url}: timed out after "
                               f"{self.timeout:g} s") from None


def _json(data: bytes, url: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise EngineError(f"{url} did not answer with JSON; is it an OpenAI-compatible "
                          "server?") from None


def _http_error(exc: urllib.error.HTTPError, url: str) -> Exception:
    try:
        message = json.loads(exc.read()).get("error", {})
        message = message.get("message") if isinstance(message, dict) else message
    except (ValueError, AttributeError, OSError):
        message = None
    if exc.code in (401, 403):
        return UsageError(f"{url} refused the API key ({exc.code})",
                          hint="pass the server's key with --api-key (or OFFGRID_API_KEY)")
    return EngineError(f"{url} answered {exc.code}: {message or exc.reason}")


class RemoteTextEngine:
    """A TextEngine whose model runs on a server."""

    def __init__(self, client: ServerClient, model_name: str, n_ctx: int):
        self.client, self.model_name = client, model_name
        self.n_ctx = self.n_ctx_max = n_ctx
        self.stats: GenerationStats = GenerationStats()
        self._can_tokenize = True

    def count_tokens(self, text: str) -> int:
        if self._can_tokenize:
            try:
                return len(self.client.post("/tokenize", {"content": text}, root=True)["tokens"])
            except (EngineError, KeyError, TypeError):
                self._can_tokenize = False  # not llama.cpp's API: estimate from now on
        return -(-len(text) // CHARS_PER_TOKEN)

    def count_chat_tokens(self, messages: list[Message], think: bool | None = None) -> int:
        return sum(self.count_tokens(_text_of(m["content"])) + 4 for m in messages) + 2

    def chat(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        body = request_body(self.model_name, self._messages(messages), settings)
        return self._stream(body)

    def _messages(self, messages: list[Message]) -> list[Message]:
        return messages

    def _stream(self, body: dict[str, Any]) -> Iterator[str]:
        stats = self.stats = self._new_stats()
        stats.finish_reason = "cancelled"
        started = time.perf_counter()
        first = 0.0
        guard = RepetitionGuard()
        try:
            for event in self.client.events("/chat/completions", body):
                usage = event.get("usage")
                if usage:
                    stats.prompt_tokens = stats.prompt_tokens_evaluated = usage.get("prompt_tokens", 0)
                    stats.completion_tokens = usage.get("completion_tokens", stats.completion_tokens)
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        first = first or time.perf_counter()
                        if not usage:
                            stats.completion_tokens += 1  # one event a token, until usage says
                        shown = guard.feed(piece)
                        if shown:
                            yield shown
                        if guard.tripped:  # closing the stream stops the server too
                            stats.finish_reason = "repetition"
                            return
                    if choice.get("finish_reason"):
                        stats.finish_reason = choice["finish_reason"]
            rest = guard.flush()
            if rest:
                yield rest
        finally:
            end = time.perf_counter()
            first = first or end
            stats.time_to_first_token = stats.prompt_seconds = first - started
            stats.generation_seconds = end - first

    def _new_stats(self) -> GenerationStats:
        return GenerationStats()

    def close(self) -> None:
        """Nothing to free: the model stays on the server."""


class RemoteVisionEngine(RemoteTextEngine):
    """A VisionEngine on a server: attached images go with the first user message as
    `image_url` content parts (data: URIs)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.images: list[Any] = []

    def attach(self, images: list[Any]) -> None:
        self.images = list(images)

    def _messages(self, messages: list[Message]) -> list[Message]:
        out, attached = [], False
        for message in messages:
            if message["role"] == "user" and not attached and self.images:
                parts = [{"type": "image_url", "image_url": {"url": image.data_uri()}}
                         for image in self.images]
                message = {"role": "user",
                           "content": parts + [{"type": "text", "text": message["content"]}]}
                attached = True
            out.append(message)
        return out

    def _new_stats(self) -> GenerationStats:
        return VisionStats()


def request_body(model: str, messages: list[Message], settings: GenerationSettings) -> dict[str, Any]:
    """A streaming chat-completions request for *settings* (llama.cpp's extra samplers and
    chat-template switches go along: servers that do not know them ignore them)."""
    body: dict[str, Any] = {
        "model": model, "messages": messages, "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": settings.temperature, "top_p": settings.top_p,
        "top_k": settings.top_k, "min_p": settings.min_p,
        "repeat_penalty": settings.repeat_penalty,
    }
    if settings.max_tokens:
        body["max_tokens"] = settings.max_tokens
    if settings.seed is not None:
        body["seed"] = settings.seed
    if settings.stop:
        body["stop"] = list(settings.stop)
    if settings.think is not None:
        body["chat_template_kwargs"] = {"enable_thinking": settings.think}
    return body


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def open_remote(task: str, spec: str | None, options: EngineOptions) -> RemoteTextEngine:
    """The engine for *task* on options.server: the model named by *spec* (default: the
    server's first), its context from --ctx or what the server reports."""
    if task not in ("text", "vision"):
        raise UsageError(f"--server runs text and vision models, not {task} models")
    client = ServerClient(options.server or "", options.api_key, options.timeout)
    listed = client.get("/models").get("data") or []
    names = [m.get("id") for m in listed if isinstance(m, dict) and m.get("id")]
    model = spec or (names[0] if names else None)
    if model is None:
        raise EngineError(f"{client.base_url} lists no models", hint="pass -m MODEL")
    info = next((m for m in listed if m.get("id") == model), {})
    n_ctx = options.ctx or _context_of(info) or DEFAULT_SERVER_CTX
    kind = RemoteVisionEngine if task == "vision" else RemoteTextEngine
    return kind(client, model, n_ctx)


def _context_of(info: dict[str, Any]) -> int | None:
    """The context length a /v1/models entry states (offgrid serve, LM Studio, llama-server)."""
    for value in (info.get("context_length"), info.get("max_context_length"),
                  (info.get("meta") or {}).get("n_ctx"), (info.get("meta") or {}).get("n_ctx_train")):
        if isinstance(value, int) and value > 0:
            return value
    return None

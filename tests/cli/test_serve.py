"""`offgrid serve` on 127.0.0.1 with the real llama.cpp engine, called by the official `openai`
client, and `--server` pointed at it (no network beyond loopback)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import ROOT

KEY = "test-key-0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`offgrid serve` in a subprocess; `.url` is its /v1 base once it listens."""

    def __init__(self, *args: str):
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "offgrid", "serve", "--port", str(self.port), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert self.proc.stderr is not None
        self.banner = self.proc.stderr.readline().decode()
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err.decode()


@pytest.fixture
def server(tiny_llama: Path) -> Iterator[Server]:
    running = Server("-m", str(tiny_llama), "--threads", "1", "--api-key", KEY)
    assert "serving" in running.banner, running.banner + running.proc.stderr.read().decode()
    yield running
    code, err = running.stop()
    assert code == 130 and err.strip() == "", err  # Ctrl-C: exit 130, nothing more


def client(server: Server, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0, timeout=60)


def ask(cli: openai.OpenAI, text: str = "hello", **kwargs):  # type: ignore[no-untyped-def]
    return cli.chat.completions.create(model="any", messages=[{"role": "user", "content": text}],
                                       max_tokens=8, temperature=0, **kwargs)


def test_banner_models_and_a_reply(server: Server, tiny_llama: Path) -> None:
    assert server.banner == f"serving {tiny_llama} on {server.url} · Ctrl-C stops\n"
    models = client(server).models.list().data
    assert [m.id for m in models] == [str(tiny_llama)]
    reply = ask(client(server))
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 8 and reply.usage.prompt_tokens > 5


def test_streaming_gives_the_same_text(server: Server) -> None:
    whole = ask(client(server)).choices[0].message.content
    stream = ask(client(server), stream=True, stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert "".join(pieces) == whole
    assert usage is not None and usage.completion_tokens > 0


def test_a_wrong_key_is_refused(server: Server) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        ask(client(server, key="wrong"))
    assert info.value.status_code == 401


def post(server: Server, data: bytes, path: str = "/chat/completions") -> tuple[int, dict]:
    request = urllib.request.Request(server.url + path, data=data, method="POST",
                                     headers={"Authorization": f"Bearer {KEY}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def declared_too_big(server: Server) -> int:
    """A request that announces a 17 MB body: the status, read before sending any of it."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Authorization", f"Bearer {KEY}")
    connection.putheader("Content-Length", str(17 << 20))
    connection.endheaders()
    try:
        return connection.getresponse().status
    finally:
        connection.close()


def test_bad_bodies_get_openai_errors(server: Server) -> None:
    status, body = post(server, b"{not json")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, body = post(server, json.dumps({"messages": [{"role": "robot"}]}).encode())
    assert status == 400 and "role" in body["error"]["message"]
    status, body = post(server, json.dumps({"messages": [{"role": "user", "content": "hi"}],
                                            "temperature": "hot"}).encode())
    assert status == 400 and "'temperature' must be a number" in body["error"]["message"]
    assert declared_too_big(server) == 413  # refused before a byte of the body is read
    assert ask(client(server)).choices[0].message.content  # and it still answers


def test_two_clients_at_once(server: Server) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(ask(client(server)).choices[0].message.content)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(results) == 3
    assert len(set(results)) == 1  # greedy: queued requests do not disturb each other


def test_chat_and_summarize_through_server(server: Server, offgrid, tiny_llama: Path) -> None:
    env = {"OFFGRID_API_KEY": KEY}
    local = offgrid("chat", "-m", str(tiny_llama), "hello", "-n", "8", "--temperature", "0",
                    "--no-save")
    remote = offgrid("chat", "--server", server.url, "hello", "-n", "8", "--temperature", "0",
                     env=env)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout and remote.stderr == ""
    again = offgrid("chat", "-c", "and then?", "-n", "4", "--json", env=env)  # same server
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["model"] == str(tiny_llama)
    summary = offgrid("summarize", "--server", server.url, "-", "--ask", "total?", "-n", "8",
                      "--json", input="Total due: 1,200 EUR.\n", env=env)
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["documents"][0]["chunks"] == 1


def test_no_key_from_the_cli_is_one_error(server: Server, offgrid) -> None:
    result = offgrid("chat", "--server", server.url, "hello")
    assert result.returncode == 2
    assert result.stderr.startswith(f"offgrid: error: {server.url}/models refused the API key")


def test_unreachable_server_is_one_line(offgrid) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = offgrid("chat", "--server", url, "hello")
    assert result.returncode == 1
    assert result.stderr == (f"offgrid: error: cannot reach {url}: connection refused\n"
                             "hint: check the URL and that the server is running\n")


def test_beyond_loopback_needs_a_key_and_warns(offgrid, tiny_llama: Path) -> None:
    refused = offgrid("serve", "-m", str(tiny_llama), "--host", "0.0.0.0")
    assert refused.returncode == 2
    assert refused.stderr.startswith("offgrid: error: listening on 0.0.0.0 lets other devices "
                                     "in, so it needs --api-key")
    running = Server("-m", str(tiny_llama), "--host", "0.0.0.0", "--api-key", KEY)
    try:
        assert running.banner.startswith("offgrid: warning: listening on 0.0.0.0")
    finally:
        running.stop()


def test_a_port_in_use_is_one_line(server: Server, offgrid, tiny_llama: Path) -> None:
    result = offgrid("serve", "-m", str(tiny_llama), "--port", str(server.port))
    assert result.returncode == 1
    assert result.stderr == (f"offgrid: error: cannot listen on 127.0.0.1:{server.port}: "
                             "address already in use\nhint: pick another --port\n")


def test_raw_text_completions(server: Server) -> None:
    cli = client(server)
    whole = cli.completions.create(model="any", prompt="Once upon a time", max_tokens=6,
                                   temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text
    assert 0 < whole.usage.completion_tokens <= 6
    pieces = [c.choices[0].text for c in cli.completions.create(
        model="any", prompt="Once upon a time", max_tokens=6, temperature=0, stream=True)
        if c.choices]
    assert "".join(pieces) == whole.choices[0].text
    status, body = post(server, json.dumps({"prompt": ["a", "b"]}).encode(), "/completions")
    assert status == 400 and "one prompt a request" in body["error"]["message"]


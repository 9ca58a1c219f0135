"""offgrid.api: the OpenAI-compatible app's request checks and its generation queue, with
the fake text engine (the HTTP side runs for real in tests/cli/test_serve.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from offgrid.api.app import ApiError, Generation, Served, parse_messages, parse_settings
from offgrid.engines.base import GenerationSettings
from tests.fakes import Calls, FakeTextEngine


def test_messages_and_settings_are_checked() -> None:
    assert parse_messages([{"role": "user", "content": [{"type": "text", "text": "hi"}]}]) == [
        {"role": "user", "content": "hi"}]
    for bad in (None, [], [{"role": "robot", "content": "x"}],
                [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]):
        with pytest.raises(ApiError) as info:
            parse_messages(bad)
        assert info.value.status == 400
    settings = parse_settings({"temperature": 0, "max_completion_tokens": 5, "stop": "END",
                               "chat_template_kwargs": {"enable_thinking": False}},
                              GenerationSettings())
    assert (settings.temperature, settings.max_tokens, settings.stop, settings.think) == (
        0, 5, ["END"], False)
    with pytest.raises(ApiError, match="'top_p' must be a number between 0.0 and 1.0"):
        parse_settings({"top_p": 3}, GenerationSettings())


def test_a_client_that_leaves_stops_the_generation_and_frees_the_engine() -> None:
    engine = FakeTextEngine(Calls(), "fake", n_ctx=100_000, reply=lambda m: "word " * 20_000)
    served = Served(engine, GenerationSettings())

    async def leave_after_three() -> None:
        reply = Generation(served, [{"role": "user", "content": "go"}], GenerationSettings())
        events = reply.events(await reply.first())
        for _ in range(3):
            await events.__anext__()
        await events.aclose()  # what Starlette does when the client disconnects

    asyncio.run(leave_after_three())
    deadline = time.monotonic() + 10
    while served.lock.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not served.lock.locked()
    assert engine.stats.completion_tokens < 1000  # stopped long before the 20,000 words

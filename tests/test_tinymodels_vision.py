"""The tiny LM + mmproj pair runs an image completion on the real llama-cpp-python mtmd handler."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.tinymodels.mmproj import write_tiny_llama, write_tiny_mmproj

llama_cpp = pytest.importorskip("llama_cpp")


def test_image_completion_runs_on_the_real_engine(tmp_path):
    from llama_cpp.llama_chat_format import MTMDChatHandler

    model = write_tiny_llama(tmp_path / "lm.gguf", n_embd=64)
    mmproj = write_tiny_mmproj(tmp_path / "mmproj.gguf", n_embd_text=64)
    buffer = io.BytesIO()
    Image.new("RGB", (50, 40), (255, 0, 0)).save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    handler = MTMDChatHandler(clip_model_path=str(mmproj), verbose=False)
    llm = llama_cpp.Llama(model_path=str(model), chat_handler=handler, n_ctx=256, n_threads=1, verbose=False)
    try:
        text_only = len(llm.tokenize(b"<|user|>\nwhat is it?\n<|assistant|>\n"))
        result = llm.create_chat_completion(
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": uri}},
                {"type": "text", "text": "what is it?"},
            ]}],
            max_tokens=4,
            temperature=0.0,
        )
    finally:
        llm.close()
    assert handler.mtmd_ctx is None  # freed by close()
    assert result["usage"]["completion_tokens"] >= 1
    # (32 / 8)^2 = 16 image tokens went into the context besides the text
    assert result["usage"]["prompt_tokens"] >= text_only + 16

"""The vision adapter on the real llama-cpp-python engine, with tiny generated models."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from offgrid.engines.base import GenerationSettings
from offgrid.errors import ModelFileError
from offgrid.inputs.images import PreparedImage, prepare_image
from offgrid.models import store
from offgrid.models.validate_vision import check_vision_files
from tests.tinymodels.mmproj import VisionModels, write_tiny_mmproj

pytest.importorskip("llama_cpp")

SETTINGS = GenerationSettings(temperature=0.0, max_tokens=4)
IMAGE_TOKENS = 16  # (32 px / 8 px patches)^2


def picture(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> PreparedImage:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return prepare_image(buffer.getvalue(), f"{colour}.png")


@pytest.fixture
def engine(vision_models: VisionModels):
    from offgrid.engines.llama_vision import LlamaVisionEngine

    loaded = LlamaVisionEngine(vision_models.model, vision_models.mmproj, n_ctx=512, n_threads=1)
    yield loaded
    loaded.close()


def ask(engine, messages) -> str:  # type: ignore[no-untyped-def]
    return "".join(engine.chat(messages, SETTINGS))


def test_the_binding_handler_runs_the_tiny_pair(vision_models: VisionModels) -> None:
    """The generated pair is a real llama.cpp vision model, not just something we accept."""
    import llama_cpp
    from llama_cpp.llama_chat_format import MTMDChatHandler

    uri = "data:image/png;base64," + base64.b64encode(picture((255, 0, 0)).data).decode()
    handler = MTMDChatHandler(clip_model_path=str(vision_models.mmproj), verbose=False)
    llm = llama_cpp.Llama(model_path=str(vision_models.model), chat_handler=handler, n_ctx=256,
                          n_threads=1, verbose=False)
    try:
        result = llm.create_chat_completion(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": "what?"}]}],
            max_tokens=4, temperature=0.0)
    finally:
        llm.close()
    assert handler.mtmd_ctx is None  # close() freed the mtmd context too
    assert result["usage"]["prompt_tokens"] > IMAGE_TOKENS


def test_follow_ups_do_not_encode_the_image_again(engine) -> None:  # type: ignore[no-untyped-def]
    engine.attach([picture((255, 0, 0))])
    messages = [{"role": "user", "content": "what colour is it?"}]
    first = ask(engine, messages)
    stats = engine.stats
    assert stats.images_encoded == 1 and stats.image_seconds > 0
    assert stats.prompt_tokens == engine.count_chat_tokens(messages) > IMAGE_TOKENS
    assert stats.prompt_tokens_evaluated == stats.prompt_tokens
    assert stats.completion_tokens >= 1

    messages += [{"role": "assistant", "content": first}, {"role": "user", "content": "sure?"}]
    ask(engine, messages)
    again = engine.stats
    assert again.images_encoded == 0 and again.image_seconds == 0
    assert again.prompt_tokens == engine.count_chat_tokens(messages)
    assert again.prompt_tokens_evaluated < again.prompt_tokens - IMAGE_TOKENS


def test_several_images_each_take_their_tokens(engine) -> None:  # type: ignore[no-untyped-def]
    engine.attach([picture((255, 0, 0)), picture((0, 0, 255), (64, 64))])
    messages = [{"role": "user", "content": "compare them"}]
    ask(engine, messages)
    assert engine.stats.images_encoded == 2
    assert engine.stats.prompt_tokens >= 2 * IMAGE_TOKENS


def test_a_new_image_is_encoded_and_replaces_the_old(engine) -> None:  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": "what is it?"}]
    engine.attach([picture((255, 0, 0))])
    ask(engine, messages)
    engine.attach([picture((0, 255, 0))])
    ask(engine, messages)
    assert engine.stats.images_encoded == 1
    engine.attach([])
    ask(engine, messages)  # text only works too
    assert engine.stats.images_encoded == 0
    assert engine.stats.prompt_tokens == engine.count_chat_tokens(messages) < IMAGE_TOKENS + 5 + len(messages[0]["content"])


def test_too_many_images_for_the_context(vision_models: VisionModels) -> None:
    from offgrid.errors import ContextOverflowError
    from offgrid.engines.llama_vision import LlamaVisionEngine

    engine = LlamaVisionEngine(vision_models.model, vision_models.mmproj, n_ctx=256, n_threads=1)
    try:
        engine.attach([picture((i, 0, 0)) for i in range(20)])
        with pytest.raises(ContextOverflowError, match="context window holds 256"):
            ask(engine, [{"role": "user", "content": "and these?"}])
    finally:
        engine.close()


def test_mtmd_load_failure_is_one_clear_line(vision_models: VisionModels) -> None:
    """Skipping our checks, libmtmd itself refuses a narrow projector; we keep its reason."""
    from offgrid.engines.llama_vision import LlamaVisionEngine

    with pytest.raises(ModelFileError) as caught:
        LlamaVisionEngine(vision_models.model, vision_models.narrow, n_ctx=256, n_threads=1)
    assert "could not load the vision projector narrow.gguf" in caught.value.message
    assert "n_embd = 48" in caught.value.message and "\n" not in caught.value.message


def test_file_checks_catch_what_llama_cpp_would_not(vision_models: VisionModels) -> None:
    check_vision_files(vision_models.model, vision_models.mmproj)
    with pytest.raises(ModelFileError, match="narrow.gguf does not match tiny-vlm.gguf"):
        check_vision_files(vision_models.model, vision_models.narrow)
    with pytest.raises(ModelFileError, match="cut.gguf .*truncated"):
        check_vision_files(vision_models.model, vision_models.cut_tail)
    with pytest.raises(ModelFileError, match="image_size is int32, expected uint32"):
        check_vision_files(vision_models.model, vision_models.bad_type)
    with pytest.raises(ModelFileError, match="is a vision projector"):
        check_vision_files(vision_models.mmproj, vision_models.mmproj)


# --- pairing a local model with its mmproj -------------------------------------------------------


def test_pairing_finds_the_mmproj_beside_the_model(vision_models: VisionModels) -> None:
    paired = store.pair_mmproj(store.resolve(str(vision_models.model), "vision"), None)
    assert paired.files == {"model": vision_models.model, "mmproj": vision_models.mmproj}


def test_pairing_skips_an_mmproj_that_does_not_fit(vision_models: VisionModels, tmp_path: Path) -> None:
    model = Path(shutil.copy(vision_models.model, tmp_path / "m.gguf"))
    write_tiny_mmproj(tmp_path / "mmproj-a-narrow.gguf", n_embd_text=48)
    good = Path(shutil.copy(vision_models.mmproj, tmp_path / "MMPROJ-b.gguf"))
    assert store.pair_mmproj(store.resolve(str(model), "vision"), None).files["mmproj"] == good
    good.unlink()
    with pytest.raises(ModelFileError, match="does not match m.gguf"):
        store.pair_mmproj(store.resolve(str(model), "vision"), None)


def test_pairing_without_any_mmproj(vision_models: VisionModels) -> None:
    with pytest.raises(ModelFileError, match="tiny-text.gguf has no vision projector") as caught:
        store.pair_mmproj(store.resolve(str(vision_models.text_only), "vision"), None)
    assert "--mmproj" in caught.value.hint
    with pytest.raises(ModelFileError, match="mmproj file not found: nope.gguf"):
        store.pair_mmproj(store.resolve(str(vision_models.text_only), "vision"), "nope.gguf")


def test_closing_the_engine_before_an_abandoned_stream_is_quiet(engine) -> None:  # type: ignore[no-untyped-def]
    """`offgrid see … | head -c 5`: the engine is closed before the half-read stream is
    finalized; that must not raise (it printed a traceback)."""
    engine.attach([picture((0, 0, 255))])
    stream = engine.chat([{"role": "user", "content": "what?"}], SETTINGS)
    next(stream)
    engine.close()
    stream.close()

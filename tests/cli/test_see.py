"""`offgrid see` through the CLI, on the real llama.cpp engine with a tiny generated model and
mmproj (tests/tinymodels/mmproj.py) and Pillow-generated images."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from PIL import Image

from offgrid.history import History
from tests.tinymodels.mmproj import VisionModels

IMAGE_TOKENS = 16


def png(colour=(255, 0, 0), size=(48, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    path.write_bytes(png())
    return path


@pytest.fixture
def see(offgrid, vision_models: VisionModels):  # type: ignore[no-untyped-def]
    """Run `offgrid see ARGS -m <tiny model> -n 4 --threads 1` (the mmproj is paired beside it)."""
    def run(*args: str, model: Path | None = None, **kwargs):  # type: ignore[no-untyped-def]
        return offgrid("see", *args, "-m", str(model or vision_models.model), "-n", "4",
                       "--threads", "1", **kwargs)
    return run


def saved_user_messages() -> list[str]:
    record = History().list(command="see")[0]
    return [m["content"] for m in History().get(record.id).messages if m["role"] == "user"]


def test_question_about_an_image(see, photo: Path) -> None:
    result = see(str(photo), "what colour is it?")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and result.stderr == ""
    assert saved_user_messages() == ["what colour is it?"]


def test_no_question_describes_the_image(see, photo: Path) -> None:
    assert see(str(photo)).returncode == 0
    assert saved_user_messages() == ["Describe this image in detail."]


def test_prompt_option_makes_every_argument_an_image(see, photo: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.png"
    second.write_bytes(png((0, 0, 255)))
    result = see(str(photo), str(second), "-p", "which is bluer?", "--json", "--stats")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["images"] == [str(photo), str(second)]
    assert data["prompt_tokens"] >= 2 * IMAGE_TOKENS
    assert data["timings"]["images_encoded"] == 2
    assert "2 images encoded in" in result.stderr


def test_json_shape(see, photo: Path) -> None:
    data = json.loads(see(str(photo), "what is it?", "--json").stdout)
    assert set(data) >= {"text", "model", "images", "finish_reason", "conversation_id",
                         "prompt_tokens", "completion_tokens", "timings"}
    assert data["prompt_tokens"] > IMAGE_TOKENS and 0 < data["completion_tokens"] <= 5


def test_image_from_stdin(see) -> None:
    result = see("-", "what is it?", "--json", input=png((0, 255, 0), (2000, 1000)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == ["<stdin>"]


def test_pdf_page_input(see, tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    Image.new("RGB", (60, 80), "white").save(pdf, format="PDF", save_all=True,
                                             append_images=[Image.new("RGB", (80, 60), "red")])
    result = see(str(pdf), "--page", "2", "total amount?", "--json",
                 env={"PATH": os.path.dirname(sys.executable)})  # no pdftoppm: embedded image
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == ["scan.pdf page 2"]
    missing = see(str(pdf), "--page", "3", "total?")
    assert missing.returncode == 1 and "scan.pdf has 2 pages; page 3 does not exist" in missing.stderr


def test_extract_json_shape(see, photo: Path) -> None:
    result = see(str(photo), "--extract", "total, due date; late penalty", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data["fields"]) == ["total", "due date", "late penalty"]
    assert all(isinstance(v, str) and v for v in data["fields"].values())
    assert data["images"] == [str(photo)]
    assert "Task: extract these fields from the image" in saved_user_messages()[0]


def test_extract_plain_lines(see, photo: Path) -> None:
    result = see(str(photo), "--extract", "total, due date")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["total", "due date"]


def test_chat_keeps_the_image_and_reads_follow_ups(see, photo: Path) -> None:
    result = see(str(photo), "first question?", "--chat",
                 input="second question?\n/stats\nthird?\n/exit\n")
    assert result.returncode == 0, result.stderr
    assert saved_user_messages() == ["first question?", "second question?", "third?"]
    stats_line = [line for line in result.stderr.splitlines() if line.startswith("prompt ")]
    assert stats_line and "image" not in stats_line[-1], result.stderr  # not encoded again


def test_camera_photo(see, tmp_path: Path) -> None:
    tool = tmp_path / "termux-camera-photo"
    tool.write_text(f"#!{sys.executable}\nimport sys\nfrom PIL import Image\n"
                    "Image.new('RGB', (64, 48), 'red').save(sys.argv[-1], format='JPEG')\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    result = see("--camera", "what is this?", "--json",
                 env={"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == ["camera 0"]
    assert saved_user_messages() == ["what is this?"]


def test_explicit_mmproj(see, photo: Path, vision_models: VisionModels) -> None:
    result = see(str(photo), "q?", "--mmproj", str(vision_models.mmproj), model=vision_models.text_only)
    assert result.returncode == 0, result.stderr


# --- errors: one line, non-zero exit ---------------------------------------------------------------


def one_line_error(result, text: str, code: int = 1) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("offgrid: error: ") and text in lines[0], result.stderr
    assert len(lines) <= 2 and all(line.startswith("hint: ") for line in lines[1:])
    assert result.stdout == ""


def test_missing_image(see, tmp_path: Path) -> None:
    one_line_error(see(str(tmp_path / "nope.jpg"), "q?"), "image not found")
    one_line_error(see(str(tmp_path / "nope.jpg")), "image not found")


def test_not_an_image(see, tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not pixels")
    one_line_error(see(str(fake), "q?"), "notes.png is not an image")


def test_truncated_image(see, tmp_path: Path) -> None:
    data = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(data, format="JPEG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data.getvalue()[:900])
    one_line_error(see(str(cut), "q?"), "cut.jpg is a damaged or truncated image")


def test_model_without_its_mmproj(see, photo: Path, vision_models: VisionModels) -> None:
    one_line_error(see(str(photo), "q?", model=vision_models.text_only),
                   "tiny-text.gguf has no vision projector (mmproj)")


def test_mmproj_that_does_not_match(see, photo: Path, vision_models: VisionModels) -> None:
    one_line_error(see(str(photo), "q?", "--mmproj", str(vision_models.narrow)),
                   "narrow.gguf does not match tiny-vlm.gguf")


def test_truncated_and_corrupt_mmproj(see, photo: Path, vision_models: VisionModels) -> None:
    one_line_error(see(str(photo), "q?", "--mmproj", str(vision_models.cut_tail)), "truncated")
    result = see(str(photo), "q?", "--mmproj", str(vision_models.bad_type))
    one_line_error(result, "clip.vision.image_size is int32, expected uint32")  # no abort (134)


def test_mmproj_given_as_the_model(see, photo: Path, vision_models: VisionModels) -> None:
    one_line_error(see(str(photo), "q?", model=vision_models.mmproj), "is a vision projector")


def test_text_model_from_the_catalog(offgrid, photo: Path) -> None:
    one_line_error(offgrid("see", str(photo), "q?", "-m", "qwen3-0.6b"),
                   "qwen3-0.6b is a text model, not a vision model", code=2)


@pytest.mark.parametrize(("args", "message"), [
    ((), "no image given"),
    (("PHOTO", "--page", "2"), "--page applies to a PDF input"),
    (("PHOTO", "q?", "--extract", "total"), "either a question or --extract"),
    (("PHOTO", "--chat", "--json"), "--chat cannot be combined"),
    (("-", "-", "q?"), "stdin (`-`) can be read only once"),
    (("PHOTO", "   "), "the question is empty"),
    (("PHOTO", "--extract", " , "), "--extract needs at least one field"),
])
def test_usage_errors(offgrid, photo: Path, args, message) -> None:  # type: ignore[no-untyped-def]
    args = tuple(str(photo) if a == "PHOTO" else a for a in args)
    one_line_error(offgrid("see", *args), message, code=2)


def test_config_speed_keys_are_honoured(see, offgrid, photo: Path) -> None:
    """`config set see.kv_cache …` (a key the config accepts) reaches the engine."""
    assert offgrid("config", "set", "see.kv_cache", "q5_9").returncode == 0
    refused = see(str(photo), "what?")
    assert refused.returncode == 2 and "unknown KV-cache type 'q5_9'" in refused.stderr
    assert offgrid("config", "set", "see.batch", "64").returncode == 0
    assert offgrid("config", "set", "see.kv_cache", "q8_0").returncode == 0
    result = see(str(photo), "what?")
    assert result.returncode == 0, result.stderr


def test_a_misspelt_image_name_is_not_taken_as_the_question(see, photo: Path) -> None:
    """`see photo.png phot.png` described photo.png, answering the "question" phot.png."""
    result = see(str(photo), str(photo.with_name("phot.png")))
    assert result.returncode == 1
    assert "image not found" in result.stderr and "phot.png" in result.stderr
    asked = see(str(photo), "what is in photo.png?")  # a question may name a file
    assert asked.returncode == 0, asked.stderr

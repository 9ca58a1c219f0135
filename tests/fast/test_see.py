"""`offgrid see` in-process with the fake vision engine ("I see N image(s). Answer N: …"):
images from files, stdin, PDFs and the camera; questions, --extract, --chat; errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.fast.helpers import hint, one_line_error, png_bytes, saved, write_png


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_png(tmp_path / "photo.png")


@pytest.fixture
def run(cli, fake_model: Path):  # type: ignore[no-untyped-def]
    def see(*args: str, **kwargs):  # type: ignore[no-untyped-def]
        return cli("see", *args, "-m", str(fake_model), **kwargs)
    return see


def user_messages(record) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["content"] for m in record.messages if m["role"] == "user"]


def test_question_about_an_image(run, photo: Path, fake_engines) -> None:
    result = run(str(photo), "what colour is it?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "I see 1 image(s). Answer 1: what colour is it?\n"
    assert result.stderr == ""
    task, _, _ = fake_engines.calls.loads[0]
    assert task == "vision"
    (attached,) = fake_engines.calls.images
    assert [(p.source, p.width, p.height) for p in attached] == [(str(photo), 48, 32)]
    settings = fake_engines.calls.settings[0]
    assert (settings.temperature, settings.max_tokens) == (0.2, 512)  # see's defaults
    (record,) = saved("see")
    assert user_messages(record) == ["what colour is it?"]
    assert record.meta["images"] == [str(photo)]


def test_no_question_describes_the_image(run, photo: Path) -> None:
    assert run(str(photo)).stdout == "I see 1 image(s). Answer 1: Describe this image in detail.\n"


def test_prompt_option_makes_every_argument_an_image(run, photo: Path, tmp_path: Path) -> None:
    second = write_png(tmp_path / "second.png", (0, 0, 255))
    result = run(str(photo), str(second), "-p", "which is bluer?", "--json", "--stats")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["text"] == "I see 2 image(s). Answer 1: which is bluer?"
    assert data["images"] == [str(photo), str(second)]
    assert data["timings"]["images_encoded"] == 2
    assert re.match(r"2 images encoded in [\d.]+ s · prompt ", result.stderr), result.stderr


def test_json_shape(run, photo: Path) -> None:
    data = json.loads(run(str(photo), "what is it?", "--json").stdout)
    assert set(data) == {"text", "model", "images", "finish_reason", "conversation_id",
                         "prompt_tokens", "completion_tokens", "timings"}
    assert data["finish_reason"] == "stop" and data["completion_tokens"] == 9
    assert data["conversation_id"] == saved("see")[0].id


def test_image_from_stdin_is_downscaled(run, fake_engines) -> None:
    result = run("-", "what is it?", "--json", "--max-side", "100",
                 input=png_bytes((0, 255, 0), (400, 200)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == ["<stdin>"]
    (image,) = fake_engines.calls.images[0]
    assert (image.width, image.height) == (100, 50)


def test_pdf_page(run, tmp_path: Path, fake_engines, bare_path) -> None:
    pdf = tmp_path / "scan.pdf"
    Image.new("RGB", (60, 80), "white").save(pdf, format="PDF", save_all=True,
                                             append_images=[Image.new("RGB", (80, 60), "red")])
    result = run(str(pdf), "--page", "2", "total amount?", "--json")  # no pdftoppm on PATH
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == ["scan.pdf page 2"]
    (image,) = fake_engines.calls.images[0]
    assert (image.width, image.height) == (80, 60)
    one_line_error(run(str(pdf), "--page", "3", "total?"),
                   "scan.pdf has 2 pages; page 3 does not exist")


def test_extract_fields(run, photo: Path, fake_engines) -> None:
    fake_engines.reply = lambda messages: '{"total": "40 EUR", "due date": "3 May"}'
    plain = run(str(photo), "--extract", "total, due date")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == "total: 40 EUR\ndue date: 3 May\n"
    data = json.loads(run(str(photo), "-e", "total, due date; late fee", "--json").stdout)
    assert data["fields"] == {"total": "40 EUR", "due date": "3 May", "late fee": "Not mentioned"}
    assert data["images"] == [str(photo)]
    system, task = fake_engines.calls.prompts[1]
    assert system["role"] == "system" and "Never add outside knowledge" in system["content"]
    assert task["content"].startswith("Task: extract these fields from the image.")
    assert fake_engines.calls.settings[0].temperature == 0.0  # copy values, don't invent them


def test_flags_reach_the_engine(run, photo: Path, fake_engines) -> None:
    result = run(str(photo), "q?", "--temperature", "0.5", "-n", "3", "--ctx", "2048",
                 "--threads", "2", "--seed", "4", "-s", "be terse", "--mmproj", str(photo))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "I see 1\n"  # three tokens
    settings = fake_engines.calls.settings[0]
    assert (settings.temperature, settings.max_tokens, settings.seed) == (0.5, 3, 4)
    options = fake_engines.calls.loads[0][2]
    assert (options.ctx, options.threads, options.mmproj) == (2048, 2, str(photo))
    assert fake_engines.calls.prompts[0][0] == {"role": "system", "content": "be terse"}


def test_chat_keeps_the_image_and_reads_follow_ups(run, photo: Path, fake_engines) -> None:
    result = run(str(photo), "first question?", "--chat",
                 input="second question?\n/stats\nthird?\n/exit\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("I see 1 image(s). Answer 1: first question?\n"
                             "I see 1 image(s). Answer 2: second question?\n"
                             "I see 1 image(s). Answer 3: third?\n")
    assert len(fake_engines.calls.images) == 1  # attached once for the whole chat
    assert [m["role"] for m in fake_engines.calls.prompts[2]] == ["user", "assistant"] * 2 + ["user"]
    assert user_messages(saved("see")[0]) == ["first question?", "second question?", "third?"]


def test_no_save_keeps_nothing(run, cli, photo: Path) -> None:
    assert run(str(photo), "q?", "--no-save").returncode == 0
    assert run(str(photo), "q?", "--chat", "--no-save", input="more?\n").returncode == 0
    assert cli("config", "set", "history.enabled", "false").returncode == 0
    assert run(str(photo), "q?").returncode == 0
    assert saved() == []


def test_camera_photo(run, phone) -> None:
    phone.add("termux-camera-photo",
              action=f"open(args[-1], 'wb').write({png_bytes((9, 9, 9), (64, 48))!r})")
    result = run("--camera", "what is this?", "--json", "--camera-id", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == ["camera 1"]
    (call,) = phone.calls("termux-camera-photo")
    assert call["args"][:2] == ["-c", "1"]
    assert user_messages(saved("see")[0]) == ["what is this?"]


def test_camera_that_returns_nothing(run, phone) -> None:
    phone.add("termux-camera-photo")
    result = run("--camera", "what is this?")
    one_line_error(result, "camera 0 returned no picture")
    assert "--camera-id 1" in hint(result)


def test_config_defaults(cli, tmp_path: Path, fake_model: Path, fake_engines) -> None:
    photo = write_png(tmp_path / "wide.png", size=(200, 100))
    for key, value in (("see.model", str(fake_model)), ("see.max_tokens", "64"),
                       ("see.max_side", "64")):
        assert cli("config", "set", key, value).returncode == 0
    assert cli("see", str(photo), "q?").returncode == 0
    assert fake_engines.calls.loads[0][1].path == fake_model
    assert fake_engines.calls.settings[0].max_tokens == 64
    (image,) = fake_engines.calls.images[0]
    assert (image.width, image.height) == (64, 32)


# --- errors -----------------------------------------------------------------------------


def test_missing_and_unreadable_images(run, tmp_path: Path, fake_engines) -> None:
    one_line_error(run(str(tmp_path / "nope.jpg"), "q?"), f"image not found: {tmp_path / 'nope.jpg'}")
    one_line_error(run(str(tmp_path / "nope.jpg")), "image not found")
    fake = tmp_path / "notes.png"
    fake.write_text("not pixels")
    one_line_error(run(str(fake), "q?"), "notes.png is not an image")
    assert fake_engines.calls.loads == []


def test_a_misspelt_image_name_is_not_taken_as_the_question(run, photo: Path) -> None:
    one_line_error(run(str(photo), str(photo.with_name("phot.png"))),
                   f"image not found: {photo.with_name('phot.png')}")
    asked = run(str(photo), "what is in photo.png?")  # a question may name a file
    assert asked.stdout == "I see 1 image(s). Answer 1: what is in photo.png?\n"


def test_a_pdf_on_stdin_needs_its_file_name(run, tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    Image.new("RGB", (60, 80), "white").save(pdf, format="PDF")
    one_line_error(run("-", "q?", input=pdf.read_bytes()),
                   "<stdin> is a PDF: give its file name (with --page N), not stdin")
    one_line_error(run("-", "q?", input=b"garbage"), "<stdin> is not an image")
    one_line_error(run("-", "q?"), "no image on stdin")


def test_bad_models(cli, photo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.bad"
    bad.write_bytes(b"junk")
    one_line_error(cli("see", str(photo), "q?", "-m", str(bad)),
                   "broken.bad is not a GGUF file (bad magic)")
    wrong = cli("see", str(photo), "q?", "-m", "qwen3-0.6b")
    one_line_error(wrong, "qwen3-0.6b is a text model, not a vision model", code=2)
    assert hint(wrong) == "see `offgrid models list --task vision`"
    not_cached = cli("see", str(photo), "q?")
    one_line_error(not_cached, "is not downloaded")
    assert hint(not_cached).startswith("offgrid models pull ")


@pytest.mark.parametrize(("args", "message"), [
    ((), "no image given"),
    (("PHOTO", "--page", "2"), "--page applies to a PDF input"),
    (("PHOTO", "q?", "--extract", "total"), "give either a question or --extract, not both"),
    (("PHOTO", "--chat", "--json"), "--chat cannot be combined with --extract or --json"),
    (("-", "--chat"), "--chat reads your questions from the terminal"),
    (("-", "-", "q?"), "stdin (`-`) can be read only once"),
    (("PHOTO", "   "), "the question is empty"),
    (("PHOTO", "--extract", " , "), "--extract needs at least one field"),
    (("PHOTO", "--max-side", "10"), "Invalid value for '--max-side'"),
])
def test_usage_errors(run, photo: Path, fake_engines, args, message) -> None:
    args = tuple(str(photo) if a == "PHOTO" else a for a in args)
    one_line_error(run(*args), message, code=2)
    assert fake_engines.calls.loads == []

"""`offgrid imagine` in-process with the fake image engine (one flat colour per seed, sizes
in multiples of 16): file names, PNG metadata, --from-png, --count, errors, history."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from offgrid.outputs.pictures import PNG_METADATA_KEY, PNG_PARAMETERS_KEY
from tests.fast.helpers import files_in, hint, one_line_error, saved, write_png

FAST = ("--size", "64x64", "--steps", "2")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def run(cli, fake_model: Path, work: Path):  # type: ignore[no-untyped-def]
    """imagine with the fake model, run in the `work` folder."""
    def imagine(*args: str, **kwargs):  # type: ignore[no-untyped-def]
        return cli("imagine", *args, "-m", str(fake_model), cwd=work, **kwargs)
    return imagine


def stored_params(path: Path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.text[PNG_METADATA_KEY])


def colour(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as image:
        return image.convert("RGB").getpixel((0, 0))


def test_writes_a_png_named_from_prompt_and_seed(run, work: Path, fake_engines) -> None:
    result = run("A red fox, at dawn!", *FAST, "--seed", "42")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a-red-fox-at-dawn-42.png\n"
    assert re.fullmatch(r"seed 42 · 64x64 · 2 steps · [\d.]+ s/step · [\d.]+ s\n", result.stderr)
    with Image.open(work / "a-red-fox-at-dawn-42.png") as image:
        assert image.format == "PNG" and image.size == (64, 64)
    assert colour(work / "a-red-fox-at-dawn-42.png") == (42, 64, 128)
    (picture,) = fake_engines.calls.pictures
    assert (picture.prompt, picture.seed, picture.steps, picture.width, picture.height) == (
        "A red fox, at dawn!", 42, 2, 64, 64)
    assert fake_engines.calls.loads[0][0] == "image"


def test_default_name_never_overwrites(run, work: Path) -> None:
    first = run("fox", *FAST, "--seed", "3", "--no-save")
    second = run("fox", *FAST, "--seed", "3", "--no-save")
    assert (first.stdout, second.stdout) == ("fox-3.png\n", "fox-3-2.png\n")
    assert files_in(work) == ["fox-3-2.png", "fox-3.png"]


def test_defaults_without_size_or_steps(run, fake_engines) -> None:
    result = run("a kite", "--seed", "1")
    assert result.returncode == 0, result.stderr
    (picture,) = fake_engines.calls.pictures
    assert (picture.width, picture.height, picture.steps, picture.cfg_scale, picture.sampler) == (
        512, 512, 20, 7.0, "euler")  # built-ins, and the engine's default sampler


def test_png_carries_every_parameter(run, work: Path, fake_model: Path) -> None:
    result = run("a lighthouse", *FAST, "--negative", "fog", "--seed", "9", "--sampler", "heun",
                 "--cfg-scale", "1.5", "-o", "light.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "light.png\n"
    assert stored_params(work / "light.png") == {
        "prompt": "a lighthouse", "negative": "fog", "steps": 2, "cfg_scale": 1.5,
        "sampler": "heun", "width": 64, "height": 64, "seed": 9, "init": None, "model": None,
        "files": {"model": str(fake_model)}}
    with Image.open(work / "light.png") as image:
        summary = image.text[PNG_PARAMETERS_KEY]
    assert summary == ("a lighthouse\nNegative prompt: fog\nSteps: 2, Sampler: heun, CFG scale: "
                       "1.5, Seed: 9, Size: 64x64, Model: fake-model.gguf")


def test_width_and_height_flags(run, fake_engines) -> None:
    assert run("x", "--width", "96", "--height", "48", "--steps", "1").returncode == 0
    (picture,) = fake_engines.calls.pictures
    assert (picture.width, picture.height) == (96, 48)


def test_from_png_makes_the_same_picture_again(run, work: Path, fake_engines) -> None:
    first = run("a quiet harbour", *FAST, "--negative", "fog", "--json")
    made = json.loads(first.stdout)["images"][0]
    again = run("--from-png", made["path"], "-o", "again.png")
    assert again.returncode == 0, again.stderr
    assert stored_params(work / "again.png") == stored_params(work / made["path"])
    assert colour(work / "again.png") == colour(work / made["path"])
    other = run("--from-png", made["path"], "--seed", str(made["seed"] + 1), "--steps", "3",
                "-o", "other.png")
    assert other.returncode == 0, other.stderr
    params = stored_params(work / "other.png")
    assert (params["seed"], params["steps"], params["negative"]) == (made["seed"] + 1, 3, "fog")


def test_count_makes_one_picture_per_seed(run, work: Path) -> None:
    result = run("three moons", *FAST, "--seed", "10", "--count", "3", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [image["seed"] for image in data["images"]] == [10, 11, 12]
    assert [image["path"] for image in data["images"]] == [
        "three-moons-10.png", "three-moons-11.png", "three-moons-12.png"]
    assert data["parameters"]["seed"] == 10 and data["model"] == "fake-model.gguf"
    assert set(data["timings"]) >= {"load_seconds", "seconds_per_step", "total_seconds"}
    assert result.stderr == ""  # --json: nothing else
    assert [colour(work / image["path"])[0] for image in data["images"]] == [10, 11, 12]
    numbered = run("moons", *FAST, "--count", "2", "-o", "set.png", "--no-save")
    assert numbered.stdout == "set-1.png\nset-2.png\n"


def test_image_to_image(run, work: Path, fake_engines) -> None:
    write_png(work / "cat.png", size=(64, 64))
    result = run("a cat in the snow", *FAST, "--init", "cat.png", "--strength", "0.5",
                 "-o", "snow.png")
    assert result.returncode == 0, result.stderr
    params = stored_params(work / "snow.png")
    assert params["init"] == str((work / "cat.png").resolve()) and params["strength"] == 0.5
    assert fake_engines.calls.pictures[0].init == str((work / "cat.png").resolve())


def test_history_records_the_run_unless_no_save(run, cli, work: Path) -> None:
    assert run("a kite", *FAST, "--seed", "1").returncode == 0
    (record,) = saved("imagine")
    assert record.title == "a kite"
    assert record.meta["parameters"]["seed"] == 1 and record.meta["count"] == 1
    assert record.messages[1]["content"] == "a-kite-1.png"
    assert run("a kite", *FAST, "--no-save").returncode == 0
    assert cli("config", "set", "history.enabled", "false").returncode == 0
    assert run("a kite", *FAST).returncode == 0
    assert len(saved()) == 1


def test_config_defaults(cli, work: Path, fake_model: Path, fake_engines) -> None:
    for key, value in (("imagine.model", str(fake_model)), ("imagine.steps", "3"),
                       ("imagine.cfg_scale", "2.5"), ("imagine.sampler", "lcm"),
                       ("imagine.threads", "2")):
        assert cli("config", "set", key, value).returncode == 0
    result = cli("imagine", "x", "--size", "64x64", cwd=work)
    assert result.returncode == 0, result.stderr
    (picture,) = fake_engines.calls.pictures
    assert (picture.steps, picture.cfg_scale, picture.sampler) == (3, 2.5, "lcm")
    assert fake_engines.calls.loads[0][2].threads == 2
    assert fake_engines.calls.loads[0][1].files == {"model": fake_model}


def test_open_shows_the_picture(run, work: Path, bare_path) -> None:
    bare_path.add("xdg-open")
    result = run("a boat", *FAST, "--seed", "2", "--open", "--no-save")
    assert result.returncode == 0, result.stderr
    (call,) = bare_path.calls("xdg-open")
    assert call["args"] == ["a-boat-2.png"]


def test_no_viewer_is_a_warning(run, work: Path, bare_path) -> None:
    result = run("a boat", *FAST, "--seed", "2", "--open")
    assert result.returncode == 0
    assert result.stdout == "a-boat-2.png\n"
    assert result.stderr.splitlines()[-1] == (
        "offgrid: warning: cannot show a-boat-2.png: opening files needs one of: xdg-open")


# --- errors: one clear line, nothing written --------------------------------------------------


@pytest.mark.parametrize(("extra", "message", "code"), [
    (("--sampler", "warp9"), "unknown sampler 'warp9'", 2),
    (("--size", "72x64"), "size 72x64 is not a multiple of 16", 2),
    (("--size", "big"), "--size must look like 512x512, not 'big'", 2),
    (("--steps", "0"), "--steps must be at least 1, not 0", 2),
    (("--steps", "-3"), "--steps must be at least 1, not -3", 2),
    (("--cfg-scale", "0"), "--cfg-scale must be greater than 0, not 0", 2),
    (("--seed", "-1"), "--seed must be between 0 and 2147483647, not -1", 2),
    (("--strength", "0.5"), "--strength only applies to image-to-image, with --init", 2),
    (("--init", "missing.png"), "--init missing.png: no such file", 1),
    (("--size", "64x64", "--width", "64"), "give either --size or --width/--height, not both", 2),
    (("--count", "0"), "Invalid value for '--count'", 2),
    (("-o", "picture.jpg"), "picture.jpg: the output file must end in .png", 2),
    (("-o", "no/such/a.png"), "cannot write no/such/a.png: the folder no/such does not exist", 2),
])
def test_bad_values(run, work: Path, fake_engines, extra, message, code) -> None:
    args = ["x", *extra]
    for flag, value in (("--steps", "1"), ("--size", "64x64")):
        if flag not in extra:
            args += [flag, value]
    one_line_error(run(*args), message, code)
    assert files_in(work) == [] and fake_engines.calls.pictures == []


def test_size_error_suggests_a_size_that_works(run, work: Path) -> None:
    result = run("x", "--width", "100", "--height", "64")
    one_line_error(result, "size 100x64 is not a multiple of 16", 2)
    assert hint(result) == "use a width and height divisible by 16, e.g. --size 112x64"


def test_empty_prompt(run, work: Path) -> None:
    result = run(*FAST)
    one_line_error(result, "the prompt is empty", 2)
    assert hint(result) == 'offgrid imagine "a lighthouse at dusk"'


def test_from_png_errors(run, work: Path) -> None:
    write_png(work / "plain.png")
    plain = run("--from-png", "plain.png")
    one_line_error(plain, "plain.png carries no offgrid parameters")
    assert hint(plain) == "--from-png needs a PNG made by offgrid imagine"
    one_line_error(run("--from-png", "missing.png"), "missing.png: no such file")
    (work / "text.png").write_text("not a picture")
    one_line_error(run("--from-png", "text.png"), "text.png: not a readable image")


def test_existing_output_needs_force(run, work: Path) -> None:
    (work / "taken.png").write_bytes(b"not mine")
    refused = run("x", *FAST, "-o", "taken.png")
    one_line_error(refused, "taken.png already exists", 2)
    assert "--force" in hint(refused)
    assert (work / "taken.png").read_bytes() == b"not mine"
    (work / "set-2.png").write_bytes(b"not mine either")
    one_line_error(run("x", *FAST, "--count", "2", "-o", "set.png"), "set-2.png already exists", 2)
    assert files_in(work) == ["set-2.png", "taken.png"]  # no set-1.png made before the check
    forced = run("x", *FAST, "-o", "taken.png", "--force")
    assert forced.returncode == 0, forced.stderr
    assert Image.open(work / "taken.png").size == (64, 64)


def test_model_errors(cli, work: Path, tmp_path: Path, fake_engines) -> None:
    bad = tmp_path / "broken.bad"
    bad.write_bytes(b"junk")
    one_line_error(cli("imagine", "x", *FAST, "-m", str(bad), cwd=work),
                   "broken.bad is not a GGUF file (bad magic)")
    default = cli("imagine", "x", *FAST, cwd=work)
    one_line_error(default, "is not downloaded")
    assert hint(default).startswith("offgrid models pull ")
    one_line_error(cli("imagine", "x", *FAST, "-m", str(tmp_path / "nope.gguf"), cwd=work),
                   "model file not found")
    assert files_in(work) == []


def test_not_enough_memory_writes_nothing(run, work: Path, fake_engines) -> None:
    fake_engines.extra_mb = 1 << 40
    one_line_error(run("x", *FAST), "not enough memory")
    assert files_in(work) == []
    forced = run("x", *FAST, "--force", "--seed", "7")
    assert forced.returncode == 0 and forced.stdout == "x-7.png\n"


def test_component_flags_reach_the_engine(cli, work: Path, tmp_path: Path, fake_engines) -> None:
    roles = {"--diffusion-model": "diffusion_model", "--clip-l": "clip_l", "--clip-g": "clip_g",
             "--t5xxl": "t5xxl", "--llm": "llm", "--vae": "vae", "--taesd": "taesd"}
    args: list[str] = []
    for flag, role in roles.items():
        path = tmp_path / f"{role}.safetensors"
        path.write_bytes(b"weights")
        args += [flag, str(path)]
    result = cli("imagine", "x", *FAST, *args, "--threads", "3", cwd=work)
    assert result.returncode == 0, result.stderr
    _, model, options = fake_engines.calls.loads[0]
    assert model.files == {role: tmp_path / f"{role}.safetensors" for role in roles.values()}
    assert options.threads == 3
    alias = cli("imagine", "x", *FAST, "--diffusion-model", str(tmp_path / "diffusion_model.safetensors"),
                "--vae", "qwen3-0.6b", cwd=work)
    one_line_error(alias, "qwen3-0.6b is a text model, not a", 2)
    assert hint(alias) == "see `offgrid models list --task image`"


def test_notify_after_a_long_job(run, work: Path, phone, monkeypatch) -> None:
    from offgrid.ui import phone as phone_ui

    monkeypatch.setattr(phone_ui, "NOTIFY_AFTER_SECONDS", -1.0)
    phone.add("termux-notification")
    assert run("x", *FAST, "--count", "2", "--notify").returncode == 0
    (sent,) = phone.calls("termux-notification")
    assert sent["args"][3] == "offgrid imagine" and sent["args"][5].startswith("2 pictures ready after ")


def test_wrong_task_alias_reads_well(cli, work: Path) -> None:
    result = cli("imagine", "x", *FAST, "-m", "qwen3-0.6b", cwd=work)
    one_line_error(result, "qwen3-0.6b is a text model, not an image model", 2)

"""`offgrid imagine` end to end with the real stable-diffusion.cpp engine.

The model is the random-weight FLUX.2-klein from tests/tinymodels/sd.py (see its docstring for
why that architecture): it runs at 64x64 and 1 step in about a second, so every test below goes
through the CLI, a child engine process and a real PNG on disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from offgrid import cli
from offgrid.history import History
from offgrid.outputs.pictures import PNG_METADATA_KEY, PNG_PARAMETERS_KEY
from tests.conftest import ROOT
from tests.tinymodels.sd import write_mismatched_llm


@pytest.fixture
def component_args(tiny_sd_files: dict[str, Path]) -> list[str]:
    """The tiny model's components as flags."""
    files = tiny_sd_files
    return ["--diffusion-model", str(files["diffusion_model"]), "--llm", str(files["llm"]),
            "--taesd", str(files["taesd"])]


@pytest.fixture
def model_args(component_args: list[str]) -> list[str]:
    """The components at the size and step count the tests use."""
    return [*component_args, "--size", "64x64", "--steps", "1", "--cfg-scale", "1"]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def stored_params(path: Path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.text[PNG_METADATA_KEY])


# --- the happy paths ---------------------------------------------------------------------------


def test_writes_png_named_from_prompt_and_seed(offgrid, model_args, work: Path) -> None:
    result = offgrid("imagine", "A red fox, at dawn!", *model_args, "--seed", "42", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a-red-fox-at-dawn-42.png\n"
    assert "seed 42" in result.stderr
    with Image.open(work / "a-red-fox-at-dawn-42.png") as image:
        assert image.format == "PNG" and image.size == (64, 64) and image.mode == "RGB"
    assert pixels(work / "a-red-fox-at-dawn-42.png").std() > 0  # a picture, not a blank


def test_default_name_never_overwrites(offgrid, model_args, work: Path) -> None:
    first = offgrid("imagine", "fox", *model_args, "--seed", "3", "--no-save", cwd=work)
    second = offgrid("imagine", "fox", *model_args, "--seed", "3", "--no-save", cwd=work)
    assert (first.stdout, second.stdout) == ("fox-3.png\n", "fox-3-2.png\n")
    assert np.array_equal(pixels(work / "fox-3.png"), pixels(work / "fox-3-2.png"))


def test_png_carries_every_parameter(offgrid, model_args, tiny_sd_files, work: Path) -> None:
    result = offgrid("imagine", "a lighthouse", *model_args, "--negative", "fog", "--seed", "9",
                     "--sampler", "euler", "-o", "light.png", cwd=work)
    assert result.returncode == 0, result.stderr
    params = stored_params(work / "light.png")
    assert params == {
        "prompt": "a lighthouse", "negative": "fog", "steps": 1, "cfg_scale": 1.0,
        "sampler": "euler", "width": 64, "height": 64, "seed": 9, "init": None, "model": None,
        "files": {role: str(path.resolve()) for role, path in tiny_sd_files.items()},
    }
    with Image.open(work / "light.png") as image:
        summary = image.text[PNG_PARAMETERS_KEY]
    assert summary.startswith("a lighthouse\nNegative prompt: fog\nSteps: 1, Sampler: euler")
    assert "Seed: 9, Size: 64x64" in summary


def test_from_png_reproduces_the_exact_pixels(offgrid, model_args, work: Path) -> None:
    first = offgrid("imagine", "a quiet harbour", *model_args, "--json", cwd=work)
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)["images"][0]
    again = offgrid("imagine", "--from-png", made["path"], "-o", "again.png", cwd=work)
    assert again.returncode == 0, again.stderr
    assert np.array_equal(pixels(work / made["path"]), pixels(work / "again.png"))
    assert stored_params(work / "again.png") == stored_params(work / made["path"])
    other = offgrid("imagine", "--from-png", made["path"], "--seed", str(made["seed"] + 1),
                    "-o", "other.png", cwd=work)
    assert other.returncode == 0, other.stderr
    assert stored_params(work / "other.png")["seed"] == made["seed"] + 1
    assert not np.array_equal(pixels(work / "again.png"), pixels(work / "other.png"))


def test_count_makes_one_picture_per_seed(offgrid, model_args, work: Path) -> None:
    result = offgrid("imagine", "three moons", *model_args, "--seed", "10", "--count", "3",
                     "--json", cwd=work)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [image["seed"] for image in data["images"]] == [10, 11, 12]
    assert [image["path"] for image in data["images"]] == [
        "three-moons-10.png", "three-moons-11.png", "three-moons-12.png"]
    assert data["parameters"]["seed"] == 10 and data["model"]
    assert set(data["timings"]) >= {"load_seconds", "seconds_per_step", "total_seconds"}
    assert [stored_params(work / image["path"])["seed"] for image in data["images"]] == [10, 11, 12]
    first, second, _ = (pixels(work / image["path"]) for image in data["images"])
    assert not np.array_equal(first, second)
    numbered = offgrid("imagine", "moons", *model_args, "--count", "2", "-o", "set.png",
                       "--no-save", cwd=work)
    assert numbered.stdout == "set-1.png\nset-2.png\n"


def test_image_to_image(offgrid, model_args, work: Path) -> None:
    assert offgrid("imagine", "a cat", *model_args, "--seed", "5", "-o", "cat.png", cwd=work).returncode == 0
    result = offgrid("imagine", "a cat in the snow", *model_args, "--seed", "5", "--init", "cat.png",
                     "--strength", "0.5", "--steps", "4", "-o", "snow.png", cwd=work)
    assert result.returncode == 0, result.stderr
    params = stored_params(work / "snow.png")
    assert params["init"] == str((work / "cat.png").resolve()) and params["strength"] == 0.5
    text_only = offgrid("imagine", "a cat in the snow", *model_args, "--seed", "5", "--steps", "4",
                        "-o", "plain.png", cwd=work)
    assert text_only.returncode == 0
    assert not np.array_equal(pixels(work / "snow.png"), pixels(work / "plain.png"))
    again = offgrid("imagine", "--from-png", "snow.png", "-o", "snow-again.png", cwd=work)
    assert again.returncode == 0, again.stderr
    assert np.array_equal(pixels(work / "snow.png"), pixels(work / "snow-again.png"))


def test_run_is_recorded_in_history(offgrid, model_args, work: Path) -> None:
    result = offgrid("imagine", "a kite", *model_args, "--seed", "1", cwd=work)
    assert result.returncode == 0, result.stderr
    (record,) = History().list(command="imagine")
    assert record.title == "a kite"
    assert History().get(record.id).meta["parameters"]["seed"] == 1


def test_open_shows_the_picture_with_the_viewer(offgrid, model_args, work: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    called = tmp_path / "opened.txt"
    viewer = bin_dir / "xdg-open"
    viewer.write_text(f"#!/bin/sh\necho \"$@\" > {called}\n")
    viewer.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = offgrid("imagine", "a boat", *model_args, "--seed", "2", "--open", "--no-save",
                     cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    for _ in range(100):  # the viewer is started detached
        if called.exists() and called.read_text().strip():
            break
        time.sleep(0.1)
    assert called.read_text().strip() == "a-boat-2.png"


def test_progress_bar_on_a_terminal(model_args, work: Path) -> None:
    """With stderr on a terminal, a bar shows the step count and seconds per step."""
    import pty

    main_fd, tty_fd = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    proc = subprocess.Popen(
        [sys.executable, "-m", "offgrid", "imagine", "dots", *model_args, "--steps", "24", "--no-save"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=tty_fd, cwd=work, env=env)
    os.close(tty_fd)
    screen = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    proc.wait(timeout=120)
    os.close(main_fd)
    text = screen.decode("utf-8", errors="replace")
    assert proc.returncode == 0, text
    assert "24/24" in text or "/24" in text
    assert "s/step" in text


# --- errors: one clear line, non-zero exit ----------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sampler", "warp9"], "unknown sampler 'warp9'"),
        (["--size", "72x64"], "size 72x64 is not a multiple of 16"),
        (["--size", "big"], "--size must look like 512x512"),
        (["--steps", "0"], "--steps must be at least 1, not 0"),
        (["--steps", "-3"], "--steps must be at least 1, not -3"),
        (["--seed", "-1"], "--seed must be between 0 and"),
        (["--init", "missing.png"], "--init missing.png: no such file"),
    ],
)
def test_bad_values_are_usage_errors(offgrid, model_args, work: Path, extra, message) -> None:
    result = offgrid("imagine", "x", *model_args, *extra, cwd=work)
    assert result.returncode in (1, 2)
    assert result.stderr.startswith(f"offgrid: error: {message}"), result.stderr
    assert list(work.iterdir()) == []


def test_size_error_suggests_a_size_that_works(offgrid, component_args, work: Path) -> None:
    result = offgrid("imagine", "x", *component_args, "--width", "100", "--height", "64", cwd=work)
    assert result.returncode == 2
    assert "hint: use a width and height divisible by 16, e.g. --size 112x64" in result.stderr


def test_text_model_given_as_image_model(offgrid, tiny_llama: Path, work: Path) -> None:
    result = offgrid("imagine", "x", "--model", str(tiny_llama), cwd=work)
    assert result.returncode == 2
    assert result.stderr.startswith(f"offgrid: error: {tiny_llama.name} is a text model, not an image model")


def test_truncated_component_is_caught_before_the_engine(offgrid, model_args, tiny_sd_files, work: Path,
                                                         tmp_path: Path) -> None:
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tiny_sd_files["llm"].read_bytes()[:-1000])
    args = [a if a != str(tiny_sd_files["llm"]) else str(cut) for a in model_args]
    result = offgrid("imagine", "x", *args, cwd=work)
    assert result.returncode == 1
    assert result.stderr.startswith("offgrid: error: cut.safetensors: not a usable safetensors file: truncated")


def test_components_that_do_not_fit_crash_the_child_not_the_cli(offgrid, model_args, tiny_sd_files,
                                                                  work: Path, tmp_path: Path) -> None:
    wrong = write_mismatched_llm(tmp_path / "llm-48.safetensors")
    args = [a if a != str(tiny_sd_files["llm"]) else str(wrong) for a in model_args]
    result = offgrid("imagine", "x", *args, cwd=work)
    assert result.returncode == 1
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("offgrid: error: the image engine crashed (signal SIGABRT)")
    assert "GGML_ASSERT" in first_line
    assert list(work.iterdir()) == []


def test_missing_component_is_named(offgrid, tiny_sd_files, work: Path) -> None:
    result = offgrid("imagine", "x", "--diffusion-model", str(tiny_sd_files["diffusion_model"]),
                     "--taesd", str(tiny_sd_files["taesd"]), "--size", "64x64", "--steps", "1", cwd=work)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "offgrid: error: could not load the image model: tensor 'text_encoders.llm.model.embed_tokens.weight' "
        "is missing (the --llm component is absent")
    assert list(work.iterdir()) == []


def test_existing_output_needs_force(offgrid, model_args, work: Path) -> None:
    (work / "taken.png").write_bytes(b"not mine")
    refused = offgrid("imagine", "x", *model_args, "-o", "taken.png", cwd=work)
    assert refused.returncode == 2
    assert refused.stderr.startswith("offgrid: error: taken.png already exists")
    assert "--force" in refused.stderr
    assert (work / "taken.png").read_bytes() == b"not mine"
    forced = offgrid("imagine", "x", *model_args, "-o", "taken.png", "--force", cwd=work)
    assert forced.returncode == 0, forced.stderr
    assert pixels(work / "taken.png").shape == (64, 64, 3)


def test_unwritable_output(offgrid, model_args, work: Path) -> None:
    missing = offgrid("imagine", "x", *model_args, "-o", "no/such/folder/a.png", cwd=work)
    assert missing.returncode == 2
    assert "the folder no/such/folder does not exist" in missing.stderr
    if Path("/proc/self").is_dir():  # a folder nobody may write in, not even root
        denied = offgrid("imagine", "x", *model_args, "-o", "/proc/self/a.png", cwd=work)
        assert denied.returncode == 2, denied.stderr
        assert "the folder /proc/self is not writable" in denied.stderr
    (work / "plain-file").write_text("")
    under_file = offgrid("imagine", "x", *model_args, "-o", "plain-file/a.png", cwd=work)
    assert under_file.returncode == 2 and "plain-file is not a folder" in under_file.stderr
    not_png = offgrid("imagine", "x", *model_args, "-o", "picture.jpg", cwd=work)
    assert not_png.returncode == 2 and "must end in .png" in not_png.stderr


def test_not_enough_memory(model_args, work: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from offgrid import device

    monkeypatch.chdir(work)
    monkeypatch.setattr(device, "available_ram_mb", lambda *a: 64)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["imagine", "x", *model_args, "--size", "512x512"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("offgrid: error: not enough memory")
    assert list(work.iterdir()) == []


def test_catalog_default_not_downloaded(offgrid, work: Path) -> None:
    result = offgrid("imagine", "x", cwd=work)
    assert result.returncode == 1
    assert "is not downloaded" in result.stderr and "offgrid models pull" in result.stderr


def test_ctrl_c_stops_cleanly_and_writes_nothing(model_args, work: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "offgrid", "--debug", "imagine", "slow", *model_args,
         "--steps", "400", "--size", "128x128"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work, env=env)
    assert proc.stderr is not None
    for raw in iter(proc.stderr.readline, b""):
        if b"generating image" in raw:  # the engine's own log: sampling has started
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert rest == b""
    assert list(work.iterdir()) == []

"""offgrid.outputs.pictures (no engine): parameter precedence and checks, file names, PNG metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from offgrid.errors import InputError, UsageError
from offgrid.outputs.pictures import (PNG_METADATA_KEY, SAMPLERS, ImageParams, build_params, check_params,
                             default_output_path, numbered_paths, output_paths, parse_size,
                             read_png_params, save_png, slug)


def params(**changes) -> ImageParams:
    base = dict(prompt="a fox", steps=4, cfg_scale=1.0, sampler="euler", width=64, height=64, seed=1)
    base.update(changes)
    return ImageParams(**base)


def test_samplers_match_the_installed_binding():
    binding = pytest.importorskip("stable_diffusion_cpp.stable_diffusion")
    names = set(binding.SAMPLE_METHOD_MAP) - {"default", "sample_method_count"}
    assert set(SAMPLERS) == names


def test_precedence_flags_png_config_catalog_builtin():
    catalog = {"steps": 1, "cfg_scale": 1.0, "sampler": "euler_a", "width": 512, "height": 512, "ram_mb": 9}
    configured = {"steps": 8, "model": "x"}
    previous = params(prompt="old", steps=30, seed=77, negative="rain")
    merged = build_params(None, {"seed": 5}, previous=previous, configured=configured, catalog=catalog)
    assert (merged.prompt, merged.steps, merged.seed, merged.negative) == ("old", 30, 5, "rain")
    assert (merged.width, merged.sampler) == (64, "euler")
    without_png = build_params("new", {}, configured=configured, catalog=catalog)
    assert (without_png.steps, without_png.cfg_scale, without_png.width) == (8, 1.0, 512)
    built_in = build_params("new", {"seed": 3}, default_sampler="euler")
    assert (built_in.steps, built_in.cfg_scale, built_in.sampler, built_in.width) == (20, 7.0, "euler", 512)


def test_seed_is_random_unless_fixed():
    seeds = {build_params("x", {}).seed for _ in range(5)}
    assert len(seeds) > 1
    assert build_params("x", {"seed": 0}).seed == 0


@pytest.mark.parametrize("text, size", [("512x512", (512, 512)), ("64X128", (64, 128)), (" 8 x 16 ", (8, 16))])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["512", "512x", "x512", "-8x8", "big"])
def test_parse_size_rejects(text):
    with pytest.raises(UsageError, match="--size must look like 512x512"):
        parse_size(text)


@pytest.mark.parametrize(
    ("changes", "multiple", "message"),
    [
        ({"prompt": "  "}, 8, "the prompt is empty"),
        ({"steps": 0}, 8, "--steps must be at least 1"),
        ({"cfg_scale": 0}, 8, "--cfg-scale must be greater than 0"),
        ({"sampler": "nope"}, 8, "unknown sampler 'nope'"),
        ({"width": 520}, 16, "size 520x64 is not a multiple of 16 \\(the engine would make 528x64"),
        ({"height": 96}, 64, "size 64x96 is not a multiple of 64"),
        ({"width": 0}, 8, "--width must be between 8 and 4096"),
        ({"seed": -1}, 8, "--seed must be between 0"),
        ({"init": "a.png", "strength": 0}, 8, "--strength must be in \\(0, 1\\]"),
    ],
)
def test_check_params_rejects(changes, multiple, message):
    with pytest.raises(UsageError, match=message):
        check_params(params(**changes), multiple)


def test_check_params_accepts_a_good_request():
    check_params(params(width=128, height=64), 16)
    check_params(params(init="a.png", strength=1.0), 8)


def test_slug_and_default_names(tmp_path: Path):
    assert slug("A red fox, at dawn! (4k)") == "a-red-fox-at-dawn-4k"
    assert slug("¡¿!") == "image"
    assert default_output_path("a fox", 7, tmp_path) == tmp_path / "a-fox-7.png"
    (tmp_path / "a-fox-7.png").touch()
    (tmp_path / "a-fox-7-2.png").touch()
    assert default_output_path("a fox", 7, tmp_path) == tmp_path / "a-fox-7-3.png"
    assert default_output_path("a fox", 7) == Path("a-fox-7.png")


def test_numbered_and_checked_output_paths(tmp_path: Path):
    assert numbered_paths(tmp_path / "out.png", 1) == [tmp_path / "out.png"]
    assert numbered_paths(tmp_path / "out.png", 2) == [tmp_path / "out-1.png", tmp_path / "out-2.png"]
    (tmp_path / "out-2.png").touch()
    with pytest.raises(UsageError, match="out-2.png already exists"):
        output_paths(tmp_path / "out.png", params(), 2)
    assert output_paths(tmp_path / "out.png", params(), 2, force=True)[1] == tmp_path / "out-2.png"


def test_png_round_trip(tmp_path: Path):
    original = params(negative="fog", init="/x/start.png", strength=0.4, model="sd-turbo",
                      files={"model": "/m/sd.gguf"})
    path = save_png(Image.new("RGB", (8, 8), "red"), tmp_path / "p.png", original)
    assert read_png_params(path) == original
    with Image.open(path) as image:
        stored = json.loads(image.text[PNG_METADATA_KEY])
        assert image.getpixel((0, 0)) == (255, 0, 0)
    assert stored["strength"] == 0.4
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_text_to_image_png_omits_strength(tmp_path: Path):
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "p.png", params())
    with Image.open(path) as image:
        assert "strength" not in json.loads(image.text[PNG_METADATA_KEY])


def test_save_png_refuses_to_overwrite(tmp_path: Path):
    (tmp_path / "p.png").write_bytes(b"keep")
    with pytest.raises(UsageError, match="already exists"):
        save_png(Image.new("RGB", (8, 8)), tmp_path / "p.png", params())
    assert (tmp_path / "p.png").read_bytes() == b"keep"


def test_failed_save_leaves_nothing(tmp_path: Path):
    class Broken:
        def save(self, *args, **kwargs):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_png(Broken(), tmp_path / "p.png", params())
    assert list(tmp_path.iterdir()) == []


def test_read_png_params_errors(tmp_path: Path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    with pytest.raises(InputError, match="carries no offgrid parameters"):
        read_png_params(plain)
    with pytest.raises(InputError, match="no such file"):
        read_png_params(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable image"):
        read_png_params(junk)


def test_strength_without_an_init_picture_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--strength .*--init"):
        build_params("a cat", {"strength": 0.5})
    earlier = ImageParams(prompt="a cat", init="/tmp/photo.png", strength=0.6)
    assert build_params(None, {"strength": 0.3}, previous=earlier).strength == 0.3  # --from-png
    assert build_params("a cat", {"init": "photo.png", "strength": 0.3}).strength == 0.3

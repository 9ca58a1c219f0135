"""Text-to-image without the engine: parameters, their checks, file names and PNG metadata.

`offgrid imagine` turns options, a catalog entry's defaults and (with --from-png) an earlier
image's recorded parameters into one ImageParams, checks it, and saves each generated picture
as a PNG that carries those parameters in a text chunk, so the picture can be made again
exactly. The engine adapter (engines/sd.py) only ever sees a checked ImageParams.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

from offgrid.device import files
from offgrid.engines.base import ImageEngine, ImageParams
from offgrid.errors import InputError, UsageError

# the samplers stable-diffusion.cpp 0.4.7 knows (its CLI's --sampling-method names)
SAMPLERS = (
    "euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "ipndm", "ipndm_v",
    "lcm", "ddim_trailing", "tcd", "res_multistep", "res_2s", "er_sde",
)
PNG_METADATA_KEY = "offgrid"  # iTXt chunk holding the parameters as JSON
PNG_PARAMETERS_KEY = "parameters"  # the human-readable summary other tools also show
MAX_SEED = 2**31 - 1
MAX_SIDE = 4096
_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


BUILT_IN_DEFAULTS: dict[str, Any] = {"steps": 20, "cfg_scale": 7.0, "width": 512, "height": 512,
                                     "strength": 0.75, "negative": ""}
PARAM_KEYS = ("negative", "steps", "cfg_scale", "sampler", "width", "height", "seed", "init",
              "strength")


def build_params(prompt: str | None, flags: dict[str, Any], *, previous: ImageParams | None = None,
                 configured: dict[str, Any] | None = None, catalog: dict[str, Any] | None = None,
                 default_sampler: str = "euler_a") -> ImageParams:
    """One ImageParams from every source: flags > --from-png > config > catalog > built-ins.

    A new random seed is drawn unless a flag or the earlier picture fixes it.
    """
    layers: list[dict[str, Any]] = [
        {**BUILT_IN_DEFAULTS, "sampler": default_sampler},
        {k: v for k, v in (catalog or {}).items() if k in PARAM_KEYS},
        {k: v for k, v in (configured or {}).items() if k in PARAM_KEYS},
        previous.to_metadata() if previous else {},
        {k: v for k, v in flags.items() if v is not None},
    ]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if k in PARAM_KEYS and v is not None})
    if flags.get("strength") is not None and not merged.get("init"):
        raise UsageError("--strength only applies to image-to-image, with --init",
                         hint='offgrid imagine "…" --init photo.png --strength 0.5')
    text = prompt if prompt is not None else (previous.prompt if previous else "")
    return ImageParams(
        prompt=text,
        negative=merged["negative"],
        steps=int(merged["steps"]),
        cfg_scale=float(merged["cfg_scale"]),
        sampler=str(merged["sampler"]),
        width=int(merged["width"]),
        height=int(merged["height"]),
        seed=int(merged["seed"]) if "seed" in merged else new_seed(),
        init=str(merged["init"]) if merged.get("init") else None,
        strength=float(merged["strength"]),
    )


def checked_params(prompt: str | None, flags: dict[str, Any], previous: ImageParams | None,
                   configured: dict[str, Any], engine: ImageEngine) -> ImageParams:
    """The parameters for *engine*, checked, with its files and the --init picture as
    absolute paths (so the PNG can be made again from any folder)."""
    entry = engine.entry
    params = build_params(prompt, flags, previous=previous, configured=configured,
                          catalog=entry.options if entry else None,
                          default_sampler=engine.default_sampler)
    if params.init:
        check_init_image(params.init)
    params = replace(params, model=entry.alias if entry else None,
                     files={role: str(path.resolve()) for role, path in engine.files.items()},
                     init=str(Path(params.init).resolve()) if params.init else None)
    check_params(params, engine.size_multiple)
    return params


def parse_size(text: str) -> tuple[int, int]:
    """'512x512' → (512, 512)."""
    match = _SIZE_PATTERN.match(text)
    if not match:
        raise UsageError(f"--size must look like 512x512, not {text!r}")
    return int(match.group(1)), int(match.group(2))


def new_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def check_params(params: ImageParams, size_multiple: int = 8) -> None:
    """Reject what the engine would silently change or fail on, with one clear line."""
    if not params.prompt.strip():
        raise UsageError("the prompt is empty", hint='offgrid imagine "a lighthouse at dusk"')
    if params.steps < 1:
        raise UsageError(f"--steps must be at least 1, not {params.steps}")
    if params.cfg_scale <= 0:
        raise UsageError(f"--cfg-scale must be greater than 0, not {params.cfg_scale:g}")
    if params.sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {params.sampler!r}", hint="choose one of: " + ", ".join(SAMPLERS))
    for name, value in (("width", params.width), ("height", params.height)):
        if value < size_multiple or value > MAX_SIDE:
            raise UsageError(f"--{name} must be between {size_multiple} and {MAX_SIDE}, not {value}")
        if value % size_multiple:
            raise UsageError(
                f"size {params.width}x{params.height} is not a multiple of {size_multiple} "
                f"(the engine would make {_round_up(params.width, size_multiple)}x"
                f"{_round_up(params.height, size_multiple)} instead)",
                hint=f"use a width and height divisible by {size_multiple}, e.g. --size "
                f"{_round_up(params.width, size_multiple)}x{_round_up(params.height, size_multiple)}",
            )
    if not 0 <= params.seed <= MAX_SEED:
        raise UsageError(f"--seed must be between 0 and {MAX_SEED}, not {params.seed}")
    if params.init is not None and not 0 < params.strength <= 1:
        raise UsageError(f"--strength must be in (0, 1], not {params.strength:g}")


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)


# --- output files -------------------------------------------------------------------------


def slug(prompt: str, max_words: int = 6, max_chars: int = 48) -> str:
    """A short file-name-safe stem from the prompt: 'A red fox, at dawn!' → 'a-red-fox-at-dawn'."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:max_words]
    text = "-".join(words)[:max_chars].strip("-")
    return text or "image"


def default_output_path(prompt: str, seed: int, directory: Path | None = None) -> Path:
    """A new file name from the prompt and seed that never replaces an existing file."""
    directory = directory or Path(".")
    stem = f"{slug(prompt)}-{seed}"
    candidate = directory / f"{stem}.png"
    number = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{number}.png"
        number += 1
    return candidate


def check_output_path(path: Path, force: bool) -> None:
    """Fail before any work when the picture could not be written."""
    if path.suffix.lower() != ".png":
        raise UsageError(f"{path}: the output file must end in .png")
    files.check_output(path, force)


def numbered_paths(path: Path, count: int) -> list[Path]:
    """-o out.png with --count 3 → out-1.png, out-2.png, out-3.png (or just out.png)."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def output_paths(output: Path | None, params: ImageParams, count: int, *, force: bool = False) -> list[Path]:
    """Where the pictures go; checked before any work so a bad path fails fast."""
    if output is None:
        paths = [default_output_path(params.prompt, params.seed + i) for i in range(count)]
    else:
        paths = numbered_paths(output, count)
    for path in paths:
        check_output_path(path, force)
    return paths


def check_init_image(path: str) -> None:
    """Fail early, naming the path as given, when --init is not a readable picture."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except FileNotFoundError:
        raise InputError(f"--init {path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"--init {path}: not a readable image ({exc})") from None


# --- PNG metadata -------------------------------------------------------------------------


def parameters_text(params: ImageParams) -> str:
    """The one-paragraph summary image tools show ('Steps: 20, Sampler: …')."""
    lines = [params.prompt]
    if params.negative:
        lines.append(f"Negative prompt: {params.negative}")
    details = [
        f"Steps: {params.steps}",
        f"Sampler: {params.sampler}",
        f"CFG scale: {params.cfg_scale:g}",
        f"Seed: {params.seed}",
        f"Size: {params.width}x{params.height}",
        f"Model: {params.model or ', '.join(Path(f).name for f in params.files.values())}",
    ]
    if params.init is not None:
        details.append(f"Denoising strength: {params.strength:g}")
    lines.append(", ".join(details))
    return "\n".join(lines)


def save_png(image: Any, path: Path, params: ImageParams, *, force: bool = False) -> Path:
    """Write a PIL image with its parameters; the file appears whole or not at all."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt(PNG_METADATA_KEY, json.dumps(params.to_metadata(), ensure_ascii=False))
    info.add_itxt(PNG_PARAMETERS_KEY, parameters_text(params))
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="add --force to replace it")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    files.write_atomic(path, buffer.getvalue())
    return path


def read_png_params(path: Path) -> ImageParams:
    """The parameters an offgrid PNG was made with (for --from-png)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            text = getattr(image, "text", {}).get(PNG_METADATA_KEY)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None
    if text is None:
        raise InputError(f"{path} carries no offgrid parameters", hint="--from-png needs a PNG made by offgrid imagine")
    try:
        return ImageParams.from_metadata(json.loads(text))
    except (json.JSONDecodeError, TypeError) as exc:
        raise InputError(f"{path}: its offgrid parameters are damaged ({exc})") from None

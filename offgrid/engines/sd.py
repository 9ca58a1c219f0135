"""stable-diffusion-cpp-python behind the image-generation interface.

The binding cannot be stopped (exceptions raised in its progress callback are swallowed, Ctrl-C
included), loads a truncated file into a null context that segfaults when freed, and aborts the
process when components do not fit together. So this adapter:

1. checks every file before the engine sees it (safetensors / GGUF structure, and that an image
   role is not given a text model), and works out the size multiple the model needs;
2. runs load + generation in a child process (engines.isolate), always with a progress callback
   (a call without one after a call with one segfaults) and its own log callback;
3. streams progress and each finished picture back to the parent, which saves them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offgrid.engines.base import GeneratedImage, ImageParams, ImageProgress, ImageStats
from offgrid.engines.loader import Checked, EngineOptions
from offgrid.engines.isolate import run_isolated
from offgrid.errors import EngineError, ModelFileError, UsageError
from offgrid.models.catalog import CatalogEntry
from offgrid.models.store import ResolvedModel

# component role (named like stable-diffusion.cpp's CLI flags) -> StableDiffusion() argument
ROLE_ARGUMENTS = {
    "model": "model_path",
    "diffusion_model": "diffusion_model_path",
    "clip_l": "clip_l_path",
    "clip_g": "clip_g_path",
    "t5xxl": "t5xxl_path",
    "llm": "llm_path",
    "vae": "vae_path",
    "taesd": "taesd_path",
}
GENERATOR_ROLES = ("model", "diffusion_model")
ENGINE_LABEL = "the image engine"

# tensor-name fragments (after the file's own prefix) that tell what a file holds
_LLM_MARKERS = ("blk.0.attn_q.", "token_embd.", "model.layers.0.self_attn.", "layers.0.attention.wq")
_UNET_MARKERS = ("input_blocks.", "down_blocks.")
_DIFFUSION_MARKERS = _UNET_MARKERS + (
    "double_blocks.", "joint_blocks.", "transformer_blocks.", "single_blocks.", "blocks.0.",
    "layers.0.adaLN", "cap_embedder", "net.blocks.",
)
_FLUX2_VAE_MARKERS = ("double_stream_modulation_img.", "layers.0.adaLN_sa_ln.")


# --- checks before loading -------------------------------------------------------------------


@dataclass
class ComponentInfo:
    """What the pre-load checks learned about a set of component files."""

    files: dict[str, Path]
    tensor_names: dict[str, list[str]]

    @property
    def size_multiple(self) -> int:
        return size_multiple(self.tensor_names)

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())


def check_components(files: dict[str, Path]) -> ComponentInfo:
    """Validate every file an image model needs; raise ModelFileError/UsageError on trouble."""
    unknown = set(files) - set(ROLE_ARGUMENTS)
    if unknown:
        raise UsageError(f"unknown model component(s): {', '.join(sorted(unknown))}")
    generators = [role for role in GENERATOR_ROLES if role in files]
    if not generators:
        raise UsageError(
            "no image model given",
            hint="pass --model FILE (one checkpoint) or --diffusion-model FILE with its text encoder(s)",
        )
    names = {role: tensor_names(path) for role, path in files.items()}
    for role in generators:
        _check_is_image_model(files[role], names[role], role)
    return ComponentInfo(dict(files), names)


def tensor_names(path: Path) -> list[str]:
    """Validate one component file and list its tensor names."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "safetensors":
        from offgrid.models.validate_weights import check_safetensors_file

        return list(check_safetensors_file(path)["tensors"])
    if kind == "gguf":
        from offgrid.models.validate import read_gguf

        return list(read_gguf(path).tensors)
    raise ModelFileError(
        f"{path.name}: not a GGUF or safetensors file",
        hint="stable-diffusion.cpp models come as .gguf or .safetensors files",
    )


def file_kind(path: Path) -> str | None:
    """'gguf' or 'safetensors' from the file's first bytes (not its name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a folder, not a model file") from None
    if head[:4] == b"GGUF":
        return "gguf"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    return None


def _check_is_image_model(path: Path, names: list[str], role: str) -> None:
    looks_like_llm = any(marker in name for name in names for marker in _LLM_MARKERS)
    looks_like_diffusion = any(marker in name for name in names for marker in _DIFFUSION_MARKERS)
    if looks_like_llm and not looks_like_diffusion:
        flag = "--" + role.replace("_", "-")
        raise UsageError(
            f"{path.name} is a text model, not an image model ({flag})",
            hint="give it with --llm if it is the text encoder, or pick an image model: offgrid models list --task image",
        )


def size_multiple(names_by_role: dict[str, list[str]]) -> int:
    """Width and height must be multiples of this, or stable-diffusion.cpp silently rounds up.

    The engine aligns to vae_scale × diffusion_down_factor: 8 × 8 for UNet models (SD 1.x/2.x/XL),
    16 × 1 for FLUX.2 / ERNIE-Image (16× VAE), 8 × 1 for the other transformer models.
    """
    names = [name for role in GENERATOR_ROLES for name in names_by_role.get(role, [])]
    if any(marker in name for name in names for marker in _FLUX2_VAE_MARKERS):
        return 16
    if any(marker in name for name in names for marker in _UNET_MARKERS):
        return 64
    return 8


# --- generation --------------------------------------------------------------------------------


def working_memory_mb(params: ImageParams, entry: CatalogEntry | None = None) -> int:
    """Memory beyond the weights: the catalog's figure, else a rough one that grows with size."""
    if entry is not None and entry.ram_mb:
        return max(0, entry.ram_mb - entry.size // (1 << 20))
    return 200 + params.width * params.height * 300 // (512 * 512)


class ImageAdapter:
    """The loader's adapter for stable-diffusion.cpp models: one checkpoint or components
    (role -> file). Working memory depends on the picture's size, so generate() checks it."""

    def check(self, model: ResolvedModel, options: EngineOptions) -> Checked:
        components = check_components(model.files)
        label = model.entry.alias if model.entry else ", ".join(p.name for p in components.files.values())
        return Checked(model, 0, label, {"components": components})

    def load(self, checked: Checked, options: EngineOptions) -> StableDiffusionEngine:
        from offgrid import device
        from offgrid.engines import native

        entry = checked.model.entry
        return StableDiffusionEngine(checked.model.files, model_name=entry.alias if entry else None,
                                     threads=options.threads or device.default_threads(),
                                     on_log=native.record_log, entry=entry, force=options.force,
                                     components=checked.details["components"])


class StableDiffusionEngine:
    """An image model (one checkpoint or a set of components) ready to run in a child process."""

    def __init__(self, files: dict[str, Path], *, model_name: str | None = None,
                 threads: int | None = None, on_log: Callable[[str], None] | None = None,
                 entry: CatalogEntry | None = None, force: bool = False,
                 components: ComponentInfo | None = None):
        self.components = components or check_components(files)
        self.files = self.components.files
        self.entry, self.force = entry, force
        self.model_name = model_name or ", ".join(p.name for p in self.components.files.values())
        self.size_multiple = self.components.size_multiple
        # stable-diffusion.cpp's own choice: euler_a for UNet models, euler for transformers
        self.default_sampler = "euler_a" if self.size_multiple == 64 else "euler"
        self.threads = threads
        self.on_log = on_log

    def generate(
        self,
        params: ImageParams,
        count: int = 1,
        *,
        on_progress: Callable[[ImageProgress], None] | None = None,
        on_image: Callable[[GeneratedImage], None] | None = None,
    ) -> ImageStats:
        """Make `count` pictures (seeds params.seed, +1, …) in a child process.

        Each finished picture goes to `on_image` as soon as it exists, so Ctrl-C after the second
        of four keeps two whole files. Raises EngineError when the engine fails or crashes.
        """
        from PIL import Image

        from offgrid.models import store

        store.check_memory(self.components.size_bytes, working_memory_mb(params, self.entry),
                           force=self.force)
        started = time.monotonic()
        stats = ImageStats()
        seeds = [params.seed + i for i in range(count)]

        def on_event(event: tuple) -> None:
            kind = event[0]
            if kind == "loaded":
                stats.load_seconds = event[1]
            elif kind == "progress" and on_progress is not None:
                _, index, step, steps, secs = event
                on_progress(ImageProgress(index, count, step, steps, secs))
            elif kind == "image":
                _, index, mode, size, pixels, seconds, secs_per_step = event
                stats.image_seconds.append(seconds)
                stats.seconds_per_step.append(secs_per_step)
                if on_image is not None:
                    image = Image.frombytes(mode, size, pixels)
                    on_image(GeneratedImage(index, params.with_seed(seeds[index]), image, seconds,
                                            secs_per_step))

        request = {
            "files": {role: str(path) for role, path in self.components.files.items()},
            "threads": self.threads or -1,
            "params": params.to_metadata(),
            "seeds": seeds,
            "init_png": _init_image_bytes(params.init) if params.init else None,
        }
        run_isolated(_generate_in_child, (request,), on_event=on_event, on_log=self.on_log,
                     label=ENGINE_LABEL)
        stats.total_seconds = time.monotonic() - started
        return stats


def _init_image_bytes(path: str) -> bytes:
    """The --init picture as PNG bytes (RGB, EXIF orientation applied)."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    from offgrid.errors import InputError

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
    except FileNotFoundError:
        raise InputError(f"--init {path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"--init {path}: not a readable image ({exc})") from None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- child side (runs in `python -m offgrid.engines.isolate`) ----------------------------------


def _generate_in_child(request: dict[str, Any], *, emit: Callable[[Any], None]) -> None:
    import io
    import sys

    from PIL import Image

    from offgrid.engines import native

    sd_cpp = native.import_engine("sd")
    log_callback = _install_log_callback(sd_cpp, native)  # noqa: F841 - must stay alive
    params = ImageParams.from_metadata(request["params"])
    init_image = Image.open(io.BytesIO(request["init_png"])) if request["init_png"] else None

    started = time.monotonic()
    arguments = {ROLE_ARGUMENTS[role]: path for role, path in request["files"].items()}
    engine = sd_cpp.StableDiffusion(
        **arguments,
        n_threads=request["threads"],
        vae_decode_only=init_image is None,
        verbose=True,  # False would redirect fds 1/2 to /dev/null and hide abort messages
    )
    if not engine._model.model:  # a NULL context: the binding does not raise
        raise load_failure(list(native.native_log), native.last_native_error("the engine gave no reason"))
    emit(("loaded", time.monotonic() - started))

    for index, seed in enumerate(request["seeds"]):
        _generate_one(engine, params, seed, index, init_image, emit)
        sys.stderr.flush()


# tensor-name prefix after loading -> the flag whose file should have held it
_PREFIX_FLAGS = (
    ("text_encoders.llm.", "--llm"), ("text_encoders.clip_l.", "--clip-l"),
    ("text_encoders.clip_g.", "--clip-g"), ("cond_stage_model.1.", "--clip-g"),
    ("text_encoders.t5xxl.", "--t5xxl"), ("cond_stage_model.", "--clip-l"),
    ("first_stage_model.", "--vae"), ("tae.", "--taesd"), ("model.diffusion_model.", "--diffusion-model"),
)
_MISSING_TENSOR = re.compile(r"tensor '([^']+)' not in model file")


def load_failure(log_lines: list[str], fallback: str) -> EngineError:
    """Say which component is missing when the engine could not find tensors it needs."""
    missing = [m.group(1) for line in log_lines if (m := _MISSING_TENSOR.search(line))]
    if missing:
        flag = next((f for prefix, f in _PREFIX_FLAGS if missing[0].startswith(prefix)), None)
        what = f"the {flag} component" if flag else "a component"
        return EngineError(
            f"could not load the image model: tensor '{missing[0]}' is missing "
            f"({what} is absent or does not belong to this model)",
            hint="give every file the model needs (see its catalog entry: offgrid models info NAME)",
        )
    return EngineError(
        f"could not load the image model: {fallback}",
        hint="check that the files belong together (run with --debug for the engine's log)",
    )


def _generate_one(engine: Any, params: ImageParams, seed: int, index: int, init_image: Any, emit: Callable) -> None:
    last_rate = [0.0]

    def progress(step: int, steps: int, seconds_per_step: float) -> None:
        if step > 0:
            last_rate[0] = seconds_per_step
        emit(("progress", index, step, steps, seconds_per_step))

    started = time.monotonic()
    images = engine.generate_image(
        prompt=params.prompt,
        negative_prompt=params.negative,
        width=params.width,
        height=params.height,
        cfg_scale=params.cfg_scale,
        sample_method=params.sampler,
        sample_steps=params.steps,
        seed=seed,
        init_image=init_image,
        strength=params.strength,
        progress_callback=progress,  # always one: a call without one after one with segfaults
    )
    if not images:
        from offgrid.engines import native

        raise EngineError("the image engine returned no picture: " + native.last_native_error("no reason given"))
    image = images[0].convert("RGB")
    if image.size != (params.width, params.height):
        raise UsageError(
            f"this model cannot make {params.width}x{params.height} pictures "
            f"(the engine made {image.size[0]}x{image.size[1]})",
            hint="choose a width and height the model supports, e.g. multiples of 64",
        )
    emit(("image", index, image.mode, image.size, image.tobytes(), time.monotonic() - started, last_rate[0]))


def _install_log_callback(sd_cpp: Any, native: Any) -> Any:
    """Send every engine log line to stderr (the parent keeps the tail) and to native_log."""
    import sys

    levels = {0: "debug", 1: "info", 2: "warn", 3: "error"}

    @sd_cpp.sd_log_callback
    def on_log(level: int, text: bytes, _data: Any) -> None:
        line = text.decode("utf-8", errors="replace").rstrip("\n")
        native.native_log.append(line)
        sys.stderr.write(f"[{levels.get(level, level)}] {line}\n")

    sd_cpp.sd_set_log_callback(on_log, None)
    return on_log

"""`offgrid imagine`: text (or an image) to image on the device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from offgrid import config, history
from offgrid.engines import loader
from offgrid.engines.base import GeneratedImage, ImageEngine, ImageParams, ImageProgress, ImageStats
from offgrid.engines.loader import EngineOptions
from offgrid.errors import OffgridError, UsageError
from offgrid.outputs import pictures
from offgrid.ui import options, phone
from offgrid.ui.loading import TerminalHooks
from offgrid.ui.output import Output


def _component(flag: str, what: str) -> Any:
    return Annotated[Optional[str], typer.Option(flag, help=f"{what} (a file, or a catalog alias).",
                                                 show_default=False)]


def imagine_command(
    prompt: Annotated[Optional[list[str]], typer.Argument(
        help="What to draw. May be omitted with --from-png.", show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="PNG file to write (default: a new name from the prompt and seed "
                               "in the current folder). With --count N: NAME-1.png … NAME-N.png.",
        show_default=False)] = None,
    negative: Annotated[Optional[str], typer.Option("--negative", help="What to keep out of the picture.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Sampling steps (default: the model's).")] = None,
    cfg_scale: Annotated[Optional[float], typer.Option(
        "--cfg-scale", help="How strictly to follow the prompt (default: the model's; 1 for turbo models).")] = None,
    sampler: Annotated[Optional[str], typer.Option(
        "--sampler", help="Sampling method: " + ", ".join(pictures.SAMPLERS) + ".")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (default: random; always reported).")] = None,
    width: Annotated[Optional[int], typer.Option("--width", help="Width in pixels.")] = None,
    height: Annotated[Optional[int], typer.Option("--height", help="Height in pixels.")] = None,
    size: Annotated[Optional[str], typer.Option("--size", help="WIDTHxHEIGHT, e.g. 512x512.")] = None,
    count: Annotated[int, typer.Option("--count", min=1, max=64, help="How many pictures (seeds SEED, SEED+1, …).")] = 1,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this picture (image-to-image).")] = None,
    strength: Annotated[Optional[float], typer.Option(
        "--strength", help="With --init: how much to change it, 0–1 (default 0.75).")] = None,
    from_png: Annotated[Optional[Path], typer.Option(
        "--from-png", help="Make a picture again from the parameters stored in an offgrid PNG; "
                           "other options override them.")] = None,
    model: options.ModelOpt = None,
    diffusion_model: _component("--diffusion-model", "Stand-alone diffusion model") = None,
    clip_l: _component("--clip-l", "CLIP-L text encoder") = None,
    clip_g: _component("--clip-g", "CLIP-G text encoder") = None,
    t5xxl: _component("--t5xxl", "T5-XXL text encoder") = None,
    llm: _component("--llm", "LLM text encoder (Qwen3 for FLUX.2-klein, …)") = None,
    vae: _component("--vae", "VAE") = None,
    taesd: _component("--taesd", "Tiny autoencoder (TAESD): faster decoding") = None,
    threads: options.ThreadsOpt = None,
    open_: Annotated[bool, typer.Option("--open", help="Show the picture when it is done.")] = False,
    json_: options.JsonOpt = False,
    no_save: options.NoSaveOpt = False,
    notify: options.NotifyOpt = None,
    yes: options.YesOpt = False,
    force: options.ForceOutputOpt = False,
) -> None:
    """Draw a picture from a prompt with a local image model."""
    out = Output(plain=json_)
    conf = config.load()
    chosen = config.settings("imagine", {"threads": threads}, config=conf)
    previous = pictures.read_png_params(from_png) if from_png else None
    components = {role: value for role, value in dict(
        diffusion_model=diffusion_model, clip_l=clip_l, clip_g=clip_g, t5xxl=t5xxl, llm=llm,
        vae=vae, taesd=taesd).items() if value}
    engine = loader.open_image(model, EngineOptions.from_choices(chosen, yes=yes, force=force),
                               TerminalHooks(out), configured=chosen.get("model"),
                               components=components, previous=previous)
    flags = dict(negative=negative, steps=steps, cfg_scale=cfg_scale, sampler=sampler, seed=seed,
                 width=width, height=height, init=str(init) if init else None, strength=strength)
    flags.update(_size_flags(size, width, height))
    params = pictures.checked_params(" ".join(prompt) if prompt else None, flags, previous,
                                     chosen, engine)
    paths = pictures.output_paths(output, params, count, force=force)

    saved: list[dict[str, Any]] = []
    with phone.long_job(out, notify=notify, title="offgrid imagine") as job:
        stats = _run(out, engine, params, count, paths, force, saved)
        job.done = f"{len(saved)} picture{'s' * (len(saved) != 1)} ready"
    _report(out, engine, params, stats, saved, json_)
    if history.enabled(no_save, conf):
        history.History().record_run("imagine", engine.model_name, params.prompt,
                             "\n".join(item["path"] for item in saved),
                             {"parameters": params.to_metadata(), "count": count,
                              "images": saved, "timings": stats.to_dict()})
    if open_:
        for item in saved:
            _show(out, Path(item["path"]))


def _size_flags(size: str | None, width: int | None, height: int | None) -> dict[str, int]:
    """--size WxH as width/height flags (which it may not be combined with)."""
    if size is None:
        return {}
    if width is not None or height is not None:
        raise UsageError("give either --size or --width/--height, not both")
    w, h = pictures.parse_size(size)
    return {"width": w, "height": h}


def _run(out: Output, engine: ImageEngine, params: ImageParams, count: int, paths: list[Path],
         force: bool, saved: list[dict[str, Any]]) -> ImageStats:
    """Generate with a progress bar on stderr, saving each picture the moment it is done."""
    with out.progress(f"loading {engine.model_name}") as bar:
        def on_progress(p: ImageProgress) -> None:
            rate = f" · {p.seconds_per_step:.2f} s/step" if p.step else ""
            label = f"image {p.image + 1}/{p.images}" if p.images > 1 else "image"
            bar.update(completed=p.step, total=p.steps, description=label + rate)

        def on_image(done: GeneratedImage) -> None:
            path = pictures.save_png(done.image, paths[done.index], done.params, force=force)
            saved.append({"path": str(path), "seed": done.params.seed,
                          "seconds": round(done.seconds, 3),
                          "seconds_per_step": round(done.seconds_per_step, 4)})

        return engine.generate(params, count, on_progress=on_progress, on_image=on_image)


def _report(out: Output, engine: ImageEngine, params: ImageParams, stats: ImageStats,
            saved: list[dict[str, Any]], json_: bool) -> None:
    if json_:
        out.json({"images": saved, "model": engine.model_name,
                  "parameters": params.to_metadata(), "timings": stats.to_dict()})
        return
    for item in saved:
        out.line(item["path"])
    seeds = ", ".join(str(item["seed"]) for item in saved)
    out.info(f"seed {seeds} · {params.width}x{params.height} · {params.steps} step{'' if params.steps == 1 else 's'} · "
             f"{stats.mean_seconds_per_step:.2f} s/step · {stats.total_seconds:.1f} s")


def _show(out: Output, path: Path) -> None:
    """Open a picture in the device's viewer; a missing viewer is a warning, not a failure."""
    from offgrid.device import termux

    try:
        termux.open_file(path)
    except OffgridError as exc:
        out.warn(f"cannot show {path}: {exc.message}")


def register(app: typer.Typer) -> None:
    app.command("imagine")(imagine_command)

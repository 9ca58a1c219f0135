"""`offgrid config`: show and change settings in config.toml."""

from __future__ import annotations

from typing import Annotated

import typer

from offgrid import config
from offgrid.device import paths
from offgrid.ui.output import Output

app = typer.Typer(help="Show and change defaults (model per command, generation settings).",
                  no_args_is_help=True)


@app.command()
def show() -> None:
    """Print the settings in effect from config.toml."""
    out = Output()
    values = config.load()
    if not values:
        out.info(f"no settings yet ({paths.config_file()})")
        return
    out.write(config.dumps(values))


@app.command("set")
def set_(key: Annotated[str, typer.Argument(help="section.name, e.g. chat.model")],
         value: Annotated[str, typer.Argument(help="The value.")]) -> None:
    """Set a default (for example: `offgrid config set chat.temperature 0.2`)."""
    typed = config.set_value(key, value)
    Output().info(f"{key} = {typed!r}")


@app.command()
def unset(key: Annotated[str, typer.Argument(help="section.name")]) -> None:
    """Remove a setting (back to the built-in default)."""
    removed = config.unset_value(key)
    Output().info(f"{key} " + ("removed" if removed else "was not set"))


@app.command()
def path() -> None:
    """Print where config.toml lives."""
    Output().line(str(paths.config_file()))


@app.command()
def keys() -> None:
    """List every key that can be set, with its type."""
    out = Output()
    for key, kind in sorted(config.SCHEMA.items()):
        out.line(f"{key} ({kind.__name__})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="config")

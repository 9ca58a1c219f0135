"""`offgrid completion`: shell completion scripts for bash, zsh and fish."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from offgrid.ui import completion
from offgrid.errors import UsageError
from offgrid.ui.output import Output

app = typer.Typer(help="Tab completion for bash (Termux's shell), zsh and fish.",
                  no_args_is_help=True)

Shell = Enum("Shell", {name: name for name in completion.SHELLS}, type=str)  # type: ignore[misc]
ShellArg = Annotated[Optional[Shell], typer.Argument(  # type: ignore[valid-type]
    help="bash, zsh or fish (default: your $SHELL).", show_default=False)]


def _shell(name: Any) -> str:
    shell = name.value if name is not None else completion.detect_shell()
    if shell is None:
        raise UsageError("cannot tell which shell you use", hint="name it: bash, zsh or fish")
    return shell


@app.command()
def install(shell: ShellArg = None,
            force: Annotated[bool, typer.Option(
                "--force", help="Replace a completion file offgrid did not write.")] = False
            ) -> None:
    """Install the completion script where your shell loads it."""
    chosen = _shell(shell)
    result = completion.install(chosen, force=force)
    out = Output()
    out.info(f"{result.action}: {result.path}")
    if result.rc_file:
        out.info(f"added a line to {result.rc_file}")
    if result.action != "unchanged":
        out.info("open a new shell (or `exec $SHELL`) to use it")


@app.command()
def show(shell: ShellArg = None) -> None:
    """Print the completion script (to save it: `offgrid completion show bash > FILE`)."""
    Output().write(completion.script(_shell(shell)))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="completion")

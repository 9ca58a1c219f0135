"""The `offgrid` program: assembles the Typer app from commands/ and turns every failure a
user can cause into `offgrid: error: …` (+ one `hint:` line) and an exit code."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Annotated, Any, Optional

# Plain help: Typer's Rich help formatting imports ~100 modules (Markdown, Pygments) and
# doubled `offgrid --help` time; panels also wrap badly on a phone-width terminal.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402  (reads TYPER_USE_RICH at import)
from typer.core import TyperCommand, TyperGroup  # noqa: E402

from offgrid import __version__
from offgrid.engines import native
from offgrid.errors import ExitCode, OffgridError
from offgrid.ui.completion import COMPLETE_VAR

# Command modules, in --help order, with the one-line summary `offgrid --help` shows (the
# first line of each command's docstring; tests/test_core.py keeps them equal). Each module
# exposes `register(app)` and is imported only when its command runs or shows its help.
COMMANDS = {
    "chat": "Ask a local language model: one question, piped text, or an interactive chat.",
    "summarize": "Summarise documents, answer questions from them, or extract fields — offline.",
    "see": "Ask a local vision model about images: describe, answer, extract fields, or chat.",
    "imagine": "Draw a picture from a prompt with a local image model.",
    "transcribe": "Transcribe speech to text on the device (whisper.cpp).",
    "serve": "Serve a local text model over the OpenAI-compatible API (/v1/chat/completions).",
    "doctor": "Check this device: engines, models, memory, storage, tools, and what to fix.",
    "models": "List, download, inspect and remove models.",
    "config": "Show and change defaults (model per command, generation settings).",
    "history": "Your conversations and runs, stored only on this device.",
    "completion": "Tab completion for bash (Termux's shell), zsh and fish.",
}
_BUILT: dict[str, Any] = {}  # command name -> its click command, built once per process


def build_command(name: str) -> Any:
    """The click command for *name*: its module imported, its Typer options turned into
    click parameters (the slow part of start-up, so done for the command that runs only)."""
    if name not in _BUILT:
        sub = typer.Typer()
        importlib.import_module(f"offgrid.commands.{name}").register(sub)
        command = typer.main.get_group(sub).commands[name]
        _plain_metavars(command)
        _BUILT[name] = command
    return _BUILT[name]


class LazyCommands(TyperGroup):
    """The root group: commands are built on first use; the listing in `offgrid --help`
    comes from COMMANDS without building any."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in COMMANDS:
            return None
        self.commands[name] = build_command(name)
        return self.commands[name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        stubs = [(name, TyperCommand(name, help=summary))
                 for name, summary in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl([(name, stub.get_short_help_str(limit)) for name, stub in stubs])


def full_command() -> Any:
    """The whole click tree, every command built (shell completion scripts, tests)."""
    root = typer.main.get_command(app)
    for name in COMMANDS:
        root.get_command(None, name)
    return root


app = typer.Typer(
    name="offgrid",
    cls=LazyCommands,
    help="Local AI on the device in your hand: chat, summarize, see, imagine, transcribe. "
         "No cloud, no account, nothing leaves the device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"offgrid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show native engine logs and "
                                        "tracebacks.")] = False,
    version: Annotated[Optional[bool], typer.Option(  # noqa: UP007 (typer needs Optional)
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """Global options."""
    if debug:
        native.set_debug(True)


def _exception_classes() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """Click's exception classes: Typer >= 0.2x vendors its own click, older ones use click."""
    clicks: list[type] = []
    usages: list[type] = []
    aborts: list[type] = [KeyboardInterrupt]
    for name in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        if name == "click.exceptions" and clicks:  # Typer vendors click: skip the ~20 ms import
            continue
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, bucket in (("ClickException", clicks), ("UsageError", usages),
                             ("Abort", aborts)):
            if hasattr(module, attr):
                bucket.append(getattr(module, attr))
    return tuple(clicks), tuple(usages), tuple(aborts)


CLICK_ERRORS, USAGE_ERRORS, ABORTS = _exception_classes()


def _report(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"offgrid: error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")


_METAVARS = {"int": "N", "int range": "N", "float": "NUM", "float range": "NUM", "str": "TEXT",
             "path": "PATH", "file": "FILE", "list[str]": "TEXT", "list[path]": "PATH"}


def _plain_metavars(command: Any) -> None:
    """Help in click's plain style (`--ctx N`, `--model TEXT`) instead of Typer 0.29's
    `<int range>` / `<list[str]>` type labels, which read as noise on a phone screen."""
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)
    for param in command.params:
        if param.param_type_name == "argument":
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = lambda ctx=None: None  # the name says it: no <list[str]>
            continue
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or descriptor.is_choice:
            continue
        label = param.display_type(None).strip("<>")
        if label in _METAVARS:
            param.metavar = _METAVARS[label]


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, map errors to one line and an exit code."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if "--debug" not in (argv if argv is not None else sys.argv):
        os.environ.setdefault("HF_HUB_VERBOSITY", "error")  # its warnings are not ours to show
    code: int = ExitCode.OK
    if COMPLETE_VAR in os.environ:  # a shell asks for dynamic values (ui/completion)
        # Typer registers its shell classes only for apps with add_completion.
        from typer.completion import completion_init

        completion_init()
    try:
        command = typer.main.get_command(app)
        _plain_metavars(command)
        result = command.main(args=argv, standalone_mode=False, prog_name="offgrid")
        code = result if isinstance(result, int) else ExitCode.OK
    except OffgridError as exc:
        if native.debug_enabled():
            traceback.print_exc()
        _report(exc.message, exc.hint)
        code = exc.exit_code
    except CLICK_ERRORS as exc:
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "offgrid"
        if type(exc).__name__ == "NoArgsIsHelpError":  # `offgrid`, `offgrid config`: the help
            sys.stdout.write(ctx.get_help() + "\n")
        elif exc.format_message():
            _report(exc.format_message(), f"see `{command} --help`")
        code = ExitCode.USAGE if isinstance(exc, USAGE_ERRORS) else exc.exit_code
    except ABORTS:
        sys.stderr.write("\n")
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:  # `offgrid … | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = ExitCode.ERROR
    except Exception as exc:  # a bug: one line, the traceback only with --debug
        if native.debug_enabled():
            traceback.print_exc()
        _report(f"unexpected {type(exc).__name__}: {exc}", "run again with --debug and report it")
        code = ExitCode.ERROR
    sys.stdout.flush()
    raise SystemExit(code)

"""One Output object per run: results to stdout, progress and diagnostics to stderr.

Chosen once from the TTY state (the httpie habit): on a terminal, Markdown, colour and
progress bars; in a pipe, plain text and nothing else on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # Rich is imported where used: `offgrid --help` needs none of it
    from rich.progress import Progress


NARROW_COLUMNS = 60  # a phone held upright has about 40


class ProgressHandle:
    """What a long task reports progress to; a no-op when stderr is not a terminal."""

    def __init__(self, progress: Progress | None = None, task: Any = None):
        self._progress, self._task = progress, task

    def update(self, completed: float | None = None, total: float | None = None,
               description: str | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total,
                                  description=description)

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    @property
    def live(self) -> bool:
        """True when a bar is on the terminal (stderr is a TTY)."""
        return self._progress is not None

    def print(self, text: str) -> None:
        """A line above the live bar, for results that share the terminal with it (a raw
        write would tear the bar); only meaningful when `live`."""
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)


class Output:
    """Where everything a command shows goes."""

    def __init__(self, *, plain: bool = False, stdout: TextIO | None = None,
                 stderr: TextIO | None = None):
        from rich.console import Console

        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.rich = _isatty(self.stdout) and not plain
        self.err_tty = _isatty(self.stderr)
        self.console = Console(file=self.stdout, highlight=False) if self.rich else None
        self.err = Console(file=self.stderr, highlight=False, soft_wrap=True,
                           force_terminal=self.err_tty or None, no_color=not self.err_tty)
        # Shown (dim) by a live stream on a terminal until its first text arrives.
        self.live_note: str | None = None

    # --- results (stdout) -------------------------------------------------------------
    def write(self, text: str) -> None:
        """Raw text to stdout, flushed at once (streaming)."""
        self.stdout.write(text)
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def markdown(self, text: str) -> None:
        """Markdown on a terminal, the text itself in a pipe."""
        if self.console is not None:
            from rich.markdown import Markdown

            self.console.print(Markdown(text))
        else:
            self.line(text.rstrip("\n"))

    def json(self, obj: Any) -> None:
        self.line(json.dumps(obj, ensure_ascii=False, indent=2))

    def stream(self, pieces: Iterable[str], *, markdown: bool = True) -> str:
        """Show text as it is generated; return all of it.

        In a pipe every piece is written and flushed. On a terminal the tail of the text is
        rendered live as Markdown, then the whole answer is printed once more in full.
        """
        if self.console is None or not markdown:
            return self._stream_plain(pieces)
        return self._stream_live(pieces)

    def _stream_plain(self, pieces: Iterable[str]) -> str:
        parts: list[str] = []
        try:
            for piece in pieces:
                parts.append(piece)
                self.write(piece)
        finally:  # also when Ctrl-C cuts the reply: end the line
            if parts and not parts[-1].endswith("\n"):
                self.write("\n")
        return "".join(parts)

    def _stream_live(self, pieces: Iterable[str]) -> str:
        from rich.live import Live
        from rich.markdown import Markdown
        from rich.text import Text

        assert self.console is not None
        parts: list[str] = []
        rows = max(self.console.size.height - 2, 4)
        interrupted = False
        shown = {"done": False}

        def view() -> Any:
            # Called by Live at each refresh (10/s), not per piece: parsing the Markdown
            # once per token made generation on a terminal several times slower.
            if shown["done"]:
                return ""
            if not parts:  # e.g. "thinking…" while a model's hidden reasoning runs
                return Text(self.live_note or "", style="dim")
            return Markdown("\n".join("".join(parts).splitlines()[-rows:]))

        with Live(console=self.console, transient=True, refresh_per_second=10,
                  vertical_overflow="crop", get_renderable=view):
            try:
                for piece in pieces:
                    parts.append(piece)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                shown["done"] = True
        text = "".join(parts)
        if text.strip():  # the whole answer, also what came before a Ctrl-C
            self.console.print(Markdown(text))
        if interrupted:
            raise KeyboardInterrupt
        return text

    # --- diagnostics (stderr) -----------------------------------------------------------
    def info(self, message: str) -> None:
        """A diagnostic line on stderr (dim on a terminal)."""
        self.err.print(message, style="dim", markup=False)

    def warn(self, message: str) -> None:
        self.err.print(f"offgrid: warning: {message}", style="yellow", markup=False)

    def dim(self, text: str) -> None:
        """Secondary text (e.g. a model's thinking) on stdout, dimmed on a terminal."""
        if self.console is not None:
            self.console.print(text, style="dim", markup=False, end="")
        else:
            self.write(text)

    @contextmanager
    def progress(self, description: str, total: float | None = None,
                 unit: str = "") -> Iterator[ProgressHandle]:
        """A progress bar on stderr when it is a terminal; silent otherwise."""
        if not self.err_tty:
            yield ProgressHandle()
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                                   TextColumn, TimeElapsedColumn, TimeRemainingColumn)
        from rich.table import Column

        # On a narrow (phone) terminal the description gives way, never the numbers.
        narrow = self.err.width < NARROW_COLUMNS
        label = Column(no_wrap=True, overflow="ellipsis",
                       max_width=max(8, self.err.width - 24) if narrow else None)
        columns = [SpinnerColumn(), TextColumn("{task.description}", table_column=label),
                   BarColumn(bar_width=None),
                   MofNCompleteColumn() if unit != "bytes" else TextColumn(
                       "{task.percentage:>3.0f}%"),
                   TimeElapsedColumn(), TimeRemainingColumn()]
        if narrow:
            columns.pop(-2)  # elapsed time: the least useful column when space is short
        with Progress(*columns, console=self.err, transient=True, expand=True) as progress:
            task = progress.add_task(description, total=total)
            yield ProgressHandle(progress, task)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner on stderr while something without progress runs (terminal only)."""
        if not self.err_tty:
            yield
            return
        with self.err.status(message, spinner="dots"):
            yield

    def confirm(self, question: str, default: bool = True) -> bool:
        """Ask yes/no on stderr; callers check that stdin is a terminal first."""
        suffix = " [Y/n] " if default else " [y/N] "
        self.err.print(question + suffix, end="", markup=False)
        try:
            answer = input().strip().lower()
        except EOFError:
            return False
        if not answer:
            return default
        return answer in ("y", "yes")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def stdin_is_tty() -> bool:
    return _isatty(sys.stdin)


def read_stdin_text() -> str:
    """All of stdin as text (UTF-8, never failing on a stray byte)."""
    data = sys.stdin.buffer.read()
    return data.decode("utf-8", errors="replace")

"""The engine loader as the user sees it: the "Download it now?" question on a terminal, one
progress bar per downloaded file and a spinner while the model loads, all on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from offgrid.engines.loader import LoadHooks
from offgrid.models.store import DownloadProgress
from offgrid.ui.output import Output, stdin_is_tty


class TerminalHooks(LoadHooks):
    """LoadHooks drawn through an Output. The download question is asked only when both stdin
    and stderr are a terminal: a script gets the error and its `offgrid models pull` hint."""

    def __init__(self, out: Output):
        self.out = out

    def confirm_download(self, message: str) -> bool:
        return stdin_is_tty() and self.out.err_tty and self.out.confirm(message)

    @contextmanager
    def downloading(self, spec: str) -> Iterator[DownloadProgress]:
        bars: dict[str, Any] = {}
        with self.out.progress("downloading", unit="bytes") as bar:
            def progress(name: str, done: int, total: int) -> None:
                if name not in bars:
                    bars[name] = True
                    bar.update(completed=0, total=total or None, description=name)
                bar.update(completed=done, total=total or None)

            try:
                yield progress
            except KeyboardInterrupt:
                self.out.info(f"download stopped; `offgrid models pull {spec}` resumes it")
                raise

    @contextmanager
    def loading(self, what: str) -> Iterator[None]:
        with self.out.status(f"loading {what}"):
            yield

    def notice(self, message: str) -> None:
        self.out.warn(message)

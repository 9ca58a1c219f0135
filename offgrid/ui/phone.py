"""Phone integration for the commands: the clipboard, notifications at the end of a long
job, and the wake lock that keeps Android from sleeping through one (device.termux)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from offgrid import config
from offgrid.errors import InputError, OffgridError
from offgrid.ui.output import Output

NOTIFY_AFTER_SECONDS = 60.0


def clipboard_text() -> str:
    """The clipboard's text for --clipboard; an empty clipboard is an input error."""
    from offgrid.device import termux

    text = termux.clipboard_get()
    if not text.strip():
        raise InputError("the clipboard is empty")
    return text


def check_copy(copy: bool) -> None:
    """--copy: say there is no clipboard before the work, not after it (the result of a long
    job would be lost with the error)."""
    if copy:
        from offgrid.device import termux

        termux.clipboard_tool()


def deliver(out: Output, text: str, *, copy: bool = False, write: bool = False) -> None:
    """Hand the finished answer over: print it (*write*; streamed answers are already out)
    and, with --copy, put it on the clipboard. A clipboard that fails now is a warning: the
    answer is out (or being saved) already."""
    if write:
        out.write(text if text.endswith("\n") else text + "\n")
    if copy:
        from offgrid.device import termux

        try:
            termux.clipboard_set(text)
        except OffgridError as exc:
            out.warn(f"not copied: {exc.message}")
            return
        out.info("copied to the clipboard")


@dataclass
class LongJob:
    """What `long_job` yields: set `.done` to the notification text (default: "finished")."""

    title: str
    done: str = "finished"
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@contextmanager
def long_job(out: Output, *, notify: bool | None = None, title: str = "offgrid") -> Iterator[LongJob]:
    """Hold the wake lock (Termux) for a long job and, when it took over a minute and
    notifications are on (--notify, or config general.notify), notify at the end, also
    when it failed. A notification that cannot be sent is a warning, never an error."""
    from offgrid.device import termux

    if notify is None:
        notify = bool(config.load().get("general.notify", False))
    job = LongJob(title)
    outcome = "failed"
    with termux.wake_lock():
        try:
            yield job
            outcome = job.done
        except KeyboardInterrupt:
            outcome = "stopped"
            raise
        finally:
            if notify and job.elapsed > NOTIFY_AFTER_SECONDS:
                try:
                    termux.notify(title, f"{outcome} after {_duration(job.elapsed)}")
                except OffgridError as exc:
                    out.warn(f"no notification: {exc.message}")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"

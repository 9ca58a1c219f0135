"""The phone's own helpers: clipboard, notifications, opening files, microphone, camera, wake
lock and shared storage, through the Termux:API commands on Android and the usual desktop
tools elsewhere (wl-copy/xclip/xsel/pbcopy, notify-send/osascript, xdg-open/open).

Every call runs with a timeout: a Termux:API command waits for the Termux:API *app*, and when
that app is missing it can wait forever. A missing tool is an OffgridError naming the command
that installs it. Nothing here prints; the wake lock never fails a job.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from offgrid import device
from offgrid.errors import InputError, OffgridError

TIMEOUT = 15.0  # seconds for one Termux:API call (the app may need to start)
CAMERA_TIMEOUT = 30.0
API_HINT = "pkg install termux-api, and install the Termux:API app (from the same store as Termux)"
APP_HINT = "install and open the Termux:API app once (from the same store as Termux)"


@dataclass(frozen=True)
class Result:
    """What a helper command printed."""

    stdout: str
    stderr: str


def on_termux() -> bool:
    return device.is_termux()


def is_macos() -> bool:
    return platform.system() == "Darwin"


def have(name: str) -> bool:
    """True when *name* is an executable on PATH."""
    return shutil.which(name) is not None


def run(argv: list[str], *, what: str, input: str | None = None, timeout: float = TIMEOUT,
        hint: str | None = None) -> Result:
    """Run a helper command; a missing program, a timeout or a failure is one OffgridError.

    Output goes to temporary files, not pipes: clipboard tools (xclip, wl-copy) leave a child
    behind that would hold a pipe open until the selection changes.
    """
    exe = shutil.which(argv[0])
    termux_api = argv[0].startswith("termux-")
    if exe is None:
        raise OffgridError(f"{what} needs `{argv[0]}`, which is not installed",
                           hint=hint or (API_HINT if termux_api else None))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run([exe, *argv[1:]], input=input.encode() if input is not None
                                  else None, stdout=out, stderr=err, timeout=timeout,
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise OffgridError(f"{what}: `{argv[0]}` did not answer within {timeout:g} s",
                               hint=APP_HINT if termux_api else hint) from None
        except OSError as exc:
            raise OffgridError(f"{what}: cannot run `{argv[0]}` ({exc.strerror})") from None
        out.seek(0)
        err.seek(0)
        result = Result(out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))
    if proc.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise OffgridError(f"{what}: `{argv[0]}` failed" + (f": {detail[-1]}" if detail else
                                                             f" (exit {proc.returncode})"),
                           hint=hint)
    return result


def _first_available(candidates: list[list[str]]) -> list[str] | None:
    return next((argv for argv in candidates if have(argv[0])), None)


def _desktop_tool(what: str, candidates: list[list[str]], install: str) -> list[str]:
    argv = _first_available(candidates)
    if argv is None:
        names = " / ".join(dict.fromkeys(c[0] for c in candidates))
        raise OffgridError(f"{what} needs one of: {names}", hint=install)
    return argv


def _wayland() -> bool:
    return bool(os.environ.get("WAYLAND_DISPLAY"))


# --- clipboard --------------------------------------------------------------------------------
def _clipboard_argv(read: bool) -> list[str]:
    if on_termux():
        return ["termux-clipboard-get"] if read else ["termux-clipboard-set"]
    if is_macos():
        return ["pbpaste"] if read else ["pbcopy"]
    wayland = [["wl-paste", "--no-newline"]] if read else [["wl-copy"]]
    x11 = ([["xclip", "-selection", "clipboard", "-o"], ["xsel", "--clipboard", "--output"]]
           if read else [["xclip", "-selection", "clipboard", "-i"],
                         ["xsel", "--clipboard", "--input"]])
    candidates = wayland + x11 if _wayland() else x11 + wayland
    return _desktop_tool("the clipboard", candidates,
                         "install wl-clipboard (Wayland) or xclip (X11)")


def clipboard_tool() -> list[str]:
    """The program that copies to the clipboard here (an OffgridError naming what to install
    when there is none)."""
    return _clipboard_argv(read=False)


def clipboard_get(timeout: float = TIMEOUT) -> str:
    """The clipboard's text ('' when empty)."""
    return run(_clipboard_argv(read=True), what="reading the clipboard", timeout=timeout).stdout


def clipboard_set(text: str, timeout: float = TIMEOUT) -> None:
    """Put *text* on the clipboard."""
    run(_clipboard_argv(read=False), what="copying to the clipboard", input=text, timeout=timeout)


# --- notifications and opening files -----------------------------------------------------------
def notify(title: str, content: str, timeout: float = TIMEOUT) -> None:
    """Show a notification."""
    if on_termux():
        argv = ["termux-notification", "--id", "offgrid", "--title", title, "--content", content]
    elif is_macos():
        script = f"display notification {_applescript(content)} with title {_applescript(title)}"
        argv = ["osascript", "-e", script]
    else:
        argv = _desktop_tool("notifications", [["notify-send", "--app-name=offgrid", title,
                                                content]], "install libnotify (notify-send)")
    run(argv, what="sending a notification", timeout=timeout)


def _applescript(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def open_file(path: Path, timeout: float = TIMEOUT) -> None:
    """Open *path* in the app the system picks (the image viewer, the PDF reader…)."""
    if not path.exists():
        raise InputError(f"cannot open {path}: no such file")
    if on_termux():
        argv = ["termux-open", str(path)]
    elif is_macos():
        argv = ["open", str(path)]
    else:
        argv = _desktop_tool("opening files", [["xdg-open", str(path)]],
                             "install xdg-utils (xdg-open)")
    run(argv, what=f"opening {path.name}", timeout=timeout)


# --- camera and microphone ---------------------------------------------------------------------
def take_photo(path: Path, camera: int = 0, timeout: float = CAMERA_TIMEOUT) -> Path:
    """Take a photo with camera *camera* (0 = back, 1 = front, usually) into *path* (JPEG)."""
    if not on_termux() and not have("termux-camera-photo"):
        raise OffgridError("taking a photo needs Termux with the Termux:API app",
                           hint="pass an image file instead")
    run(["termux-camera-photo", "-c", str(camera), str(path)], what="taking a photo",
        timeout=timeout)
    if not path.exists() or path.stat().st_size == 0:
        raise OffgridError(f"camera {camera} returned no picture",
                           hint="allow Termux:API to use the camera in Android's app settings, "
                                "or try another camera (--camera-id 1)")
    return path


# --- wake lock ---------------------------------------------------------------------------------

@contextmanager
def wake_lock() -> Iterator[bool]:
    """Keep Android from freezing the process while the screen is off; always released.

    Yields True when a lock is held. Outside Termux, or when `termux-wake-lock` is missing or
    fails, it does nothing: a wake lock is a courtesy, never a reason to fail a job.
    """
    held = False
    if on_termux() and have("termux-wake-lock"):
        try:
            run(["termux-wake-lock"], what="taking the wake lock", timeout=5)
            held = True
        except OffgridError:
            held = False
    try:
        yield held
    finally:
        if held:
            try:
                run(["termux-wake-unlock"], what="releasing the wake lock", timeout=5)
            except OffgridError:
                pass


# --- shared storage ----------------------------------------------------------------------------
def storage_dir() -> Path:
    """~/storage, the links `termux-setup-storage` creates (shared, downloads, dcim…)."""
    return Path.home() / "storage"


def storage_linked() -> bool:
    """True when ~/storage/shared is a readable folder."""
    shared = storage_dir() / "shared"
    return shared.is_dir() and os.access(shared, os.R_OK)


def shared_storage() -> Path:
    """The phone's shared storage (Downloads, DCIM, …) as seen from Termux."""
    if not storage_linked():
        raise OffgridError("Termux cannot see the phone's shared storage yet",
                           hint="run termux-setup-storage and allow the permission")
    return storage_dir() / "shared"


def check_readable(path: Path) -> None:
    """A clear error for a file on shared storage Termux may not read (no storage permission)."""
    text = str(path)
    shared = text.startswith(("/sdcard", "/storage/emulated")) or text.startswith(
        str(storage_dir()))
    if shared and on_termux() and not os.access(path, os.R_OK) and not storage_linked():
        raise InputError(f"cannot read {path}: Termux has no storage permission",
                         hint="run termux-setup-storage and allow the permission")

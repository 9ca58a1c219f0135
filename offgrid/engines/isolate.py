"""Run a function in a child Python process, so it can be stopped and may crash.

Some native work cannot be cancelled in-process (stable-diffusion.cpp swallows exceptions raised
in its callbacks, KeyboardInterrupt included) and some of it aborts or segfaults on bad input.
`run_isolated(target, ...)` runs `target(*args, emit=emit, **kwargs)` in a fresh interpreter
(`python -m offgrid.engines.isolate`) and talks to it over a socket pair:

* every object the target passes to `emit(...)` reaches the parent's `on_event` as it happens;
* the target's return value is returned in the parent (anything picklable);
* an OffgridError raised in the child is raised again in the parent, hint and exit code kept;
  any other exception becomes EngineError;
* Ctrl-C in the parent terminates the child, waits for it, then re-raises KeyboardInterrupt;
* a native crash (a signal: SIGSEGV, SIGABRT, the OOM killer's SIGKILL …) becomes an EngineError
  naming the signal and quoting the child's last log line. The child's stdout and stderr (where
  the C libraries print) are captured: the last lines are kept on the error as `log_tail`, and each
  line can be streamed to `on_log`.

The child ignores SIGINT (the parent decides when it stops) and exits by itself if the parent
disappears. This module knows nothing about any particular engine.
"""

from __future__ import annotations

import collections
import importlib
import os
import re
import signal
import subprocess
import sys
import threading
import traceback
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any, Callable, TypeVar

from offgrid.errors import EngineError, ExitCode, OffgridError

T = TypeVar("T")
Emit = Callable[[Any], None]

TERMINATE_GRACE_SECONDS = 3.0
LOG_TAIL_LINES = 40
_MESSAGE_LOG_CHARS = 240


def run_isolated(
    target: Callable[..., T],
    args: tuple = (),
    kwargs: dict[str, Any] | None = None,
    *,
    on_event: Callable[[Any], None] | None = None,
    on_log: Callable[[str], None] | None = None,
    label: str = "the engine",
    env: dict[str, str] | None = None,
) -> T:
    """Call `target(*args, emit=..., **kwargs)` in a child process and return its result.

    `target` must be a module-level function (it is imported by name in the child). `on_log` is
    called from a background thread with each line the child prints. `label` names the work in
    error messages ("the image engine crashed …"). `env` adds variables to the child's environment.
    """
    module, qualname = _importable_name(target)
    request = (module, qualname, tuple(args), dict(kwargs or {}), list(sys.path))
    parent_conn, child_conn = Pipe(duplex=True)
    proc = _spawn(child_conn, env)
    child_conn.close()
    log = _LogPump(proc, on_log)
    try:
        parent_conn.send(request)
        outcome = _receive_until_done(parent_conn, on_event)
        returncode = _wait(proc)
    except BaseException:
        _stop(proc)
        raise
    finally:
        parent_conn.close()
        _stop(proc)
        log.join()
    return _finish(outcome, returncode, log.tail(), label)


def _importable_name(target: Callable[..., Any]) -> tuple[str, str]:
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", "")
    if not module or module == "__main__" or "<locals>" in qualname or "<lambda>" in qualname:
        raise TypeError(f"run_isolated needs a module-level function, got {target!r}")
    return module, qualname


def _spawn(child_conn: Connection, extra_env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env.update(extra_env or {})
    fd = child_conn.fileno()
    return subprocess.Popen(
        [sys.executable, "-m", "offgrid.engines.isolate", str(fd)],
        pass_fds=(fd,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


def _receive_until_done(conn: Connection, on_event: Callable[[Any], None] | None) -> tuple[str, Any] | None:
    """Forward events until the child sends its result or error; None if it died first."""
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, ConnectionResetError):
            return None
        if kind == "event":
            if on_event is not None:
                on_event(payload)
        else:
            return kind, payload


def _wait(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(timeout=TERMINATE_GRACE_SECONDS * 10)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return proc.wait()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the child if it still runs, then kill it if it does not go."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=TERMINATE_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _finish(outcome: tuple[str, Any] | None, returncode: int, log_tail: list[str], label: str) -> Any:
    if outcome is not None and outcome[0] == "result":
        return outcome[1]
    if outcome is not None and outcome[0] == "error":
        raise _rebuild_error(outcome[1], label, log_tail)
    raise _crash_error(returncode, log_tail, label)


def _rebuild_error(payload: dict[str, Any], label: str, log_tail: list[str]) -> OffgridError:
    error_class = _offgrid_error_class(payload.get("class"))
    if error_class is not None:
        error = error_class.__new__(error_class)
        OffgridError.__init__(error, payload["message"], payload.get("hint"), ExitCode(payload["exit_code"]))
    else:
        error = EngineError(f"{label} failed: {payload['message']}", hint="run with --debug for details")
    error.log_tail = log_tail  # type: ignore[attr-defined]
    error.child_traceback = payload.get("traceback", "")  # type: ignore[attr-defined]
    return error


def _offgrid_error_class(dotted: str | None) -> type[OffgridError] | None:
    if not dotted:
        return None
    module_name, _, class_name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, OffgridError) else None


def _crash_error(returncode: int, log_tail: list[str], label: str) -> EngineError:
    if returncode < 0:
        name = _signal_name(-returncode)
        if -returncode == signal.SIGKILL:
            message = f"{label} was killed (signal {name}), most likely because memory ran out"
            hint = "close other apps or use a smaller model or image size"
        else:
            message = f"{label} crashed (signal {name})"
            hint = "run with --debug to see the engine's full log"
    else:
        message = f"{label} stopped unexpectedly (exit code {returncode})"
        hint = "run with --debug to see the engine's full log"
    last = next((line for line in reversed(log_tail) if line.strip()), "")
    if last:
        message += f"; last log line: {_short_source_paths(last.strip())[:_MESSAGE_LOG_CHARS]}"
    error = EngineError(message, hint=hint)
    error.log_tail = log_tail  # type: ignore[attr-defined]
    error.returncode = returncode  # type: ignore[attr-defined]
    return error


def _short_source_paths(line: str) -> str:
    """'/tmp/build/…/ggml/src/ggml.c:3220: GGML_ASSERT(…)' → 'ggml.c:3220: GGML_ASSERT(…)'."""
    return re.sub(r"(?:/[^\s/:]+)+/([^\s/:]+:\d+)", r"\1", line)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _LogPump:
    """Drain the child's output in a thread: keep the last lines, pass each to a callback."""

    def __init__(self, proc: subprocess.Popen[bytes], on_log: Callable[[str], None] | None):
        self._lines: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self._on_log = on_log
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            for line in raw.decode("utf-8", errors="replace").replace("\r", "\n").splitlines():
                if not line.strip():
                    continue
                self._lines.append(line)
                if self._on_log is not None:
                    try:
                        self._on_log(line)
                    except Exception:  # a broken log sink must not kill the pump
                        pass
        stream.close()

    def join(self) -> None:
        self._thread.join(timeout=5)

    def tail(self) -> list[str]:
        return list(self._lines)


# ----------------------------------------------------------------------------- child side


def _child_main(fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    module, qualname, args, kwargs, parent_path = conn.recv()
    sys.path.extend(p for p in parent_path if p not in sys.path)
    threading.Thread(target=_exit_when_parent_leaves, args=(conn,), daemon=True).start()
    send_lock = threading.Lock()

    def send(message: tuple[str, Any]) -> None:
        with send_lock:
            conn.send(message)

    def emit(event: Any) -> None:
        send(("event", event))

    try:
        target = _resolve(module, qualname)
        result = target(*args, emit=emit, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        send(("error", _error_payload(exc)))
        _exit(1)
    send(("result", result))
    _exit(0)


def _resolve(module: str, qualname: str) -> Callable[..., Any]:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _error_payload(exc: BaseException) -> dict[str, Any]:
    payload: dict[str, Any] = {"traceback": "".join(traceback.format_exception(exc))}
    if isinstance(exc, OffgridError):
        cls = type(exc)
        payload.update(
            {
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "message": exc.message,
                "hint": exc.hint,
                "exit_code": int(exc.exit_code),
            }
        )
    else:
        payload["message"] = f"{type(exc).__name__}: {exc}"
    return payload


def _exit_when_parent_leaves(conn: Connection) -> None:
    """The parent never sends after the request: end of file means it is gone."""
    try:
        conn.recv()
    except (EOFError, OSError):
        pass
    _exit(1)


def _exit(code: int) -> None:
    """Leave without running native destructors (they may crash on a half-built context)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


if __name__ == "__main__":
    _child_main(int(sys.argv[1]))

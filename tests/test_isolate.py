"""run_isolated: results, streamed events, errors, native crashes and Ctrl-C, with toy children."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

import pytest

from offgrid.engines.isolate import run_isolated
from offgrid.errors import EngineError, ExitCode, InputError


# --- toy targets: module level, so the child can import them by name -------------------------


def add(a: int, b: int, *, emit) -> int:
    return a + b


def count_to(n: int, *, emit) -> str:
    for i in range(1, n + 1):
        emit({"step": i, "steps": n})
    return "done"


def print_then_segfault(*, emit) -> None:
    print("native: loading tensors", file=sys.stderr, flush=True)
    print("native: about to read address zero", file=sys.stderr, flush=True)
    ctypes.string_at(0)


def abort(*, emit) -> None:
    os.abort()


def raise_input_error(*, emit) -> None:
    raise InputError("picture.png is not an image", hint="give a PNG or JPEG file")


def raise_value_error(*, emit) -> None:
    raise ValueError("NULL pointer access")


def announce_pid_then_sleep(*, emit) -> None:
    emit(os.getpid())
    time.sleep(60)


def exit_quietly(*, emit) -> None:
    os._exit(3)


# --- tests ------------------------------------------------------------------------------------


def test_returns_the_result():
    assert run_isolated(add, (2, 3)) == 5


def test_streams_events_in_order_before_the_result():
    events = []
    assert run_isolated(count_to, (4,), on_event=events.append) == "done"
    assert events == [{"step": i, "steps": 4} for i in range(1, 5)]


def test_segfault_becomes_engine_error_with_signal_and_last_log_line():
    lines = []
    with pytest.raises(EngineError) as info:
        run_isolated(print_then_segfault, label="the image engine", on_log=lines.append)
    message = info.value.message
    assert message.startswith("the image engine crashed (signal SIGSEGV)")
    assert "native: about to read address zero" in message
    assert info.value.log_tail[-2:] == ["native: loading tensors", "native: about to read address zero"]
    assert lines[:2] == ["native: loading tensors", "native: about to read address zero"]
    assert "\n" not in message


def test_abort_is_reported_as_sigabrt():
    with pytest.raises(EngineError, match=r"crashed \(signal SIGABRT\)"):
        run_isolated(abort)


def test_exit_without_result_is_an_engine_error():
    with pytest.raises(EngineError, match=r"stopped unexpectedly \(exit code 3\)"):
        run_isolated(exit_quietly)


def test_offgrid_error_comes_back_with_class_hint_and_exit_code():
    with pytest.raises(InputError) as info:
        run_isolated(raise_input_error)
    assert info.value.message == "picture.png is not an image"
    assert info.value.hint == "give a PNG or JPEG file"
    assert info.value.exit_code == ExitCode.ERROR


def test_other_exceptions_become_engine_error():
    with pytest.raises(EngineError, match="the image engine failed: ValueError: NULL pointer access") as info:
        run_isolated(raise_value_error, label="the image engine")
    assert "raise_value_error" in info.value.child_traceback


def test_keyboard_interrupt_kills_the_child_and_propagates():
    child_pids = []

    def on_event(pid: int) -> None:
        child_pids.append(pid)
        # what Ctrl-C does: SIGINT to the parent while it waits for the child
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()

    with pytest.raises(KeyboardInterrupt):
        run_isolated(announce_pid_then_sleep, on_event=on_event)
    (pid,) = child_pids
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped, not left sleeping for a minute


def test_rejects_functions_the_child_cannot_import():
    with pytest.raises(TypeError, match="module-level function"):
        run_isolated(lambda *, emit: None)

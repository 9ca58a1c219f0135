"""The interactive chat on a real pseudo-terminal: typing, slash commands, Ctrl-C, Ctrl-D."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.conftest import ROOT


class Terminal:
    """A child process on a pty, 60 columns wide like a phone in portrait."""

    def __init__(self, args: list[str]):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 60, 0, 0))
        env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
        def controlling_tty() -> None:  # so Ctrl-C on the pty sends SIGINT, as in a terminal
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen([sys.executable, "-m", "offgrid", *args], stdin=slave,
                                     stdout=slave, stderr=slave, env=env, close_fds=True,
                                     preexec_fn=controlling_tty)
        os.close(slave)
        self.master, self.seen = master, ""

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never appeared in:\n{self.seen[-2000:]}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        assert text in self.seen, self.seen[-2000:]

    def settle(self, quiet: float = 0.7, timeout: float = 60) -> None:
        """Read until the child has printed nothing for *quiet* seconds (it waits for input)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], quiet)
            if not ready:
                return
            self.seen += os.read(self.master, 65536).decode("utf-8", "replace")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self, timeout: float = 60) -> int:
        """Wait for the child to exit, reading what it prints so it never blocks."""
        deadline = time.monotonic() + timeout
        try:
            while self.proc.poll() is None and time.monotonic() < deadline:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if ready:
                    try:
                        self.seen += os.read(self.master, 65536).decode("utf-8", "replace")
                    except OSError:
                        pass
            return self.proc.wait(timeout=1)
        finally:
            os.close(self.master)


def test_repl_on_a_terminal(offgrid, tiny_llama: Path) -> None:
    term = Terminal(["chat", "-m", str(tiny_llama), "-n", "8", "--seed", "1"])
    term.expect("/help for commands")
    term.settle()
    term.type("hello from a phone\r")
    term.settle()
    term.type("/stats\r")
    term.expect("tok/s")
    term.settle()
    term.type("/set temperature 0.3\r")
    term.expect("temperature = 0.3")
    term.settle()
    term.type("\x04")  # Ctrl-D leaves
    assert term.close() == 0
    history = json.loads(offgrid("history", "--json").stdout)
    assert len(history) == 1 and history[0]["title"] == "hello from a phone"


def test_ctrl_c_stops_a_reply_not_the_session(offgrid, tiny_llama_endless: Path) -> None:
    term = Terminal(["chat", "-m", str(tiny_llama_endless), "-n", "100000", "--ctx", "2048",
                     "--temperature", "1.5"])
    term.expect("/help for commands")
    term.settle()
    term.type("tell me everything\r")
    time.sleep(0.3)
    term.type("\x03")  # Ctrl-C
    term.expect("[stopped]")
    term.settle()
    term.type("/exit\r")
    assert term.close() == 0
    record = json.loads(offgrid("history", "--json").stdout)[0]
    shown = json.loads(offgrid("history", "show", record["id"], "--json").stdout)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]


def test_no_save_keeps_typed_lines_off_the_disk(tiny_llama: Path, isolated_home: Path) -> None:
    """--no-save: the arrow-key input history stays in memory (it went to a file)."""
    term = Terminal(["chat", "-m", str(tiny_llama), "-n", "4", "--no-save"])
    term.expect("/help for commands")
    term.settle()
    term.type("my secret question\r")
    term.settle()
    term.type("\x04")
    assert term.close() == 0
    written = [p for p in isolated_home.rglob("*") if p.is_file()]
    assert not any(b"secret" in p.read_bytes() for p in written), written


def test_json_without_a_question_is_a_usage_error(tiny_llama: Path) -> None:
    """`offgrid chat --json` on a terminal opened a chat that never printed JSON."""
    term = Terminal(["chat", "-m", str(tiny_llama), "--json"])
    assert term.close() == 2
    assert "--json needs a question" in term.seen


def test_see_stdin_image_on_a_terminal_is_a_usage_error(vision_models) -> None:  # type: ignore[no-untyped-def]
    """`offgrid see - "q"` typed on a terminal waited silently for image bytes."""
    term = Terminal(["see", "-m", str(vision_models.model), "-", "what is it?"])
    assert term.close(timeout=30) == 2
    assert "nothing is piped in" in term.seen

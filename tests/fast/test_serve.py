"""`offgrid serve` in-process: the checks made before anything listens."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.fast.helpers import hint, one_line_error


def test_beyond_loopback_without_a_key_is_refused_before_loading(cli, fake_model: Path,
                                                                  fake_engines) -> None:
    result = cli("serve", "-m", str(fake_model), "--host", "192.168.1.20")
    one_line_error(result, "listening on 192.168.1.20 lets other devices in, so it needs "
                           "--api-key", 2)
    assert hint(result).startswith("offgrid serve --host 192.168.1.20 --api-key")
    assert fake_engines.calls.loads == []


def test_a_port_in_use_is_one_error_and_the_model_is_closed(cli, fake_model: Path,
                                                            fake_engines) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cli("serve", "-m", str(fake_model), "--port", str(port))
    one_line_error(result, f"cannot listen on 127.0.0.1:{port}: address already in use")
    assert hint(result) == "pick another --port"
    assert fake_engines.calls.closed == 1


def test_bad_port_and_missing_model_are_usage_errors(cli, tmp_path: Path) -> None:
    one_line_error(cli("serve", "--port", "70000"), "Invalid value for '--port' / '-p'", 2)
    one_line_error(cli("serve", "-m", str(tmp_path / "nope.gguf")), "model file not found")

"""`offgrid doctor` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path


def test_ok_with_a_local_model_configured(offgrid, tiny_llama: Path) -> None:
    assert offgrid("config", "set", "chat.model", str(tiny_llama)).returncode == 0
    result = offgrid("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("platform  ")
    assert "llama-cpp-python  0.3.36" in result.stdout
    assert "✗" not in result.stdout


def test_json_and_exit_1_with_the_fix(offgrid) -> None:
    result = offgrid("doctor", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert set(data) >= {"platform", "cpu", "memory", "storage", "engines", "models",
                         "recommended", "tools", "problems"}
    required = [p for p in data["problems"] if p["required"]]
    assert required[0]["fix"].startswith("offgrid models pull ")
    text = offgrid("doctor")
    assert text.returncode == 1 and "  fix: offgrid models pull " in text.stdout

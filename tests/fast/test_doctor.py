"""`offgrid doctor` in-process: the exit code follows the required problems, --json is
only JSON, and broken config or history files are problems, not crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offgrid.history import History


@pytest.fixture
def engines_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every engine package reported as installed, whatever this machine has."""
    from offgrid.device import doctor

    real = doctor.engine_info

    def installed():  # type: ignore[no-untyped-def]
        info = real()
        for engine in info.values():
            engine["version"] = engine["version"] or "9.9.9"
        return info

    monkeypatch.setattr(doctor, "engine_info", installed)


def problems(result) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(result.stdout)["problems"]


def test_nothing_downloaded_exits_1_with_the_fix(cli, engines_installed) -> None:
    result = cli("doctor", "--json")
    assert result.returncode == 1 and result.stderr == ""
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["tasks_in_use"] == ["text"]
    assert set(data) >= {"platform", "cpu", "memory", "storage", "engines", "models",
                         "recommended", "tools", "problems"}
    required = [p for p in data["problems"] if p["required"]]
    assert [p["what"] for p in required] == ["no text model is downloaded"]
    assert required[0]["fix"] == f"offgrid models pull {data['recommended']['text']}"
    text = cli("doctor")
    assert text.returncode == 1 and text.stdout.startswith("platform  ")
    assert "✗ no text model is downloaded\n  fix: offgrid models pull " in text.stdout


def test_a_configured_local_model_is_enough(cli, fake_model: Path, engines_installed) -> None:
    assert cli("config", "set", "chat.model", str(fake_model)).returncode == 0
    result = cli("doctor")
    assert result.returncode == 0, result.stdout
    assert "✗" not in result.stdout and result.stderr == ""


def test_a_configured_model_that_is_missing(cli, tmp_path: Path, engines_installed) -> None:
    assert cli("config", "set", "transcribe.model", str(tmp_path / "gone.bin")).returncode == 0
    result = cli("doctor", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["tasks_in_use"] == ["text", "speech"]
    assert {"what": f"configured model: model file not found: {tmp_path / 'gone.bin'}",
            "fix": "offgrid config show", "required": True} in problems(result)


def test_a_missing_engine_is_required(cli, fake_model: Path, monkeypatch) -> None:
    from offgrid.device import doctor

    real = doctor.engine_info
    monkeypatch.setattr(doctor, "engine_info", lambda: {
        name: {**info, "version": None} for name, info in real().items()})
    assert cli("config", "set", "chat.model", str(fake_model)).returncode == 0
    result = cli("doctor", "--json")
    assert result.returncode == 1
    (problem,) = [p for p in problems(result) if p["required"]]
    assert problem["what"] == "the llama-cpp-python engine (text) is not installed"


def test_broken_config_and_history_are_problems(cli, isolated_home: Path, engines_installed) -> None:
    path = isolated_home / "offgrid" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[chat\n")
    db = History().path
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"not sqlite" * 200)
    result = cli("doctor", "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    whats = [p["what"] for p in problems(result) if p["required"]]
    assert any(w.startswith(f"config file {path} is malformed") for w in whats), whats
    assert any(w.startswith("the history database is unreadable") for w in whats), whats
    assert db.read_bytes() == b"not sqlite" * 200  # checked read-only


def test_doctor_never_creates_the_history(cli, engines_installed) -> None:
    cli("doctor")
    assert not History().path.exists()

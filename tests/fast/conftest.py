"""Fixtures for the in-process CLI tests: fake phone helpers on PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakebin import FakeBin


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    """A Termux look-alike: TERMUX_VERSION set and a folder of fake termux-* programs first
    on PATH (add them with `phone.add(name, ...)`; `phone.calls()` says what ran)."""
    bins = FakeBin(tmp_path / "phone")
    monkeypatch.setenv("TERMUX_VERSION", "0.118.1")
    monkeypatch.setenv("PATH", f"{bins.dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bins


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    """PATH holding only an (initially empty) folder of fake programs: no desktop tools,
    no ffmpeg, no recorder, unless a test adds them."""
    bins = FakeBin(tmp_path / "bare")
    monkeypatch.setenv("PATH", str(bins.dir))
    monkeypatch.delenv("TERMUX_VERSION", raising=False)
    monkeypatch.delenv("PREFIX", raising=False)
    return bins


_ORIGINAL_GET_COMMAND = None
_BUILT: dict[int, tuple[object, object]] = {}  # id(app) -> (app, its click command)


@pytest.fixture(autouse=True)
def _click_tree_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """cli.main() turns the Typer app into click commands on every call (~45 ms of
    signature and annotation evaluation, once per process in real use). Build that tree once
    per session here, so an in-process run costs what the command itself costs."""
    # Through offgrid.cli: it sets TYPER_USE_RICH=0 before importing typer, which reads it
    # then; importing typer here first would switch the help and errors to Rich's style.
    from offgrid import cli

    typer_main = cli.typer.main

    global _ORIGINAL_GET_COMMAND
    if _ORIGINAL_GET_COMMAND is None:
        _ORIGINAL_GET_COMMAND = typer_main.get_command
    original = _ORIGINAL_GET_COMMAND

    def get_command(app):  # type: ignore[no-untyped-def]
        if id(app) not in _BUILT:
            _BUILT[id(app)] = (app, original(app))
        return _BUILT[id(app)][1]

    monkeypatch.setattr(typer_main, "get_command", get_command)

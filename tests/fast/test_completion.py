"""`offgrid completion` in-process: show, install, shell detection, and the dynamic values
the scripts ask offgrid for (`_OFFGRID_COMPLETE=complete_bash offgrid`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offgrid.history import History
from offgrid.ui import completion
from tests.fast.helpers import hint, one_line_error


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return folder


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_prints_the_script(cli, shell: str) -> None:
    result = cli("completion", "show", shell)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == completion.script(shell)
    assert completion.HEADER in result.stdout


def test_show_follows_shell_and_needs_one(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    assert cli("completion", "show").stdout == completion.script("zsh")
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    unknown = cli("completion", "show")
    one_line_error(unknown, "cannot tell which shell you use", 2)
    assert hint(unknown) == "name it: bash, zsh or fish"
    one_line_error(cli("completion", "show", "tcsh"), "Invalid value for", 2)


def test_install_bash_once_and_never_clobber(cli, home: Path) -> None:
    target = home / ".local/share/bash-completion/completions/offgrid"
    first = cli("completion", "install", "bash")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    assert first.stderr == (f"installed: {target}\nadded a line to {home / '.bashrc'}\n"
                            "open a new shell (or `exec $SHELL`) to use it\n")
    assert target.read_text() == completion.script("bash")
    again = cli("completion", "install", "bash")
    assert again.stderr == f"unchanged: {target}\n"
    assert (home / ".bashrc").read_text().count("# offgrid completion") == 1
    target.write_text("# someone else's completion\n")
    refused = cli("completion", "install", "bash")
    one_line_error(refused, f"{target} exists and was not written by offgrid", 2)
    assert hint(refused) == "pass --force to replace it"
    assert target.read_text() == "# someone else's completion\n"
    forced = cli("completion", "install", "bash", "--force")
    assert forced.stderr.startswith(f"updated: {target}\n")
    assert target.read_text() == completion.script("bash")


def test_install_zsh_and_fish(cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/usr/bin/fish")
    fish = cli("completion", "install")
    assert fish.returncode == 0, fish.stderr
    assert (home / ".config/fish/completions/offgrid.fish").read_text() == completion.script("fish")
    assert "added a line" not in fish.stderr  # fish needs no rc line
    zsh = cli("completion", "install", "zsh")
    assert zsh.returncode == 0, zsh.stderr
    assert (home / ".zfunc/_offgrid").read_text() == completion.script("zsh")
    assert "fpath+=~/.zfunc" in (home / ".zshrc").read_text()


def test_dynamic_values(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    History().start("chat", None, name="trip")
    monkeypatch.setenv("_OFFGRID_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "offgrid chat -m qwen3-1")
    monkeypatch.setenv("COMP_CWORD", "3")
    aliases = cli()
    assert aliases.returncode == 0 and aliases.stdout.split() == ["qwen3-1.7b"]
    monkeypatch.setenv("COMP_WORDS", "offgrid chat --session tr")
    assert cli().stdout.split() == ["trip"]

"""Shell completion: the committed scripts are fresh, and bash, zsh and fish complete commands,
options, files, model aliases and session names with them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from offgrid.ui import completion
from offgrid.device import paths
from offgrid.errors import UsageError
from offgrid.history import History

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "completions"

# command line (the last word is being completed) -> words that must be offered
CASES = [
    ("offgrid ", {"chat", "models", "history", "doctor", "completion"}),
    ("offgrid models ", {"list", "pull", "rm", "info"}),
    ("offgrid chat --ses", {"--session"}),
    ("offgrid chat -n 5 --no-s", {"--no-save"}),
    ("offgrid chat -m qwen3-1", {"qwen3-1.7b"}),
    ("offgrid --debug models pull gem", {"gemma-3-1b", "gemma-3-4b"}),
    ("offgrid chat --session tr", {"trip"}),
    ("offgrid completion install ", {"bash", "zsh", "fish"}),
    ("offgrid chat --system-file note", {"notes.txt"}),
]

BASH_DRIVER = """
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_offgrid
printf '%s\\n' "${COMPREPLY[@]}"
"""
ZSH_DRIVER = """
compdef() { : }
compadd() { [[ "$1" == "--" ]] && shift; print -rl -- "$@" }
_files() { print -rl -- *(N) }
source "$1"; shift
words=("$@"); CURRENT=${#words}
_offgrid
"""
FISH_DRIVER = """
source $argv[1]
complete -C "$argv[2]" | string replace -r '\\t.*' ''
true
"""


def test_committed_scripts_are_fresh() -> None:
    for shell, name in completion.FILE_NAMES.items():
        committed = (SCRIPTS / name).read_text()
        assert committed == completion.script(shell), (
            f"completions/{name} is stale: run python completions/generate.py")


def test_generate_check_mode(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(SCRIPTS / "generate.py"), "--check"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """`offgrid` on PATH, one named chat session, a file to complete; cwd is tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "offgrid"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m offgrid "$@"\n')
    wrapper.chmod(0o755)
    History().start("chat", None, name="trip")
    (tmp_path / "notes.txt").write_text("x")
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def _complete(shell: str, line: str, env: dict[str, str], cwd: Path) -> set[str]:
    script = SCRIPTS / completion.FILE_NAMES[shell]
    words = line.split(" ")
    if shell == "bash":
        argv = ["bash", "--norc", "-c", BASH_DRIVER, "bash", str(script), *words]
    elif shell == "zsh":
        argv = ["zsh", "-f", "-c", ZSH_DRIVER, "zsh", str(script), *words]
    else:
        argv = ["fish", "--no-config", "-c", FISH_DRIVER, str(script), line]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
    assert result.returncode == 0, result.stderr
    return {w.rstrip("/") for w in result.stdout.split()}


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_shell_completes(shell: str, shell_env: dict[str, str], tmp_path: Path) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    for line, expected in CASES:
        offered = _complete(shell, line, shell_env, tmp_path)
        assert expected <= offered, (line, offered)


def test_dynamic_values_never_create_the_history(tmp_path: Path) -> None:
    assert completion.session_names(None, [], "") == []
    assert not paths.history_db().exists()
    assert ("qwen3-0.6b" in [alias for alias, _ in completion.model_aliases(None, [], "qwen")])


def test_install_writes_once_and_never_clobbers(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    first = completion.install("bash")
    assert first.action == "installed" and first.rc_file == tmp_path / ".bashrc"
    assert first.path == tmp_path / ".local/share/bash-completion/completions/offgrid"
    assert first.path.read_text() == completion.script("bash")
    again = completion.install("bash")
    assert again.action == "unchanged" and again.rc_file is None
    assert (tmp_path / ".bashrc").read_text().count("offgrid completion") == 1
    first.path.write_text("# someone else's completion\n")
    with pytest.raises(UsageError, match="not written by offgrid"):
        completion.install("bash")
    assert completion.install("bash", force=True).action == "updated"


def test_install_zsh_and_fish_through_the_cli(offgrid, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": "", "SHELL": "/usr/bin/fish"}
    fish = offgrid("completion", "install", env=env)
    assert fish.returncode == 0, fish.stderr
    assert (tmp_path / ".config/fish/completions/offgrid.fish").exists()
    zsh = offgrid("completion", "install", "zsh", env=env)
    assert zsh.returncode == 0, zsh.stderr
    assert (tmp_path / ".zfunc/_offgrid").read_text() == completion.script("zsh")
    assert "fpath+=~/.zfunc" in (tmp_path / ".zshrc").read_text()
    shown = offgrid("completion", "show", "bash")
    assert shown.stdout == completion.script("bash")
    bad = offgrid("completion", "install", "tcsh")
    assert bad.returncode == 2

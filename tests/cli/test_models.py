"""`offgrid models` and first-use downloads, through the real huggingface-hub client against a
local Hub mirror."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from offgrid.engines import loader
from offgrid.ui.loading import TerminalHooks
from offgrid.models import store
from offgrid.ui.output import Output

REPO, FILE = "tester/tiny-GGUF", "tiny-q8.gguf"


def test_pull_then_chat_offline_with_no_request(offgrid, hub_mirror, tiny_llama: Path) -> None:
    hub_mirror.add_file(REPO, FILE, tiny_llama.read_bytes())
    pulled = offgrid("models", "pull", f"{REPO}:{FILE}")
    assert pulled.returncode == 0, pulled.stderr
    path = Path(pulled.stdout.strip())
    assert path.read_bytes() == tiny_llama.read_bytes()
    hub_mirror.clear_requests()
    answer = offgrid("chat", "-m", f"{REPO}:{FILE}", "hi", "-n", "4")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()
    assert hub_mirror.requests == []  # a cached model is used without a single request
    offline = offgrid("chat", "-m", f"{REPO}:{FILE}", "hi", "-n", "4",
                      env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0, offline.stderr


def test_interrupted_pull_resumes(offgrid, hub_mirror, tiny_llama: Path) -> None:
    data = tiny_llama.read_bytes()
    hub_mirror.add_file(REPO, FILE, data)
    hub_mirror.fail_after_bytes(REPO, FILE, 100_000)
    first = offgrid("models", "pull", f"{REPO}:{FILE}")
    assert first.returncode == 1
    assert "interrupted" in first.stderr and "hint:" in first.stderr
    hub_mirror.clear_requests()
    second = offgrid("models", "pull", f"{REPO}:{FILE}")
    assert second.returncode == 0, second.stderr
    ranges = [r for m, p, r in hub_mirror.requests if m == "GET"]
    assert ranges == ["bytes=100000-"]
    assert Path(second.stdout.strip()).read_bytes() == data


def test_first_use_download_needs_yes_in_a_pipe(offgrid, hub_mirror, tiny_llama: Path) -> None:
    hub_mirror.add_file(REPO, FILE, tiny_llama.read_bytes())
    refused = offgrid("chat", "-m", f"{REPO}:{FILE}", "hi", "-n", "3")
    assert refused.returncode == 1
    assert f"hint: offgrid models pull {REPO}:{FILE}" in refused.stderr
    accepted = offgrid("chat", "-m", f"{REPO}:{FILE}", "hi", "-n", "3", "--yes")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip()


def test_corrupt_download_never_reaches_the_engine(offgrid, hub_mirror, tiny_llama: Path) -> None:
    hub_mirror.add_file(REPO, FILE, tiny_llama.read_bytes())
    hub_mirror.corrupt_next_get(REPO, FILE)
    result = offgrid("models", "pull", f"{REPO}:{FILE}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    again = offgrid("chat", "-m", f"{REPO}:{FILE}", "hi", env={"HF_HUB_OFFLINE": "1"})
    assert again.returncode == 1 and "not downloaded" in again.stderr


def test_no_network_and_nothing_cached(offgrid) -> None:
    result = offgrid("models", "pull", f"{REPO}:{FILE}",
                     env={"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert result.returncode == 1
    assert "cannot reach" in result.stderr


def test_models_list_json_and_info(offgrid, tiny_llama: Path) -> None:
    listing = json.loads(offgrid("models", "list", "--json").stdout)
    aliases = {row["alias"] for row in listing}
    assert {"qwen3-0.6b", "whisper-base", "sd-turbo"} <= aliases
    assert not any(row["cached"] for row in listing)
    text = offgrid("models", "list", "--task", "speech")
    assert "whisper-tiny" in text.stdout and "qwen3" not in text.stdout
    bad_task = offgrid("models", "list", "--task", "nope")
    assert bad_task.returncode == 2
    info = json.loads(offgrid("models", "info", str(tiny_llama), "--json").stdout)
    assert info["architecture"] == "llama" and info["tensors"] > 0


def test_models_rm(offgrid, hub_mirror, tiny_llama: Path) -> None:
    hub_mirror.add_file(REPO, FILE, tiny_llama.read_bytes())
    path = Path(offgrid("models", "pull", f"{REPO}:{FILE}").stdout.strip())
    removed = offgrid("models", "rm", f"{REPO}:{FILE}")
    assert removed.returncode == 0 and "freed" in removed.stderr
    assert not path.exists()


def test_models_info_text_lists_files_readably(offgrid, tiny_llama: Path) -> None:
    alias = offgrid("models", "info", "whisper-tiny")
    assert alias.returncode == 0, alias.stderr
    assert "  model: ggml-tiny.bin (77.7 MB): not downloaded\n" in alias.stdout
    local = offgrid("models", "info", str(tiny_llama))
    assert f"files:\n  model: {tiny_llama}\n" in local.stdout
    assert "{" not in alias.stdout + local.stdout  # no Python dict repr


def test_ctrl_c_during_a_pull_says_how_to_resume(monkeypatch) -> None:
    def interrupted(spec, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "pull", interrupted)
    err = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        loader.pull("whisper-tiny", TerminalHooks(Output(stderr=err)))
    assert err.getvalue() == "download stopped; `offgrid models pull whisper-tiny` resumes it\n"


def test_config_general_yes_downloads_without_asking(offgrid, hub_mirror, tiny_llama: Path) -> None:
    hub_mirror.add_file(REPO, FILE, tiny_llama.read_bytes())
    assert offgrid("config", "set", "general.yes", "true").returncode == 0
    answer = offgrid("chat", "-m", f"{REPO}:{FILE}", "hi", "-n", "3")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()

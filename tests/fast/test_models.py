"""`offgrid models` in-process and offline (HF_HUB_OFFLINE=1, an empty cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fast.helpers import hint, one_line_error


def test_list_json(cli) -> None:
    result = cli("models", "list", "--json")
    assert result.returncode == 0 and result.stderr == ""
    rows = json.loads(result.stdout)
    assert {"qwen3-0.6b", "whisper-base", "sd-turbo"} <= {row["alias"] for row in rows}
    assert not any(row["cached"] for row in rows)
    assert set(rows[0]) >= {"alias", "task", "description", "size", "cached", "default"}
    assert {row["task"] for row in rows} == {"text", "vision", "image", "speech"}


def test_list_one_task(cli) -> None:
    result = cli("models", "list", "--task", "speech")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["whisper-tiny", "speech", "77.7", "MB"]
    assert "  whisper-base     speech 148.0 MB (default)" in lines
    assert "qwen3" not in result.stdout
    one_line_error(cli("models", "list", "--task", "nope"), "unknown task 'nope'", 2)


def test_info_of_a_catalog_alias(cli) -> None:
    text = cli("models", "info", "whisper-tiny")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("spec: whisper-tiny\nalias: whisper-tiny\ntask: speech\n")
    assert "files:\n  model: ggml-tiny.bin (77.7 MB): not downloaded\n" in text.stdout
    assert "{" not in text.stdout  # no Python dict repr
    data = json.loads(cli("models", "info", "whisper-tiny", "--json").stdout)
    assert data["task"] == "speech"
    assert data["files"]["model"]["name"] == "ggml-tiny.bin" and data["files"]["model"]["path"] is None


def test_info_of_a_local_gguf(cli, tiny_llama: Path) -> None:
    text = cli("models", "info", str(tiny_llama))
    assert f"files:\n  model: {tiny_llama}\n" in text.stdout
    data = json.loads(cli("models", "info", str(tiny_llama), "--json").stdout)
    assert data["architecture"] == "llama" and data["tensors"] > 0
    assert data["chat_template"] is True


def test_info_of_a_broken_local_file(cli, fake_model: Path) -> None:
    one_line_error(cli("models", "info", str(fake_model)),
                   "fake-model.gguf is not a GGUF model file")


def test_path(cli, fake_model: Path) -> None:
    local = cli("models", "path", str(fake_model))
    assert local.returncode == 0 and local.stdout == f"{fake_model}\n"
    missing = cli("models", "path", "whisper-tiny")
    one_line_error(missing, "model whisper-tiny is not downloaded (77.7 MB)")
    assert hint(missing) == "offgrid models pull whisper-tiny"


def test_rm(cli, fake_model: Path) -> None:
    nothing = cli("models", "rm", "whisper-tiny")
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert nothing.stderr == "whisper-tiny: was not downloaded\n"
    refused = cli("models", "rm", str(fake_model))
    one_line_error(refused, "offgrid only removes models it downloaded", 2)
    assert hint(refused) == f"delete the file yourself: rm {fake_model}"
    assert fake_model.exists()


@pytest.mark.parametrize(("args", "message", "code"), [
    (("pull", "tester/tiny-GGUF:tiny.gguf"), "is not downloaded and HF_HUB_OFFLINE is set", 1),
    (("pull", "nope:x"), "bad model spec 'nope:x'", 2),
    (("pull", "no-such-alias"), "unknown model 'no-such-alias'", 2),
    (("info", "no-such-alias"), "unknown model 'no-such-alias'", 2),
    (("search", "llama"), "searching Hugging Face for 'llama' needs the network", 1),
    (("files", "foo/bar"), "listing the files of foo/bar needs the network", 1),
    (("search", "llama", "--limit", "0"), "Invalid value for '--limit'", 2),
    (("bogus",), "No such command 'bogus'", 2),
])
def test_errors_offline(cli, args, message, code) -> None:
    one_line_error(cli("models", *args), message, code)

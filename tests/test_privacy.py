"""Nothing leaves the device: every command, run against a cached or a local model while the
Hub endpoint is a local server that records requests (network "on"), makes no request.

Only `models pull` (and `models search` / `models files`, which exist to ask the Hub) may go
online, and only because the user asked for it; `--server URL` (or config general.server)
sends text to the server the user named, and nowhere else (tests/cli/test_serve.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from tests.audiofiles import speechlike, write_wav

REPO, FILE = "tester/private-GGUF", "tiny-q8.gguf"
SPEC = f"{REPO}:{FILE}"

# Each entry: the arguments of one run; "{spec}" is the cached Hub model, "{local}" a model
# file given by path, "{id}" the newest history entry. They run in this order, in one home.
COMMANDS: list[list[str]] = [
    ["--version"],
    ["--help"],
    ["chat", "-m", "{spec}", "hello", "-n", "3"],
    ["chat", "-m", "{local}", "hello", "-n", "3", "--json"],
    ["chat", "-m", "{spec}", "--session", "trip", "plan a trip", "-n", "2"],
    ["chat", "--session", "trip", "and then?", "-n", "2"],
    ["chat", "-c", "more", "-n", "2"],
    ["config", "set", "chat.model", "{spec}"],
    ["chat", "from the config", "-n", "2"],
    ["config", "show"],
    ["config", "keys"],
    ["config", "path"],
    ["models", "list"],
    ["models", "list", "--task", "text", "--json"],
    ["models", "info", "{spec}"],
    ["models", "info", "{local}", "--json"],
    ["models", "path", "{spec}"],
    ["history"],
    ["history", "--search", "trip"],
    ["history", "--command", "chat", "--json"],
    ["history", "show", "{id}"],
    ["history", "export", "{id}", "--format", "json"],
    ["doctor"],
    ["doctor", "--json"],
    ["completion", "show", "bash"],
    ["history", "rm", "{id}"],
    ["history", "rm", "--all"],
]

# The other commands, each on a local or cached model of its own kind.
COMMANDS += [
    ["summarize", "{document}", "-m", "{spec}", "--ctx", "2048", "-n", "8"],
    ["summarize", "{document}", "-m", "{local}", "--ctx", "2048", "--ask", "due date?", "-n", "4"],
    ["see", "{image}", "-m", "{vision}", "what is this?", "-n", "4"],
    ["imagine", "a cat", "--diffusion-model", "{sd_diffusion}", "--llm", "{sd_llm}",
     "--taesd", "{sd_taesd}", "--steps", "1", "--size", "64x64", "-o", "{tmp}/cat.png"],
    ["transcribe", "{audio}", "-m", "{whisper}"],
    ["history", "--command", "imagine"],
]


def test_no_command_makes_a_network_request(offgrid, hub_mirror, tiny_llama: Path,
                                            vision_models, tiny_sd_files, tiny_whisper: Path,
                                            tmp_path: Path) -> None:
    hub_mirror.add_file(REPO, FILE, tiny_llama.read_bytes())
    pulled = offgrid("models", "pull", SPEC)
    assert pulled.returncode == 0, pulled.stderr
    assert hub_mirror.requests  # the mirror does record what reaches it
    hub_mirror.clear_requests()
    assert "HF_HUB_OFFLINE" not in os.environ  # the network is on: only discipline keeps it unused
    document = tmp_path / "contract.txt"
    document.write_text("Payment is due on 3 May. A late penalty of 2% applies.\n")
    image = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), "green").save(image)
    values = {"spec": SPEC, "local": str(tiny_llama), "tmp": str(tmp_path),
              "document": str(document), "image": str(image),
              "vision": str(vision_models.model), "whisper": str(tiny_whisper),
              "audio": str(write_wav(tmp_path / "note.wav", speechlike())),
              **{f"sd_{role.split('_')[0]}": str(path) for role, path in tiny_sd_files.items()}}
    leaks = []
    for args in COMMANDS:
        if any("{id}" in a for a in args):
            listed = offgrid("history", "--json", "--limit", "1")
            values["id"] = json.loads(listed.stdout)[0]["id"]
        argv = [a.format(**values) for a in args]
        result = offgrid(*argv)
        # doctor exits 1 when a model the config names is missing; everything else succeeds
        assert result.returncode == 0 or argv[0] == "doctor", (argv, result.stderr)
        assert "Traceback" not in result.stderr
        if hub_mirror.requests:
            leaks.append((argv, list(hub_mirror.requests)))
            hub_mirror.clear_requests()
    assert leaks == []


def test_dynamic_completion_stays_offline(offgrid, hub_mirror) -> None:
    result = offgrid(env={"_OFFGRID_COMPLETE": "complete_bash",
                          "COMP_WORDS": "offgrid chat -m qwen", "COMP_CWORD": "3"})
    assert result.returncode == 0 and "qwen3-0.6b" in result.stdout.split()
    assert hub_mirror.requests == []

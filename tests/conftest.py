"""Every test gets its own OFFGRID_HOME, HF cache and offline setting; tiny models are
generated once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hubmirror import HubMirror
from tests.tinymodels.llama import write_tiny_llama
from tests.tinymodels.mmproj import VisionModels
from tests.tinymodels.sd import write_tiny_sd
from tests.tinymodels.whisper import write_tiny_whisper

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private home for offgrid and Hugging Face; no network unless a test asks."""
    home = tmp_path / "home"
    monkeypatch.setenv("OFFGRID_HOME", str(home / "offgrid"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HUGGINGFACE_HUB_CACHE",
                 "HF_HUB_DISABLE_IMPLICIT_TOKEN", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OFFGRID_DEBUG", raising=False)
    monkeypatch.setenv("GGML_NO_BACKTRACE", "1")
    return home


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_llama(models_dir: Path) -> Path:
    """A 2-layer llama GGUF with a ChatML template."""
    return write_tiny_llama(models_dir / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def tiny_llama_no_template(models_dir: Path) -> Path:
    """The same model without a chat template (like many base-model conversions)."""
    return write_tiny_llama(models_dir / "tiny-base.gguf", chat_template=None, seed=1)


@pytest.fixture(scope="session")
def tiny_llama_endless(models_dir: Path) -> Path:
    """A model that never stops by itself (for Ctrl-C tests)."""
    return write_tiny_llama(models_dir / "tiny-endless.gguf", endless=True)


@pytest.fixture(scope="session")
def tiny_llama_small_ctx(models_dir: Path) -> Path:
    """A model trained for only 256 tokens of context."""
    return write_tiny_llama(models_dir / "tiny-256.gguf", n_ctx_train=256, seed=2)


@pytest.fixture(scope="session")
def vision_models(models_dir: Path) -> VisionModels:
    """A tiny language model + mmproj pair (32 px images) and broken variants."""
    return VisionModels(models_dir / "vision")


@pytest.fixture(scope="session")
def tiny_whisper(models_dir: Path) -> Path:
    """A multilingual whisper.cpp model that hears "Hello world." (0-1.5 s) in any audio."""
    return write_tiny_whisper(models_dir / "ggml-tiny-test.bin")


@pytest.fixture(scope="session")
def tiny_whisper_en(models_dir: Path) -> Path:
    """The same as an English-only (.en) model."""
    return write_tiny_whisper(models_dir / "ggml-tiny-test.en.bin", multilingual=False)


@pytest.fixture(scope="session")
def tiny_sd_files(models_dir: Path) -> dict[str, Path]:
    """Random-weight FLUX.2-klein components (role -> file) the real engine runs in ~1 s."""
    return write_tiny_sd(models_dir / "tiny-sd")


def run_offgrid(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None,
                cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m offgrid ARGS` as a user would, in a pipe; text in, text out."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run([sys.executable, "-m", "offgrid", *args], input=data,
                          capture_output=True, env=full_env, cwd=cwd, timeout=timeout,
                          stdin=None if data is not None else subprocess.DEVNULL)
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode("utf-8", errors="replace"),
                                       proc.stderr.decode("utf-8", errors="replace"))


@pytest.fixture
def offgrid():
    """The CLI runner: offgrid("chat", "hi", input=...) -> CompletedProcess."""
    return run_offgrid


@pytest.fixture
def hub_mirror(monkeypatch: pytest.MonkeyPatch):
    """A local server that answers like the Hugging Face Hub; the network is 'on'."""
    with HubMirror() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


def run_in_process(*args: str, input: str | bytes | None = None,
                   cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `offgrid ARGS` inside this process (milliseconds, no engine start-up): stdin a
    pipe holding *input* (empty when None), stdout and stderr captured as text."""
    import io

    from offgrid import cli
    from offgrid.engines import native

    data = input.encode() if isinstance(input, str) else (input or b"")
    stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr, os.getcwd()
    sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    try:
        if cwd is not None:
            os.chdir(cwd)
        cli.main(list(args))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved[:3]
        os.chdir(saved[3])
        native.set_debug(False)
    return subprocess.CompletedProcess(["offgrid", *args], code, stdout.getvalue(),
                                       stderr.getvalue())


@pytest.fixture
def fake_engines():
    """Fake engines behind the loader (tests/fakes.py) for this test; yields FakeEngines."""
    from tests.fakes import FakeEngines

    engines = FakeEngines().install()
    yield engines
    engines.uninstall()


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    """A local model file for the fake engines."""
    from tests.fakes import fake_model_file

    return fake_model_file(tmp_path / "models")


@pytest.fixture
def cli(fake_engines):
    """The in-process CLI runner with fake engines: cli("chat", "-m", path, "hi")."""
    return run_in_process

"""offgrid.models.hub against HubMirror, a local stand-in for the Hugging Face Hub."""

from __future__ import annotations

import hashlib
import random
import socket
from pathlib import Path

import pytest
from tests.hubmirror import HubMirror

from offgrid.errors import ModelFileError, ModelNotCachedError, NetworkError, UsageError
from offgrid.models import hub

REPO = "tester/tiny-GGUF"
FILE = "tiny-Q4_K_M.gguf"
SIZE = 200_000


def payload(seed: int, size: int = SIZE) -> bytes:
    return random.Random(seed).randbytes(size)


class Progress:
    """Records every progress(done, total) call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HF_HOME for the test, with every other Hub variable cleared."""
    for name in (
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / "hub"


@pytest.fixture
def mirror(hub_cache: Path, monkeypatch: pytest.MonkeyPatch):
    with HubMirror() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


@pytest.fixture
def model(mirror: HubMirror) -> bytes:
    data = payload(1)
    mirror.add_file(REPO, FILE, data)
    mirror.add_file(REPO, "README.md", b"# tiny\n")
    return data


def repo_folder(cache: Path) -> Path:
    return cache / "models--tester--tiny-GGUF"


def leftovers(cache: Path) -> list[str]:
    """Everything under blobs/ and snapshots/ (files and links), as relative paths."""
    folder = repo_folder(cache)
    found = [p for sub in ("blobs", "snapshots") if (folder / sub).exists() for p in (folder / sub).rglob("*")]
    return sorted(str(p.relative_to(folder)) for p in found if not p.is_dir() or p.is_symlink())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- download ---------------------------------------------------------------------------------


def test_fresh_download_lands_in_the_standard_cache(mirror: HubMirror, model: bytes, hub_cache: Path) -> None:
    progress = Progress()
    path = hub.download(REPO, FILE, progress=progress)

    sha = hashlib.sha256(model).hexdigest()
    commit = mirror.commit(REPO)
    assert path == repo_folder(hub_cache) / "snapshots" / commit / FILE
    assert path.is_symlink() and path.resolve() == repo_folder(hub_cache) / "blobs" / sha
    assert path.read_bytes() == model
    assert (repo_folder(hub_cache) / "refs" / "main").read_text() == commit
    assert leftovers(hub_cache) == [f"blobs/{sha}", f"snapshots/{commit}/{FILE}"]
    # One HEAD and one plain GET: no telemetry, no agent-registry fetch, no Range.
    url = f"/{REPO}/resolve/main/{FILE}"
    assert mirror.requests == [("HEAD", url, None), ("GET", url, None)]
    assert mirror.body_bytes_sent == SIZE
    assert progress.calls[0] == (0, SIZE) and progress.calls[-1] == (SIZE, SIZE)
    assert [done for done, _ in progress.calls] == sorted(done for done, _ in progress.calls)
    assert hub.cached_file(REPO, FILE) == path


def test_cache_hit_makes_no_request(mirror: HubMirror, model: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub.cached_file(REPO, FILE) is None
    path = hub.download(REPO, FILE)
    mirror.clear_requests()

    assert hub.download(REPO, FILE, sha256=hashlib.sha256(model).hexdigest()) == path
    assert hub.cached_file(REPO, FILE) == path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.download(REPO, FILE) == path
    assert mirror.requests == []


def test_resume_after_the_server_drops_mid_file(mirror: HubMirror, model: bytes, hub_cache: Path) -> None:
    mirror.fail_after_bytes(REPO, FILE, 70_000)
    with pytest.raises(NetworkError, match="interrupted at 70000 of 200000 bytes") as failure:
        hub.download(REPO, FILE)
    assert "resumes" in failure.value.hint

    sha = hashlib.sha256(model).hexdigest()
    partial = repo_folder(hub_cache) / "blobs" / f"{sha}.incomplete"
    assert partial.stat().st_size == 70_000
    assert leftovers(hub_cache) == [f"blobs/{sha}.incomplete"]
    assert hub.cached_file(REPO, FILE) is None
    assert mirror.body_bytes_sent == 70_000

    mirror.clear_requests()
    progress = Progress()
    path = hub.download(REPO, FILE, progress=progress)  # a separate run: nothing shared but the disk

    assert path.read_bytes() == model
    assert mirror.requests == [
        ("HEAD", f"/{REPO}/resolve/main/{FILE}", None),
        ("GET", f"/{REPO}/resolve/main/{FILE}", "bytes=70000-"),
    ]
    assert mirror.body_bytes_sent == SIZE - 70_000
    assert progress.calls[0] == (70_000, SIZE) and progress.calls[-1] == (SIZE, SIZE)
    assert not partial.exists()


def test_ctrl_c_keeps_the_partial_file_for_the_next_run(mirror: HubMirror, model: bytes, hub_cache: Path) -> None:
    def interrupt(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hub.download(REPO, FILE, progress=interrupt)
    partial = repo_folder(hub_cache) / "blobs" / f"{hashlib.sha256(model).hexdigest()}.incomplete"
    kept = partial.stat().st_size
    assert 0 < kept < SIZE

    mirror.clear_requests()
    assert hub.download(REPO, FILE).read_bytes() == model
    assert mirror.requests[-1] == ("GET", f"/{REPO}/resolve/main/{FILE}", f"bytes={kept}-")
    assert mirror.body_bytes_sent == SIZE - kept


def test_corrupt_download_is_rejected_and_not_cached(mirror: HubMirror, model: bytes, hub_cache: Path) -> None:
    mirror.corrupt_next_get(REPO, FILE)
    with pytest.raises(ModelFileError, match="sha256") as failure:
        hub.download(REPO, FILE)
    assert "deleted" in failure.value.message
    assert leftovers(hub_cache) == []
    assert hub.cached_file(REPO, FILE) is None

    assert hub.download(REPO, FILE).read_bytes() == model  # the next run starts afresh


def test_catalog_mismatch_fails_before_downloading(mirror: HubMirror, model: bytes, hub_cache: Path) -> None:
    with pytest.raises(ModelFileError, match="expected 0{64}") as caught:
        hub.download(REPO, FILE, sha256="0" * 64)
    assert caught.value.hint.endswith(f"offgrid models pull {REPO}:{FILE}")  # a way forward
    with pytest.raises(ModelFileError, match=f"is {SIZE} bytes on Hugging Face, expected 5"):
        hub.download(REPO, FILE, size=5)
    assert [method for method, _, _ in mirror.requests] == ["HEAD", "HEAD"]
    assert leftovers(hub_cache) == []


def test_small_git_file_is_checked_against_its_blob_id(mirror: HubMirror, model: bytes) -> None:
    assert hub.download(REPO, "README.md").read_bytes() == b"# tiny\n"


@pytest.mark.parametrize(
    ("repo", "filename", "expected"),
    [
        (REPO, "missing.gguf", f"{REPO} has no file missing.gguf"),
        ("tester/no-such-repo", FILE, "no model repo tester/no-such-repo"),
    ],
)
def test_missing_repo_or_file_is_a_model_file_error(
    mirror: HubMirror, model: bytes, repo: str, filename: str, expected: str
) -> None:
    with pytest.raises(ModelFileError, match=expected):
        hub.download(repo, filename)


def test_offline_with_nothing_cached(mirror: HubMirror, model: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotCachedError, match="HF_HUB_OFFLINE"):
        hub.download(REPO, FILE)
    with pytest.raises(NetworkError, match="HF_HUB_OFFLINE"):
        hub.list_files(REPO)
    assert mirror.requests == []


@pytest.mark.parametrize("unreachable", ["refused", "dns"])
def test_unreachable_hub_is_a_network_error(
    hub_cache: Path, monkeypatch: pytest.MonkeyPatch, unreachable: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}" if unreachable == "refused" else "http://offgrid-test.invalid"
    monkeypatch.setenv("HF_ENDPOINT", url)
    for call in (lambda: hub.download(REPO, FILE), lambda: hub.list_files(REPO), lambda: hub.search_models("tiny")):
        with pytest.raises(NetworkError, match="^cannot reach Hugging Face") as failure:
            call()
        assert failure.value.hint


@pytest.mark.parametrize("source", ["HF_TOKEN", "token file in HF_HOME"])
def test_token_is_sent(
    mirror: HubMirror, model: bytes, monkeypatch: pytest.MonkeyPatch, hub_cache: Path, source: str
) -> None:
    if source == "HF_TOKEN":
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    else:
        hub_cache.parent.mkdir(parents=True)
        (hub_cache.parent / "token").write_text("hf_test_token\n")
    hub.download(REPO, FILE)
    hub.list_files(REPO)
    assert {h.get("authorization") for h in mirror.request_headers} == {"Bearer hf_test_token"}
    assert all("offgrid/" in h["user-agent"] for h in mirror.request_headers)


def test_nothing_extra_is_sent_even_if_telemetry_was_on_at_import(
    mirror: HubMirror, model: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With telemetry on, huggingface_hub 2.4 fetches {ENDPOINT}/api/agent-harnesses for its User-Agent."""
    from huggingface_hub import constants
    from huggingface_hub.utils import _detect_agent

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    # So that a request to the default endpoint would reach the mirror. hf_hub_url() builds from the
    # import-time template and swaps in `endpoint=` only if the URL starts with ENDPOINT: patch both.
    monkeypatch.setattr(constants, "ENDPOINT", mirror.endpoint)
    template = mirror.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "harnesses.json"))
    monkeypatch.setattr(_detect_agent, "_registry", None)

    hub.download(REPO, FILE)
    hub.list_files(REPO)
    hub.search_models("tiny")
    assert [path.split("?")[0] for _, path, _ in mirror.requests] == [
        f"/{REPO}/resolve/main/{FILE}",
        f"/{REPO}/resolve/main/{FILE}",
        f"/api/models/{REPO}/revision/main",
        "/api/models",
    ]


def test_a_file_pulled_before_the_branch_moved_stays_usable_offline(
    mirror: HubMirror, model: bytes, hub_cache: Path
) -> None:
    # A model and its mmproj pulled on different days: main moved on in between.
    first = hub.download(REPO, FILE)
    mirror.add_file(REPO, "tiny-Q8_0.gguf", payload(2))  # a new commit on main
    hub.download(REPO, "tiny-Q8_0.gguf")  # moves refs/main to the new commit
    mirror.clear_requests()
    assert hub.cached_file(REPO, FILE) == first  # found in the older snapshot
    assert hub.download(REPO, FILE) == first
    assert mirror.requests == []
    commit = mirror.commit(REPO)
    assert hub.cached_file(REPO, FILE, revision=commit) is None  # a pinned commit is exact


def test_bad_names_are_usage_errors(hub_cache: Path) -> None:
    with pytest.raises(UsageError):
        hub.cached_file("a//b", FILE)
    with pytest.raises(UsageError):
        hub.cached_file(REPO, "../escape.gguf")


# -- listings ---------------------------------------------------------------------------------


def test_list_files(mirror: HubMirror, model: bytes) -> None:
    files = hub.list_files(REPO)
    assert files == [
        hub.RemoteFile(name="README.md", size=7, sha256=None),
        hub.RemoteFile(name=FILE, size=SIZE, sha256=hashlib.sha256(model).hexdigest()),
    ]


def test_search_models_lists_gguf_repos_by_downloads(mirror: HubMirror) -> None:
    for repo, downloads in (("a/qwen-GGUF", 10), ("b/qwen-GGUF", 500), ("c/other-GGUF", 999)):
        mirror.add_file(repo, "m.gguf", b"GGUF")
        mirror.set_repo_stats(repo, downloads=downloads, likes=downloads // 10)
    mirror.add_file("d/qwen-safetensors", "model.safetensors", b"{}")

    found = hub.search_models("qwen")
    assert found == [hub.RemoteRepo("b/qwen-GGUF", 500, 50), hub.RemoteRepo("a/qwen-GGUF", 10, 1)]
    assert hub.search_models("qwen", limit=1) == found[:1]

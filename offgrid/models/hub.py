"""The one module that talks to the Hugging Face Hub.

Files land in the standard Hugging Face cache (``$HF_HUB_CACHE`` or ``$HF_HOME/hub``):
``models--owner--name/blobs/<etag>``, ``snapshots/<commit>/<file>`` -> blob, ``refs/<branch>``, so
``hf cache`` and huggingface_hub see them. huggingface_hub 2.4 neither resumes an interrupted
download across runs (its temporary file is per process and deleted on failure) nor checks the
sha256, so :func:`download` fetches the bytes itself through huggingface_hub's HTTP session: it
appends to ``blobs/<etag>.incomplete`` with a ``Range`` request, hashes while writing, and moves
the blob into place only after size and sha256 match.

Every environment variable is read at call time, because huggingface_hub reads HF_ENDPOINT,
HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN_PATH and HF_HUB_DISABLE_TELEMETRY once, at import.
Nothing here prints: progress goes through a callback, failures raise OffgridError subclasses.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from offgrid.errors import ModelFileError, ModelNotCachedError, NetworkError, OffgridError, UsageError

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)``; ``bytes_total`` is 0 when unknown."""

DEFAULT_ENDPOINT = "https://huggingface.co"
GGUF_TAG = "gguf"
DEFAULT_TIMEOUT_SECONDS = 10
HASH_BLOCK_BYTES = 1 << 20
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
GIT_SHA1_HEX = re.compile(r"[0-9a-f]{40}")
TRUE_VALUES = {"1", "ON", "YES", "TRUE"}
CACHEDIR_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# Hugging Face cache (written by offgrid).\n"


@dataclass(frozen=True)
class RemoteFile:
    """A file in a Hub repo. ``sha256`` is known for LFS files (every model file), else None."""

    name: str
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class RemoteRepo:
    """A model repo found by :func:`search_models`."""

    id: str
    downloads: int | None
    likes: int | None


@dataclass(frozen=True)
class _RemoteBlob:
    """What a HEAD on the resolve URL tells about one file."""

    url: str
    commit: str
    etag: str
    size: int | None


# -- environment, read at call time ------------------------------------------------------------


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in TRUE_VALUES


def _expand(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))


def endpoint() -> str:
    """The Hub URL: ``$HF_ENDPOINT`` or https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hf_home() -> Path:
    """``$HF_HOME``, else ``$XDG_CACHE_HOME/huggingface``, else ``~/.cache/huggingface``."""
    if home := os.environ.get("HF_HOME"):
        return _expand(home)
    return _expand(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache: ``$HF_HUB_CACHE`` (or legacy ``$HUGGINGFACE_HUB_CACHE``) or ``$HF_HOME/hub``."""
    if cache := os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return _expand(cache)
    return hf_home() / "hub"


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids network access."""
    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def disable_telemetry() -> None:
    """Stop huggingface_hub from sending anything beyond the requests offgrid makes.

    With telemetry on, huggingface_hub 2.4 builds every User-Agent by probing for AI agents, which
    downloads ``{endpoint}/api/agent-harnesses`` once a day, and ``send_telemetry`` posts usage
    pings. The env var covers child processes and later imports; the constant covers an already
    imported huggingface_hub (it reads the variable only at import).
    """
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_DISABLE_TELEMETRY = True


def _prepare_network() -> None:
    """Align huggingface_hub's import-time switches with the environment as it is now."""
    disable_telemetry()
    from huggingface_hub import constants

    # Its request hook refuses every request when this is True, whatever the env says now.
    constants.HF_HUB_OFFLINE = is_offline()


def _token() -> str | bool:
    """The token to send: HF_TOKEN, else the saved login (unless HF_HUB_DISABLE_IMPLICIT_TOKEN), else none.

    Resolved here rather than by huggingface_hub so the token file follows HF_HOME at call time
    and no OAuth refresh or OIDC exchange (network calls of their own) ever runs.
    """
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if token := os.environ.get(name, "").strip():
            return token
    if _env_true("HF_HUB_DISABLE_IMPLICIT_TOKEN"):
        return False
    token_path = _expand(os.environ.get("HF_TOKEN_PATH") or str(hf_home() / "token"))
    try:
        return token_path.read_text(encoding="utf-8").strip() or False
    except (OSError, UnicodeDecodeError):
        return False


def _timeout(name: str) -> float:
    try:
        return float(os.environ.get(name) or DEFAULT_TIMEOUT_SECONDS)
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS


def _offgrid_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("offgrid")
    except PackageNotFoundError:
        return "dev"


def _headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers(token=_token(), library_name="offgrid", library_version=_offgrid_version())


# -- the cache (no network) ---------------------------------------------------------------------


def _check_repo(repo: str) -> None:
    """Reject a malformed repo id before it reaches a URL or a cache path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as error:
        raise UsageError(f"{repo!r} is not a Hugging Face repo id", hint="write it as owner/name") from error


def _check_filename(filename: str) -> None:
    """Reject a file name that is empty or would escape the repo's snapshot folder."""
    parts = PurePosixPath(filename).parts
    if not filename or filename.startswith(("/", "\\")) or ".." in parts or "\\" in filename or ":" in filename:
        raise UsageError(f"{filename!r} is not a file name inside a repo")


def _repo_folder(repo: str) -> Path:
    return hub_cache_dir() / ("models--" + repo.replace("/", "--"))


def partial_file(repo: str, sha256: str) -> Path:
    """Where an interrupted download of the LFS file with this sha256 is kept (for resuming)."""
    return _repo_folder(repo) / "blobs" / f"{sha256.lower()}.incomplete"


def cached_file(repo: str, filename: str, revision: str = "main") -> Path | None:
    """The cached file for ``repo``/``filename`` at ``revision``, or None. Makes no network request."""
    from huggingface_hub import try_to_load_from_cache

    _check_repo(repo)
    _check_filename(filename)
    found = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir(), revision=revision)
    if isinstance(found, str):
        return Path(found)
    if GIT_SHA1_HEX.fullmatch(revision):
        return None
    # A branch (main) moved on since this file was pulled, e.g. a model and its mmproj pulled
    # on different days: the file is still on disk under the older snapshot, so use it.
    older = [p for p in (_repo_folder(repo) / "snapshots").glob(f"*/{filename}") if p.exists()]
    return max(older, key=lambda p: p.lstat().st_mtime) if older else None


# -- download -----------------------------------------------------------------------------------


def download(
    repo: str,
    filename: str,
    *,
    revision: str = "main",
    size: int | None = None,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Return the cached file, downloading it first if needed (resumable, verified).

    A cached file is returned without any request. Otherwise one HEAD learns the commit, etag
    and size; ``size``/``sha256`` (from the catalog) must agree with it, then the bytes are
    appended to ``blobs/<etag>.incomplete`` (a later run resumes it with a Range request) and
    moved into the cache only once size and sha256 (or the git blob id) match.

    Raises ModelNotCachedError when offline, NetworkError when the Hub cannot be reached or the
    transfer breaks (the partial file is kept), ModelFileError for a missing repo/file or a file
    that fails verification (the partial file is deleted).
    """
    if (path := cached_file(repo, filename, revision)) is not None:
        return path
    if is_offline():
        raise ModelNotCachedError(
            f"{repo}/{filename} is not downloaded and HF_HUB_OFFLINE is set",
            hint="unset HF_HUB_OFFLINE to download it",
        )
    _prepare_network()
    remote = _head(repo, filename, revision)
    expected_size, expected_sha256 = _expectations(repo, filename, remote, size, sha256)

    from huggingface_hub.utils import WeakFileLock

    storage = _repo_folder(repo)
    blob = storage / "blobs" / remote.etag
    pointer = storage / "snapshots" / remote.commit / PurePosixPath(filename)
    lock = hub_cache_dir() / ".locks" / storage.name / f"{remote.etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):
        new_blob = not blob.exists()
        if new_blob:
            partial = blob.with_name(blob.name + ".incomplete")
            digest, received = _fetch(repo, filename, remote, partial, expected_size, progress)
            _verify(repo, filename, partial, remote, digest, received, expected_size, expected_sha256)
            os.replace(partial, blob)
        _write_ref(storage, revision, remote.commit)
        _link(blob, pointer, move=new_blob)
    return pointer


def _head(repo: str, filename: str, revision: str) -> _RemoteBlob:
    """HEAD the resolve URL (huggingface_hub follows Hub-internal redirects, stops at a CDN)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    hub = endpoint()
    url = hf_hub_url(repo, filename, revision=revision, endpoint=hub)
    with _hub_errors(repo, filename, revision):
        meta = get_hf_file_metadata(
            url,
            token=_token(),
            timeout=_timeout("HF_HUB_ETAG_TIMEOUT"),
            library_name="offgrid",
            library_version=_offgrid_version(),
            endpoint=hub,
        )
    # Both become path names in the cache: accept only what the Hub sends (hex git/LFS ids).
    commit_ok = bool(meta.commit_hash and GIT_SHA1_HEX.fullmatch(meta.commit_hash))
    etag_ok = bool(meta.etag and (GIT_SHA1_HEX.fullmatch(meta.etag) or SHA256_HEX.fullmatch(meta.etag)))
    if not (commit_ok and etag_ok):
        raise NetworkError(
            f"{hub} did not answer like Hugging Face (commit {meta.commit_hash!r}, ETag {meta.etag!r}"
            f" for {repo}/{filename})",
            hint="check HF_ENDPOINT, a proxy or a captive portal",
        )
    return _RemoteBlob(url=meta.location or url, commit=meta.commit_hash, etag=meta.etag, size=meta.size)


def _expectations(
    repo: str, filename: str, remote: _RemoteBlob, size: int | None, sha256: str | None
) -> tuple[int | None, str | None]:
    """The size and sha256 to verify against: the caller's, which must match what the Hub reports."""
    remote_sha256 = remote.etag if SHA256_HEX.fullmatch(remote.etag) else None
    sha256 = sha256.lower() if sha256 else None
    stale = "the file changed on Hugging Face since the catalog entry was written"
    if size is not None and remote.size is not None and size != remote.size:
        raise ModelFileError(
            f"{repo}/{filename} is {remote.size} bytes on Hugging Face, expected {size}: {stale}",
            hint=f"update offgrid, or take the new file: offgrid models pull {repo}:{filename}",
        )
    if sha256 and remote_sha256 and sha256 != remote_sha256:
        raise ModelFileError(
            f"{repo}/{filename} has sha256 {remote_sha256} on Hugging Face, expected {sha256}: {stale}",
            hint=f"update offgrid, or take the new file: offgrid models pull {repo}:{filename}",
        )
    return (size if size is not None else remote.size), (sha256 or remote_sha256)


def _fetch(
    repo: str,
    filename: str,
    remote: _RemoteBlob,
    partial: Path,
    expected_size: int | None,
    progress: ProgressCallback | None,
) -> tuple[hashlib._Hash, int]:
    """Append the missing bytes to ``partial``; return the sha256 of the whole file and its length."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    _tag_cache_dir()
    have = partial.stat().st_size if partial.exists() else 0
    if expected_size is not None and have > expected_size:
        partial.unlink()
        have = 0
    digest = _sha256_of_prefix(partial, have)
    total = expected_size or 0
    if expected_size is not None and have == expected_size:
        _report(progress, have, total)
        return digest, have
    if expected_size is not None:
        _check_free_space(partial.parent, expected_size - have, repo, filename)

    from huggingface_hub.utils import get_session, hf_raise_for_status

    headers = _headers()
    if not _same_origin(remote.url, endpoint()):
        headers.pop("authorization", None)  # a signed CDN URL: the token stays with the Hub
    if have:
        headers["Range"] = f"bytes={have}-"
    done = have
    with _hub_errors(repo, filename, None, transfer=lambda: (done, total)):
        with get_session().stream(
            "GET", remote.url, headers=headers, timeout=_timeout("HF_HUB_DOWNLOAD_TIMEOUT")
        ) as response:
            if response.status_code == 416 and have:
                partial.unlink()  # the server disowns our partial file: start over next run
                raise NetworkError(
                    f"the server refused to resume {repo}/{filename}; the partial download was discarded",
                    hint="run the same command again to download it from the start",
                )
            if response.status_code >= 400:
                response.read()
                hf_raise_for_status(response)
            if have and response.status_code != 206:  # Range ignored: the body is the whole file
                have = done = 0
                digest = hashlib.sha256()
            elif have and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                raise NetworkError(f"the server resumed {repo}/{filename} at the wrong offset")
            if not total:
                total = _length_of(response, have)
            _report(progress, done, total)
            with partial.open("ab" if have else "wb") as sink:
                for chunk in response.iter_bytes():
                    sink.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    _report(progress, done, total)
    return digest, done


def _verify(
    repo: str,
    filename: str,
    partial: Path,
    remote: _RemoteBlob,
    digest: hashlib._Hash,
    received: int,
    expected_size: int | None,
    expected_sha256: str | None,
) -> None:
    """Delete ``partial`` and raise ModelFileError unless its size and hash are the expected ones."""
    if expected_size is not None and received < expected_size:
        raise NetworkError(
            f"download of {repo}/{filename} stopped at {received} of {expected_size} bytes",
            hint="run the same command again: it resumes where it stopped",
        )
    problem = None
    if expected_size is not None and received != expected_size:
        problem = f"is {received} bytes, expected {expected_size}"
    elif expected_sha256 and digest.hexdigest() != expected_sha256:
        problem = f"has sha256 {digest.hexdigest()}, expected {expected_sha256}"
    elif not expected_sha256 and GIT_SHA1_HEX.fullmatch(remote.etag) and _git_blob_id(partial) != remote.etag:
        problem = f"does not match its git blob id {remote.etag}"
    if problem:
        partial.unlink(missing_ok=True)
        raise ModelFileError(
            f"downloaded {repo}/{filename} {problem}; it was deleted",
            hint="run the same command again to download it afresh",
        )


def _write_ref(storage: Path, revision: str, commit: str) -> None:
    """Record which commit a branch or tag pointed to (refs/<revision>), like huggingface_hub."""
    if revision == commit:
        return
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    if not ref.exists() or ref.read_text() != commit:
        ref.write_text(commit)


def _link(blob: Path, pointer: Path, *, move: bool) -> None:
    """Point snapshots/<commit>/<file> at the blob (relative symlink; move or copy where links fail)."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_symlink() or pointer.exists():
        if pointer.exists():
            return
        pointer.unlink()  # a dangling link left by a deleted blob
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:
        if move:
            os.replace(blob, pointer)
        else:
            shutil.copyfile(blob, pointer)


def _tag_cache_dir() -> None:
    """Write CACHEDIR.TAG so backup tools skip the cache, as huggingface_hub does."""
    tag = hub_cache_dir() / "CACHEDIR.TAG"
    if not tag.exists():
        try:
            tag.write_text(CACHEDIR_TAG)
        except OSError:
            pass


def _check_free_space(folder: Path, needed: int, repo: str, filename: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OffgridError(
            f"not enough free space for {repo}/{filename}: needs {needed} more bytes, {free} free in {folder}",
            hint="free some space, or point HF_HOME at a bigger disk",
        )


def _sha256_of_prefix(path: Path, length: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    if length:
        with path.open("rb") as source:
            while block := source.read(HASH_BLOCK_BYTES):
                digest.update(block)
    return digest


def _git_blob_id(path: Path) -> str:
    """The git sha1 the Hub uses as ETag for files not stored in LFS (small text files)."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as source:
        while block := source.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _length_of(response: object, offset: int) -> int:
    """Full file length from Content-Range or Content-Length, 0 when unknown."""
    headers = response.headers  # type: ignore[attr-defined]
    if (content_range := headers.get("Content-Range", "")) and "/" in content_range:
        tail = content_range.rsplit("/", 1)[1]
        return int(tail) if tail.isdigit() else 0
    length = headers.get("Content-Length", "")
    return offset + int(length) if length.isdigit() else 0


def _same_origin(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _report(progress: ProgressCallback | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# -- listings -----------------------------------------------------------------------------------


def list_files(repo: str, revision: str = "main") -> list[RemoteFile]:
    """Every file of a Hub repo with its size and (for LFS files) sha256, sorted by name.

    Uses model_info(files_metadata=True): one request, no retry loop (list_repo_tree paginates
    through http_backoff, which sleeps about 23 s before failing when the network is down).
    """
    from huggingface_hub import HfApi

    _check_repo(repo)
    _require_network(f"listing the files of {repo}")
    api = HfApi(endpoint=endpoint(), token=_token(), library_name="offgrid", library_version=_offgrid_version())
    with _hub_errors(repo, None, revision):
        info = api.model_info(repo, revision=revision, files_metadata=True, timeout=_timeout("HF_HUB_ETAG_TIMEOUT"))
    files = [
        RemoteFile(name=s.rfilename, size=s.size, sha256=s.lfs.sha256 if s.lfs else None)
        for s in info.siblings or []
    ]
    return sorted(files, key=lambda file: file.name)


def search_models(text: str, limit: int = 20) -> list[RemoteRepo]:
    """GGUF model repos whose name contains ``text``, most downloaded first.

    One GET of /api/models (what HfApi.list_models sends) with a timeout and without
    huggingface_hub's retry loop, so a dead network fails in seconds.
    """
    from huggingface_hub.utils import get_session, hf_raise_for_status

    _require_network(f"searching Hugging Face for {text!r}")
    params = {"search": text, "filter": GGUF_TAG, "sort": "downloads", "limit": limit}
    with _hub_errors(None, None, None):
        response = get_session().get(
            f"{endpoint()}/api/models", params=params, headers=_headers(), timeout=_timeout("HF_HUB_ETAG_TIMEOUT")
        )
        hf_raise_for_status(response)
        items = response.json()
    return [RemoteRepo(id=item["id"], downloads=item.get("downloads"), likes=item.get("likes")) for item in items]


def _require_network(action: str) -> None:
    if is_offline():
        raise NetworkError(f"{action} needs the network, and HF_HUB_OFFLINE is set", hint="unset HF_HUB_OFFLINE")
    _prepare_network()


# -- errors -------------------------------------------------------------------------------------


@contextmanager
def _hub_errors(
    repo: str | None,
    filename: str | None,
    revision: str | None,
    transfer: Callable[[], tuple[int, int]] | None = None,
) -> Iterator[None]:
    """Turn huggingface_hub and httpx2 exceptions into offgrid's errors.

    ``transfer`` (returns bytes done and total, 0 if unknown) marks a download in progress: a
    broken connection then says how far it got and that running the command again resumes.
    """
    import httpx2
    from huggingface_hub import errors as hf_errors

    what = f"{repo}/{filename}" if repo and filename else (repo or "Hugging Face")
    try:
        yield
    except OffgridError:
        raise
    except hf_errors.OfflineModeIsEnabled as error:
        raise ModelNotCachedError(f"{what} is not downloaded and HF_HUB_OFFLINE is set") from error
    except hf_errors.GatedRepoError as error:
        raise ModelFileError(
            f"{repo} is gated: its licence must be accepted on Hugging Face first",
            hint=f"accept it at {endpoint()}/{repo}, then set HF_TOKEN to a token of that account",
        ) from error
    except hf_errors.RepositoryNotFoundError as error:
        raise ModelFileError(
            f"Hugging Face has no model repo {repo} (or it is private)",
            hint="check the name; for a private repo set HF_TOKEN",
        ) from error
    except hf_errors.RevisionNotFoundError as error:
        raise ModelFileError(f"{repo} has no revision {revision!r}") from error
    except hf_errors.RemoteEntryNotFoundError as error:
        raise ModelFileError(
            f"{repo} has no file {filename}", hint=f"list its files with: offgrid models files {repo}"
        ) from error
    except hf_errors.HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            raise ModelFileError(
                f"Hugging Face refused access to {what} (HTTP {status})", hint="set HF_TOKEN to a token with access"
            ) from error
        raise NetworkError(f"Hugging Face answered HTTP {status} for {what}", hint="try again later") from error
    except (hf_errors.FileMetadataError, httpx2.TooManyRedirects) as error:
        raise NetworkError(
            f"{endpoint()} did not answer like Hugging Face: {error}",
            hint="check HF_ENDPOINT, a proxy or a captive portal",
        ) from error
    except (httpx2.TransportError, httpx2.DecodingError) as error:
        if transfer is not None and not isinstance(error, (httpx2.ConnectError, httpx2.ConnectTimeout)):
            done, total = transfer()
            of_total = f" of {total}" if total else ""
            raise NetworkError(
                f"download of {what} was interrupted at {done}{of_total} bytes ({error})",
                hint="run the same command again: it resumes where it stopped",
            ) from error
        raise NetworkError(
            f"cannot reach Hugging Face at {endpoint()} ({error})",
            hint="check the internet connection; models already downloaded work offline",
        ) from error

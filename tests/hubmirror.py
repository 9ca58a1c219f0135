"""A tiny Hugging Face Hub look-alike on 127.0.0.1 for tests.

It answers the calls huggingface_hub 2.4 makes for downloads and listings:

- ``HEAD``/``GET /{repo}/resolve/{revision}/{filename}`` with ``X-Repo-Commit``, ``ETag``,
  ``X-Linked-Etag``/``X-Linked-Size`` (LFS files: the sha256 and the real size), ``Accept-Ranges``
  and ``Range`` -> 206 / 416. Files are served directly (no CDN redirect) and never with Xet
  headers, so huggingface_hub always takes the plain HTTP path.
- ``/api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}`` (``model_info``; ``?blobs=true``
  adds size, blobId and lfs {sha256, size, pointerSize} to every sibling).
- ``/api/models/{repo}/tree/{rev}[/{path}]`` (``list_repo_tree``; lfs {oid, size, pointerSize}).
- ``/api/models?search=&filter=&sort=&limit=&author=`` (``list_models``).

Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) the way the Hub
does, so huggingface_hub raises its usual exception classes. Every request is recorded in
``requests`` as ``(method, path_with_query, range_header_or_None)`` and its headers in
``request_headers``; ``body_bytes_sent`` counts file bytes sent by GETs.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

GIT_TEXT_SUFFIXES = {".md", ".json", ".txt", ".gitattributes", ".py", ".yaml", ".yml"}
LFS_POINTER_SIZE = 134
RESOLVE_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<filename>.+)$")
RANGE_HEADER = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass
class MirrorFile:
    """One file of one branch, with the hashes the Hub reports for it."""

    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_oid(self) -> str:
        """The git blob sha1 (what the Hub reports as ETag for non-LFS files)."""
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class MirrorRepo:
    """A model repo: branches of files, plus the stats list_models reports."""

    repo_id: str
    branches: dict[str, dict[str, MirrorFile]] = field(default_factory=dict)
    downloads: int = 0
    likes: int = 0
    extra_tags: list[str] = field(default_factory=list)

    def commit(self, branch: str) -> str:
        """A deterministic 40-hex commit id that changes whenever the branch content changes."""
        digest = hashlib.sha1(f"{self.repo_id}@{branch}".encode())
        for name, file in sorted(self.branches[branch].items()):
            digest.update(f"{name}:{file.sha256}".encode())
        return digest.hexdigest()

    def branch_for(self, revision: str) -> str | None:
        """The branch a revision (branch name or current commit id) points to."""
        if revision in self.branches:
            return revision
        for branch in self.branches:
            if self.commit(branch) == revision:
                return branch
        return None

    @property
    def tags(self) -> list[str]:
        has_gguf = any(name.endswith(".gguf") for files in self.branches.values() for name in files)
        return (["gguf"] if has_gguf else []) + self.extra_tags


class HubMirror:
    """A threaded HTTP server that answers like the Hub. Use as a context manager."""

    def __init__(self) -> None:
        self.repos: dict[str, MirrorRepo] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.request_headers: list[dict[str, str]] = []
        self.body_bytes_sent = 0
        self._fail_after: dict[tuple[str, str], int] = {}
        self._corrupt_next: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> HubMirror:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = type("BoundHubHandler", (_HubHandler,), {"mirror": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="hubmirror", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        """The URL to put in HF_ENDPOINT."""
        assert self._server is not None, "HubMirror is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- content -----------------------------------------------------------------------------

    def add_file(
        self, repo: str, filename: str, data: bytes, revision: str = "main", *, lfs: bool | None = None
    ) -> MirrorFile:
        """Add (or replace) a file; LFS unless it looks like a small text file (README.md, *.json)."""
        if lfs is None:
            lfs = PurePosixPath(filename).suffix.lower() not in GIT_TEXT_SUFFIXES and filename != ".gitattributes"
        with self._lock:
            entry = self.repos.setdefault(repo, MirrorRepo(repo_id=repo))
            file = MirrorFile(data=data, lfs=lfs)
            entry.branches.setdefault(revision, {})[filename] = file
            return file

    def set_repo_stats(
        self, repo: str, *, downloads: int = 0, likes: int = 0, tags: list[str] | None = None
    ) -> None:
        """Set what list_models reports for a repo (the repo must exist)."""
        with self._lock:
            entry = self.repos[repo]
            entry.downloads, entry.likes, entry.extra_tags = downloads, likes, list(tags or [])

    def commit(self, repo: str, revision: str = "main") -> str:
        """The commit id the mirror reports for a branch."""
        with self._lock:
            return self.repos[repo].commit(revision)

    # -- faults ------------------------------------------------------------------------------

    def fail_after_bytes(self, repo: str, filename: str, n: int) -> None:
        """Make the NEXT GET of this file send its headers and n body bytes, then drop the connection."""
        with self._lock:
            self._fail_after[(repo, filename)] = n

    def corrupt_next_get(self, repo: str, filename: str) -> None:
        """Make the NEXT GET of this file deliver bytes that differ from the advertised sha256."""
        with self._lock:
            self._corrupt_next.add((repo, filename))

    def clear_requests(self) -> None:
        """Forget recorded requests, their headers and the byte count."""
        with self._lock:
            self.requests.clear()
            self.request_headers.clear()
            self.body_bytes_sent = 0

    def _take_faults(self, repo: str, filename: str) -> tuple[int | None, bool]:
        with self._lock:
            fail_after = self._fail_after.pop((repo, filename), None)
            corrupt = (repo, filename) in self._corrupt_next
            self._corrupt_next.discard((repo, filename))
            return fail_after, corrupt

    def _record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((method, path, headers.get("range")))
            self.request_headers.append(headers)

    def _count_body(self, n: int) -> None:
        with self._lock:
            self.body_bytes_sent += n


class _QuietServer(ThreadingHTTPServer):
    """Tracks open connections so stop() can cut them; clients hanging up mid-answer are normal."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End keep-alive connections too, or a pooled client would keep talking to a stopped mirror."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _HubHandler(BaseHTTPRequestHandler):
    """Routes one request to the resolve, model-info, tree or list-models answer."""

    mirror: HubMirror
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end instead of holding a thread forever

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # -- routing -----------------------------------------------------------------------------

    def _dispatch(self, head: bool) -> None:
        self.mirror._record(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        if match := RESOLVE_PATH.match(path):
            self._resolve(unquote(match["repo"]), unquote(match["rev"]), unquote(match["filename"]), head)
        elif path == "/api/models":
            self._list_models(query)
        elif path.startswith("/api/models/"):
            self._repo_api(unquote(path[len("/api/models/") :]), query)
        else:
            self._error(404, "NotFound", f"no route for {path}")

    def _repo_api(self, rest: str, query: dict[str, list[str]]) -> None:
        segments = rest.split("/")
        repo_id, tail = "/".join(segments[:2]), segments[2:]
        if not tail:
            self._model_info(repo_id, "main", query)
        elif tail[0] == "revision" and len(tail) == 2:
            self._model_info(repo_id, tail[1], query)
        elif tail[0] == "tree" and len(tail) >= 2:
            self._tree(repo_id, tail[1], "/".join(tail[2:]), query)
        else:
            self._error(404, "NotFound", f"no route for /api/models/{rest}")

    def _find(self, repo_id: str, revision: str) -> tuple[MirrorRepo, str] | None:
        """The repo and branch, or None after answering 404 RepoNotFound / RevisionNotFound."""
        repo = self.mirror.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        branch = repo.branch_for(revision)
        if branch is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo, branch

    # -- answers -----------------------------------------------------------------------------

    def _resolve(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
        found = self._find(repo_id, revision)
        if found is None:
            return
        repo, branch = found
        commit = repo.commit(branch)
        file = repo.branches[branch].get(filename)
        if file is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist", {"X-Repo-Commit": commit})
            return
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{file.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if file.lfs:
            headers["X-Linked-Etag"] = f'"{file.sha256}"'
            headers["X-Linked-Size"] = str(len(file.data))
        body = file.data
        status = 200
        if (range_header := self.headers.get("Range")) is not None:
            span = _parse_range(range_header, len(body))
            if span is None:
                headers["Content-Range"] = f"bytes */{len(body)}"
                self._send(416, headers, b"", head=True)
                return
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            body, status = body[start : end + 1], 206
        if head:
            self._send(status, headers, body, head=True)
            return
        fail_after, corrupt = self.mirror._take_faults(repo_id, filename)
        if corrupt and body:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        # Counted before sending: the client may finish before this thread runs on.
        if fail_after is None:
            self.mirror._count_body(len(body))
            self._send(status, headers, body)
        else:
            self.mirror._count_body(min(fail_after, len(body)))
            self._send_then_drop(status, headers, body, fail_after)

    def _model_info(self, repo_id: str, revision: str, query: dict[str, list[str]]) -> None:
        found = self._find(repo_id, revision)
        if found is None:
            return
        repo, branch = found
        with_blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for name, file in sorted(repo.branches[branch].items()):
            sibling: dict[str, object] = {"rfilename": name}
            if with_blobs:
                sibling.update(size=len(file.data), blobId=file.git_oid)
                if file.lfs:
                    sibling["lfs"] = {"sha256": file.sha256, "size": len(file.data), "pointerSize": LFS_POINTER_SIZE}
            siblings.append(sibling)
        self._json(200, {**_summary(repo), "sha": repo.commit(branch), "siblings": siblings})

    def _tree(self, repo_id: str, revision: str, folder: str, query: dict[str, list[str]]) -> None:
        found = self._find(repo_id, revision)
        if found is None:
            return
        repo, branch = found
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries: list[dict[str, object]] = []
        folders: set[str] = set()
        for name, file in sorted(repo.branches[branch].items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entry: dict[str, object] = {"type": "file", "oid": file.git_oid, "size": len(file.data), "path": name}
            if file.lfs:
                entry["lfs"] = {"oid": file.sha256, "size": len(file.data), "pointerSize": LFS_POINTER_SIZE}
            entries.append(entry)
        dirs = [
            {"type": "directory", "oid": hashlib.sha1(p.encode()).hexdigest(), "size": 0, "path": p}
            for p in sorted(folders)
        ]
        self._json(200, dirs + entries)

    def _list_models(self, query: dict[str, list[str]]) -> None:
        search = query.get("search", [""])[0].lower()
        filters = query.get("filter", [])
        author = query.get("author", [None])[0]
        results = [
            repo
            for repo in self.mirror.repos.values()
            if search in repo.repo_id.lower()
            and all(tag in repo.tags for tag in filters)
            and (author is None or repo.repo_id.split("/")[0] == author)
        ]
        sort = query.get("sort", [None])[0]
        if sort in ("downloads", "likes"):
            results.sort(key=lambda repo: getattr(repo, sort), reverse=True)
        if "limit" in query:
            results = results[: int(query["limit"][0])]
        self._json(200, [_summary(repo) for repo in results])

    # -- low-level sending -------------------------------------------------------------------

    def _json(self, status: int, payload: object) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        headers.update(extra or {})
        self._send(status, headers, json.dumps({"error": message}).encode(), head=self.command == "HEAD")

    def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_then_drop(self, status: int, headers: dict[str, str], body: bytes, n: int) -> None:
        """Announce the whole body, send only n bytes of it, then cut the connection."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:n])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _summary(repo: MirrorRepo) -> dict[str, object]:
    """The fields list_models returns for a repo (model_info adds sha and siblings)."""
    return {
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.repo_id.split("/")[0],
        "private": False,
        "gated": False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": repo.tags,
        "library_name": "gguf" if "gguf" in repo.tags else None,
    }


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Inclusive (start, end) for a single "bytes=a-b" range, or None when unsatisfiable."""
    match = RANGE_HEADER.match(header)
    if match is None or (match[1] == "" and match[2] == ""):
        return None
    if match[1] == "":  # suffix range: the last N bytes
        length = int(match[2])
        return (max(size - length, 0), size - 1) if length and size else None
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    return (start, end) if start < size and start <= end else None

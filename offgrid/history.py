"""One SQLite log for every command's runs and conversations.

A conversation is a row in `conversations` (command, model, optional name, metadata) with
its `messages` in order. A one-shot run of any command (a summary, a transcript, an image)
is a conversation of one user message and one assistant message. The file is owner-only,
written in WAL mode inside transactions, so a crash mid-write loses at most that write.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offgrid.device import paths
from offgrid.errors import OffgridError, UsageError
from offgrid.lazy import lazy_import

sqlite3 = lazy_import("sqlite3")  # opened when a command records or reads history

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    name TEXT,
    model TEXT,
    title TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS conversations_name ON conversations(command, name)
    WHERE name IS NOT NULL;
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages(conversation_id, id);
"""

# Full-text index of message text (FTS5, when this SQLite has it), kept in step by triggers.
FTS_SCHEMA = """
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
"""


def _ensure_fts(conn: sqlite3.Connection) -> bool:
    """Create the full-text index on first use (indexing what is there); False without FTS5."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name='messages_fts'").fetchone():
        return True
    try:
        conn.executescript("BEGIN;" + FTS_SCHEMA + "COMMIT;")
        return True
    except sqlite3.OperationalError:  # no FTS5 in this SQLite build
        if conn.in_transaction:
            conn.rollback()
        return False


def fts_query(text: str) -> str:
    """User text -> an FTS5 query: every word must appear (as a word or a word's start)."""
    words = [w.replace('"', "") for w in text.split()]
    return " ".join(f'"{w}"*' for w in words if w)


@dataclass
class Record:
    """A conversation or run, with its messages when loaded in full."""

    id: str
    command: str
    name: str | None
    model: str | None
    title: str | None
    created: float
    updated: float
    meta: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "command": self.command, "name": self.name, "model": self.model,
                "title": self.title, "created": self.created, "updated": self.updated,
                "meta": self.meta, "messages": self.messages}


class History:
    """The history database; every method opens a short transaction."""

    def __init__(self, path: Path | None = None):
        self.path = path or paths.history_db()
        self.fts = False  # set on each open: is the FTS5 index there?

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        paths.private_dir(self.path.parent)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            conn = sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise self._corrupt(exc) from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")  # deleted text is overwritten, not left
            conn.executescript(SCHEMA)
            self.fts = _ensure_fts(conn)
            with conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from None
        finally:
            conn.close()

    def _corrupt(self, exc: Exception) -> OffgridError:
        return OffgridError(f"the history database {self.path} is unreadable ({exc})",
                            hint=f"move it aside to start afresh: mv {self.path} "
                                 f"{self.path}.broken")

    # --- writing -------------------------------------------------------------------------
    def start(self, command: str, model: str | None, *, name: str | None = None,
              title: str | None = None, meta: dict[str, Any] | None = None) -> str:
        """Create a conversation and return its id."""
        conv_id = secrets.token_hex(4)
        now = time.time()
        with self._db() as db:
            db.execute("INSERT INTO conversations VALUES (?,?,?,?,?,?,?,?)",
                       (conv_id, command, name, model, title, now, now, json.dumps(meta or {})))
        return conv_id

    def add(self, conv_id: str, role: str, content: str,
            meta: dict[str, Any] | None = None) -> None:
        """Append a message to a conversation."""
        now = time.time()
        with self._db() as db:
            db.execute("INSERT INTO messages (conversation_id, role, content, created, meta) "
                       "VALUES (?,?,?,?,?)", (conv_id, role, content, now, json.dumps(meta or {})))
            db.execute("UPDATE conversations SET updated=?, title=COALESCE(title, ?) WHERE id=?",
                       (now, content[:80] if role == "user" else None, conv_id))

    def update(self, conv_id: str, *, model: str | None = None,
               meta: dict[str, Any] | None = None) -> None:
        with self._db() as db:
            if model is not None:
                db.execute("UPDATE conversations SET model=? WHERE id=?", (model, conv_id))
            if meta is not None:
                db.execute("UPDATE conversations SET meta=? WHERE id=?",
                           (json.dumps(meta), conv_id))

    def pop_last(self, conv_id: str, role: str | None = None) -> None:
        """Remove the newest message (of *role*, if given): /retry and /reset use it."""
        with self._db() as db:
            query = "SELECT id FROM messages WHERE conversation_id=?"
            args: list[Any] = [conv_id]
            if role:
                query += " AND role=?"
                args.append(role)
            row = db.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
            if row:
                db.execute("DELETE FROM messages WHERE id=?", (row[0],))

    def clear_messages(self, conv_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM messages WHERE conversation_id=?", (conv_id,))

    def record_run(self, command: str, model: str | None, prompt: str, output: str,
                   meta: dict[str, Any] | None = None) -> str:
        """Log a one-shot run of any command: its input, output and settings."""
        conv_id = self.start(command, model, title=prompt[:80], meta=meta)
        self.add(conv_id, "user", prompt)
        self.add(conv_id, "assistant", output)
        return conv_id

    def delete(self, conv_id: str) -> bool:
        with self._db() as db:
            cur = db.execute("DELETE FROM conversations WHERE id=?", (conv_id,))
            db.execute("DELETE FROM messages WHERE conversation_id=?", (conv_id,))
            deleted = cur.rowcount > 0
            if deleted and self.fts:  # merge index segments: drops the deleted words too
                db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
        self._compact(vacuum=False)
        return deleted

    def delete_all(self) -> int:
        """Delete everything, then VACUUM and empty the WAL, so no text is left in either."""
        with self._db() as db:
            count = db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
            db.execute("DELETE FROM messages")
            db.execute("DELETE FROM conversations")
            if self.fts:
                db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('delete-all')")
        self._compact(vacuum=True)
        return count

    def _compact(self, *, vacuum: bool) -> None:
        """Copy the WAL into the database and truncate it (old page images hold deleted
        text); VACUUM rewrites the file without free pages."""
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            if vacuum:
                conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from None
        finally:
            conn.close()

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def _record(row: tuple[Any, ...]) -> Record:
        return Record(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]))

    def get(self, conv_id: str, *, messages: bool = True) -> Record:
        with self._db() as db:
            row = db.execute("SELECT * FROM conversations WHERE id=?", (conv_id,)).fetchone()
            if row is None:
                raise UsageError(f"no history entry {conv_id!r}", hint="see `offgrid history`")
            record = self._record(row)
            if messages:
                record.messages = [
                    {"role": r, "content": c, "created": t, "meta": json.loads(m)}
                    for r, c, t, m in db.execute(
                        "SELECT role, content, created, meta FROM messages "
                        "WHERE conversation_id=? ORDER BY id", (conv_id,))]
        return record

    def find(self, *, command: str | None = None, name: str | None = None) -> Record | None:
        """The newest conversation of *command* (named *name*, if given)."""
        query, args = "SELECT * FROM conversations WHERE 1=1", []
        if command:
            query += " AND command=?"
            args.append(command)
        if name:
            query += " AND name=?"
            args.append(name)
        with self._db() as db:
            row = db.execute(query + " ORDER BY updated DESC, rowid DESC LIMIT 1",
                             args).fetchone()
        return self.get(row[0]) if row else None

    def list(self, *, command: str | None = None, search: str | None = None,
             limit: int = 50) -> list[Record]:
        """Newest first; *search* matches titles, names and message text (full-text through
        FTS5: every word, as a word or a word's start; substring LIKE without FTS5)."""
        with self._db() as db:
            if search and self.fts and fts_query(search):
                try:
                    return self._select(db, command, search, limit, fts=True)
                except sqlite3.OperationalError:  # a query FTS5 cannot parse
                    pass
            return self._select(db, command, search, limit, fts=False)

    def _select(self, db: sqlite3.Connection, command: str | None, search: str | None,
                limit: int, *, fts: bool) -> list[Record]:
        query = "SELECT * FROM conversations c WHERE 1=1"
        args: list[Any] = []
        if command:
            query += " AND c.command=?"
            args.append(command)
        if search:
            query += " AND (c.title LIKE ? OR c.name LIKE ? OR "
            args += [f"%{search}%"] * 2
            if fts:
                query += ("c.id IN (SELECT m.conversation_id FROM messages_fts f JOIN messages m"
                          " ON m.id = f.rowid WHERE messages_fts MATCH ?))")
                args.append(fts_query(search))
            else:
                query += ("EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id=c.id"
                          " AND m.content LIKE ?))")
                args.append(f"%{search}%")
        query += " ORDER BY c.updated DESC LIMIT ?"
        args.append(limit)
        return [self._record(row) for row in db.execute(query, args)]

    def names(self) -> list[str]:
        with self._db() as db:
            return [r[0] for r in db.execute(
                "SELECT DISTINCT name FROM conversations WHERE name IS NOT NULL ORDER BY name")]


def enabled(no_save: bool, conf: dict[str, Any]) -> bool:
    """Whether this run keeps anything on disk: not with --no-save or history.enabled=false."""
    return not no_save and conf.get("history.enabled") is not False


def open_for(no_save: bool, conf: dict[str, Any]) -> History | None:
    """The history this run records into, or None when it keeps nothing (see enabled())."""
    return History() if enabled(no_save, conf) else None


def to_markdown(record: Record) -> str:
    """A conversation as Markdown, for `history export`."""
    lines = [f"# {record.title or record.id}", "",
             f"- command: {record.command}", f"- model: {record.model or '?'}",
             f"- started: {time.strftime('%Y-%m-%d %H:%M', time.localtime(record.created))}", ""]
    for message in record.messages:
        lines += [f"## {message['role']}", "", message["content"].rstrip(), ""]
    return "\n".join(lines)

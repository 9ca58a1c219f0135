"""The curated catalog (catalog.toml): recommended models per task, and each task's default
for this device's memory."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from offgrid import device

TASKS = ("text", "vision", "image", "speech")
# The share of total RAM a default model may plan to use: phones keep the rest for Android.
DEFAULT_RAM_SHARE = 0.6


@dataclass(frozen=True)
class CatalogFile:
    """One file of a catalog model: its role (model, mmproj, vae, …), name, size, hash."""

    role: str
    name: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    """A curated model: where it lives on the Hub and what it needs."""

    alias: str
    task: str
    repo: str
    files: tuple[CatalogFile, ...]
    description: str = ""
    revision: str = "main"
    license: str = ""
    ram_mb: int = 0
    ctx: int | None = None
    verified: bool = False
    source: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def file(self, role: str) -> CatalogFile | None:
        return next((f for f in self.files if f.role == role), None)

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)


@dataclass(frozen=True)
class Catalog:
    entries: dict[str, CatalogEntry]
    defaults: dict[str, list[str]]

    def get(self, alias: str) -> CatalogEntry | None:
        return self.entries.get(alias.lower())

    def for_task(self, task: str) -> list[CatalogEntry]:
        return [e for e in self.entries.values() if e.task == task]

    def default_for(self, task: str, ram_mb: int | None = None) -> CatalogEntry:
        """The best default for *task* whose RAM need fits this device; else the smallest."""
        ram_mb = device.total_ram_mb() if ram_mb is None else ram_mb
        choices = [self.entries[a] for a in self.defaults.get(task, []) if a in self.entries]
        if not choices:
            raise KeyError(f"the catalog has no default for {task}")
        budget = (ram_mb or 0) * DEFAULT_RAM_SHARE
        for entry in choices:
            if ram_mb is None or entry.ram_mb <= budget:
                return entry
        return min(choices, key=lambda e: e.ram_mb)


_ENTRY_KEYS = {"task", "description", "repo", "revision", "license", "ram_mb", "ctx",
               "verified", "source", "files"}


def parse(data: dict[str, Any]) -> Catalog:
    """Build a Catalog from catalog.toml's parsed data."""
    entries = {}
    for alias, raw in data.get("models", {}).items():
        files = tuple(CatalogFile(f["role"], f["name"], f.get("size"), f.get("sha256"))
                      for f in raw.get("files", []))
        options = {k: v for k, v in raw.items() if k not in _ENTRY_KEYS}
        entries[alias.lower()] = CatalogEntry(
            alias=alias.lower(), task=raw["task"], repo=raw["repo"], files=files,
            description=raw.get("description", ""), revision=raw.get("revision", "main"),
            license=raw.get("license", ""), ram_mb=int(raw.get("ram_mb", 0)),
            ctx=raw.get("ctx"), verified=bool(raw.get("verified", False)),
            source=raw.get("source", ""), options=options)
    defaults = {task: [a.lower() for a in aliases]
                for task, aliases in data.get("defaults", {}).items()}
    return Catalog(entries, defaults)


@lru_cache(maxsize=1)
def load() -> Catalog:
    """The catalog shipped with offgrid."""
    text = resources.files("offgrid.models").joinpath("catalog.toml").read_text("utf-8")
    return parse(tomllib.loads(text))

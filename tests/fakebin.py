"""Fake executables on PATH for tests: each records its arguments and stdin, prints what it is
told, sleeps or fails on demand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCRIPT = """#!{python}
import json, sys, time
args = sys.argv[1:]
data = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"name": {name!r}, "args": args, "stdin": data}}) + "\\n")
time.sleep({sleep!r})
{action}
sys.stdout.write({stdout!r})
sys.stderr.write({stderr!r})
sys.exit({code!r})
"""


class FakeBin:
    """A folder of fake programs; put `.dir` on PATH."""

    def __init__(self, root: Path):
        self.dir = root / "bin"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = root / "calls.jsonl"

    def add(self, name: str, *, stdout: str = "", stderr: str = "", code: int = 0,
            sleep: float = 0, action: str = "") -> Path:
        """Create program *name*; *action* is Python run before printing (args is argv[1:])."""
        path = self.dir / name
        path.write_text(SCRIPT.format(python=sys.executable, log=str(self.log), name=name,
                                      sleep=sleep, stdout=stdout, stderr=stderr, code=code,
                                      action=action))
        path.chmod(0o755)
        return path

    def calls(self, name: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r for r in rows if name is None or r["name"] == name]

    def argv(self, name: str) -> list[list[str]]:
        return [r["args"] for r in self.calls(name)]

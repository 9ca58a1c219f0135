"""Regenerate the completion scripts in this folder from the Typer app:

    python completions/generate.py          # write offgrid.bash, _offgrid, offgrid.fish
    python completions/generate.py --check  # exit 1 when a committed script is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from offgrid.ui.completion import FILE_NAMES, script  # noqa: E402


def stale() -> list[str]:
    """Names of the committed scripts that differ from what the app generates now."""
    return [name for shell, name in FILE_NAMES.items()
            if not (HERE / name).exists() or (HERE / name).read_text() != script(shell)]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        names = stale()
        for name in names:
            print(f"completions/{name} is stale: run python completions/generate.py")
        return 1 if names else 0
    for shell, name in FILE_NAMES.items():
        (HERE / name).write_text(script(shell))
        print(f"wrote completions/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

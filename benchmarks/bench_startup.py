"""Start-up: `offgrid --help` and `offgrid chat --help` wall time (median of N runs) against
`python -c "import typer"` measured in the same run (the floor for a Typer CLI), and what they
import (python -X importtime).

A native engine (llama_cpp, stable_diffusion_cpp, pywhispercpp) or numpy imported for --help
is a bug: it is flagged in the notes.
"""

from __future__ import annotations

import re

from benchmarks import common
from benchmarks.common import Options, Row, median

HEAVY = ("llama_cpp", "stable_diffusion_cpp", "pywhispercpp", "_pywhispercpp", "numpy", "PIL",
         "huggingface_hub", "pypdf", "prompt_toolkit", "sqlite3", "jinja2")
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def walls(cmd: list[str], runs: int) -> list[float]:
    return [common.check(common.run_child(cmd), " ".join(cmd[-2:])).wall for _ in range(runs)]


def imports(args: list[str]) -> dict:
    """Modules imported by `python -X importtime -m offgrid ARGS`: count, heavy ones, top."""
    run = common.check(common.run_child(common.python("-X", "importtime", "-m", "offgrid",
                                                      *args)), "importtime")
    modules: dict[str, int] = {}
    for match in IMPORT_LINE.finditer(run.stderr):
        modules[match.group(4)] = int(match.group(2))  # cumulative µs
    heavy = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})
    top_level = {m: us for m, us in modules.items() if "." not in m}
    top = sorted(top_level.items(), key=lambda kv: -kv[1])[:8]
    return {"count": len(modules), "heavy": heavy, "top_ms": {m: us / 1000 for m, us in top}}


def run(opts: Options) -> list[Row]:
    runs = 5 if opts.quick else 15
    rows = []
    for args in (["--help"], ["chat", "--help"]):
        took, bare = [], []
        for _ in range(runs):  # in turn, so a drift of the machine's speed hits both
            took += walls(common.offgrid_cmd(*args), 1)
            bare += walls(common.python("-c", "import typer"), 1)
        found = imports(args)
        flag = f"; HEAVY: {', '.join(found['heavy'])}" if found["heavy"] else ""
        rows.append(Row(f"offgrid {' '.join(args)}", median(took) * 1000, median(bare) * 1000,
                        "ms", note=f"median of {runs}, best {min(took) * 1000:.0f} ms; "
                        f"{found['count']} modules{flag}; direct = `python -c \"import typer\"`",
                        extra=found))
    return rows

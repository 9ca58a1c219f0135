"""Run the benchmarks: `python -m benchmarks [names…] [--quick] [--json out.json]`.

Each `benchmarks/bench_<name>.py` has `run(opts) -> list[Row]`; every row compares offgrid
with the bare engine measured in the same run. A table goes to stdout, JSON to
benchmarks/results/ (or --json).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import common


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in Path(__file__).parent.glob("bench_*.py"))


def _has_run(name: str) -> bool:
    """Whether bench_<name>.py follows the framework (`def run(opts)`), read as text so a
    script's imports (an engine) are not paid here."""
    source = (Path(__file__).parent / f"bench_{name}.py").read_text(encoding="utf-8")
    return "\ndef run(opts" in source


def run_script(name: str, opts: common.Options) -> Any:
    """Run a stand-alone benchmark script (`main()` with --json and --threads), show its
    output, and return its JSON."""
    print(f"== {name}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "result.json"
        args = ["--json", str(target)] + (["--threads", str(opts.threads)] if opts.threads else [])
        done = subprocess.run(common.python(str(Path(__file__).parent / f"bench_{name}.py"),
                                            *args), env=common.child_env(), check=False)
        if done.returncode != 0:
            raise RuntimeError(f"bench_{name}.py exited with {done.returncode}")
        return json.loads(target.read_text()) if target.exists() else None


def main(argv: list[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(names)}")
    parser.add_argument("--quick", action="store_true",
                        help="a few-MB model and one repetition (checks the benchmarks run)")
    parser.add_argument("--repeat", type=int, help="repetitions per measurement (default 3)")
    parser.add_argument("--threads", type=int, help="threads for both sides (default: "
                        "offgrid's choice)")
    parser.add_argument("--json", type=Path, help="write results here instead of "
                        "benchmarks/results/<time>.json")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    opts = common.Options(quick=args.quick, threads=args.threads,
                          repeat=args.repeat or (1 if args.quick else 3))
    results: dict[str, Any] = {}
    failed = 0
    for name in args.names or names:
        started = time.perf_counter()
        try:
            if not _has_run(name):  # a stand-alone script with its own table and --json
                results[name] = run_script(name, opts)
                continue
            module = importlib.import_module(f"benchmarks.bench_{name}")
            rows = module.run(opts)
        except Exception:  # report and go on with the others
            traceback.print_exc()
            failed += 1
            continue
        results[name] = rows
        columns = getattr(module, "COLUMNS", ("offgrid", "direct"))
        print(common.table(f"{name} ({time.perf_counter() - started:.0f} s)", rows, columns),
              flush=True)
    meta = {"python": sys.version.split()[0], "machine": platform.machine(),
            "quick": opts.quick, "repeat": opts.repeat, "threads": opts.threads,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    print(f"results: {common.write_results(results, args.json, meta)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

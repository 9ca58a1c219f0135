"""Run the benchmarks: `python -m benchmarks [names…] [--quick] [--json out.json]`.

Each `benchmarks/bench_<name>.py` has `run(opts) -> list[Row]`; every row compares offgrid
with the bare engine measured in the same run. A table goes to stdout, JSON to
benchmarks/results/ (or --json).
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
import traceback
from pathlib import Path

from benchmarks import common


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in Path(__file__).parent.glob("bench_*.py"))


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
    results: dict[str, list[common.Row]] = {}
    failed = 0
    for name in args.names or names:
        started = time.perf_counter()
        try:
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

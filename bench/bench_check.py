"""Wall time of `pde2gen check <entry>` per catalog entry, against `python -c "import sympy"` in the same run.

Each command runs in a fresh interpreter (subprocess), ``--repeat`` times; the table shows the median wall time,
the in-process time of the analyse stage (from ``check --json``), and the ratio to the median sympy import, so
that the numbers mean something on a loaded or slow machine. The budget (docs: "< 1 s including interpreter
start" where importing sympy takes 0.3-0.5 s) is checked as a ratio too: 1 s / 0.5 s = 2 x the sympy import.

    python bench/bench_check.py [--dim 2] [--repeat 5] [--entries wave,telegraph]

Writes bench/results/check.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "check.json"
BUDGET_SECONDS = 1.0
SYMPY_IMPORT_REFERENCE = 0.5  # the slow end of "sympy import alone is ~0.3-0.5 s"


def _run(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start, done


def _check_command(entry: str, dim: int) -> list[str]:
    if (ROOT / "pde2gen" / "cli.py").exists():
        return [sys.executable, "-m", "pde2gen", "check", entry, "--dim", str(dim), "--json"]
    code = ("import json, time; from pde2gen.spec.parse import parse; from pde2gen.analysis.analyse import analyse; "
            f"s = time.perf_counter(); r = analyse(parse({entry!r}, dim={dim})); "
            "d = r.to_dict(); d['timings_s'] = {'analyse': time.perf_counter() - s}; print(json.dumps(d))")
    return [sys.executable, "-c", code]


def _entries(selected: str | None) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from pde2gen.spec.catalog import load_catalog

    names = sorted(name for name, entry in load_catalog().items() if entry.kind == "equation")
    if selected:
        wanted = selected.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise SystemExit(f"unknown catalog entries: {', '.join(unknown)}")
        names = [n for n in names if n in wanted]
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--entries", default=None, help="comma-separated catalog entries (default: all)")
    args = parser.parse_args()

    entries = _entries(args.entries)
    sympy_times, rows = [], []
    _run(_check_command(entries[0], args.dim))  # warm the file cache and the .pyc files once
    for _ in range(args.repeat):  # interleave, so that load changes hit both sides alike
        sympy_times.append(_run([sys.executable, "-c", "import sympy"])[0])
    for entry in entries:
        walls, analyse_times, verdict, error = [], [], None, None
        for _ in range(args.repeat):
            wall, done = _run(_check_command(entry, args.dim))
            walls.append(wall)
            sympy_times.append(_run([sys.executable, "-c", "import sympy"])[0])
            if done.returncode not in (0, 1):
                error = (done.stderr.strip().splitlines() or ["?"])[-1]
                continue
            data = json.loads(done.stdout)
            verdict = data["s_generative"]
            analyse_times.append(data.get("timings_s", {}).get("analyse", float("nan")))
        rows.append({"entry": entry, "wall_s": walls, "median_wall_s": statistics.median(walls),
                     "median_analyse_s": statistics.median(analyse_times) if analyse_times else None,
                     "s_generative": verdict, "error": error})

    sympy_median = statistics.median(sympy_times)
    budget_ratio = BUDGET_SECONDS / SYMPY_IMPORT_REFERENCE
    print(f"pde2gen check timings, N = {args.dim}, {args.repeat} runs each (median); "
          f"python -c 'import sympy': {sympy_median:.3f} s (median of {len(sympy_times)})")
    print(f"budget: < {BUDGET_SECONDS:g} s where sympy imports in {SYMPY_IMPORT_REFERENCE:g} s, i.e. ratio < "
          f"{budget_ratio:g}")
    header = f"{'entry':20s} {'wall s':>8s} {'analyse s':>10s} {'ratio':>7s} {'budget':>7s}  verdict"
    print(header)
    print("-" * len(header))
    for row in rows:
        row["ratio_to_sympy_import"] = row["median_wall_s"] / sympy_median
        row["within_budget"] = row["ratio_to_sympy_import"] < budget_ratio
        analyse_text = f"{row['median_analyse_s']:.3f}" if row["median_analyse_s"] is not None else "-"
        verdict = row["error"] or ("s-generative" if row["s_generative"] else "not s-generative")
        print(f"{row['entry']:20s} {row['median_wall_s']:8.3f} {analyse_text:>10s} "
              f"{row['ratio_to_sympy_import']:7.2f} {'ok' if row['within_budget'] else 'OVER':>7s}  {verdict}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "dim": args.dim, "repeat": args.repeat, "python": sys.version.split()[0], "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
        "sympy_import_s": sympy_times, "median_sympy_import_s": sympy_median,
        "budget_ratio": budget_ratio, "entries": rows,
    }, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

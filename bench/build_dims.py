"""Build every s-generative catalog entry in N = 1-8, 16, 64 and 3072 (issue 12): each build runs the
compiler's self-checks (statistical ones at a 1e-9 false-alarm rate per build), so a correct kernel must
build in every dimension. Prints one table (entry x dimension: seconds, or the failing stage) and exits 1 on
any failure. Entries are found by analysing the catalog now, never from a stored list; EXPRESSIONS (PDEs in
no catalog, e.g. heat plus Cauchy) are built as well.

    python bench/build_dims.py                       # all entries, all dimensions (~20-40 minutes on 2 cores)
    python bench/build_dims.py --dims 1 4 3072 --entries poisson kac

A full run (all entries, all dimensions) writes bench/results/build_dims.json and build_dims.md (--out).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

DIMS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 64, 3072)
# PDEs in no catalog built beside the entries: heat plus Cauchy (the heat_nig family) and heat plus a 1.5-stable
# (heat_stable), and heat plus Cauchy plus a 1.5-stable (subordinator_sum), issue 12.
EXPRESSIONS = ("u_t = lap(u) - fraclap(u, 1/2)", "u_t = lap(u) - 2*fraclap(u, 3/4)",
               "u_t = lap(u) - fraclap(u, 1/2) - fraclap(u, 3/4)", "u_tt + 4*u_t + 3*u = lap(u)")
# expressions built with the product construction (as the Kac catalog entries are): damped Klein-Gordon is
# s-generative isotropically only in N = 1, and its product repair is the Kac product of rate sqrt(a^2 - m^2)
PRODUCT_EXPRESSIONS = ("u_tt + 4*u_t + 3*u = lap(u)",)


def main(argv=None) -> int:
    from pde2gen.analysis.analyse import analyse
    from pde2gen.spec.catalog import load_catalog
    from pde2gen.spec.parse import parse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="*", default=list(DIMS))
    parser.add_argument("--entries", nargs="*", default=None, help="catalog names (default: every equation)")
    parser.add_argument("--expressions", nargs="*", default=list(EXPRESSIONS), help="PDE texts built as well")
    parser.add_argument("--out", type=Path, default=None,
                        help="results stem (default bench/results/build_dims for a full run, none otherwise)")
    args = parser.parse_args(argv)
    full = args.entries is None and list(args.dims) == list(DIMS) and list(args.expressions) == list(EXPRESSIONS)
    out = args.out or (Path(__file__).resolve().parent / "results" / "build_dims" if full else None)
    started = time.perf_counter()
    names = args.entries or [name for name, entry in load_catalog().items() if entry.kind == "equation"]
    names = list(names) + list(args.expressions)
    rows: dict[str, dict[int, str]] = {}
    failures = []
    with tempfile.TemporaryDirectory(prefix="pde2gen-build-dims-") as scratch:
        for name in names:
            for dim in args.dims:
                construction = "product" if name in PRODUCT_EXPRESSIONS and dim > 1 else None
                spec = parse(name, dim=dim, construction=construction)
                if not analyse(spec, repairs=False).s_generative:
                    rows.setdefault(name, {})[dim] = "-"
                    continue
                C.record_build(rows, failures, name, dim, Path(scratch) / f"{names.index(name)}-{dim}",
                               construction=construction)
    rows = {name: cells for name, cells in rows.items() if any(c != "-" for c in cells.values())}
    lines = C.dims_table("entry", rows, args.dims)
    builds = sum(c != "-" for cells in rows.values() for c in cells.values())
    lines += ["", f"{builds} builds of {len(rows)} s-generative entries, {len(failures)} failed"]
    lines += [f"- {line}" for line in failures]
    print("\n".join(lines))
    if out is not None:
        try:
            info = C.machine(threads=1)
        except subprocess.SubprocessError:  # outside a git checkout (e.g. a git-archive snapshot)
            import platform

            import torch

            info = {"cpu": platform.processor() or "unknown", "cores": os.cpu_count(), "usable_cores": os.cpu_count(),
                    "torch_threads": 1, "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_1m_at_start": round(os.getloadavg()[0], 2),
                    "git": os.environ.get("PDE2GEN_BENCH_COMMIT", "unknown (not a git checkout)"),
                    "compiler": "the pde2gen on PYTHONPATH"}
        record = {"command": "python bench/build_dims.py", "machine": info, "dims": list(args.dims),
                  "rows": rows, "builds": builds, "failures": failures,
                  "wall_seconds": round(time.perf_counter() - started, 1)}
        C.write_json(out.with_suffix(".json"), record)
        C.write_text(out.with_suffix(".md"), "`python bench/build_dims.py` (cells: build seconds; '-': not "
                     "s-generative in that N)\n\n" + C.machine_line(info) + "\n\n" + "\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

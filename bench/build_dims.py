"""Build every s-generative catalog entry in N = 1-8, 16, 64 and 3072 (issue 12): each build runs the
compiler's self-checks (statistical ones at a 1e-9 false-alarm rate per build), so a correct kernel must
build in every dimension. Prints one table (entry x dimension: seconds, or the failing stage) and exits 1 on
any failure. Entries are found by analysing the catalog now, never from a stored list; EXPRESSIONS (PDEs in
no catalog, e.g. heat plus Cauchy) are built as well.

    python bench/build_dims.py                       # all entries, all dimensions (~20-40 minutes on 2 cores)
    python bench/build_dims.py --dims 1 4 3072 --entries poisson kac
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

DIMS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 64, 3072)
# PDEs in no catalog built beside the entries: heat plus Cauchy (the heat_nig family, issue 12).
EXPRESSIONS = ("u_t = lap(u) - fraclap(u, 1/2)",)


def main(argv=None) -> int:
    from pde2gen.analyse import analyse
    from pde2gen.build import build
    from pde2gen.catalog import load_catalog
    from pde2gen.parse import parse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="*", default=list(DIMS))
    parser.add_argument("--entries", nargs="*", default=None, help="catalog names (default: every equation)")
    parser.add_argument("--expressions", nargs="*", default=list(EXPRESSIONS), help="PDE texts built as well")
    args = parser.parse_args(argv)
    names = args.entries or [name for name, entry in load_catalog().items() if entry.kind == "equation"]
    names = list(names) + list(args.expressions)
    rows: dict[str, dict[int, str]] = {}
    failures = []
    with tempfile.TemporaryDirectory(prefix="pde2gen-build-dims-") as scratch:
        for name in names:
            for dim in args.dims:
                spec = parse(name, dim=dim)
                if not analyse(spec, repairs=False).s_generative:
                    rows.setdefault(name, {})[dim] = "-"
                    continue
                start = time.perf_counter()
                try:
                    build(name, Path(scratch) / f"{names.index(name)}-{dim}", dim=dim)
                    cell = f"{time.perf_counter() - start:.1f}s"
                except Exception as error:  # noqa: BLE001 - the table reports every failure, then exits 1
                    cell = f"FAIL ({type(error).__name__})"
                    failures.append(f"{name} N={dim}: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
                rows.setdefault(name, {})[dim] = cell
                print(f"{name:14s} N={dim:<5d} {cell}", file=sys.stderr, flush=True)
    rows = {name: cells for name, cells in rows.items() if any(c != "-" for c in cells.values())}
    print("| entry | " + " | ".join(f"N={d}" for d in args.dims) + " |")
    print("|---|" + "---|" * len(args.dims))
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells.get(d, "") for d in args.dims) + " |")
    builds = sum(c != "-" for cells in rows.values() for c in cells.values())
    print(f"\n{builds} builds of {len(rows)} s-generative entries, {len(failures)} failed")
    for line in failures:
        print(f"- {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

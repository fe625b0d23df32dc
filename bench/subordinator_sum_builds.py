"""Build the sums of subordinators of issue 12 (the subordinator_sum family) in N = 1, 2, 8 and 3072: every build
runs the compiler's self-checks against the family's reference twin. The sums with NIG parts are written with
relap(u, m) = (sqrt(-lap + m^2) - m) u, or as the decaying branch of an augmented PDE. Prints a table; exits 1 on
any failure.

    python bench/subordinator_sum_builds.py                  # ~10-20 minutes on 2 busy cores
    python bench/subordinator_sum_builds.py --dims 2 --out bench/results/subordinator_sum_builds
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

DIMS = (1, 2, 8, 3072)
EXPRESSIONS = (  # (PDE text, problem type): f(s) in the comment
    ("u_t = -fraclap(u, 1/2) - fraclap(u, 3/4)", None),  # s^(1/2) + s^(3/4)
    ("u_t = lap(u) - fraclap(u, 1/2) - fraclap(u, 3/4)", None),  # s + s^(1/2) + s^(3/4)
    ("u_t = -fraclap(u, 1/4) - 2*fraclap(u, 1/2) - fraclap(u, 3/4)", None),  # three stable parts
    ("u_t = -fraclap(u, 15/16) - fraclap(u, 1/2)", None),  # the steepest part taken, p = 15/16
    ("u_t = -fraclap(u, 1/32) - fraclap(u, 1/2)", None),  # the heaviest part taken, p = 1/32
    ("u_t = -fraclap(u, 1/4) - fraclap(u, 3/8) - fraclap(u, 1/2) - fraclap(u, 5/8)", None),  # four stable parts
    # s^(1/2) + (sqrt(s + 1) - 1): lambda = -sqrt(s) - sqrt(s + 1), the one decaying root
    ("u_tt + 2*(-lap)^(1/2) u_t - u = 0", "augmented"),
    ("u_tt + 2*(-lap)^(1/4) u_t + (-lap)^(1/2) u + lap(u) - u = 0", "augmented"),  # s^(1/4) + (sqrt(s + 1) - 1)
    ("u_t = -fraclap(u, 3/4) - relap(u, 1)", None),  # s^(3/4) + (sqrt(s + 1) - 1)
    ("u_t = -relap(u, 1) - 2*relap(u, 2)", None),  # (sqrt(s + 1) - 1) + 2 (sqrt(s + 4) - 2)
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="*", default=list(DIMS))
    parser.add_argument("--out", type=Path, default=None, help="results stem (.md written), none by default")
    args = parser.parse_args(argv)
    rows, failures = {}, []
    with tempfile.TemporaryDirectory(prefix="pde2gen-subordinator-sum-") as scratch:
        for number, (text, problem_type) in enumerate(EXPRESSIONS):
            for dim in args.dims:
                C.record_build(rows, failures, text, dim, Path(scratch) / f"{number}-{dim}", problem_type=problem_type)
    lines = C.dims_table("PDE", {f"`{text}`": cells for text, cells in rows.items()}, args.dims)
    lines += ["", f"{len(failures)} failures"] + [f"- {line}" for line in failures]
    print("\n".join(lines))
    if args.out is not None:
        import os
        import subprocess

        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False).stdout.strip() or "unknown"
        C.write_text(
            args.out.with_suffix(".md"),
            f"`python bench/subordinator_sum_builds.py` (cells: build seconds with every self-check); commit {commit}, "
            f"{time.strftime('%Y-%m-%d')}, "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} when written, one torch thread each\n\n"
            + "\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

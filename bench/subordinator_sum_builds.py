"""Build the sums of subordinators of issue 12 (the subordinator_sum family) in N = 1, 2, 8 and 3072: every build
runs the compiler's self-checks against the family's reference twin. Two of the issue's symbols,
s^(3/4) + (sqrt(s + 1) - 1) and (sqrt(s + 1) - 1) + 2 (sqrt(s + 4) - 2), are the decaying branch of no PDE the
reader accepts (their polynomial PDEs have two decaying branches, which C0 refuses): for them the family's own
self-checks (those that need no PDE: normalisation, radial law, sampler, transport, radial flux, sigma round trip,
finite values) run on the FamilyConfig the recogniser gives their shape. Prints a table; exits 1 on any failure.

    python bench/subordinator_sum_builds.py                  # ~10-20 minutes on 2 busy cores
    python bench/subordinator_sum_builds.py --dims 2 --out bench/results/subordinator_sum_builds
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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
)
SYMBOLS = {  # name: (powers {p: c}, nig {m: c}) of shapes no accepted PDE reaches
    "s^(3/4) + (sqrt(s+1) - 1)": ({"3/4": 1.0}, {1.0: 1.0}),
    "(sqrt(s+1) - 1) + 2 (sqrt(s+4) - 2)": ({}, {1.0: 1.0, 2.0: 2.0}),
}


def family_checks(name: str, dim: int):
    """The self-checks of pde2gen.derive.verify that need only the family (no PDE)."""
    import sympy as sp

    from pde2gen.derive import verify
    from pde2gen.families import FAMILIES, FamilyConfig, Shape

    powers, nig = SYMBOLS[name]
    shape = Shape("semigroup", powers={sp.Rational(p): c for p, c in powers.items()}, nig=nig)
    info = FAMILIES["subordinator_sum"]
    params, _ = info.recognise(shape)
    family = FamilyConfig(info.name, tuple((p, params[p]) for p in info.parameters))
    rng = np.random.default_rng(0)
    grid = verify.time_grid(family, 0.002, 80.0, 7.0, 16)
    checks = [verify.check_kernel_normalised(family), verify.check_kernel_vs_radial_law(family)]
    checks += verify.check_sampler(family, dim, rng)
    checks += [verify.check_velocity_transport(family, rng), verify.check_velocity_radial_flux(family),
               verify.check_sigma_round_trip(family, grid), verify.check_finite(family, grid, rng)]
    return checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="*", default=list(DIMS))
    parser.add_argument("--out", type=Path, default=None, help="results stem (.md written), none by default")
    args = parser.parse_args(argv)
    rows, failures = {}, []
    with tempfile.TemporaryDirectory(prefix="pde2gen-subordinator-sum-") as scratch:
        for number, (text, problem_type) in enumerate(EXPRESSIONS):
            for dim in args.dims:
                cell, failure = C.timed_build(text, Path(scratch) / f"{number}-{dim}", dim=dim,
                                              problem_type=problem_type)
                if failure:
                    failures.append(f"{text} N={dim}: {failure}")
                rows.setdefault(text, {})[dim] = cell
                print(f"{text:60s} N={dim:<5d} {cell}", file=sys.stderr, flush=True)
        for name in SYMBOLS:
            for dim in args.dims:
                start = time.perf_counter()
                checks = family_checks(name, dim)
                bad = [f"{c.name} {c.value:.3g} > {c.tolerance:g}" for c in checks if not c.passed]
                worst = max((c.value / c.tolerance for c in checks if c.tolerance > 0), default=0.0)
                cell = (f"{time.perf_counter() - start:.0f}s (worst {worst:.2g} of tolerance)" if not bad
                        else "FAIL " + "; ".join(bad))
                failures += [f"{name} N={dim}: {b}" for b in bad]
                rows.setdefault(f"checks only: {name}", {})[dim] = cell
                print(f"{name:60s} N={dim:<5d} {cell}", file=sys.stderr, flush=True)
    lines = ["| PDE / symbol | " + " | ".join(f"N={d}" for d in args.dims) + " |", "|---|" + "---|" * len(args.dims)]
    lines += [f"| `{name}` | " + " | ".join(cells.get(d, "") for d in args.dims) + " |"
              for name, cells in rows.items()]
    lines += ["", f"{len(failures)} failures"] + [f"- {line}" for line in failures]
    print("\n".join(lines))
    if args.out is not None:
        import os
        import subprocess

        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False).stdout.strip() or "unknown"
        args.out.with_suffix(".md").write_text(
            "`python bench/subordinator_sum_builds.py` (cells: build seconds with every self-check, or the family's "
            f"own checks for symbols no accepted PDE reaches); commit {commit}, {time.strftime('%Y-%m-%d')}, "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} when written, one torch thread each\n\n"
            + "\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

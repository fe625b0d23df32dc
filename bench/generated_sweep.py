"""Every generated module's own tests, away from the catalog's default parameters.

The suite and bench/build_dims.py build each catalog entry at its defaults; a user changes the parameters. This
builds the s-generative catalog entries and PDEs in no catalog at parameter values one or two decades away from
the defaults (slow and fast switching, light and heavy tails, tiny and large masses), in N = 1, 2 and 8, and runs
each module's tests/test_generated_process.py (the kernel, sampler, velocity and exact-flow tests; not the
script tests, which train networks). It prints one row per build and exits 1 on any failure.

    python bench/generated_sweep.py                  # all variants, N = 1, 2, 8 (~10 minutes on 2 cores)
    python bench/generated_sweep.py --dims 2 --only kac
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

# (source, parameters, construction): the source is a catalog entry or PDE text
VARIANTS = (
    ("diffusion", {"kappa": "1/100"}, None),
    ("diffusion", {"kappa": "100"}, None),
    ("fractional", {"alpha": "1/2"}, None),
    ("fractional", {"alpha": "19/10"}, None),
    ("fractional", {"alpha": "1/8"}, None),
    ("yukawa", {"m": "1/100"}, None),
    ("yukawa", {"m": "10"}, None),
    ("yukawa", {"m": "100"}, None),
    ("pfgmpp", {"D": "1"}, None),
    ("pfgmpp", {"D": "10000"}, None),
    ("pfgmpp", {"D": "100000"}, None),
    ("kac", {"a": "1", "c": "1"}, None),
    ("kac", {"a": "1/2", "c": "3"}, None),
    ("kac", {"a": "100", "c": "1"}, None),
    ("kac", {"a": "1/100", "c": "1"}, None),
    ("u_tt + 6*u_t + 5*u = 4*lap(u)", {}, "product"),  # damped Klein-Gordon a = 3, m^2 = 5, c = 2: w = 2
    ("u_tt + 4*u_t + 3*u = lap(u)", {}, "product"),  # a = 2, m^2 = 3, c = 1: w / c = 1 (a slow ballistic phase)
    ("u_t = lap(u) - fraclap(u, 1/2)", {}, None),  # heat + Cauchy
    ("u_t = -fraclap(u, 1/4) - fraclap(u, 3/4)", {}, None),  # two stable parts
    ("u_t = -relap(u, 1)", {}, None),  # the relativistic operator: the Yukawa (NIG) kernel from an evolution PDE
    ("u_t = lap(u) - relap(u, 1) - relap(u, 2)", {}, None),  # heat + two NIG parts
)
DIMS = (1, 2, 8)


def run_generated_tests(module: Path) -> tuple[bool, str]:
    """(passed, the pytest summary line) of the module's process tests, in a child with one thread."""
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/test_generated_process.py"], check=False, cwd=module, env=environment,
                            capture_output=True, text=True, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("FAILED")]
    summary = lines[-1] if lines else result.stderr.strip()[-200:]
    return result.returncode == 0, "; ".join([summary, *failed])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="*", default=list(DIMS))
    parser.add_argument("--only", default=None, help="only the variants whose source contains this text")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    failures, rows = [], []
    with tempfile.TemporaryDirectory(prefix="pde2gen-sweep-") as scratch:
        for index, (source, params, construction) in enumerate(VARIANTS):
            if args.only and args.only not in source:
                continue
            for dim in args.dims:
                label = f"{source} {params or ''} N={dim}"
                out = Path(scratch) / f"{index}-{dim}"
                use = construction if dim > 1 else None
                cell, failure = C.timed_build(source, out, dim=dim, params=params, construction=use)
                if failure is None:
                    passed, summary = run_generated_tests(out)
                    failure = None if passed else summary
                    cell = f"{cell}, tests: {summary}"
                rows.append(f"| {source} | {params or ''} | {dim} | {cell} |")
                if failure:
                    failures.append(f"{label}: {failure}")
                C.log(f"{label}: {cell}")
    return C.print_table("| source | parameters | N | build, generated process tests |", rows, failures,
                         f"builds in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

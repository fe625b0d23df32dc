"""Builds of every s-generative catalog entry with one parameter far from its default (issue 12).

README accepts parameter values from 1e-12 to 1e12; a build of a correct kernel must not stop at a self-check.
This builds each s-generative catalog entry (N = 2 by default) with each parameter at 1e-6, 1e-3, 1e3, 1e6 and
1e12 times its default (PFGM++'s D also at 1e6 .. 1e12 itself, Yukawa's m at 1e-12 and 1e-9, Kac's a at 9e9 and
c at 3e-9 and 3e-12), one `pde2gen build` child per row, and prints the
exit code and the error line. A row passes when the build succeeds, or when it is refused up front with a clear
one-line limit (exit 2, bad input; exit 4 "not derivable" with the limit named, e.g. PFGM++ with D < 1/2) or a
computed verdict that is right (exit 1: only alpha > 2, where the symbol is not a Bernstein function). A self-check failure (exit 4, "a bug or a numerical limit"), any other exit code or
a timeout fails the row; the script exits 1 if any row failed.

    python bench/parameter_extremes.py                     # ~50 builds, ~5-10 minutes on 2 busy cores
    python bench/parameter_extremes.py --only yukawa --factors 1e3 1e4
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import _common as C

# entry -> its parameters' defaults (catalog/<entry>.toml); the parameterless entries (pfgm, poisson) build at
# their defaults in the suite. kac-a25-c2, pfgmpp-d4/-d2048 and yukawa-light are the same families as kac,
# pfgmpp and yukawa at other defaults, covered by the factors below.
ENTRIES = {
    "diffusion": {"kappa": Fraction(1)},
    "pfgmpp-dinf": {"kappa": Fraction(1, 2)},
    "damped-diffusion": {"kappa": Fraction(1), "m": Fraction(1)},
    "fractional": {"kappa": Fraction(1), "alpha": Fraction(3, 2)},
    "yukawa": {"m": Fraction(1)},
    "pfgmpp": {"D": Fraction(128)},
    "kac": {"a": Fraction(9), "c": Fraction(3)},
}
FACTORS = (1e-6, 1e-3, 1e3, 1e6, 1e12)
EXTRA = {("pfgmpp", "D"): (1e5, 1e6, 1e8, 1e10, 1e12), ("yukawa", "m"): (1e-12, 1e-9, 1e4, 1e8, 1e10),
         ("kac", "a"): (9e9,), ("kac", "c"): (3e-12, 3e-9)}  # absolute values
EXIT_CODES = {0: "built", 1: "not s-generative", 2: "refused (bad input)", 3: "analysis error",
              4: "derivation error", 5: "render error", 70: "internal error"}


def expected_verdict(entry: str, name: str, value: float) -> set[int]:
    """The exit codes a correct compiler may give: 0, or 2 (a stated limit); 1 only where the PDE is not
    s-generative (the stable index alpha > 2)."""
    if entry == "fractional" and name == "alpha" and value > 2:
        return {1, 2}
    return {0, 2}


def number_text(value: float) -> str:
    return f"{value:.12g}"


def cases(only: str | None, factors) -> list[tuple[str, str, float]]:
    rows = []
    for entry, defaults in ENTRIES.items():
        if only and only not in entry:
            continue
        for name, default in defaults.items():
            values = [float(default) * factor for factor in factors] + list(EXTRA.get((entry, name), ()))
            for value in sorted(set(values)):
                rows.append((entry, name, value))
    return rows


def build_once(entry: str, name: str, value: float, dim: int, out: Path, timeout: float) -> tuple[int, str, float]:
    """(exit code, the error's first line, seconds) of one `pde2gen build` child (-9: timed out)."""
    command = [sys.executable, "-m", "pde2gen", "build", entry, "--param", f"{name}={number_text(value)}",
               "--dim", str(dim), "-o", str(out), "--force"]
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    start = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, check=False)
    except subprocess.TimeoutExpired:
        return -9, f"timed out after {timeout:.0f} s", time.perf_counter() - start
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    return result.returncode, (lines[0] if lines else ""), time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--only", default=None, help="only the entries whose name contains this text")
    parser.add_argument("--factors", type=float, nargs="*", default=list(FACTORS))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per build")
    args = parser.parse_args(argv)
    rows, failures = [], []
    with tempfile.TemporaryDirectory(prefix="pde2gen-extremes-") as scratch:
        for index, (entry, name, value) in enumerate(cases(args.only, args.factors)):
            code, error, seconds = build_once(entry, name, value, args.dim, Path(scratch) / str(index), args.timeout)
            # a derivation's up-front refusal names its limit ("not derivable"); a self-check failure does not
            ok = code in expected_verdict(entry, name, value) or (code == 4 and "not derivable" in error)
            verdict = EXIT_CODES.get(code, f"exit {code}")
            row = f"| {entry} | {name}={number_text(value)} | {'ok' if ok else 'FAIL'} | {verdict} | {seconds:.1f} | {error[:160]} |"
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
            if not ok:
                failures.append(f"{entry} {name}={number_text(value)}: {error or verdict}")
    return C.print_table(f"| entry | parameter | row | result (N = {args.dim}) | s | error |", rows, failures)


if __name__ == "__main__":
    sys.exit(main())

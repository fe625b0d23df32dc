"""Seeded fuzz test of the CLI over the PDE grammar and parameters (issue 16).

Random equations are assembled from the grammar's pieces (shorthand, diff, lap, fraclap, relap, the printed
(-lap)^p form, numbers from tiny to huge, parameters, nesting) and from hostile fragments (^, attributes, strings,
unicode, huge orders and exponents). Every case must answer within PER_CASE_S with exit 0, 1 or 2 and, on
exit 2, exactly one line on stderr (none otherwise). The loop stops after BUDGET_S; the seed makes it repeatable.
"""
from __future__ import annotations

import contextlib
import io
import random
import re
import subprocess
import sys
import time

from pde2gen.cli import main

SEED = 16
BUDGET_S = 15.0
RELAP_BUDGET_S = 6.0
PER_CASE_S = 10.0
MIN_CASES = 12
FREE_PARAMETERS = True  # a bare free parameter once crashed dispersion._choose_problem_type (exit 70)

NUMBERS = ["1", "2", "3/2", "0.5", "0", "-1", "1e-9", "1e12", "1e300", "7" * 90, "10**64", "2**-40", "sqrt(2)",
           "I", "pi", "0.999999999999", "1/1000", "10**9"]
PARAMETERS = ["a", "c", "m", "kappa", "gamma", "D", "alpha", "p_1"]
OPERATORS = ["u", "u_t", "u_tt", "u_xx", "u_txx", "u_xxxx", "u_" + "t" * 7, "u_" + "t" * 40, "lap(u)", "lap(u, 2)",
             "lap(u, 17)", "diff(u, t)", "diff(u, t, 2)", "diff(u, x, 2)", "diff(u, t, 17)", "laplacian(u_t)",
             "(-lap) u", "(-lap)^(3/4) u", "(-lap)^2 u_t", "u(t, x)"]
HOSTILE = ["u^2", "u.real", "'u'", "u**2", "sin(u)", "u*u_t", "__import__('os')", "lambda: 0", "u_y", "\u2212u",
           "(" * 50 + "u" + ")" * 50, "x*lap(u)", "t*u_t", "fraclap(u)", "diff(u)", "u = = u", "1/0*u"]


def random_coefficient(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.4:
        return rng.choice(NUMBERS)
    if pick < 0.8:
        return rng.choice(PARAMETERS)
    return f"({rng.choice(NUMBERS)}*{rng.choice(PARAMETERS)}**{rng.choice(['2', '1/2', '65', '-1'])})"


RELAP_MASSES = ["1", "0", "-1", "1/2", "m", "1e12", "1e13", "1e-13", "sqrt(2)", "x", "I", "u"]


def random_operator(rng: random.Random, relap: bool = False) -> str:
    if relap and rng.random() < 0.3:
        return f"relap({rng.choice(['u', 'u_t', 'lap(u)'])}, {rng.choice(RELAP_MASSES)})"
    if rng.random() < 0.25:
        numerator, denominator = rng.choice([1, 3, 7, 10**9]), rng.choice([1, 2, 4, 32, 33, 1000])
        return f"fraclap({rng.choice(['u', 'u_t'])}, {numerator}/{denominator})"
    return rng.choice(OPERATORS)


def random_case(rng: random.Random, relap: bool = False) -> list[str]:
    """One CLI call; ``relap`` adds relap(., m) terms (a separate stream, so that the seeded cases without it
    stay the same)."""
    terms = [f"{random_coefficient(rng)}*{random_operator(rng, relap)}" for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.15:
        terms.append(rng.choice(HOSTILE))
    if rng.random() < 0.05:  # many parameters
        terms += [f"q{i}*lap(u)" for i in range(rng.choice([17, 60]))]
    lhs = rng.choice(["u_t", "u_tt", "diff(u, t)"])
    text = f"{lhs} + " + " + ".join(terms) + rng.choice([" = 0", "", " = lap(u)"])
    args = ["check", text, "--dim", rng.choice(["1", "2", "3", "64", "3072"])]
    present = [name for name in PARAMETERS if re.search(rf"\b{name}\b", text)]
    for name in present:
        if FREE_PARAMETERS and rng.random() < 0.3:
            continue
        value = rng.choice(NUMBERS) if rng.random() < 0.2 else rng.choice(["1", "2", "3/2", "0.5", "9"])
        args += ["--param", f"{name}={value}"]
    if rng.random() < 0.05:
        args += ["--param", f"{rng.choice(PARAMETERS)}={rng.choice(NUMBERS)}"]  # perhaps not in the PDE
    if rng.random() < 0.3:
        args += ["--construction", rng.choice(["isotropic", "product"])]
    if rng.random() < 0.2:
        args.append("--json")
    return args


def run_in_process(args: list[str]) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - start


def check_outcome(args, code, err, elapsed) -> None:
    assert code in (0, 1, 2), (args, code, err)
    assert elapsed < PER_CASE_S, (args, elapsed)
    expected_lines = 1 if code == 2 else 0
    assert len(err.splitlines()) == expected_lines, (args, code, err)
    if code == 2:
        assert err.startswith("error[") and "Traceback" not in err, (args, err)


def fuzz_stream(seed: int, budget_s: float, max_cases: int, relap: bool = False) -> None:
    """Random cases from one seeded stream until the budget (at least MIN_CASES, at most max_cases), each checked
    by check_outcome; both refusals and verdicts must have been exercised."""
    rng = random.Random(seed)
    start, cases, codes = time.perf_counter(), 0, {0: 0, 1: 0, 2: 0}
    while cases < MIN_CASES or time.perf_counter() - start < budget_s:
        args = random_case(rng, relap=relap)
        code, _, err, elapsed = run_in_process(args)
        check_outcome(args, code, err, elapsed)
        codes[code] += 1
        cases += 1
        if cases >= max_cases:
            break
    assert codes[2] and codes[0] + codes[1], codes


def test_fuzz_the_grammar_and_parameters_in_process():
    fuzz_stream(SEED, BUDGET_S, 400)


def test_fuzz_relap_terms_in_process():
    """relap(u, m) as a new input surface: masses negative, zero, out of range, symbolic, complex; on u_t and
    inside lap(u); next to every other operator (its own stream, so the grammar stream's cases stay as they were)."""
    fuzz_stream(SEED + 2, RELAP_BUDGET_S, 200, relap=True)


def test_fuzz_a_few_cases_as_real_processes():
    rng = random.Random(SEED + 1)
    for _ in range(2):
        args = random_case(rng)
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "pde2gen", *args], capture_output=True, text=True,
                                   timeout=60, check=False)
        check_outcome(args, completed.returncode, completed.stderr, time.perf_counter() - start - 2.0)

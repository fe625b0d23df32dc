"""C2 smoothing: lambda*(k) < lambda*(0) for k > 0 on the carrying branches (symbolic where the structure
allows, else a dense log grid plus both asymptotic ends, gaps re-certified in mpmath)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..spec.spec import S
from . import positivity
from .admissibility import _unbounded_branch
from .dispersion import EVOLUTION, S_GRID, Dispersion
from .positivity_checks import CERTIFY_POINTS
from .verdicts import FAIL, PASS, UNDECIDED, Condition, _fmt

# Relative size below which a growth-rate gap counts as zero (roots are accurate to ~1e-15 relative).
GAP_TOLERANCE = 1e-11


# ---------------------------------------------------------------------------------------------- C2
@dataclass(frozen=True)
class _Gap:
    """gap(s) = lambda*(0) - lambda*(s) on S_GRID (numeric), or None; plus its symbolic form if known."""

    values: np.ndarray | None
    symbolic: sp.Expr | None


def _bernstein(disp: Dispersion, numeric: Dispersion | None) -> positivity.BernsteinResult | None:
    """Is the semigroup exponent f (if ghat = exp(-t f)) Bernstein? Shared by C2 and C1."""
    if disp.semigroup_exponent is None:
        return None
    values = numeric.spec.parameter_values() if numeric is not None else {}
    return positivity.bernstein(disp.semigroup_exponent, values)


def _check_smoothing(disp: Dispersion, numeric: Dispersion | None,
                     bernstein: positivity.BernsteinResult | None) -> tuple[Condition, _Gap]:
    f = disp.semigroup_exponent
    symbolic_gap = sp.expand(sp.re(f)) if f is not None and not f.is_extended_real else f
    gap_values = None
    if numeric is not None:
        growth = numeric.numeric_growth(S_GRID)
        growth0 = float(numeric.numeric_growth(np.zeros(1))[0])
        gap_values = growth0 - growth
    gap = _Gap(gap_values, symbolic_gap)

    if disp.augmented_dims is not None:
        return Condition("C2", PASS, "radial augmentation: the kept root -c k decays, and ghat is a decreasing "
                                     "function of c t k (Matérn)", None, "symbolic"), gap
    if symbolic_gap is not None:
        proof = _positive_for_positive_s(symbolic_gap, bernstein if symbolic_gap == f else None)
        if proof:
            return Condition("C2", PASS, f"lambda*(0) - lambda*(k) = Re f(k^2) = {sp.sstr(symbolic_gap)} > 0 "
                                         f"for k > 0 ({proof})", None, "symbolic"), gap
        if symbolic_gap == 0:
            return Condition("C2", FAIL, f"Re lambda(k) = Re lambda(0) for every k (f = {sp.sstr(f)} is purely "
                                         "imaginary): modes oscillate and are never forgotten",
                             {"k": 1.0, "gap": 0.0}, "symbolic"), gap
    if gap_values is None:
        return Condition("C2", UNDECIDED, "smoothing not decided symbolically and parameters have no values",
                         None, "symbolic"), gap
    unbounded = _unbounded_branch(numeric) if disp.problem_type == EVOLUTION else None
    if unbounded is not None:
        growth, witness = unbounded
        mp_gap = _mp_gap(numeric, witness["k"] ** 2, 30)
        if mp_gap is not None and mp_gap < 0:
            return Condition("C2", FAIL, f"no smoothing: {growth}, so lambda*(k) - lambda*(0) -> +oo",
                             {**witness, "gap": float(mp_gap)}, "Newton polygon, witness in mpmath"), gap
    roots = numeric.numeric_branches(S_GRID)
    tolerance = GAP_TOLERANCE * (1.0 + np.max(np.abs(roots), axis=1))
    bad = gap_values <= tolerance
    certified = _certified_no_gap(numeric, bad, roots) if np.any(bad) else bad
    if np.any(certified):
        # a float gap below the roots' rounding is no verdict by itself: the witness is re-evaluated in
        # mpmath (certified above); the range is the float grid's
        k_bad = np.sqrt(S_GRID[bad])
        j = int(np.flatnonzero(certified)[0])
        k = float(np.sqrt(S_GRID[j]))
        everywhere = bool(np.all(bad))
        where = "every k" if everywhere else f"{k_bad.min():.3g} <= k <= {k_bad.max():.3g} (on the grid)"
        mp_gap = _mp_gap(numeric, float(S_GRID[j]), 2 * _gap_digits(numeric, roots[j:j + 1]))
        return Condition("C2", FAIL, f"no smoothing: lambda*(k) >= lambda*(0) for {where}; at k = {k:.4g}, "
                                     f"lambda*(k) = {_fmt(numeric.numeric_growth(S_GRID[j:j + 1])[0])} vs "
                                     f"lambda*(0) = {_fmt(numeric.numeric_growth(np.zeros(1))[0])} "
                                     f"(gap {_fmt(float(mp_gap)) if mp_gap is not None else 'n/a'} in mpmath)",
                         {"k": k, "gap": float(mp_gap) if mp_gap is not None else float(gap_values[j]),
                          "every_k": everywhere}, "log grid, witness re-evaluated in mpmath"), gap
    gap_values = np.where(bad, np.abs(gap_values), gap_values)  # cleared points: rounding noise, not signs
    alpha = _small_k_exponent(gap_values)
    if alpha is None and np.all(gap_values > 0):
        alpha = _small_k_exponent_mp(numeric)
    large = _large_k_gap(gap_values)
    if alpha is None or large is None:
        return Condition("C2", UNDECIDED, "gap positive on the grid but its asymptotics at k -> 0 or k -> oo "
                                          "could not be read off", None, "log grid"), gap
    large_text = "grows without bound" if large == math.inf else f"tends to {large:.6g}"
    return Condition("C2", PASS, f"lambda*(0) - lambda*(k) > 0 on k in [1e-4, 1e4], ~ k^{alpha[0]:g} as k -> 0 "
                                 f"and {large_text} as k -> oo", None,
                     "log grid (1601 points) + k -> 0 and k -> oo asymptotics"), gap


def _gap_digits(numeric: Dispersion, roots: np.ndarray) -> int:
    """Digits enough for gaps as small as 1e-30 of the largest root (e.g. c^2 k^2 / 2a against a = e^60)."""
    scale = float(np.max(np.abs(roots))) if roots.size else 1.0
    return 40 + 2 * max(0, math.ceil(math.log10(1.0 + scale)))


def _mp_gap(numeric: Dispersion, s: float, dps: int):
    import mpmath

    with mpmath.workdps(dps):
        at_s, at_0 = numeric.mp_growth(s, dps), numeric.mp_growth(0.0, dps)
        return None if at_s is None or at_0 is None else at_0 - at_s


def _certified_no_gap(numeric: Dispersion, bad: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """The grid points of ``bad`` where lambda*(0) - lambda*(k) <= 0 holds in mpmath: the gap at ``dps`` and
    at 2 dps digits is <= 0, or both are below 10^(5-dps) of the roots' scale (zero to working precision).
    The first certified point suffices for a FAIL. At most CERTIFY_POINTS points are re-evaluated (each costs
    a high-precision root solve, ~3 ms; all 700 flagged points of u_tt + 2 u_t = -(-lap)^(7/2) u, whose gap
    s^(7/2)/2 is accurate but below the absolute tolerance, took 5 s): float gaps clearly below zero first,
    nearest k = 1 first, then the others spread over the flagged range."""
    import mpmath

    dps = _gap_digits(numeric, roots[bad])
    indices = np.flatnonzero(bad)
    gaps = numeric.numeric_growth(np.zeros(1))[0] - numeric.numeric_growth(S_GRID[indices])
    negative = gaps < -GAP_TOLERANCE * (1.0 + np.max(np.abs(roots[indices]), axis=1))
    by_k = np.argsort(np.abs(np.log(S_GRID[indices])), kind="stable")
    first = [i for i in by_k if negative[i]][:CERTIFY_POINTS]
    rest = [i for i in range(len(indices)) if not negative[i]]
    spread = rest[::max(1, len(rest) // max(1, CERTIFY_POINTS - len(first)))][:CERTIFY_POINTS - len(first)]
    order = indices[np.array(first + spread, dtype=int)]
    certified = np.zeros_like(bad)
    at_zero = {digits: numeric.mp_growth(0.0, digits) for digits in (dps, 2 * dps)}
    for j in order:
        zero = mpmath.mpf(10) ** (5 - dps) * (1 + float(np.max(np.abs(roots[j]))))
        fails = []
        for digits in (dps, 2 * dps):  # the second precision only confirms a failure
            with mpmath.workdps(digits):
                at_s = numeric.mp_growth(float(S_GRID[j]), digits)
                if at_s is None or at_zero[digits] is None:
                    certified[j] = True  # no high-precision value: keep the float verdict
                    return certified
                value = at_zero[digits] - at_s
                fails.append(value <= 0 or abs(value) <= zero)
            if not fails[-1]:
                break
        if all(fails):
            certified[j] = True
            return certified
    return certified


def _positive_for_positive_s(expr: sp.Expr, bernstein: positivity.BernsteinResult | None) -> str | None:
    """Why expr(s) > 0 for every s > 0, or None if no structural argument applies."""
    s_positive = sp.Symbol("s_positive", positive=True)
    if expr.xreplace({S: s_positive}).is_positive:
        return "a sum of positive terms"
    if bernstein is not None and bernstein.is_bernstein and sp.diff(expr, S) != 0:
        return "a non-constant Bernstein function vanishing at 0 is strictly increasing"
    return None


def _small_k_exponent(gap: np.ndarray) -> tuple[float, float] | None:
    """(alpha, a) with gap ~ a k^alpha as k -> 0, read off the first decade of the grid (alpha rounded to a
    fraction with denominator <= 8 when within 1e-3)."""
    return _power_law(np.sqrt(S_GRID[[0, 100, 200]]), gap[[0, 100, 200]])  # k = 1e-4, ~3.2e-4, 1e-3


def _small_k_exponent_mp(numeric: Dispersion) -> tuple[float, float] | None:
    """_small_k_exponent where the grid's first decade is not yet asymptotic: a branch point just above it (Kac
    with a/c = 3e-3: gap = a - sqrt(a^2 - c^2 k^2) ~ c^2 k^2 / 2a only for k << a/c, and at k = 1e-3 the
    slopes 2.002 and 2.023 differed by 0.02, C2 'undecided'). The gaps at k = K, sqrt(10) K, 10 K for K = 1e-5 .. 1e-12 in
    mpmath (float gaps ~ (c k)^2 / a would be rounding there), with digits for gaps down to ~1e-4K^2 of the roots."""
    for decade in range(5, 13):
        k = 10.0 ** (-decade) * np.array([1.0, 10**0.5, 10.0])
        gaps = [_mp_gap(numeric, float(kk * kk), 40 + 4 * decade) for kk in k]
        if any(g is None for g in gaps):
            return None
        found = _power_law(k, np.array([float(g) for g in gaps]))
        if found is not None:
            return found
    return None


def _power_law(k: np.ndarray, g: np.ndarray) -> tuple[float, float] | None:
    """(alpha, a) with g = a k^alpha at three k, or None if the two slopes differ by more than 1e-2."""
    if np.any(g <= 0):
        return None
    slopes = np.diff(np.log(g)) / np.diff(np.log(k))
    if abs(slopes[0] - slopes[1]) > 1e-2:
        return None
    alpha = float(slopes[0])
    rounded = sp.Rational(round(alpha * 8), 8)
    if abs(alpha - float(rounded)) < 1e-3:
        alpha = float(rounded)
    # a(k) = gap / k^alpha = a + O(k^2) for gaps analytic in s: one Richardson step in s removes the O(s) term.
    a1, a2 = g[0] / k[0] ** alpha, g[1] / k[1] ** alpha
    s1, s2 = k[0] ** 2, k[1] ** 2
    return alpha, float((a1 * s2 - a2 * s1) / (s2 - s1))


def _large_k_gap(gap: np.ndarray) -> float | None:
    """lim_{k->oo} gap: finite (relative change < 1e-4 over the top decade), inf (growing), else None."""
    top, before = gap[-1], gap[-201]
    if abs(top - before) <= 1e-4 * abs(top):
        return float(top)
    if top > before > 0 and math.log(top / before) / math.log(10.0) > 0.05:
        return math.inf
    return None

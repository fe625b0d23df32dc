"""C0 admissibility (physics.md §2): the density split d_t p + div J = R, the mass check, real coefficients,
well-posedness (Petrovskii for evolution problems, exactly one decaying root for augmented ones)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..spec.spec import LAM, PDESpec, S, T
from . import positivity
from .dispersion import (
    EVOLUTION,
    S_GRID,
    Dispersion,
    branch_growth,
    large_s_expansion,
    screened_roots,
    uniform_rate,
)
from .verdicts import FAIL, PASS, UNDECIDED, Condition, DensitySplit, _fmt

# Times at which the mass is checked (the kernel's own time scale is O(1) for O(1) parameters).
MASS_TIMES = np.logspace(-3, 3, 241)


# ---------------------------------------------------------------------------------------------- density split
def _density_split(disp: Dispersion) -> DensitySplit:
    """p = q(d_t) u, J from the Laplacian terms, R = reaction(d_t) u (physics.md §1: the canonical split, or the
    uniform one of a second-order PDE, pde2gen.analysis.dispersion.uniform_rate_split)."""
    sign = disp.sign
    q = disp.density_factor
    p_text = _operator_text(q, "u")
    poly = sp.Poly(sp.expand(sign * disp.symbol), LAM)
    flux_parts = []
    for (j,), coefficient in zip(poly.monoms(), poly.coeffs()):
        space = sp.expand(coefficient - coefficient.subs(S, 0))
        inner = "u" if j == 0 else "d_t" + ("" if j == 1 else f"^{j}") + " u"
        for root, (scale, mu) in sorted(screened_roots(space).items(), key=lambda item: sp.default_sort_key(item[0])):
            # c (sqrt(a) sqrt(s + mu^2) - sqrt(a) mu) is c sqrt(a) relap: its flux -c sqrt(a) grad (-lap)^(-1) relap u
            c = space.coeff(root)
            space = sp.expand(space - c * (root - scale * mu))
            flux_parts.append(f"({sp.sstr(-c * scale)}) * grad (-lap)^(-1) relap({inner}, {sp.sstr(mu)})")
        for term in sp.Add.make_args(space):
            if term == 0:
                continue
            c, power = term.as_coeff_exponent(S)
            lap = "(-lap)" + ("" if power == 1 else f"^({sp.sstr(power - 1)})")
            flux_parts.append(f"({sp.sstr(-c)}) * grad {lap if power != 1 else ''} {inner}".replace("  ", " "))
    flux = " + ".join(flux_parts) if flux_parts else "0"
    reaction = disp.reaction
    reaction_text = _operator_text(reaction, "u") if reaction.has(LAM) else f"({sp.sstr(reaction)}) * u"
    rate = uniform_rate(reaction, q)
    if reaction == 0:
        kind, detail = "none", "no source term: mass is conserved"
    elif disp.problem_type == EVOLUTION and rate is not None:
        # first order (R = -c_0 u, p = c_1 u), or the uniform split of a second-order PDE (dispersion.py)
        death = _is_negative(rate.xreplace(disp.spec.parameter_values()))
        kind, detail = "uniform", (f"R = ({sp.sstr(rate)}) * p: a uniform {'death' if death else 'birth'} rate, "
                                   "harmless (it drops out after normalising)")
        if reaction.has(LAM):
            reaction_text = f"({sp.sstr(rate)}) * p"
    else:
        kind, detail = "spatially varying", (f"R = {reaction_text} is not proportional to p = "
                                             f"{p_text}: birth/death varies in space")
    return DensitySplit(p_text, flux, reaction_text, kind, detail)


def _operator_text(q: sp.Expr, field_name: str) -> str:
    parts = []
    poly = sp.Poly(q, LAM)
    for (j,), c in zip(poly.monoms(), poly.coeffs()):
        op = field_name if j == 0 else "d_t" + ("" if j == 1 else f"^{j}") + f" {field_name}"
        parts.append(op if c == 1 else f"({sp.sstr(c)}) * {op}")
    return " + ".join(parts) if parts else "0"


def _is_negative(expr: sp.Expr) -> bool:
    value = expr.is_negative
    if value is None:
        try:
            return complex(sp.N(expr.xreplace({s: 1 for s in expr.free_symbols}))).real < 0
        except TypeError:
            return False
    return bool(value)


# ---------------------------------------------------------------------------------------------- mass
@dataclass(frozen=True)
class _MassResult:
    status: str
    reason: str
    witness: dict | None
    method: str


def _mass_check(disp: Dispersion, numeric: Dispersion | None) -> _MassResult:
    """0 < p_hat(0, t) < oo for all t > 0: symbolically, else on a log t-grid with the first sign change."""
    mass = disp.mass
    if mass is not None:
        if mass.has(sp.I):  # oscillating exponentials read better as cos / sin
            mass = sp.expand_complex(mass)
        if mass.is_positive:
            return _MassResult(PASS, f"mass(t) = {sp.sstr(mass)} > 0 for all t > 0", None, "symbolic")
    text = f"mass(t) = {sp.sstr(mass)}" if mass is not None else "mass(t)"
    if disp.mass is not None:
        # a sum of exponentials: decided by its leading term and Descartes' rule, witnesses in mpmath, never
        # on a float grid (where e^(-3t) underflows to 0 and reads as a sign change)
        values = numeric.spec.parameter_values() if numeric is not None else disp.spec.parameter_values()
        sign = positivity.exponential_sum_sign(disp.mass.xreplace(values), T)
        if sign is not None and sign.status == "positive":
            return _MassResult(PASS, f"{text} > 0 for all t > 0: {sign.reason}", None, "exponential sum")
        if sign is not None and sign.status == "changes sign":
            return _MassResult(FAIL, f"{text} changes sign: {sign.reason}", sign.witness, "exponential sum")
    if numeric is None:
        return _MassResult(UNDECIDED, f"{text}: sign not decided symbolically and parameters have no values", None,
                           "symbolic")

    def evaluate(times):
        return numeric.numeric_p_hat_times(np.zeros(1), np.atleast_1d(times))[:, 0]

    method = "numeric on a log t-grid [1e-3, 1e3]"
    values = evaluate(MASS_TIMES)
    bad_imag = np.abs(values.imag) > 1e-9 * np.maximum(1.0, np.abs(values.real))
    if np.any(bad_imag):
        i = int(np.argmax(bad_imag))
        return _MassResult(FAIL, f"{text} is not real", {"t": MASS_TIMES[i], "mass_real": values[i].real,
                                                         "mass_imag": values[i].imag}, method)
    finite = np.isfinite(values.real)
    if not np.all(finite):
        i = int(np.argmin(finite))
        return _MassResult(FAIL, f"{text} is not finite", {"t": MASS_TIMES[i]}, method)
    negative = values.real < 0  # an underflowed 0 is not a sign change
    if np.any(negative):
        i = int(np.argmax(negative))
        witness = {"t": float(MASS_TIMES[i]), "mass": float(values[i].real)}
        if i > 0:
            witness["first_zero_t"] = _first_zero(lambda t: evaluate(t).real, MASS_TIMES[i - 1], MASS_TIMES[i])
        zero = f", first zero at t = {witness['first_zero_t']:.6g}" if "first_zero_t" in witness else ""
        return _MassResult(FAIL, f"{text} changes sign: mass({MASS_TIMES[i]:.6g}) = {values[i].real:.4g}{zero}",
                           witness, method)
    return _MassResult(PASS, f"{text} > 0 on t in [1e-3, 1e3]", None, method)


def _first_zero(f, lo: float, hi: float) -> float:
    """The first sign change of a vectorised f in [lo, hi] (f(lo) > 0 >= f(hi)), to ~1e-12 relative:
    six rounds of 64-point scans, each one vectorised call."""
    for _ in range(6):
        grid = np.linspace(lo, hi, 64)
        values = f(grid)
        j = int(np.argmax(values <= 0))
        lo, hi = grid[j - 1], grid[j]
    return float(0.5 * (lo + hi))


# ---------------------------------------------------------------------------------------------- C0
def _check_admissibility(spec, disp, numeric, mass: _MassResult, split: DensitySplit) -> Condition:
    parts: list[tuple[str, str, dict | None, str]] = []  # (status, text, witness, method)

    values = spec.parameter_values()
    complex_terms = [t for t in spec.terms if t.coefficient.xreplace(values).is_extended_real is False]
    unknown = [t for t in spec.terms if t.coefficient.xreplace(values).is_extended_real is None]
    if complex_terms:
        term = complex_terms[0]
        parts.append((FAIL, (f"complex coefficient {sp.sstr(term.coefficient)}: the field is complex and its "
                            "density |psi|^2 is quadratic in psi, so the linear PDE carries no linear density "
                            "flow (interference)"), {"coefficient": sp.sstr(term.coefficient)}, "structure"))
    elif unknown:
        parts.append((UNDECIDED, f"coefficient {sp.sstr(unknown[0].coefficient)} not known to be real", None,
                      "structure"))
    else:
        parts.append((PASS, "real constant coefficients", None, "structure"))
    parts.append((PASS, f"density p = {split.p} (some c_j0 != 0, j >= 1); no mixed top-order term", None,
                  "structure"))
    parts.append(_well_posedness(disp, numeric))
    parts.append((mass.status, mass.reason, mass.witness, mass.method))
    parts.append((PASS, f"R: {split.reaction_kind} ({split.detail})", None, "structure"))
    return _combine("C0", parts)


def _combine(name: str, parts) -> Condition:
    failed = [p for p in parts if p[0] == FAIL]
    undecided = [p for p in parts if p[0] == UNDECIDED]
    status = FAIL if failed else (UNDECIDED if undecided else PASS)
    lead = failed or undecided
    reason = "; ".join(p[1] for p in (lead if lead else parts))
    witness = lead[0][2] if lead else None
    method = ", ".join(dict.fromkeys(p[3] for p in parts))
    return Condition(name, status, reason, witness, method)


def _well_posedness(disp: Dispersion, numeric: Dispersion | None):
    if disp.augmented_dims is not None:
        return (PASS, "radial augmentation: the decaying root -c k is the only one kept", None, "structure")
    if disp.problem_type == EVOLUTION:
        return _petrovskii(disp, numeric)
    return _one_decaying_root(disp, numeric)


def _petrovskii(disp: Dispersion, numeric: Dispersion | None):
    """sup_k max_b Re lambda_b(k) < oo (physics.md C0, type E)."""
    if disp.t_order == 1 and disp.branches:
        lam = sp.expand(disp.branches[0])
        leading = _leading_power(sp.expand(sp.re(lam)) if not lam.is_extended_real else lam)
        if leading is not None:
            coefficient, power = leading
            if power <= 0 or coefficient.is_negative:
                return (PASS, f"Petrovskii: Re lambda(k) = Re({sp.sstr(lam)}) is bounded above", None, "symbolic")
            if coefficient.is_positive:
                k = 10
                value = float(sp.re(lam.xreplace({S: sp.Integer(k * k)}).xreplace(_trial_values(disp.spec))))
                return (FAIL, (f"Petrovskii fails: Re lambda(k) = {sp.sstr(lam)} grows without bound (ill-posed, "
                              f"like backward heat): Re lambda({k}) = {value:.6g}"),
                        {"k": k, "re_lambda": value, "growth_exponent": float(2 * power)}, "symbolic")
    if numeric is None:
        return (UNDECIDED, "Petrovskii not decided (parameters without values)", None, "log grid")
    unbounded = _unbounded_branch(numeric)
    if unbounded is not None:
        growth, witness = unbounded
        return (FAIL, f"Petrovskii fails: {growth}: ill-posed", witness, "Newton polygon, witness in mpmath")
    groups = branch_growth(numeric)
    s_grid = np.concatenate([[0.0], S_GRID])
    if groups is not None and all(_re_sign(c) < 0 for g in groups if g.exponent > 0 for c in g.coefficients):
        growth = np.max(numeric.numeric_branches(s_grid).real, axis=1)
        i = int(np.argmax(growth))
        large = "; ".join(f"lambda ~ C k^{g.k_exponent:g} with Re C < 0" for g in groups if g.exponent > 0)
        return (PASS, (f"Petrovskii: every branch is bounded above as k -> oo (Newton polygon: "
                       f"{large or 'all branches bounded'}); max Re lambda on the grid {_fmt(growth[i])} at "
                       f"k = {math.sqrt(s_grid[i]):.4g}"), None, "Newton polygon")
    growth = np.max(numeric.numeric_branches(s_grid).real, axis=1)
    # Roots of a polynomial in lambda grow like Puiseux powers k^p: two consecutive log-log slopes over two
    # decades of k each (k = 1 -> 1e2 -> 1e4) that agree and are positive, with Re lambda already > 1 at the
    # top, mean unbounded growth.
    low, mid, top = growth[-801], growth[-401], growth[-1]  # s = 1, 1e4, 1e8
    slopes = [math.log10(b / a) / 2.0 if a > 0 and b > 0 else -math.inf for a, b in ((low, mid), (mid, top))]
    if top > 1.0 and min(slopes) > 0.02 and abs(slopes[1] - slopes[0]) < 0.1 * slopes[1]:
        slope = slopes[1]  # per decade of k
        return (FAIL, (f"Petrovskii fails: max Re lambda grows like k^{slope:.3g} (Re lambda = {top:.4g} at "
                      f"k = {math.sqrt(S_GRID[-1]):.3g}): ill-posed"),
                {"k": math.sqrt(S_GRID[-1]), "re_lambda": float(top), "growth_exponent": slope}, "log grid")
    i = int(np.argmax(growth))
    return (PASS, (f"Petrovskii: max Re lambda <= {_fmt(growth[i])} (at k = {math.sqrt(s_grid[i]):.4g}) and "
                  "does not grow at large k"), None, "log grid + top-decade slope")


def _re_sign(c: complex) -> int:
    """The sign of Re c, with |Re c| <= 1e-20 |c| (the edge roots' accuracy) counted as 0."""
    return 0 if abs(c.real) <= 1e-20 * abs(c) else (1 if c.real > 0 else -1)


def _unbounded_branch(numeric: Dispersion) -> tuple[str, dict] | None:
    """A branch lambda ~ C s^q (q > 0, Re C > 0) from the Newton polygon, with Re lambda re-evaluated in mpmath
    at the k where Re(C) k^(2q) = 100: (description, witness), or None."""
    groups = branch_growth(numeric)
    if not groups:
        return None
    growing = [(g, c) for g in groups if g.exponent > 0 for c in g.coefficients if _re_sign(c) > 0]
    if not growing:
        return None
    group, c = max(growing, key=lambda item: (item[0].exponent, item[1].real))
    s_value = (100.0 / c.real) ** (1.0 / float(group.exponent))
    roots = numeric.mp_branches(s_value, 30)
    if roots is None:
        return None
    re_lambda = float(max(r.real for r in roots))
    if re_lambda <= 0:
        return None
    k = math.sqrt(s_value)
    text = (f"a branch grows like lambda ~ ({c.real:.6g}{c.imag:+.6g}i) k^{group.k_exponent:g} (Newton polygon), "
            f"Re lambda = {re_lambda:.6g} at k = {k:.6g} (mpmath)")
    return text, {"k": k, "re_lambda": re_lambda, "growth_exponent": group.k_exponent,
                  "leading_coefficient_real": c.real}


def _leading_power(expr: sp.Expr):
    """(coefficient, power) of the largest power of s in a sum of c * s^p terms (screened roots sqrt(s + mu^2)
    read by their large-s expansion), or None for other shapes."""
    best = None
    for term in sp.Add.make_args(sp.expand(large_s_expansion(expr))):
        coefficient, power = term.as_coeff_exponent(S)
        if coefficient.has(S) or not power.is_Rational:
            return None
        if best is None or power > best[1]:
            best = (coefficient, power)
    return best


def _one_decaying_root(disp: Dispersion, numeric: Dispersion | None):
    """Type (A): every k != 0 has exactly one root with Re < 0 and none with Re = 0."""
    if numeric is None:
        return (UNDECIDED, "root condition of the augmented problem not decided (parameters without values)",
                None, "log grid")
    roots = numeric.numeric_branches(S_GRID)
    scale = 1e-12 * (1.0 + np.abs(roots))
    negative = np.sum(roots.real < -scale, axis=1)
    zero = np.sum(np.abs(roots.real) <= scale, axis=1)
    bad = (negative != 1) | (zero > 0)
    if not np.any(bad):
        return (PASS, ("augmented problem: exactly one decaying root and none on the imaginary axis for every "
                      "k on the grid"), None, "log grid")
    k_bad = np.sqrt(S_GRID[bad])
    k = float(sp.nsimplify(float(f"{math.exp(np.mean(np.log(k_bad))):.2g}")))
    at_k = numeric.numeric_branches(np.array([k * k]))[0]
    witness = {"k": k, "roots": [f"{r.real:.6g}{r.imag:+.6g}i" for r in at_k],
               "k_range": [float(k_bad.min()), float(k_bad.max())]}
    exact = _exact_real_parts(disp, numeric, k)
    if exact is not None:
        witness["exact_real_parts"] = exact
    return (FAIL, (f"augmented problem ill-posed for {k_bad.min():.3g} <= k <= {k_bad.max():.3g}: at k = {k:g} the "
                  f"roots are {', '.join(witness['roots'])} (no unique decaying root: oscillation, as for "
                  "Helmholtz)"), witness, "log grid, witness checked exactly" if exact else "log grid")


def _exact_real_parts(disp: Dispersion, numeric: Dispersion, k: float) -> list[str] | None:
    if disp.branches is None:
        return None
    s_exact = sp.nsimplify(k) ** 2
    values = numeric.spec.parameter_values()
    return [sp.sstr(sp.re(sp.expand(b.xreplace(values).xreplace({S: s_exact})))) for b in disp.branches]


def _trial_values(spec: PDESpec) -> dict:
    return {p.symbol: (p.value if p.value is not None else sp.Integer(1)) for p in spec.parameters}

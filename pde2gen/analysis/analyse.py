"""Analysis stage: is this PDE s-generative? (physics.md §2, §3, "Modifications")

``analyse(spec)`` runs the dispersion analysis (pde2gen/dispersion.py) and decides, with witnesses:

- C0 admissibility: real coefficients, a density exists, no mixed top-order term, well-posedness (Petrovskii
  for evolution problems, exactly one decaying root for augmented ones), finite positive mass; and it
  classifies the reaction term R (none / uniform R ∝ p / spatially varying birth-death);
- C2 smoothing: lambda*(k) < lambda*(0) for k > 0 on the carrying branches (symbolic where the structure
  allows, else a dense log grid plus both asymptotic ends);
- C1 positivity of the density kernel in the data dimension N (1-D per coordinate for the product
  construction): screens (mass, |ghat| <= 1, Schoenberg, tail), certificates (Bernstein, Student-t mixture,
  Riemann closed form), numerics (FFT of the 1-D kernel, whose negativity disproves C1 in every N);

then the prior (small-k exponent of the gap), equivalences with known models (from ghat, via
pde2gen/derive/recognise.py, checked numerically) and repairs, each repaired PDE re-analysed to give its own verdict.

Parameters without values are decided symbolically where the structure allows; otherwise, when every free
parameter can be scaled away (t -> alpha t, x -> beta x, P -> gamma P), the numerics run at value 1 and hold
for all positive values; otherwise the condition is UNDECIDED with the reason.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import sympy as sp

from ..errors import UsageError
from ..families import FamilyConfig, ghat_numeric
from ..spec.spec import LAM, PDESpec, S, T, Term
from . import positivity
from .dispersion import (
    AUGMENTED,
    EVOLUTION,
    S_GRID,
    Dispersion,
    analyse_dispersion,
    branch_growth,
    with_semigroup_exponent,
)

PASS, FAIL, UNDECIDED = "PASS", "FAIL", "UNDECIDED"
# Times at which the mass is checked (the kernel's own time scale is O(1) for O(1) parameters).
MASS_TIMES = np.logspace(-3, 3, 241)
# Relative size below which a growth-rate gap counts as zero (roots are accurate to ~1e-15 relative).
GAP_TOLERANCE = 1e-11
DAMPING_RATE = 1  # the 'a' of the damping repair  + 2 a u_t
FFT_METHOD = "FFT 1-D kernel (2^14 points, grid doubling check)"
RIEMANN_METHOD = "Riemann function (closed form)"
ONE_D_METHODS = (FFT_METHOD, RIEMANN_METHOD)  # a C1 failure found by these is a failure of the 1-D question


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Condition:
    """One condition's verdict. ``witness`` holds the numbers that prove a FAIL (or support a PASS)."""

    name: str
    status: str  # PASS / FAIL / UNDECIDED
    reason: str
    witness: dict | None = None
    method: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "reason": self.reason,
                "witness": _plain(self.witness), "method": self.method}


@dataclass(frozen=True)
class DensitySplit:
    """d_t p + div J = R (physics.md §1): p, J, R as text, and what kind of reaction R is."""

    p: str
    flux: str
    reaction: str
    reaction_kind: str  # "none", "uniform" (R = rate * p) or "spatially varying"
    detail: str

    def to_dict(self) -> dict:
        return {"p": self.p, "J": self.flux, "R": self.reaction, "reaction_kind": self.reaction_kind,
                "detail": self.detail}


@dataclass(frozen=True)
class Prior:
    """Small-k law of the kernel: lambda*(0) - lambda*(k) ~ scale k^alpha, and the k -> oo gap."""

    family: str | None  # gaussian / cauchy / stable / student_t, or None (no probability law)
    alpha: float | None
    scale: float | None
    large_k_gap: float | None  # finite limit of lambda*(0) - lambda*(k), inf if it grows, None if unknown
    description: str

    def to_dict(self) -> dict:
        return {"family": self.family, "alpha": self.alpha, "scale": self.scale,
                "large_k_gap": _plain(self.large_k_gap), "description": self.description}


@dataclass(frozen=True)
class Repair:
    """A modification of the PDE, with the verdict of its own analysis (``report``, run with repairs=False)."""

    name: str
    description: str
    pde: str
    spec: PDESpec
    report: AnalysisReport

    @property
    def passes(self) -> bool:
        return self.report.s_generative

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "pde": self.pde,
                "s_generative": self.report.s_generative, "dim": self.spec.dim,
                "construction": self.spec.construction,
                "conditions": {c.name: c.status for c in self.report.conditions}}


@dataclass(frozen=True)
class AnalysisReport:
    spec: PDESpec
    dispersion: Dispersion | None  # None only when C0 fails structurally (mixed top-order term)
    density_split: DensitySplit | None
    conditions: tuple[Condition, ...]
    prior: Prior
    equivalences: tuple[str, ...]
    repairs: tuple[Repair, ...]
    s_generative: bool
    warnings: tuple[str, ...] = ()
    timings: tuple[tuple[str, float], ...] = field(default=())

    def condition(self, name: str) -> Condition:
        return next(c for c in self.conditions if c.name == name)

    def to_dict(self) -> dict:
        spec = self.spec
        return {
            "spec": {
                "pde": spec.pretty(), "source": spec.source, "dim": spec.dim, "construction": spec.construction,
                "problem_type": spec.problem_type, "catalog": list(spec.catalog),
                "parameters": {p.name: (None if p.value is None else sp.sstr(p.value)) for p in spec.parameters},
            },
            "dispersion": _dispersion_dict(self.dispersion),
            "density_split": None if self.density_split is None else self.density_split.to_dict(),
            "conditions": [c.to_dict() for c in self.conditions],
            "prior": self.prior.to_dict(),
            "equivalences": list(self.equivalences),
            "repairs": [r.to_dict() for r in self.repairs],
            "s_generative": self.s_generative,
            "warnings": list(self.warnings),
            "timings_s": {name: round(seconds, 4) for name, seconds in self.timings},
        }


# ---------------------------------------------------------------------------------------------- driver
def analyse(spec: PDESpec, *, repairs: bool = True) -> AnalysisReport:
    """Decide C0, C1, C2 for ``spec`` and derive prior, equivalences and (checked) repairs."""
    if not isinstance(spec, PDESpec):
        raise UsageError(f"analyse() needs a PDESpec (from pde2gen.spec.parse), got {type(spec).__name__}")
    spec.validate()
    spec = _sympified(spec)
    clock = _Clock()
    structural = _mixed_top_order(spec)
    if structural is not None:
        return _structural_failure(spec, structural, clock)

    disp = with_semigroup_exponent(analyse_dispersion(spec))
    clock.lap("dispersion")
    numeric, numeric_note = _numeric_dispersion(disp)
    warnings: list[str] = [numeric_note] if numeric_note else []
    clock.lap("numeric setup")

    split = _density_split(disp)
    mass = _mass_check(disp, numeric)
    admissibility = _check_admissibility(spec, disp, numeric, mass, split)
    clock.lap("C0")
    bernstein = _bernstein(disp, numeric)
    smoothing, gap = _check_smoothing(disp, numeric, bernstein)
    clock.lap("C2")
    dim = 1 if spec.construction == "product" else spec.dim
    positivity_condition = _check_positivity(disp, numeric, mass, admissibility, dim, bernstein)
    clock.lap("C1")
    conditions = (admissibility, positivity_condition, smoothing)
    prior = _prior(disp, gap, smoothing)
    equivalences = _equivalences(disp, numeric, split)
    clock.lap("prior+equivalences")
    s_generative = all(c.status == PASS for c in conditions)
    for condition in conditions:
        if condition.status == UNDECIDED:
            warnings.append(f"{condition.name} undecided: {condition.reason}")
    if split.reaction_kind == "spatially varying" and s_generative:
        warnings.append("R is not proportional to p (birth/death varies in space): sample with the quantile "
                        "coupling, or carry importance weights (physics.md §4.6)")
    found = _repairs(spec, disp, conditions) if repairs and not s_generative else ()
    clock.lap("repairs")
    return AnalysisReport(spec, disp, split, conditions, prior, equivalences, found, s_generative,
                          tuple(warnings), clock.laps)


class _Clock:
    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.laps: tuple[tuple[str, float], ...] = ()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps += ((name, now - self.last),)
        self.last = now


# ---------------------------------------------------------------------------------------------- structure
def _sympified(spec: PDESpec) -> PDESpec:
    """The same spec with SymPy numbers where a caller wrote Python ones (Term(1, 1) for u_t)."""
    if all(isinstance(t.coefficient, sp.Basic) and isinstance(t.space_power, sp.Basic) for t in spec.terms):
        return spec
    terms = tuple(replace(t, coefficient=sp.sympify(t.coefficient), space_power=sp.nsimplify(t.space_power))
                  for t in spec.terms)
    return replace(spec, terms=terms)


def _mixed_top_order(spec: PDESpec) -> Term | None:
    """A term d_t^J (-Lap)^beta with beta > 0 at the highest time order J (C0: no mixed top-order term)."""
    J = spec.t_order
    return next((t for t in spec.terms if t.t_order == J and t.space_power != 0 and t.t_power == 0), None)


def _structural_failure(spec: PDESpec, term: Term, clock: _Clock) -> AnalysisReport:
    op = "u_" + "t" * term.t_order
    admissibility = Condition(
        "C0", FAIL,
        f"mixed top-order term: the highest time derivative {op} also carries (-lap)^{term.space_power}, so "
        "the causal problem has no density of the form p = q(d_t) u",
        {"term": f"({sp.sstr(term.coefficient)}) * (-lap)^{term.space_power} {op}"}, "structure")
    skipped = "not assessed: C0 fails structurally (no dispersion analysis of this class)"
    conditions = (admissibility, Condition("C1", UNDECIDED, skipped), Condition("C2", UNDECIDED, skipped))
    clock.lap("C0")
    return AnalysisReport(spec, None, None, conditions, Prior(None, None, None, None, skipped), (), (), False,
                          (f"C0: {admissibility.reason}",), clock.laps)


def _numeric_dispersion(disp: Dispersion) -> tuple[Dispersion | None, str]:
    """The dispersion with numbers for every parameter, or None; and a note on how it was obtained."""
    spec = disp.spec
    free = [p for p in spec.free_parameters() if _appears(p.symbol, spec)]
    if not free:
        return disp, ""
    names = ", ".join(p.name for p in free)
    reason = _scaling_argument(spec, [p.symbol for p in free])
    if reason is None:
        return None, (f"parameters without values ({names}) cannot all be scaled away: numeric checks are "
                      "skipped and only symbolic results are used")
    trial = tuple(replace(p, value=sp.Integer(1)) if p in free else p for p in spec.parameters)
    return replace(disp, spec=replace(spec, parameters=trial)), (
        f"parameters without values ({names}): {reason}; numerics run at {names} = 1")


def _appears(symbol: sp.Symbol, spec: PDESpec) -> bool:
    return any(term.coefficient.has(symbol) for term in spec.terms)


def _scaling_argument(spec: PDESpec, free: list[sp.Symbol]) -> str | None:
    """Why the verdict at value 1 holds for all positive values of ``free``, or None if it need not.

    Rescaling t -> alpha t, x -> beta x and multiplying P by gamma (all > 0) multiplies the coefficient of
    lambda^j s^b by gamma alpha^-j beta^-2b and maps kernels to positive multiples of kernels (and gaps to
    positive multiples of gaps), so every condition is invariant. It reaches all parameter values iff, with
    every coefficient a monomial in the parameters, each parameter's exponent column lies in the span of the
    columns (1, j, 2b) over the terms.
    """
    values = spec.parameter_values()
    rows, exponents = [], []
    for term in spec.terms:
        coefficient = term.coefficient.xreplace(values)
        if term.t_power != 0:
            if coefficient.free_symbols & set(free):
                return None  # the radial augmentation's D is dimensionless: no rescaling moves it
            continue
        number, monomial = coefficient.as_coeff_Mul()
        powers = monomial.as_powers_dict() if monomial != 1 else {}
        if any(base not in free or not sp.sympify(e).is_Rational for base, e in powers.items()):
            return None
        if not number.is_real:
            return None
        rows.append([1, term.t_order, 2 * term.space_power])
        exponents.append([powers.get(p, 0) for p in free])
    basis = sp.Matrix(rows)
    rank = basis.rank()
    for j in range(len(free)):
        if basis.row_join(sp.Matrix([row[j] for row in exponents])).rank() != rank:
            return None
    return "every coefficient is a monomial that rescaling t, x and the equation sets to 1, so each condition " \
           "has the same verdict for all positive values"


# ---------------------------------------------------------------------------------------------- density split
def _density_split(disp: Dispersion) -> DensitySplit:
    """p = q(d_t) u, J from the Laplacian terms, R = reaction * u (physics.md §1, canonical split)."""
    sign = disp.sign
    q = disp.density_factor
    p_text = _operator_text(q, "u")
    poly = sp.Poly(sp.expand(sign * disp.symbol), LAM)
    flux_parts = []
    for (j,), coefficient in zip(poly.monoms(), poly.coeffs()):
        space = sp.expand(coefficient - coefficient.subs(S, 0))
        for term in sp.Add.make_args(space):
            if term == 0:
                continue
            c, power = term.as_coeff_exponent(S)
            inner = "u" if j == 0 else "d_t" + ("" if j == 1 else f"^{j}") + " u"
            lap = "(-lap)" + ("" if power == 1 else f"^({sp.sstr(power - 1)})")
            flux_parts.append(f"({sp.sstr(-c)}) * grad {lap if power != 1 else ''} {inner}".replace("  ", " "))
    flux = " + ".join(flux_parts) if flux_parts else "0"
    reaction = disp.reaction
    if reaction == 0:
        kind, detail = "none", "no source term: mass is conserved"
    elif disp.t_order == 1 and disp.problem_type == EVOLUTION:
        rate = sp.sstr(sp.cancel(reaction / q))
        kind, detail = "uniform", (f"R = ({rate}) * p: a uniform {'death' if _is_negative(reaction / q) else 'birth'}"
                                   " rate, harmless (it drops out after normalising)")
    else:
        kind, detail = "spatially varying", (f"R = ({sp.sstr(reaction)}) * u is not proportional to p = "
                                             f"{p_text}: birth/death varies in space")
    return DensitySplit(p_text, flux, f"({sp.sstr(reaction)}) * u", kind, detail)


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
    """(coefficient, power) of the largest power of s in a sum of c * s^p terms, or None for other shapes."""
    best = None
    for term in sp.Add.make_args(sp.expand(expr)):
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
    k = np.sqrt(S_GRID[[0, 100, 200]])  # 1e-4, ~3.2e-4, 1e-3
    g = gap[[0, 100, 200]]
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


# ---------------------------------------------------------------------------------------------- C1
def _check_positivity(disp, numeric, mass: _MassResult, admissibility: Condition, dim: int,
                      bernstein: positivity.BernsteinResult | None) -> Condition:
    where = "per coordinate (product construction: the 1-D question)" if dim == 1 and \
        disp.spec.construction == "product" else f"in N = {dim}"
    if admissibility.witness and "coefficient" in admissibility.witness:
        return Condition("C1", FAIL, "the field is complex: its density |psi|^2 is quadratic in psi, not a linear "
                                     "density flow (interference)", admissibility.witness, "structure")
    if mass.status == FAIL:
        return Condition("C1", FAIL, f"screen 1 (mass > 0) fails: {mass.reason}", mass.witness, mass.method)

    if disp.augmented_dims is not None:
        return _student_t_certificate(disp, numeric)
    if bernstein is not None and bernstein.is_bernstein:
        return Condition("C1", PASS, f"ghat = exp(-t f(k^2)) with f Bernstein: the kernel is a Gaussian scale "
                                     f"mixture (subordinated Brownian motion), positive in every N. "
                                     f"{bernstein.reason}", None, "Bernstein certificate")
    if numeric is None:
        return Condition("C1", UNDECIDED, "no certificate applies and parameters without values prevent the "
                                          "numeric checks", None, "certificates")

    screens = _screens(numeric, dim)
    if screens is not None:
        return screens
    one_d = _one_dimensional(numeric)
    if one_d.status == UNDECIDED:  # e.g. no FFT (ghat does not decay): Bochner's 3-point test still applies
        one_d = _gram_screen(numeric) or one_d
    if one_d.status == FAIL:
        extra = "" if dim == 1 else f" (the 1-D marginal of an isotropic kernel in N = {dim} has the same ghat, " \
                                    "so the N-dimensional kernel is negative too)"
        return replace(one_d, reason=one_d.reason + extra)
    not_bernstein = f" ({bernstein.reason})" if bernstein is not None and bernstein.is_bernstein is False else ""
    if dim == 1:
        if one_d.status == PASS:
            return replace(one_d, reason=f"{where}: {one_d.reason}")
        return Condition("C1", UNDECIDED, f"{where}: screens pass, no certificate applies{not_bernstein}; "
                                          f"{one_d.reason}", one_d.witness, one_d.method)
    return Condition("C1", UNDECIDED, f"{where}: screens (mass, |ghat| <= 1, Schoenberg bound, tail) pass and the "
                                      f"1-D kernel shows no negative value ({one_d.reason}), but no certificate "
                                      f"applies in N = {dim}{not_bernstein}", None,
                     "screens + 1-D kernel")


def _student_t_certificate(disp: Dispersion, numeric: Dispersion | None) -> Condition:
    """PFGM++: ghat(u) = 2^(1-nu) u^nu K_nu(u) / Gamma(nu) = E exp(-u^2 / (2 G)), G ~ chi2_D (nu = D/2)."""
    D = sp.sympify(disp.augmented_dims)
    if numeric is not None:
        D = D.xreplace(numeric.spec.parameter_values())
    if not D.is_positive:
        return Condition("C1", UNDECIDED if D.is_positive is None else FAIL,
                         f"radial augmentation needs D > 0 extra dimensions (D = {D})", None, "structure")
    return Condition("C1", PASS, f"the kernel is a Gaussian scale mixture, ghat(u) = 2^(1-D/2) u^(D/2) K_(D/2)(u) / "
                                 f"Gamma(D/2) = E exp(-u^2 / (2 chi2_D)) with u = c t k (mixing law V = (c t)^2 / "
                                 f"chi2_D, multivariate Student-t, D = {sp.sstr(D)}): positive in every N", None,
                     "Student-t mixture")


def _screens(numeric: Dispersion, dim: int) -> Condition | None:
    """Necessary conditions on ghat over the (k, t)-grid; a Condition if one fails, else None."""
    g = positivity.normalised_transform(numeric, S_GRID, positivity.TIME_GRID)
    times = positivity.TIME_GRID
    k = np.sqrt(S_GRID)

    def at(mask):
        ti, si = np.unravel_index(int(np.argmax(mask)), mask.shape)
        return float(k[si]), float(times[ti]), g[ti, si]

    # Every witness is re-evaluated in mpmath (_certified_mask); float rounding alone never fails a screen.
    # |ghat| <= 1 (overflow included): the smallest violating k at the first time of the grid (t = 1 first).
    too_big = ~np.isfinite(g) | (np.abs(g) > 1.0 + positivity.GHAT_ACCURACY)
    too_big = _certified_mask(numeric, too_big, times, lambda value: abs(value) > 1 + 1e-12)
    if np.any(too_big):
        kk, tt, value = at(too_big)
        shown = f"{value.real:.6g}" if np.isfinite(value) else "overflow"
        return Condition("C1", FAIL, f"screen 2: |ghat| > 1 (ghat({kk:.4g}, {tt:g}) = {shown}): the Fourier "
                                     "transform of a positive measure is bounded by its mass",
                         {"k": kk, "t": tt, "ghat": value.real if np.isfinite(value) else math.inf},
                         "screen |ghat| <= 1")
    complex_part = np.abs(g.imag) > positivity.GHAT_ACCURACY * np.maximum(1.0, np.abs(g.real))
    complex_part = _certified_mask(numeric, complex_part, times,
                                   lambda value: abs(value.imag) > 1e-20 * max(1, abs(value.real)))
    if np.any(complex_part):
        kk, tt, value = at(complex_part)
        return Condition("C1", FAIL, f"screen 2: ghat is not real (ghat({kk:.4g}, {tt:g}) = {value:.4g}): the "
                                     "kernel is not a real density", {"k": kk, "t": tt, "ghat_real": value.real,
                                                                     "ghat_imag": value.imag}, "screen ghat real")
    real = np.where(np.isfinite(g), g.real, 0.0)
    schoenberg = _schoenberg_screen(real, k, times, dim)
    if schoenberg is not None:
        floor = schoenberg.witness["schoenberg_floor"]
        low = real < floor - positivity.GHAT_ACCURACY
        if not np.any(_certified_mask(numeric, low, times, lambda value: value.real < floor - 1e-12)):
            schoenberg = None
    if schoenberg is not None:
        return schoenberg
    tail = _tail_screen(numeric, dim)
    if tail is not None:
        return tail
    return _origin_screen(numeric, dim) if dim > 1 else None  # in 1-D the full kernel is examined instead


CERTIFY_DIGITS = 40  # mpmath digits of the witness re-evaluation (and twice that for the agreement check)
CERTIFY_POINTS = 24  # flagged grid points re-evaluated before a screen is cleared


def _mp_ghat(numeric: Dispersion, s: float, t: float, dps: int):
    import mpmath

    with mpmath.workdps(dps):
        value, mass = numeric.mp_p_hat(s, t, dps), numeric.mp_p_hat(0.0, t, dps)
        return None if value is None or mass is None or mass == 0 else complex(value / mass)


def _certified_mask(numeric: Dispersion, mask: np.ndarray, times: np.ndarray, holds) -> np.ndarray:
    """The (t, s) grid points of ``mask`` where ``holds(ghat)`` is true of ghat re-evaluated in mpmath (at
    CERTIFY_DIGITS and twice that); the first certified point, in grid order, is the one kept. Where no
    high-precision value exists (augmented problems, coincident roots) the float verdict stands. At most
    CERTIFY_POINTS points are tried, spread over the flagged ones."""
    flagged = np.argwhere(mask)
    if len(flagged) == 0:
        return mask
    certified = np.zeros_like(mask)
    step = max(1, len(flagged) // CERTIFY_POINTS)
    for ti, si in flagged[::step][:CERTIFY_POINTS]:
        s_value, t_value = float(S_GRID[si]), float(times[ti])
        low = _mp_ghat(numeric, s_value, t_value, CERTIFY_DIGITS)
        high = _mp_ghat(numeric, s_value, t_value, 2 * CERTIFY_DIGITS)
        if low is None or high is None:
            return mask
        if holds(low) and holds(high):
            certified[ti, si] = True
            return certified
    return certified


GRAM_RATIOS = np.geomspace(1e-6, 0.5, 48)  # k2 = k1 (1 + ratio): from nearly equal to well apart


def _gram_screen(numeric: Dispersion) -> Condition | None:
    """Screen 3b (Bochner): the Fourier transform of a positive measure is positive definite, so for wave
    vectors 0, k1, k2 on one axis (any N) det [[1, g1, g2], [g1, 1, g12], [g2, g12, 1]] >= 0 with g1 = ghat(k1),
    g2 = ghat(k2), g12 = ghat(k2 - k1). A negative determinant on a (k1, k2, t) grid is re-evaluated in mpmath.
    Catches kernels whose ghat does not decay (chirps like e^-t cos(k^2 t)), where no FFT exists."""
    k1 = positivity.K_GRID[::8]
    k2 = (k1[:, None] * (1.0 + GRAM_RATIOS[None, :])).ravel()
    k1 = np.repeat(k1, len(GRAM_RATIOS))
    s_all = np.concatenate([k1**2, k2**2, (k2 - k1) ** 2])
    for t in positivity.TIME_GRID[:5]:
        g = positivity.normalised_transform(numeric, s_all, np.array([t]))[0].real
        g1, g2, g12 = np.split(g, 3)
        det = 1 + 2 * g1 * g2 * g12 - g1**2 - g2**2 - g12**2
        order = np.argsort(det)[:CERTIFY_POINTS]
        for i in order:
            if not det[i] < -1e-6:
                break
            exact = [_gram_det(numeric, k1[i], k2[i], float(t), digits) for digits in (CERTIFY_DIGITS,
                                                                                        2 * CERTIFY_DIGITS)]
            if exact[0] is None or exact[1] is None:
                return None
            if exact[0] < -1e-12 and exact[1] < -1e-12:
                return Condition("C1", FAIL, (f"screen 3b (positive definiteness): at t = {t:g} the Gram determinant "
                                              f"of ghat at 0, k1 = {k1[i]:.6g}, k2 = {k2[i]:.6g} is {exact[1]:.4g} "
                                              "< 0 (mpmath): ghat is not positive definite, so no positive kernel "
                                              "in any N has it (Bochner)"),
                                 {"k1": float(k1[i]), "k2": float(k2[i]), "t": float(t), "gram_det": exact[1]},
                                 "Bochner 3-point screen, witness in mpmath")
    return None


def _gram_det(numeric: Dispersion, k1: float, k2: float, t: float, digits: int) -> float | None:
    values = [_mp_ghat(numeric, k * k, t, digits) for k in (k1, k2, k2 - k1)]
    if any(v is None for v in values):
        return None
    g1, g2, g12 = (v.real for v in values)
    return 1 + 2 * g1 * g2 * g12 - g1 * g1 - g2 * g2 - g12 * g12


def _origin_screen(numeric: Dispersion, dim: int) -> Condition | None:
    """Screen 5: p(0, t) < 0 in N dimensions, from the radial integral of ghat k^(N-1) (a Hankel transform
    at r = 0); decided only when clearly negative (ratio < -1e-6) and stable under grid doubling."""
    for t in (1.0, 0.1, 10.0):
        origin = positivity.origin_value(numeric, t, dim)
        if origin is None:
            continue
        stable = abs(origin.ratio - origin.ratio_doubled) < 1e-3 * abs(origin.ratio) + 1e-9
        if origin.ratio < -1e-6 and stable:
            return Condition("C1", FAIL, f"screen 5 (origin): p(0, {t:g}) < 0 in N = {dim} (int ghat k^(N-1) dk / "
                                         f"int |ghat| k^(N-1) dk = {origin.ratio:.4g}, |p(0)| ~ "
                                         f"1e{origin.log10_abs_p:.1f})",
                             {"x": 0.0, "t": t, "signed_ratio": origin.ratio,
                              "signed_ratio_doubled_grid": origin.ratio_doubled, "log10_abs_p": origin.log10_abs_p},
                             "origin screen (radial integral of ghat)")
    return None


def _tail_screen(numeric: Dispersion, dim: int) -> Condition | None:
    """Screen 4: ghat ~ A k^-beta with A < 0 and beta <= N makes the kernel tend to -oo at the origin
    (the N-dimensional transform of k^-beta behaves like |x|^(beta-N), or log|x| at beta = N)."""
    for t in (1.0, 0.1, 10.0):
        tail = positivity.tail_decay(numeric, t)
        if tail is not None and tail.amplitude < 0 and tail.beta <= dim + 1e-6:
            return Condition("C1", FAIL, f"screen 4 (tail): ghat ~ {tail.amplitude:.4g} k^-{tail.beta:.4g} as "
                                         f"k -> oo at t = {t:g}, negative with beta <= N = {dim}: the kernel tends "
                                         f"to -oo at the origin",
                             {"t": t, "beta": tail.beta, "amplitude": tail.amplitude, "k": tail.k,
                              "ghat": tail.ghat}, "tail screen")
    return None


def _schoenberg_screen(real: np.ndarray, k: np.ndarray, times: np.ndarray, dim: int) -> Condition | None:
    """ghat < inf Lambda_N somewhere on the (k, t) grid disproves C1 in N (screen 3).

    The elementary bound inf Lambda_min(N,3) <= inf Lambda_N decides the clear cases without scipy's Bessel
    functions; only a negative ghat above that bound needs inf Lambda_N itself.
    """
    ti, si = np.unravel_index(int(np.argmin(real)), real.shape)
    value = float(real[ti, si])
    if value >= -positivity.GHAT_ACCURACY:
        return None  # a non-negative ghat is above every (negative) floor
    floor = positivity.elementary_floor(dim)
    if value >= floor.value - positivity.GHAT_ACCURACY:
        floor = positivity.schoenberg_floor(dim)
        if value >= floor.value - positivity.GHAT_ACCURACY:
            return None
    bound = "" if floor.dim == dim else f" <= inf Lambda_{dim} (Lambda_{dim} averages Lambda_{floor.dim})"
    return Condition("C1", FAIL, f"screen 3 (Schoenberg): ghat({k[si]:.4g}, {times[ti]:g}) = {value:.6g} < "
                                 f"inf Lambda_{floor.dim} = {floor.value:.6g}{bound}: no positive radial density "
                                 f"in N = {dim} has this Fourier transform",
                     {"k": float(k[si]), "t": float(times[ti]), "ghat": value, "schoenberg_floor": floor.value,
                      "schoenberg_floor_dim": floor.dim}, "Schoenberg screen on a (k, t) grid")


def _one_dimensional(numeric: Dispersion) -> Condition:
    """The 1-D kernel: Riemann closed form where it applies, else FFT. FAIL in every N if negative."""
    riemann = positivity.riemann_kernel(numeric)
    if riemann is not None:
        form = (f"1-D kernel of lambda^2 + {riemann.b:.6g} lambda + {riemann.c:.6g}^2 s + {riemann.d:.6g}: atoms "
                f"e^(-bt/2)/2 at x = +-ct plus a Bessel expression inside the cone")
        if riemann.certified_positive():
            return Condition("C1", PASS, f"{form}; b >= 0 and b^2/4 >= d make every term (atoms, I_0, I_1) "
                                         f"non-negative for all t", None, RIEMANN_METHOD)
        worst = riemann.most_negative(positivity.TIME_GRID)
        if worst is not None:
            x, t, value = worst
            normalised = value / numeric.numeric_mass(t).real
            return Condition("C1", FAIL, f"{form}; it is negative at x = {x:.6g}, t = {t:g}: p = {normalised:.6g} "
                                         "(normalised)", {"x": x, "t": t, "p": normalised}, RIEMANN_METHOD)
        return Condition("C1", UNDECIDED, f"{form}; no negative value on the (x, t) grid but no certificate", None,
                         RIEMANN_METHOD)
    checked = []
    for t in positivity.TIME_GRID[[0, 3, 4]]:  # t = 1, 0.1, 10
        kernel = positivity.kernel_1d(numeric, float(t))
        if kernel is None:
            return Condition("C1", UNDECIDED, f"ghat does not decay at t = {t:g} (singular part): the 1-D kernel "
                                              "has no FFT and no closed form here", None, "FFT 1-D kernel")
        error = 3.0 * kernel.truncation_error + 1e-10 * abs(kernel.p_zero)
        agrees = kernel.p_min_fine is not None and \
            abs(kernel.p_min_fine - kernel.p_min) <= 0.01 * abs(kernel.p_min) + error
        if kernel.p_min < -error and agrees:
            return Condition("C1", FAIL, f"the 1-D kernel is negative: p({kernel.x_min:.6g}, {t:g}) = "
                                         f"{kernel.p_min:.6g} against p(0, {t:g}) = {kernel.p_zero:.6g}",
                             {"x": kernel.x_min, "t": float(t), "p": kernel.p_min, "p_at_zero": kernel.p_zero,
                              "p_doubled_grid": kernel.p_min_fine, "truncation_error": kernel.truncation_error},
                             FFT_METHOD)
        checked.append(t)
    return Condition("C1", UNDECIDED, f"no negative value of the 1-D kernel at t = "
                                      f"{', '.join(f'{t:g}' for t in checked)} (numerics, not a proof)", None,
                     "FFT 1-D kernel")


# ---------------------------------------------------------------------------------------------- prior
def _prior(disp: Dispersion, gap: _Gap, smoothing: Condition) -> Prior:
    if disp.augmented_dims is not None:
        D = sp.sympify(disp.augmented_dims).xreplace(disp.spec.parameter_values())
        return Prior("student_t", 1.0, None, math.inf,
                     f"multivariate Student-t with D = {sp.sstr(D)} degrees of freedom, scale c t / sqrt(D) "
                     "(PFGM++), whatever t")
    large = _large_k_gap(gap.values) if gap.values is not None else None
    if smoothing.status == FAIL:
        return Prior(None, None, None, large, "no prior: the PDE does not smooth (C2 fails)")
    alpha_scale = None
    if gap.symbolic is not None and gap.symbolic != 0:
        leading = _lowest_power(gap.symbolic)  # exact and cheap for sums of c s^p
        if leading is None and not gap.symbolic.xreplace(disp.spec.parameter_values()).free_symbols - {S}:
            leading = _leading_term_in_mpmath(gap.symbolic.xreplace(disp.spec.parameter_values()))
        if leading is None and gap.values is None:  # as_leading_term costs ~0.1-0.5 s: only without numbers
            try:
                leading = gap.symbolic.as_leading_term(S).as_coeff_exponent(S)
            except (NotImplementedError, ValueError, TypeError):  # e.g. Abs has no leading-term routine
                leading = None
        if leading is not None and not leading[0].has(S) and leading[1].is_Rational and leading[1] > 0:
            coefficient = leading[0].xreplace(disp.spec.parameter_values())
            alpha_scale = (float(2 * leading[1]), coefficient)
    if alpha_scale is None and gap.values is not None:
        alpha_scale = _small_k_exponent(gap.values)
        if alpha_scale is not None and gap.symbolic is not None:
            # the grid's gap loses ~1e-8 to cancellation at k = 1e-4; with f known, read the scale off
            # f(s) / s^(alpha/2) at s = 1e-20 in 60-digit arithmetic instead (next-order terms ~1e-20)
            tiny = sp.Float("1e-20", 60)
            ratio = (gap.symbolic / S ** sp.nsimplify(alpha_scale[0] / 2)).xreplace(disp.spec.parameter_values())
            value = sp.N(ratio.xreplace({S: tiny}), 60)
            if value.is_number and value.is_real:
                alpha_scale = (alpha_scale[0], float(value))
    if alpha_scale is None:
        return Prior(None, None, None, large, "small-k behaviour not read off")
    alpha, a = alpha_scale
    scale = float(a) if not isinstance(a, sp.Expr) or a.is_number else None
    a_text = f"{scale:.6g}" if scale is not None else sp.sstr(a)
    if alpha == 2:
        return Prior("gaussian", alpha, scale, large, f"Gaussian: ghat ~ exp(-{a_text} t k^2) at small k, variance "
                                                      f"2 * {a_text} * t per coordinate at large t")
    if alpha == 1:
        return Prior("cauchy", alpha, scale, large, f"Cauchy: ghat ~ exp(-{a_text} t k) at small k, scale "
                                                    f"{a_text} * t at large t")
    if 0 < alpha < 2:
        return Prior("stable", alpha, scale, large, f"isotropic {alpha:g}-stable: ghat ~ exp(-{a_text} t k^{alpha:g})"
                                                    f" at small k, scale ({a_text} t)^(1/{alpha:g})")
    return Prior(None, alpha, scale, large, f"ghat ~ exp(-{a_text} t k^{alpha:g}) at small k with alpha > 2 is not "
                                            "the characteristic function of any probability law: no prior")


LEADING_S = (sp.Rational(1, 10**60), sp.Rational(1, 10**58))  # far below any parameter scale (values >= 1e-12)


def _leading_term_in_mpmath(expr: sp.Expr) -> tuple[sp.Expr, sp.Rational] | None:
    """(coefficient, power) of gap ~ a s^p as s -> 0, read off at s = 1e-60 and 1e-58 with SymPy's adaptive
    precision (evalf re-evaluates cancelling differences such as sqrt(s + m^2) - m, m = 1e11, to 30 digits).
    The power is rounded to a fraction with denominator <= 64; None when the two points disagree."""
    try:
        g1, g2 = (sp.N(expr.xreplace({S: s}), 30) for s in LEADING_S)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (g1.is_real and g2.is_real and g1 > 0 and g2 > 0):
        return None
    slope = float(sp.log(g2 / g1) / sp.log(LEADING_S[1] / LEADING_S[0]))
    power = sp.Rational(round(slope * 64), 64)
    if power <= 0 or abs(slope - float(power)) > 1e-6:
        return None
    return sp.Float(g1 / LEADING_S[0] ** power, 15), power


def _lowest_power(expr: sp.Expr) -> tuple[sp.Expr, sp.Rational] | None:
    """(coefficient, power) of the lowest positive power of s when expr is a sum of c * s^p, else None."""
    best = None
    for term in sp.Add.make_args(sp.expand(expr)):
        coefficient, power = term.as_coeff_exponent(S)
        if coefficient.has(S) or not power.is_Rational:
            return None
        if power > 0 and (best is None or power < best[1]):
            best = (coefficient, power)
    return best


# ---------------------------------------------------------------------------------------------- equivalences
def _equivalences(disp: Dispersion, numeric: Dispersion | None, split: DensitySplit) -> tuple[str, ...]:
    """Known models with the same normalised kernel, from ghat (recognise.py), each checked numerically."""
    from ..derive.recognise import recognise

    found = []
    if disp.spec.free_parameters():
        symbolic = _symbolic_equivalence(disp.semigroup_exponent)
        if symbolic:
            found.append(symbolic)
    elif numeric is not None:
        recognition = recognise(numeric)
        family = recognition.family
        if family is not None:
            error = _family_ghat_error(numeric, family)
            text = family.info.describe(family.params)
            if error is None:
                found.append(f"{text} (recognised from the structure of the symbol)")
            elif error < 1e-8:
                found.append(f"{text} (ghat matches to {error:.1e} on a (k, t) grid)")
    if split.reaction_kind == "uniform":
        found.append(f"the normalised kernel ignores the uniform reaction: {split.detail}")
    return tuple(found)


def _symbolic_equivalence(f: sp.Expr | None) -> str | None:
    """For parameters without values: f = c s^beta names the family with c symbolic (checked by structure)."""
    if f is None:
        return None
    coefficient, power = sp.expand(f).as_coeff_exponent(S)
    if coefficient.has(S) or not coefficient.is_positive or not power.is_Rational:
        return None
    c = sp.sstr(coefficient)
    if power == 1:
        return f"same normalised kernel as diffusion: a rescaled diffusion, kappa = {c} (by structure: f = {c} s)"
    if power == sp.Rational(1, 2):
        return f"PFGM (D = 1) with time rescaled by c = {c} (by structure: f = {c} sqrt(s))"
    if 0 < power < 1:
        return f"fractional diffusion with alpha = {sp.sstr(2 * power)}, kappa = {c} (by structure)"
    return None


def _family_ghat_error(numeric: Dispersion, family: FamilyConfig) -> float | None:
    """max |ghat - family ghat| over a (k, t) grid, or None when there is no independent closed form to compare
    with (e.g. PFGM++'s numeric ghat is the Student-t formula itself). The family's ghat is its one SymPy
    closed form (pde2gen/families/<name>/__init__.py), evaluated in complex arithmetic."""
    if not family.info.checked_against_analysis:
        return None
    s = S_GRID[::40]
    times = np.array([0.1, 1.0, 3.0])
    g = positivity.normalised_transform(numeric, s, times)
    reference = ghat_numeric(family.info, family.parameters)(s.astype(complex), times[:, None]).real
    return float(np.max(np.abs(g - reference)))


# ---------------------------------------------------------------------------------------------- repairs
def _repairs(spec: PDESpec, disp: Dispersion, conditions: tuple[Condition, ...]) -> tuple[Repair, ...]:
    status = {c.name: c.status for c in conditions}
    candidates: list[tuple[str, str, PDESpec]] = []
    undamped = _is_undamped_hyperbolic(disp)
    if undamped:
        damped = _with_damping(spec)
        candidates.append(("add damping", (f"add friction + 2*a*u_t with a = {DAMPING_RATE} (times the u_tt "
                                          "coefficient): the telegraph equation"), damped))
        if spec.dim >= 2 and spec.construction == "isotropic":
            candidates.append(("add damping, product construction",
                               "add friction and run one 1-D process per coordinate (Kac flow)",
                               damped.with_options(construction="product")))
    c1 = next(c for c in conditions if c.name == "C1")
    if status["C1"] == FAIL and spec.dim >= 2 and spec.construction == "isotropic" and not undamped \
            and status["C2"] == PASS and status["C0"] == PASS and c1.method not in ONE_D_METHODS:
        candidates.append(("product construction", ("one independent 1-D process per coordinate: C1 becomes the "
                                                   "1-D question (anisotropic kernel)"),
                           spec.with_options(construction="product")))
    if status["C2"] == FAIL or (status["C0"] == FAIL and _has_complex_coefficients(spec)):
        candidates.extend(_imaginary_time(spec))

    repairs = []
    for name, description, repaired in candidates:
        report = analyse(repaired, repairs=False)
        if "product construction" in name and not report.s_generative:
            continue  # the product only helps when the 1-D question passes
        repairs.append(Repair(name, description, repaired.pretty(), repaired, report))
    # Of the imaginary-time choices keep the passing ones when any passes.
    rotations = [r for r in repairs if r.name.startswith("imaginary time")]
    if any(r.passes for r in rotations):
        repairs = [r for r in repairs if not r.name.startswith("imaginary time") or r.passes]
    return tuple(repairs)


def _is_undamped_hyperbolic(disp: Dispersion) -> bool:
    if disp.problem_type != EVOLUTION or disp.t_order != 2:
        return False
    coefficients = sp.Poly(disp.symbol, LAM).all_coeffs()
    return coefficients[1] == 0


def _with_damping(spec: PDESpec) -> PDESpec:
    lead = sum(t.coefficient for t in spec.terms if t.t_order == 2 and t.space_power == 0 and t.t_power == 0)
    terms = spec.terms + (Term(2 * DAMPING_RATE * lead, 1),)
    return replace(spec, terms=terms, source=f"{spec.source} + 2*a*u_t (a = {DAMPING_RATE})",
                   problem_type=None)


def _has_complex_coefficients(spec: PDESpec) -> bool:
    values = spec.parameter_values()
    return any(t.coefficient.xreplace(values).is_extended_real is False for t in spec.terms)


def _imaginary_time(spec: PDESpec) -> list[tuple[str, str, PDESpec]]:
    """t -> i t or t -> -i t: the lambda^j coefficient is multiplied by (-i)^j or i^j; keep real results."""
    values = spec.parameter_values()
    out, seen = [], set()
    J = spec.t_order
    for label, unit in (("t -> i t", -sp.I), ("t -> -i t", sp.I)):
        terms = [replace(t, coefficient=sp.expand(t.coefficient * unit**t.t_order)) for t in spec.terms]
        # Multiply the equation by the constant phase that makes the top coefficient positive (Schrödinger's i).
        lead = sum(t.coefficient for t in terms if t.t_order == J and t.t_power == 0).xreplace(values)
        phase = sp.Abs(lead) / lead if lead.is_number and lead != 0 else sp.Integer(1)
        terms = tuple(replace(t, coefficient=sp.expand(t.coefficient * sp.nsimplify(phase))) for t in terms)
        if any(t.coefficient.xreplace(values).is_extended_real is not True for t in terms):
            continue
        key = tuple((t.coefficient, t.t_order, t.space_power, t.t_power) for t in terms)
        if key in seen:
            continue
        seen.add(key)
        rotated = replace(spec, terms=terms, problem_type=None, source=f"{spec.source} with {label}")
        factor = "" if phase == 1 else f", then multiply the equation by {sp.sstr(sp.nsimplify(phase))}"
        out.append((f"imaginary time ({label})", (f"Wick rotation {label}: multiply the d_t^j coefficient by "
                                                 f"({sp.sstr(unit)})^j{factor}"), rotated))
    return out


# ---------------------------------------------------------------------------------------------- dict helpers
def _dispersion_dict(disp: Dispersion | None) -> dict | None:
    if disp is None:
        return None
    carrying = _carrying(disp)
    return {
        "symbol": sp.sstr(disp.symbol),
        "t_order": disp.t_order,
        "branches": None if disp.branches is None else [sp.sstr(b) for b in disp.branches],
        "carrying": carrying,
        "amplitudes": _amplitudes_text(disp),
        "problem_type": disp.problem_type,
        "problem_type_reason": disp.problem_type_reason,
        "density_factor": sp.sstr(disp.density_factor),
        "reaction": sp.sstr(disp.reaction),
        "p_hat": None if disp.p_hat is None else sp.sstr(disp.p_hat),
        "mass": None if disp.mass is None else sp.sstr(disp.mass),
        "ghat": None if disp.ghat is None else sp.sstr(disp.ghat),
        "semigroup_exponent": None if disp.semigroup_exponent is None else sp.sstr(disp.semigroup_exponent),
        "augmented_dims": None if disp.augmented_dims is None else sp.sstr(disp.augmented_dims),
    }


def _carrying(disp: Dispersion) -> list[bool] | None:
    """Which branches (in disp.branches order) carry the solution, read at s = 1/2 and s = 2."""
    if disp.branches is None:
        return None
    if disp.problem_type == AUGMENTED:
        trial = _trial_values(disp.spec)
        reals = [complex(sp.N(b.xreplace(trial).subs(S, 1))).real for b in disp.branches]
        return [r == min(reals) for r in reals]
    trial = _trial_values(disp.spec)
    dP = sp.diff(disp.symbol, LAM)
    out = []
    for b in disp.branches:
        amps = [complex(sp.N((disp.density_factor.subs(LAM, b) / dP.subs(LAM, b)).xreplace(trial).subs(S, s)))
                for s in (sp.Rational(1, 2), 2)]
        out.append(any(abs(a) > 1e-12 for a in amps))
    return out


def _amplitudes_text(disp: Dispersion) -> list[str] | None:
    if disp.branches is None or disp.problem_type == AUGMENTED:
        return None
    dP = sp.diff(disp.symbol, LAM)
    return [sp.sstr(sp.together(disp.density_factor.subs(LAM, b) / dP.subs(LAM, b))) for b in disp.branches]


def _fmt(value: float) -> str:
    """6 significant digits, without the '-0' of rounding noise."""
    value = float(value)
    return "0" if abs(value) < 1e-300 or f"{value:.6g}" == "-0" else f"{value:.6g}"


def _plain(value):
    """JSON-ready: floats (inf/nan as strings), ints, strings, lists and dicts of those."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, complex):
        return {"real": _plain(value.real), "imag": _plain(value.imag)}
    return sp.sstr(value)


__all__ = ["FAIL", "PASS", "UNDECIDED", "AnalysisReport", "Condition", "DensitySplit", "Prior", "Repair", "analyse"]

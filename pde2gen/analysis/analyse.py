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
Each concern is its own module: admissibility.py (C0), smoothing.py (C2), positivity_checks.py (C1, on the
numerics of positivity.py), prior.py, equivalences.py, repairs.py (the candidates); verdicts.py holds the
Condition/DensitySplit/Prior types they return. This module keeps the driver and the AnalysisReport.

Parameters without values are decided symbolically where the structure allows; otherwise, when every free
parameter can be scaled away (t -> alpha t, x -> beta x, P -> gamma P), the numerics run at value 1 and hold
for all positive values; otherwise the condition is UNDECIDED with the reason.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import sympy as sp

from ..errors import UsageError
from ..spec.spec import LAM, PDESpec, S, Term
from .admissibility import _check_admissibility, _density_split, _mass_check, _trial_values
from .dispersion import AUGMENTED, Dispersion, analyse_dispersion, with_semigroup_exponent
from .equivalences import _equivalences
from .positivity_checks import ONE_D_METHODS, _check_positivity
from .prior import _prior
from .repairs import (
    DAMPING_RATE,
    _has_complex_coefficients,
    _imaginary_time,
    _is_undamped_hyperbolic,
    _with_damping,
)
from .smoothing import _bernstein, _check_smoothing
from .verdicts import FAIL, PASS, UNDECIDED, Condition, DensitySplit, Prior


# ---------------------------------------------------------------------------------------------- results
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
    columns (1, j, 2b) over the terms. A relap(u, mu) term fixes the length scale 1/mu, so with one present x
    is not rescaled (columns (1, j)).
    """
    values = spec.parameter_values()
    screened = any(term.screening_mass is not None for term in spec.terms)
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
        rows.append([1, term.t_order] + ([] if screened else [2 * term.space_power]))
        exponents.append([powers.get(p, 0) for p in free])
    basis = sp.Matrix(rows)
    rank = basis.rank()
    for j in range(len(free)):
        if basis.row_join(sp.Matrix([row[j] for row in exponents])).rank() != rank:
            return None
    return "every coefficient is a monomial that rescaling t, x and the equation sets to 1, so each condition " \
           "has the same verdict for all positive values"


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


# The stage's public names. PASS/FAIL/UNDECIDED live in verdicts.py; they are re-exported here because the tests
# and callers compare verdicts against them next to analyse().
__all__ = ["FAIL", "PASS", "UNDECIDED", "AnalysisReport", "Repair", "analyse"]

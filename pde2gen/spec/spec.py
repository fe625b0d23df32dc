"""The internal specification of a PDE: small immutable data shared by every stage.

A PDE handled by pde2gen is a finite sum of terms, equal to zero,

    sum_i  c_i * t**m_i * d_t^{j_i} (-Laplacian)^{beta_i} u(t, x) = 0,

with constant coefficients c_i (numbers and parameter symbols, possibly complex), integer time orders j_i,
non-negative rational space powers beta_i (beta = 1 is -Laplacian, beta = 1/2 the fractional square root, ...),
and m_i = 0 except for the radial augmentation term ``(D-1)/t * d_t u`` of PFGM++ (m = -1, j = 1).
A term may instead carry the screened square root sqrt(-Laplacian + mu**2) - mu (``relap(u, mu)``, mu > 0 a
number): its ``screening_mass`` is mu, its space_power 0, and it contributes c_i lambda**j_i (sqrt(s + mu**2) - mu).

Conventions (docs/physics.md, Conventions): phi ~ exp(i k.x - i omega t), growth rate lambda = -i omega, s = k**2 >= 0.
Under these, d_t -> lambda and (-Laplacian)^beta -> s**beta, so the operator symbol is

    P(lambda, s) = sum_i c_i lambda**j_i s**beta_i        (terms with m_i = 0 only).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

# Growth rate: deliberately without assumptions, so that Poly/roots keep every root (docs/physics.md §6.8).
LAM = sp.Symbol("lambda")
S = sp.Symbol("s", nonnegative=True)  # k**2
K = sp.Symbol("k", nonnegative=True)  # |k|
T = sp.Symbol("t", positive=True)  # the PDE's own time (or augmented coordinate)
X = sp.Symbol("x", real=True)  # a spatial coordinate / radius in 1-D formulas
RHO = sp.Symbol("rho", nonnegative=True)  # |x - y|

CONSTRUCTIONS = ("isotropic", "product")
PROBLEM_TYPES = ("evolution", "augmented")
MAX_DIM = 1 << 16


@dataclass(frozen=True)
class Term:
    """One term ``coefficient * t**t_power * d_t^t_order (-Laplacian)^space_power u``, or, with a
    ``screening_mass`` mu, ``coefficient * t**t_power * d_t^t_order (sqrt(-Laplacian + mu**2) - mu) u``."""

    coefficient: sp.Expr
    t_order: int
    space_power: sp.Rational = sp.Integer(0)
    t_power: int = 0
    screening_mass: sp.Expr | None = None  # mu > 0 of relap(u, mu); None for (-Laplacian)^space_power

    def space_symbol(self) -> sp.Expr:
        """The spatial operator's symbol: s**space_power, or sqrt(s + mu**2) - mu."""
        if self.screening_mass is not None:
            return sp.sqrt(S + self.screening_mass**2) - self.screening_mass
        return S**self.space_power

    def symbol(self) -> sp.Expr:
        """This term's contribution to P(lambda, s) (only defined for t_power == 0)."""
        if self.t_power != 0:
            raise ValueError("terms with explicit t dependence have no constant-coefficient symbol")
        return self.coefficient * LAM**self.t_order * self.space_symbol()


@dataclass(frozen=True)
class Parameter:
    """A named PDE parameter: its SymPy symbol (with assumptions) and its value, if one is set."""

    name: str
    symbol: sp.Symbol
    value: sp.Expr | None = None


@dataclass(frozen=True)
class PDESpec:
    """A parsed PDE. ``terms`` sum to zero; everything else says how to read and build it."""

    terms: tuple[Term, ...]
    parameters: tuple[Parameter, ...] = ()
    dim: int = 2
    construction: str = "isotropic"
    problem_type: str | None = None  # None: decided by the analysis; otherwise a user override
    source: str = ""  # the text (or expression) as the user gave it
    catalog: tuple[str, ...] = ()  # catalog entries it was composed from, if any
    notes: tuple[str, ...] = field(default=())  # e.g. how the input was normalised

    # ----------------------------------------------------------------------------------------------
    @property
    def t_order(self) -> int:
        """Highest time order J."""
        return max(term.t_order for term in self.terms)

    @property
    def augmented_dims(self) -> sp.Expr | None:
        """D for the radial augmentation ``(D-1)/t * d_t`` (PFGM++), normalised by the d_t**2 coefficient."""
        radial = [term for term in self.terms if term.t_power == -1]
        if not radial:
            return None
        lead = sum(t.coefficient for t in self.terms if t.t_power == 0 and t.t_order == 2 and t.space_power == 0)
        return sp.nsimplify(1 + sp.Add(*[t.coefficient for t in radial]) / lead)

    def symbol(self) -> sp.Expr:
        """P(lambda, s) of the constant-coefficient part (the radial augmentation term is left out)."""
        return sp.Add(*[term.symbol() for term in self.terms if term.t_power == 0])

    def parameter_values(self) -> dict[sp.Symbol, sp.Expr]:
        """Substitution map of every parameter that has a value."""
        return {p.symbol: p.value for p in self.parameters if p.value is not None}

    def numeric_symbol(self) -> sp.Expr:
        """P(lambda, s) with every parameter value substituted."""
        return self.symbol().xreplace(self.parameter_values())

    def free_parameters(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.value is None)

    def with_options(self, **changes) -> "PDESpec":
        """A copy with some fields replaced (dataclasses.replace, validated)."""
        from dataclasses import replace

        new = replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        from ..errors import UsageError

        if not (1 <= self.dim <= MAX_DIM):
            raise UsageError(f"--dim must be between 1 and {MAX_DIM}, got {self.dim}")
        if self.construction not in CONSTRUCTIONS:
            raise UsageError(f"--construction must be one of {', '.join(CONSTRUCTIONS)}, got {self.construction!r}")
        if self.problem_type not in (None, *PROBLEM_TYPES):
            raise UsageError(f"problem type must be one of {', '.join(PROBLEM_TYPES)}")

    def pretty(self) -> str:
        """The PDE as understood, in the subscript shorthand (for reports)."""
        tt = sp.Symbol("t")
        parts = []
        for term in self.terms:
            op = "u"
            if term.t_order:
                op = "u_" + "t" * term.t_order
            if term.screening_mass is not None:
                op = f"relap({op}, {sp.sstr(term.screening_mass)})"
            elif term.space_power != 0:
                power = "" if term.space_power == 1 else f"^({term.space_power})"
                op = f"(-lap){power} {op}"
            coeff = term.coefficient * (tt**term.t_power if term.t_power else 1)
            parts.append(f"({sp.sstr(coeff)})*{op}" if coeff != 1 else op)
        return " + ".join(parts) + " = 0"

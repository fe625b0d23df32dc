"""Recognise the kernel family of a PDE from its dispersion analysis (the mathematics, never the names).

Three routes, tried in this order (physics.md §3, §4):

1. Kac: a telegraph-type symbol  A (lambda^2 + 2 a lambda + c^2 s)  with a, c > 0, in the product
   construction or in one space dimension, is the Kac process -> ``kac_product(a, c)``.
2. PFGM++: Poisson with a radial augmentation of D extra dimensions, A (lambda^2 - c^2 s), is the
   multivariate Student-t with D degrees of freedom -> ``student_t(c, D)`` (D = 1: ``cauchy(c)``).
3. Semigroups: ghat = exp(-t f(s)), with f decomposed term by term:
       kappa s                    -> gaussian(kappa)
       c sqrt(s)                  -> cauchy(c)
       kappa s^(alpha/2), 0<alpha<2 -> stable(kappa, alpha)
       A sqrt(B s + C) - A sqrt(C) -> nig(c = A sqrt(B), m = sqrt(C / B))
   Terms of one kind are summed first (u_t = lap(u) + 2 lap(u) is gaussian(3)); branches the density does not
   excite are cancelled first ((d_t + 1)(d_t + 2)(d_t - lap) u = 0 is diffusion); f must vanish at s = 0,
   which is what normalising the mass (e.g. damped diffusion's e^{-m^2 t}) leaves.  A sum of two distinct
   subordinators is the convolution of their kernels (V = V_1 + V_2, independent draws):
       kappa s + c (sqrt(s + m^2) - m), m >= 0 -> heat_nig(kappa, c, m)   (m = 0: heat plus Cauchy)
   other sums (a stable component, two non-Gaussian components) are not derivable yet, said precisely.

Families need numbers: parameters without values are reported, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .dispersion import EVOLUTION, Dispersion
from .families import FamilyConfig
from .spec import LAM, S, T

NOT_DERIVABLE = "not derivable yet: "
# Relative tolerance for "this coefficient is zero" on numbers that went through float parameters.
ZERO_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Recognition:
    """The family (or None) and a one-line account: how it was recognised, or what is missing."""

    family: FamilyConfig | None
    reason: str


def recognise_family(dispersion: Dispersion) -> FamilyConfig | None:
    """The family whose normalised kernel is this PDE's, or None (``recognise(...).reason`` says why)."""
    return recognise(dispersion).family


def recognise(dispersion: Dispersion) -> Recognition:
    """Recognise the family of ``dispersion`` from its symbol, augmentation and semigroup exponent."""
    spec = dispersion.spec
    values = spec.parameter_values()
    symbol = sp.expand(dispersion.symbol.xreplace(values))
    missing = _missing_parameters(dispersion, values)
    if missing:
        return Recognition(None, NOT_DERIVABLE + f"parameters without values: {', '.join(missing)} "
                           "(give them with --param name=value)")

    telegraph = _telegraph_parameters(symbol)
    damped_kg = _damped_klein_gordon_parameters(symbol)
    if damped_kg is not None and dispersion.problem_type == EVOLUTION and (
            spec.construction == "product" or spec.dim == 1):
        return Recognition(None, NOT_DERIVABLE + _damped_klein_gordon_text(*damped_kg))
    if spec.construction == "product":
        if telegraph is not None and dispersion.problem_type == EVOLUTION:
            return _kac(*telegraph, "product construction of the telegraph symbol")
        semigroup = _semigroup_recognition(dispersion, values)
        if semigroup.family is not None and semigroup.family.name == "gaussian":
            # A product of independent 1-D Gaussians is the isotropic Gaussian.
            return Recognition(semigroup.family, semigroup.reason + "; the product of 1-D Gaussians is isotropic")
        return Recognition(None, NOT_DERIVABLE + "the product construction is derived for the telegraph "
                           "symbol lambda^2 + 2 a lambda + c^2 s (Kac) and for diffusion only")

    if dispersion.augmented_dims is not None:
        return _radial_augmentation(dispersion, symbol, values)

    if telegraph is not None and dispersion.problem_type == EVOLUTION:
        if spec.dim == 1:
            return _kac(*telegraph, "one-dimensional telegraph symbol")
        return Recognition(None, NOT_DERIVABLE + f"the isotropic telegraph kernel in N = {spec.dim} dimensions "
                           "is not a positive density; use the product construction (Kac)")

    return _semigroup_recognition(dispersion, values)


# ---------------------------------------------------------------------------------------------- routes
def _missing_parameters(dispersion: Dispersion, values: dict) -> list[str]:
    free = dispersion.symbol.xreplace(values).free_symbols - {LAM, S}
    if dispersion.augmented_dims is not None:
        free |= sp.sympify(dispersion.augmented_dims).xreplace(values).free_symbols
    return sorted(str(symbol) for symbol in free)


def _kac(a: float, c: float, how: str) -> Recognition:
    family = FamilyConfig("kac_product", (("a", a), ("c", c)))
    return Recognition(family, f"{how}: lambda^2 + 2 a lambda + c^2 s with a = {a:.6g}, c = {c:.6g} (Kac process)")


def _telegraph_parameters(symbol: sp.Expr) -> tuple[float, float] | None:
    """(a, c) if symbol = A (lambda^2 + 2 a lambda + c^2 s) with a, c > 0 and real A != 0, else None."""
    poly = sp.Poly(symbol, LAM)
    if poly.degree() != 2:
        return None
    lead, damping, space = poly.all_coeffs()
    if lead.has(S) or damping.has(S) or not lead.is_number:
        return None
    space = sp.expand(space)
    c_squared_times_lead = space.coeff(S, 1)
    if sp.expand(space - c_squared_times_lead * S) != 0 or not c_squared_times_lead.is_number:
        return None
    a = _real_number(damping / (2 * lead))
    c_squared = _real_number(c_squared_times_lead / lead)
    if a is None or c_squared is None or a <= 0 or c_squared <= 0:
        return None
    return a, c_squared**0.5


def _damped_klein_gordon_parameters(symbol: sp.Expr) -> tuple[float, float, float] | None:
    """(a, m^2, c) if symbol = A (lambda^2 + 2 a lambda + m^2 + c^2 s) with a, c > 0 and m^2 != 0, else None."""
    poly = sp.Poly(symbol, LAM)
    if poly.degree() != 2:
        return None
    lead, _, space = poly.all_coeffs()
    mass_term = sp.expand(space).subs(S, 0)
    if mass_term == 0 or not mass_term.is_number:
        return None
    telegraph = _telegraph_parameters(sp.expand(symbol - mass_term))
    m_squared = _real_number(mass_term / lead)
    if telegraph is None or m_squared is None:
        return None
    return telegraph[0], m_squared, telegraph[1]


def _damped_klein_gordon_text(a: float, m_squared: float, c: float) -> str:
    """Why the 1-D damped Klein-Gordon kernel has no family yet, with the law it would need."""
    w_squared = a * a - m_squared
    if w_squared < 0:
        return (f"damped Klein-Gordon (a = {a:.6g}, m^2 = {m_squared:.6g} > a^2): its mass oscillates, so there is "
                "no density to sample")
    w = w_squared**0.5
    return (f"damped Klein-Gordon u_tt + 2a u_t + m^2 u = c^2 u_xx (a = {a:.6g}, m^2 = {m_squared:.6g}, "
            f"c = {c:.6g}): its 1-D kernel is e^(-(a - w) t) times the positive mixture of the Kac law "
            f"(a = w = sqrt(a^2 - m^2) = {w:.6g}, c) and (a - w) e^(-w t) I_0(w sqrt(t^2 - x^2/c^2)) / (2c) on "
            "|x| < c t, with a spatially varying death term; no family samples that mixture (nor gives its "
            "coupled velocity) yet")


def _radial_augmentation(dispersion: Dispersion, symbol: sp.Expr, values: dict) -> Recognition:
    D = _real_number(sp.sympify(dispersion.augmented_dims).xreplace(values))
    if D is None or D <= 0:
        return Recognition(None, NOT_DERIVABLE + f"the radial augmentation needs D > 0 extra dimensions, "
                           f"got D = {dispersion.augmented_dims}")
    poly = sp.Poly(symbol, LAM)
    coeffs = poly.all_coeffs()
    if poly.degree() != 2 or coeffs[1] != 0 or coeffs[0].has(S):
        return Recognition(None, NOT_DERIVABLE + "the radial augmentation is derived for Poisson's symbol "
                           "A (lambda^2 - c^2 s) only (no damping, mass or other space terms)")
    space = sp.expand(coeffs[2])
    slope = space.coeff(S, 1)
    c_squared = _real_number(-slope / coeffs[0])
    if sp.expand(space - slope * S) != 0 or c_squared is None or c_squared <= 0:
        return Recognition(None, NOT_DERIVABLE + "the radial augmentation is derived for Poisson's symbol "
                           "A (lambda^2 - c^2 s) only (no damping, mass or other space terms)")
    c = c_squared**0.5
    if D == 1:
        return Recognition(FamilyConfig("cauchy", (("c", c),)),
                           f"radial augmentation with D = 1 is Poisson: f(s) = {c:.6g} sqrt(s) (Cauchy)")
    return Recognition(FamilyConfig("student_t", (("c", c), ("D", D))),
                       f"Poisson in N + D dimensions read at radius t, D = {D:.6g}: Student-t with D degrees "
                       f"of freedom and scale {c:.6g} t / sqrt(D) (PFGM++)")


def _semigroup_exponent(dispersion: Dispersion) -> sp.Expr | None:
    """f(s) with ghat = exp(-t f(s)); for higher-order PDEs after cancelling the branches the density does not
    excite (e.g. (d_t + 1)(d_t + 2)(d_t - lap) u = 0 is diffusion), checked by f being free of t."""
    if dispersion.semigroup_exponent is not None or dispersion.ghat is None:
        return dispersion.semigroup_exponent
    if dispersion.branches is None or not all(sp.sympify(b).is_polynomial(S) for b in dispersion.branches):
        return None
    candidate = sp.expand(-sp.expand_log(sp.log(sp.cancel(dispersion.ghat)), force=True) / T)
    return None if candidate.has(T) or candidate.has(sp.log) else candidate


def _semigroup_recognition(dispersion: Dispersion, values: dict) -> Recognition:
    exponent = _semigroup_exponent(dispersion)
    if exponent is None:
        if dispersion.ghat is None:
            return Recognition(None, NOT_DERIVABLE + "no closed-form Fourier kernel ghat(s, t)")
        return Recognition(None, NOT_DERIVABLE + "ghat(s, t) is not of the semigroup form exp(-t f(s)) and "
                           "matches no other family (Kac, PFGM++)")
    f = sp.expand(sp.sympify(exponent).xreplace(values))
    parts = _bernstein_parts(f)
    if isinstance(parts, str):
        return Recognition(None, NOT_DERIVABLE + parts)
    powers, nig_terms, constant = parts

    # f(0) = 0: the constant cancels the sqrt(C) of every NIG term (the mass was normalised away).
    offset = constant + sum(A * C**0.5 for A, _, C in nig_terms)
    scale = abs(constant) + sum(abs(A) * C**0.5 for A, _, C in nig_terms)
    if abs(offset) > ZERO_TOLERANCE * max(scale, 1.0):
        return Recognition(None, NOT_DERIVABLE + f"f(0) = {offset:.6g} != 0 in f(s) = {sp.sstr(f)}")

    # Group the NIG terms by m = sqrt(C/B): A sqrt(B s + C) = A sqrt(B) sqrt(s + m^2).
    nig_by_m: dict[float, float] = {}
    for A, B, C in nig_terms:
        m = (C / B) ** 0.5
        key = next((known for known in nig_by_m if abs(known - m) <= ZERO_TOLERANCE * max(m, 1.0)), m)
        nig_by_m[key] = nig_by_m.get(key, 0.0) + A * B**0.5
    components = [(p, coefficient) for p, coefficient in powers.items()] + list(nig_by_m.items())
    if not components:
        return Recognition(None, NOT_DERIVABLE + "f(s) = 0: the PDE does not spread mass in space")
    if len(components) > 1:
        return _convolution(f, powers, nig_by_m)
    if nig_by_m:
        (m, c), = nig_by_m.items()
        if c <= 0:
            return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)} has a negative coefficient "
                               "(not Bernstein)")
        return Recognition(FamilyConfig("nig", (("c", c), ("m", m))),
                           f"f(s) = {c:.6g} (sqrt(s + m^2) - m), m = {m:.6g}: normal inverse Gaussian (Yukawa)")
    (power, coefficient), = powers.items()
    if coefficient <= 0:
        return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)} has a negative coefficient "
                           "(not Bernstein: ghat grows)")
    if not (0 < power <= 1):
        return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)}: s^({power}) is not Bernstein "
                           "(power outside (0, 1]), no subordinated-Gaussian kernel")
    if power == 1:
        return Recognition(FamilyConfig("gaussian", (("kappa", coefficient),)),
                           f"f(s) = {coefficient:.6g} s: Gaussian (diffusion)")
    if power == sp.Rational(1, 2):
        return Recognition(FamilyConfig("cauchy", (("c", coefficient),)),
                           f"f(s) = {coefficient:.6g} sqrt(s): Cauchy (Poisson / PFGM)")
    alpha = float(2 * power)
    return Recognition(FamilyConfig("stable", (("kappa", coefficient), ("alpha", alpha))),
                       f"f(s) = {coefficient:.6g} s^({power}): isotropic {alpha:.6g}-stable (fractional diffusion)")


def _convolution(f: sp.Expr, powers: dict, nig_by_m: dict) -> Recognition:
    """f = kappa s + c sqrt(s) or kappa s + c (sqrt(s + m^2) - m): the heat kernel convolved with a Cauchy or NIG
    kernel (heat_nig: V = 2 kappa t + X, independent draws). Other sums have no family yet, said precisely."""
    kappa = powers.get(sp.Integer(1))
    others = {p: c for p, c in powers.items() if p != 1}
    negative = [c for c in list(powers.values()) + list(nig_by_m.values()) if c <= 0]
    if negative:
        return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)} has a non-positive coefficient")
    if kappa is not None and len(others) + len(nig_by_m) == 1 and \
            (set(others) == {sp.Rational(1, 2)} or len(nig_by_m) == 1):
        if nig_by_m:
            (m, c), = nig_by_m.items()
        else:
            m, c = 0.0, others[sp.Rational(1, 2)]
        family = FamilyConfig("heat_nig", (("kappa", kappa), ("c", c), ("m", m)))
        what = "Cauchy" if m == 0 else f"NIG (m = {m:.6g})"
        return Recognition(family, f"f(s) = {kappa:.6g} s + {c:.6g} (sqrt(s + m^2) - m), m = {m:.6g}: heat kernel "
                           f"convolved with {what} (V = 2 kappa t + X, independent draws)")
    names = [f"s^({sp.sstr(p)})" for p in powers] + [f"sqrt(s + {m * m:.6g})" for m in nig_by_m]
    return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)} sums the subordinators {', '.join(names)}; "
                       "only heat plus one Cauchy or NIG term (heat_nig) has a runtime: a stable component "
                       "(s^beta, beta != 1/2) or two non-Gaussian components need the law of a sum of random "
                       "variances, not implemented yet")


def _bernstein_parts(f: sp.Expr):
    """Split f into {power p: coefficient of s^p}, [(A, B, C) of A sqrt(B s + C)] and a constant.

    Returns an explanation string instead when a term is of none of these shapes.
    """
    powers: dict[sp.Rational, float] = {}
    nig_terms: list[tuple[float, float, float]] = []
    constant = 0.0
    for term in sp.Add.make_args(f):
        coefficient, dependent = term.as_independent(S, as_Add=False)
        value = _real_number(coefficient)
        if value is None:
            return f"f(s) = {sp.sstr(f)} has a non-real coefficient {coefficient} (oscillation, not a subordinator)"
        if dependent == 1:
            constant += value
            continue
        base, power = dependent.as_base_exp()
        if base == S and power.is_Rational:
            powers[power] = powers.get(power, 0.0) + value
            continue
        if power == sp.Rational(1, 2) and base.is_polynomial(S) and sp.degree(base, S) == 1:
            B = _real_number(base.coeff(S, 1))
            C = _real_number(base.coeff(S, 0))
            if B is not None and C is not None and B > 0 and C > 0:
                nig_terms.append((value, B, C))
                continue
        return f"the term {sp.sstr(term)} of f(s) = {sp.sstr(f)} is not kappa s^p or A sqrt(B s + C)"
    powers = {p: v for p, v in powers.items() if abs(v) > ZERO_TOLERANCE * max(abs(x) for x in powers.values())}
    return powers, nig_terms, constant


def _real_number(expr) -> float | None:
    """float(expr) if expr is a real number (imaginary part zero up to rounding), else None."""
    expr = sp.sympify(expr)
    if not expr.is_number:
        return None
    value = complex(sp.N(expr, 30))
    if abs(value.imag) > ZERO_TOLERANCE * max(abs(value.real), 1.0):
        return None
    return value.real


__all__ = ["NOT_DERIVABLE", "Recognition", "recognise", "recognise_family"]

"""Recognise the kernel family of a PDE from its dispersion analysis (the mathematics, never the names).

The recogniser reads a ``Shape`` off the symbol (pde2gen.families.declaration) by one of three routes, tried in
this order (physics.md §3, §4), and asks every family of the registry whether the shape is its own:

1. telegraph: a symbol  A (lambda^2 + 2 a lambda + c^2 s)  with a, c > 0, in the product construction or in
   one space dimension (the Kac process); with a mass term, A (lambda^2 + 2 a lambda + m^2 + c^2 s) with
   w = sqrt(a^2 - m^2) > 0 (damped Klein-Gordon), whose density p = u_t + (a + w) u is e^(-(a - w) t) times the
   Kac law of rate w (the analysis' uniform split, physics.md §4.5d): the same family with a -> w;
2. radial augmentation: Poisson A (lambda^2 - c^2 s) with D extra dimensions read at radius t (PFGM++);
3. semigroup: ghat = exp(-t f(s)), f decomposed term by term into kappa s^p and A sqrt(B s + C) - A sqrt(C)
   = c (sqrt(s + m^2) - m) parts. Terms of one kind are summed first (u_t = lap(u) + 2 lap(u) has f = 3 s);
   branches the density does not excite are cancelled first ((d_t + 1)(d_t + 2)(d_t - lap) u = 0 is
   diffusion); f must vanish at s = 0, which is what normalising the mass (e.g. damped diffusion's e^{-m^2 t})
   leaves; every coefficient must be positive and a single power must lie in (0, 1] (Bernstein). A sum of
   subordinators is the convolution of their kernels (V = V_1 + V_2, independent draws) when a family says so.

No family matching a shape is "not derivable yet", said precisely. Families need numbers: parameters without
values are reported, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..analysis.dispersion import EVOLUTION, Dispersion, uniform_rate, with_semigroup_exponent
from ..families import FAMILIES, FamilyConfig, Shape
from ..spec.spec import LAM, S

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
    if damped_kg is not None and dispersion.problem_type == EVOLUTION:
        a, _, _, w_squared = damped_kg
        if spec.construction == "product" or spec.dim == 1 or not _real_rate(a, w_squared):
            how = "product construction of" if spec.construction == "product" else "one-dimensional"
            return _damped_klein_gordon(dispersion, *damped_kg, how)
        return Recognition(None, NOT_DERIVABLE + f"the isotropic damped Klein-Gordon kernel in N = {spec.dim} "
                           "dimensions is not a positive density; use the product construction")
    if spec.construction == "product":
        if telegraph is not None and dispersion.problem_type == EVOLUTION:
            return _telegraph(*telegraph, "product construction of the telegraph symbol")
        semigroup = _semigroup_recognition(dispersion, values)
        if semigroup.family is not None and semigroup.family.info.product_is_itself:
            # e.g. a product of independent 1-D Gaussians is the isotropic Gaussian
            return Recognition(semigroup.family, semigroup.reason + "; the product of 1-D Gaussians is isotropic")
        return Recognition(None, NOT_DERIVABLE + "the product construction is derived for the telegraph "
                           "symbol lambda^2 + 2 a lambda + c^2 s (Kac) and for diffusion only")

    if dispersion.augmented_dims is not None:
        return _radial_augmentation(dispersion, symbol, values)

    if telegraph is not None and dispersion.problem_type == EVOLUTION:
        if spec.dim == 1:
            return _telegraph(*telegraph, "one-dimensional telegraph symbol")
        return Recognition(None, NOT_DERIVABLE + f"the isotropic telegraph kernel in N = {spec.dim} dimensions "
                           "is not a positive density; use the product construction (Kac)")

    return _semigroup_recognition(dispersion, values)


# ---------------------------------------------------------------------------------------------- routes
def _missing_parameters(dispersion: Dispersion, values: dict) -> list[str]:
    free = dispersion.symbol.xreplace(values).free_symbols - {LAM, S}
    if dispersion.augmented_dims is not None:
        free |= sp.sympify(dispersion.augmented_dims).xreplace(values).free_symbols
    return sorted(str(symbol) for symbol in free)


def _match(shape: Shape) -> Recognition | None:
    """The family of the registry whose declaration claims ``shape`` (at most one may), or None."""
    matches = []
    for info in FAMILIES.values():
        found = info.recognise(shape)
        if found is not None:
            params, reason = found
            matches.append(Recognition(FamilyConfig(info.name, tuple((n, params[n]) for n in info.parameters)),
                                       reason))
    if len(matches) > 1:
        raise AssertionError(f"families {', '.join(m.family.name for m in matches)} all claim the shape {shape}")
    return matches[0] if matches else None


def _telegraph(a: float, c: float, how: str) -> Recognition:
    found = _match(Shape("telegraph", a=a, c=c, context=how))
    return found or Recognition(None, NOT_DERIVABLE + f"{how} (a = {a:.6g}, c = {c:.6g}): no family takes it")


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


def _damped_klein_gordon_parameters(symbol: sp.Expr) -> tuple[float, float, float, float] | None:
    """(a, m^2, c, w^2) if symbol = A (lambda^2 + 2 a lambda + m^2 + c^2 s) with real a, m^2, c > 0 and not the
    telegraph or the wave (m^2 = 0 with a >= 0), else None; w^2 = a^2 - m^2 from the exact coefficients (in
    floats it cancels when w << a). a <= 0 (anti-damping) is included: the dominant root decides the split, not
    the sign of a."""
    poly = sp.Poly(symbol, LAM)
    if poly.degree() != 2:
        return None
    lead, damping, space = poly.all_coeffs()
    if lead.has(S) or damping.has(S) or not lead.is_number:
        return None
    space = sp.expand(space)
    c_squared_times_lead = space.coeff(S, 1)
    mass_term = sp.expand(space - c_squared_times_lead * S)
    if mass_term.has(S) or not c_squared_times_lead.is_number:
        return None
    a = _real_number(damping / (2 * lead))
    m_squared = _real_number(mass_term / lead)
    c_squared = _real_number(c_squared_times_lead / lead)
    if a is None or m_squared is None or c_squared is None or c_squared <= 0:
        return None
    if m_squared == 0 and a >= 0:
        return None  # the telegraph (a > 0) and the wave (a = 0) have their own routes
    w_squared = _real_number(sp.expand((damping / (2 * lead)) ** 2 - mass_term / lead))
    return a, m_squared, c_squared**0.5, w_squared


def _damped_klein_gordon(dispersion: Dispersion, a: float, m_squared: float, c: float, w_squared: float,
                         how: str) -> Recognition:
    """The Kac family with rate w = sqrt(a^2 - m^2) where the analysis split the density uniformly
    (p = u_t + (a + w) u, R = -(a - w) p); a precise refusal where w^2 <= 0."""
    if not _real_rate(a, w_squared):
        return Recognition(None, NOT_DERIVABLE + _damped_klein_gordon_text(a, m_squared, c, w_squared))
    values = dispersion.spec.parameter_values()
    rate = uniform_rate(sp.sympify(dispersion.reaction).xreplace(values), dispersion.density_factor.xreplace(values))
    if rate is None:
        return Recognition(None, NOT_DERIVABLE + f"damped Klein-Gordon (a = {a:.6g}, m^2 = {m_squared:.6g}): the "
                           "analysis did not split its density with a uniform reaction")
    w = w_squared**0.5
    death = -float(sp.N(rate, 30))  # a - w, from the analysis' split (R = -(a - w) p)
    if abs(death - (a - w)) > 1e-9 * max(abs(a), w, 1.0):
        raise AssertionError(f"the analysis' uniform rate {-death} is not -(a - w) = {w - a}")
    kind = f"uniform death rate a - w = {death:.6g}" if death >= 0 else f"uniform birth rate w - a = {-death:.6g}"
    context = (f"{how} damped Klein-Gordon u_tt + 2a u_t + m^2 u = c^2 u_xx (a = {a:.6g}, m^2 = {m_squared:.6g}, "
               f"c = {c:.6g}): w = sqrt(a^2 - m^2) = {w:.6g}, density p = u_t + (a + w) u = e^(-(a - w) t) x "
               f"(the Kac law of rate w), {kind}; normalised, it is the kernel of")
    found = _match(Shape("telegraph", a=w, c=c, context=context))
    return found or Recognition(None, NOT_DERIVABLE + f"{context} the Kac process: no family takes it")


def _real_rate(a: float, w_squared: float) -> bool:
    """w^2 = a^2 - m^2 > 0 (w^2 from 30-digit arithmetic; zero to the recogniser's tolerance is zero)."""
    return w_squared > ZERO_TOLERANCE**2 * max(a * a, 1.0)


def _damped_klein_gordon_text(a: float, m_squared: float, c: float, w_squared: float) -> str:
    """Why a damped Klein-Gordon symbol with w^2 = a^2 - m^2 <= 0 has no family."""
    what = f"damped Klein-Gordon u_tt + 2a u_t + m^2 u = c^2 u_xx (a = {a:.6g}, m^2 = {m_squared:.6g}, c = {c:.6g})"
    if w_squared < 0:
        return (f"{what}: m^2 > a^2, its mass oscillates (w = sqrt(a^2 - m^2) is imaginary), so there is no "
                "density to sample")
    return (f"{what}: m^2 = a^2, so w = sqrt(a^2 - m^2) = 0 and the normalised kernel is the Kac law of rate 0, "
            "the pure wave (two atoms at +-c t), which does not smooth (C2)")


# Below this D the Student-t's delta limit is too slow: 1 - ghat(k = 10, sigma = 1e-9) > 1e-3 from D = 0.363
MIN_AUGMENTED_DIMS = 0.5


def _radial_augmentation(dispersion: Dispersion, symbol: sp.Expr, values: dict) -> Recognition:
    D = _real_number(sp.sympify(dispersion.augmented_dims).xreplace(values))
    if D is None or D <= 0:
        return Recognition(None, NOT_DERIVABLE + f"the radial augmentation needs D > 0 extra dimensions, "
                           f"got D = {dispersion.augmented_dims}")
    if D < MIN_AUGMENTED_DIMS:
        return Recognition(None, NOT_DERIVABLE + f"PFGM++ with D = {D:.6g} < 1/2 augmented dimensions: its "
                           "Student-t kernel reaches the data only as |1 - ghat| ~ (k sigma)^D (0.08 at sigma = "
                           "1e-9 for D = 0.128), so no noise level of the grid reproduces them; use D >= 1/2 "
                           "(D = 1 is PFGM)")
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
    found = _match(Shape("radial_augmentation", c=c, D=D))
    return found or Recognition(None, NOT_DERIVABLE + f"radial augmentation with c = {c:.6g}, D = {D:.6g}: no "
                                "family takes it")


def _semigroup_recognition(dispersion: Dispersion, values: dict) -> Recognition:
    # f(s) with ghat = exp(-t f(s)); for higher-order PDEs after cancelling the branches the density does not
    # excite (pde2gen.analysis.dispersion.with_semigroup_exponent, the derivation the analysis uses too)
    exponent = with_semigroup_exponent(dispersion).semigroup_exponent
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
        negative = [c for c in list(powers.values()) + list(nig_by_m.values()) if c <= 0]
        if negative:
            return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)} has a non-positive coefficient")
        shape = Shape("semigroup", powers=powers, nig=nig_by_m)
        return _match(shape) or _unknown_sum(f, shape)
    if nig_by_m:
        (m, c), = nig_by_m.items()
        if c <= 0:
            return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)} has a negative coefficient "
                               "(not Bernstein)")
    else:
        (power, coefficient), = powers.items()
        if coefficient <= 0:
            return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)} has a negative coefficient "
                               "(not Bernstein: ghat grows)")
        if not (0 < power <= 1):
            return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)}: s^({power}) is not Bernstein "
                               "(power outside (0, 1]), no subordinated-Gaussian kernel")
    found = _match(Shape("semigroup", powers=powers, nig=nig_by_m))
    return found or Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)}: no family takes this subordinator")


def _unknown_sum(f: sp.Expr, shape: Shape) -> Recognition:
    """A sum of subordinators that no family takes, said precisely (a family's own limits, where one says why)."""
    names = [f"s^({sp.sstr(p)})" for p in shape.powers] + [f"sqrt(s + {m * m:.6g})" for m in shape.nig]
    why = next((text for text in (info.refusal(shape) for info in FAMILIES.values()) if text), None)
    return Recognition(None, NOT_DERIVABLE + f"f(s) = {sp.sstr(f)} sums the subordinators {', '.join(names)}; "
                       "no family of pde2gen takes this sum" + (f": {why}" if why else ""))


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

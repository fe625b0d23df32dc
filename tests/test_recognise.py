"""Family recognition from the mathematics of the symbol: rescaled coefficients, split terms, damped and
augmented problems, and the refusals (with their reasons). The PDE builders here are shared by
tests/test_derive.py and tests/test_reference.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from pde2gen.analysis.dispersion import analyse_dispersion
from pde2gen.derive import reference
from pde2gen.derive.recognise import NOT_DERIVABLE, recognise, recognise_family
from pde2gen.spec.spec import Parameter, PDESpec, Term

R = sp.Rational


def symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, positive=True)


def spec(*terms, dim: int = 2, construction: str = "isotropic", **values) -> PDESpec:
    """PDESpec from (coefficient, t_order, space_power[, t_power]) tuples; keyword values name parameters."""
    parameters = tuple(Parameter(name, symbol(name), None if v is None else sp.sympify(v)) for name, v in values.items())
    built = tuple(Term(sp.sympify(c), j, sp.nsimplify(b), *rest) for c, j, b, *rest in terms)
    return PDESpec(built, parameters, dim=dim, construction=construction)


# u_t = kappa lap(u)  <->  u_t + kappa (-lap) u = 0
def heat(kappa=1, dim=2):
    return spec((1, 1, 0), (kappa, 0, 1), dim=dim)


def poisson(lead=-1, dim=2):
    """lead u_tt - (-lap) u ... = 0: with lead = -1 this is u_tt + lap(u) = 0 (PFGM)."""
    return spec((lead, 2, 0), (1 if lead < 0 else -1, 0, 1), dim=dim)


def yukawa(m=2, dim=2):
    return spec((-1, 2, 0), (1, 0, 1), (symbol("m") ** 2, 0, 0), dim=dim, m=m)


def fractional(kappa=2, alpha="3/2", dim=2):
    return spec((1, 1, 0), (kappa, 0, sp.nsimplify(alpha) / 2), dim=dim)


def damped(kappa=3, rate=2, dim=2):
    """u_t = kappa lap(u) - rate u."""
    return spec((1, 1, 0), (kappa, 0, 1), (rate, 0, 0), dim=dim)


def telegraph(a=9, c=3, dim=1, construction="isotropic"):
    return spec((1, 2, 0), (2 * symbol("a"), 1, 0), (symbol("c") ** 2, 0, 1), dim=dim, construction=construction,
                a=a, c=c)


def pfgmpp(D=128, dim=2, lead=-1, speed2=1):
    """lead (u_rr + (D-1)/r u_r) - lead speed2 (-lap) u = 0, written as the catalog writes PFGM++."""
    return spec((lead, 2, 0), (lead * (symbol("D") - 1), 1, 0, -1), (-lead * speed2, 0, 1), dim=dim, D=D)


def family_of(pde):
    return recognise_family(analyse_dispersion(pde))


def params_of(pde):
    family = family_of(pde)
    return None if family is None else (family.name, family.params)


# ---------------------------------------------------------------------------------------------- recognised
@pytest.mark.parametrize("pde, name, expected", [
    (heat(1), "gaussian", {"kappa": 1.0}),
    (heat(3), "gaussian", {"kappa": 3.0}),  # u_t = 3 lap(u)
    (spec((1, 1, 0), (1, 0, 1), (2, 0, 1)), "gaussian", {"kappa": 3.0}),  # u_t = lap(u) + 2 lap(u)
    (spec((2, 1, 0), (6, 0, 1)), "gaussian", {"kappa": 3.0}),  # 2 u_t = 6 lap(u)
    (damped(3, 2), "gaussian", {"kappa": 3.0}),  # u_t = 3 lap(u) - 2 u: the mass e^{-2t} is normalised away
    (spec((1, 1, 0), (1, 0, 1), (symbol("m") ** 2, 0, 0), m=R(1, 2)), "gaussian", {"kappa": 1.0}),
    (poisson(-1), "cauchy", {"c": 1.0}),  # u_tt + lap(u) = 0 (PFGM)
    (poisson(4), "cauchy", {"c": 0.5}),  # 4 u_tt + lap(u) = 0
    (fractional(2, 1), "cauchy", {"c": 2.0}),  # alpha = 1 collapses to Cauchy
    (fractional(2, 2), "gaussian", {"kappa": 2.0}),  # alpha = 2 collapses to the heat kernel
    (fractional(2, R(3, 2)), "stable", {"kappa": 2.0, "alpha": 1.5}),
    (fractional(R(1, 2), R(1, 3)), "stable", {"kappa": 0.5, "alpha": 1 / 3}),
    (yukawa(2), "nig", {"c": 1.0, "m": 2.0}),
    # -2 u_tt + 3 (-lap) u + m^2 u = 0: lambda = -sqrt((3 s + m^2)/2) -> c = sqrt(3/2), m_nig = m / sqrt(3)
    (spec((-2, 2, 0), (3, 0, 1), (symbol("m") ** 2, 0, 0), m=R(7, 10)), "nig",
     {"c": np.sqrt(1.5), "m": 0.7 / np.sqrt(3.0)}),
    (telegraph(9, 3, dim=1), "kac_product", {"a": 9.0, "c": 3.0}),
    (telegraph(2, 5, dim=4, construction="product"), "kac_product", {"a": 2.0, "c": 5.0}),
    (spec((3, 2, 0), (12, 1, 0), (27, 0, 1), dim=1), "kac_product", {"a": 2.0, "c": 3.0}),  # 3(u_tt + 4 u_t) = 27 u_xx
    (heat(3, dim=4).with_options(construction="product"), "gaussian", {"kappa": 3.0}),
    (pfgmpp(128), "student_t", {"c": 1.0, "D": 128.0}),
    (pfgmpp(4, lead=-4, speed2=R(9, 4)), "student_t", {"c": 1.5, "D": 4.0}),
    (pfgmpp(1), "cauchy", {"c": 1.0}),  # D = 1 is Poisson
    # (d_t + 1)(d_t + 2)(d_t - lap) u = 0: the density excites only the diffusive branch
    (spec((1, 3, 0), (3, 2, 0), (1, 2, 1), (2, 1, 0), (3, 1, 1), (2, 0, 1)), "gaussian", {"kappa": 1.0}),
])
def test_recognised_family_and_parameters(pde, name, expected):
    family = family_of(pde)
    assert family is not None, recognise(analyse_dispersion(pde)).reason
    assert family.name == name
    assert family.params.keys() == expected.keys()
    for key, value in expected.items():
        assert family.params[key] == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("pde", [heat(3), poisson(4), yukawa(2), fractional(2, R(3, 2)), damped(3, 2),
                                 telegraph(9, 3), pfgmpp(16), spec((-2, 2, 0), (3, 0, 1), (R(49, 100), 0, 0))])
def test_recognised_characteristic_function_is_the_pdes_ghat(pde):
    """The tie between family and PDE: ghat of the dispersion core (numeric) = the family's E exp(i k.d)."""
    dispersion = analyse_dispersion(pde)
    family = recognise_family(dispersion)
    k = np.logspace(-2, 1.5, 30)
    for t in (0.05, 0.7, 4.0):
        vectors = np.zeros((len(k), pde.dim))
        vectors[:, 0] = k
        pde_ghat = dispersion.numeric_ghat(k**2, t)
        assert np.max(np.abs(reference.characteristic_function(family, vectors, t) - pde_ghat)) < 1e-10


def test_a_perturbed_parameter_breaks_the_tie():
    dispersion = analyse_dispersion(heat(3))
    family = recognise_family(dispersion)
    wrong = type(family)("gaussian", (("kappa", 3.0 * (1 + 1e-3)),))
    k = np.array([[1.0, 0.0]])
    right_error = abs(reference.characteristic_function(family, k, 1.0)[0] - dispersion.numeric_ghat(np.array([1.0]), 1.0)[0])
    wrong_error = abs(reference.characteristic_function(wrong, k, 1.0)[0] - dispersion.numeric_ghat(np.array([1.0]), 1.0)[0])
    assert right_error < 1e-14 and wrong_error > 1e-5


# ---------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("pde, fragment", [
    (spec((1, 1, 0), (1, 0, 2)), "not Bernstein"),  # hyperdiffusion u_t = -lap^2 u
    (spec((sp.I, 1, 0), (1, 0, 1)), "non-real coefficient"),  # Schrodinger
    (spec((1, 1, 0), (3, 0, R(31, 32)), (1, 0, R(1, 2))), "sums the subordinators"),  # c s^(31/32) + sqrt(s): beyond the tables
    (spec((1, 1, 0), (-1, 0, 1)), "negative coefficient"),  # backward heat
    (spec((1, 2, 0), (1, 0, 1), dim=1), "not of the semigroup form"),  # wave
    (telegraph(9, 3, dim=3), "not a positive density"),  # isotropic telegraph in N = 3
    (spec((1, 2, 0), (1, 1, 1), (1, 0, 1), dim=1), "not of the semigroup form"),  # viscous wave
    (spec((1, 1, 0), (1, 0, 1), (symbol("m") ** 2, 0, 0), m=None), "parameters without values: m"),
    (spec((-1, 2, 0), (-(symbol("D") - 1), 1, 0, -1), (1, 0, 1), (1, 0, 0), D=8), "Poisson's symbol"),
    (spec((1, 2, 0), (2, 1, 0), (1, 0, R(1, 2)), dim=3, construction="product"), "product construction"),
])
def test_refused_with_a_reason(pde, fragment):
    recognition = recognise(analyse_dispersion(pde))
    assert recognition.family is None
    assert recognition.reason.startswith(NOT_DERIVABLE)
    assert fragment in recognition.reason

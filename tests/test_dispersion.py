"""The dispersion core (pde2gen/analysis/dispersion.py): branches, problem types, density split, kernel transforms.

Specs are built directly from pde2gen.spec.spec (no parser), and every statement is checked against numbers:
exact roots at random points, closed-form kernels of physics.md (§1, §4.2, §4.5), mpmath references.
"""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from pde2gen.analysis.dispersion import AUGMENTED, EVOLUTION, S_GRID, analyse_dispersion, student_t_ghat
from pde2gen.spec.spec import LAM, Parameter, PDESpec, S, T, Term

RNG = np.random.default_rng(20240611)


def parameter(name: str, value) -> tuple[sp.Symbol, Parameter]:
    symbol = sp.Symbol(name, positive=True)
    return symbol, Parameter(name, symbol, None if value is None else sp.nsimplify(value))


def make_spec(terms, parameters=(), dim=1, **options) -> PDESpec:
    return PDESpec(terms=tuple(terms), parameters=tuple(parameters), dim=dim, **options)


def catalog_specs(a=1, c=1, m=1, gamma=1, D=3, dim=1) -> dict[str, PDESpec]:
    """The PDEs of the verdict table (physics.md §3), written term by term: sum of terms = 0."""
    a_, Pa = parameter("a", a)
    c_, Pc = parameter("c", c)
    m_, Pm = parameter("m", m)
    g_, Pg = parameter("gamma", gamma)
    D_, PD = parameter("D", D)
    return {
        "diffusion": make_spec([Term(1, 1), Term(1, 0, 1)], dim=dim),
        "poisson": make_spec([Term(1, 2), Term(-1, 0, 1)], dim=dim),
        "yukawa": make_spec([Term(1, 2), Term(-1, 0, 1), Term(-m_**2, 0)], [Pm], dim=dim),
        "wave": make_spec([Term(1, 2), Term(c_**2, 0, 1)], [Pc], dim=dim),
        "telegraph": make_spec([Term(1, 2), Term(2 * a_, 1), Term(c_**2, 0, 1)], [Pa, Pc], dim=dim),
        "viscous_wave": make_spec([Term(1, 2), Term(g_, 1, 1), Term(c_**2, 0, 1)], [Pg, Pc], dim=dim),
        "klein_gordon": make_spec([Term(1, 2), Term(1, 0, 1), Term(m_**2, 0)], [Pm], dim=dim),
        "helmholtz": make_spec([Term(1, 2), Term(-1, 0, 1), Term(m_**2, 0)], [Pm], dim=dim),
        "schrodinger": make_spec([Term(sp.I, 1), Term(-1, 0, 1)], dim=dim),  # i u_t = -lap u
        "hyperdiffusion": make_spec([Term(1, 1), Term(1, 0, 2)], dim=dim),
        "fractional": make_spec([Term(1, 1), Term(1, 0, sp.Rational(3, 4))], dim=dim),  # alpha = 3/2
        "damped_diffusion": make_spec([Term(1, 1), Term(1, 0, 1), Term(m_**2, 0)], [Pm], dim=dim),
        "pfgmpp": make_spec([Term(1, 2), Term(-1, 0, 1), Term(D_ - 1, 1, 0, -1)], [PD], dim=dim),
        "backward_heat": make_spec([Term(1, 1), Term(-1, 0, 1)], dim=dim),
    }


SPECS = catalog_specs()


# ---------------------------------------------------------------------------------------------- branches
@pytest.mark.parametrize("name", ["telegraph", "viscous_wave", "klein_gordon", "wave", "yukawa", "helmholtz",
                                  "hyperdiffusion", "fractional"])
def test_numeric_branches_are_the_roots_of_the_symbol(name):
    disp = analyse_dispersion(SPECS[name])
    s = np.concatenate([RNG.uniform(0, 5, 20), [1.0, 0.0]])  # includes the telegraph's double root s = 1
    roots = disp.numeric_branches(s)
    values = {p.symbol: p.value for p in disp.spec.parameters}
    P = sp.lambdify((LAM, S), disp.symbol.xreplace(values), "numpy")
    residual = np.abs(P(roots, s[:, None]))
    assert np.all(residual < 1e-8 * (1 + np.abs(roots) ** disp.t_order)), residual.max()
    # sorted by decreasing real part, and equal (as a set) to SymPy's closed-form branches
    assert np.all(np.diff(roots.real, axis=1) <= 1e-12)
    exact = sp.lambdify(S, [b.xreplace(values) for b in disp.branches], "numpy")
    for si, row in zip(s, roots):
        expected = np.array([complex(v) for v in np.broadcast_arrays(*exact(si + 0j))])
        for r in row:
            assert np.min(np.abs(expected - r)) < 1e-7 * (1 + abs(r))


def test_problem_types_and_branch_choice():
    assert analyse_dispersion(SPECS["wave"]).problem_type == EVOLUTION
    assert analyse_dispersion(SPECS["telegraph"]).problem_type == EVOLUTION
    assert analyse_dispersion(SPECS["klein_gordon"]).problem_type == EVOLUTION
    for name in ("poisson", "yukawa", "helmholtz", "pfgmpp"):
        assert analyse_dispersion(SPECS[name]).problem_type == AUGMENTED, name
    # A user override wins.
    forced = analyse_dispersion(SPECS["poisson"].with_options(problem_type=EVOLUTION))
    assert forced.problem_type == EVOLUTION and forced.problem_type_reason == "set by the user"


# ---------------------------------------------------------------------------------------------- density split
@pytest.mark.parametrize("name, p, reaction", [
    ("diffusion", "1", "0"),
    ("poisson", "-lam", "0"),
    ("yukawa", "-lam", "-m**2"),
    ("telegraph", "2*a + lam", "0"),
    ("viscous_wave", "lam", "0"),
    ("klein_gordon", "lam", "-m**2"),
    ("damped_diffusion", "1", "-m**2"),
])
def test_density_split_matches_the_table(name, p, reaction):
    """physics.md §1 table: p = q(d_t) phi and R = reaction * phi, sign chosen so that p starts positive."""
    disp = analyse_dispersion(SPECS[name])
    symbols = {str(s): s for s in disp.symbol.free_symbols} | {"lam": LAM}
    assert sp.expand(disp.density_factor - sp.sympify(p, locals=symbols)) == 0
    assert sp.expand(disp.reaction - sp.sympify(reaction, locals=symbols)) == 0


# ---------------------------------------------------------------------------------------------- kernels
def _kac_transform(s, t, a, c):
    """physics.md §4.5: e^{-at} [cosh(t W) + a sinh(t W) / W], W = sqrt(a^2 - c^2 s), as an entire function."""
    w = np.sqrt((a * a - c * c * np.asarray(s, float)).astype(complex))
    sinc = np.where(np.abs(w) < 1e-9, t, np.sinh(t * w) / np.where(np.abs(w) < 1e-9, 1.0, w))
    return (np.exp(-a * t) * (np.cosh(t * w) + a * sinc)).real


@pytest.mark.parametrize("a, c", [(1.0, 1.0), (9.0, 3.0), (0.5, 2.0)])
def test_telegraph_transform_is_kac_including_the_double_root(a, c):
    disp = analyse_dispersion(catalog_specs(a=a, c=c)["telegraph"])
    s = np.concatenate([RNG.uniform(0, 4 * a * a / c**2, 30), [a * a / c**2, a * a / c**2 * (1 + 1e-9)]])
    for t in (0.01, 0.7, 5.0):
        numeric = disp.numeric_p_hat(s, t)
        assert np.max(np.abs(numeric.imag)) < 1e-12
        np.testing.assert_allclose(numeric.real, _kac_transform(s, t, a, c), rtol=1e-9, atol=1e-12)
    assert disp.mass == 1


@pytest.mark.parametrize("name", ["telegraph", "viscous_wave", "klein_gordon", "wave"])
def test_two_branch_formula_agrees_with_the_matrix_exponential(name):
    disp = analyse_dispersion(SPECS[name])
    s = np.concatenate([RNG.uniform(0, 10, 25), [0.0]])
    for t in (0.05, 1.3, 6.0):
        fast = disp.numeric_p_hat(s, t)
        reference = disp._expm_p_hat(s, t, disp.numeric_coefficients(s))
        np.testing.assert_allclose(fast, reference, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name, mass", [
    ("diffusion", lambda t: 1.0),
    ("poisson", lambda t: 0.5),  # half the flux goes downward (physics.md §1, type A)
    ("yukawa", lambda t: 0.5 * math.exp(-t)),
    ("klein_gordon", lambda t: math.cos(t)),
    ("damped_diffusion", lambda t: math.exp(-t)),
    ("telegraph", lambda t: 1.0),
])
def test_mass_closed_forms(name, mass):
    disp = analyse_dispersion(SPECS[name])
    for t in (0.1, 1.0, 2.5):
        assert abs(complex(sp.N(disp.mass.subs(T, t).xreplace(disp.spec.parameter_values()))) - mass(t)) < 1e-12
        assert abs(disp.numeric_mass(t) - mass(t)) < 1e-10


@pytest.mark.parametrize("name, exponent", [
    ("diffusion", "s"),
    ("poisson", "sqrt(s)"),
    ("yukawa", "sqrt(s + m**2) - m"),
    ("fractional", "s**(3/4)"),
    ("damped_diffusion", "s"),
    ("hyperdiffusion", "s**2"),
])
def test_semigroup_exponents(name, exponent):
    disp = analyse_dispersion(SPECS[name])
    m = sp.Symbol("m", positive=True)
    expected = sp.sympify(exponent, locals={"s": S, "m": m})
    f = disp.semigroup_exponent
    for s_value in RNG.uniform(0.01, 10, 5):
        diff = (f - expected).xreplace({S: sp.Float(s_value), m: 1})
        assert abs(complex(sp.N(diff))) < 1e-12
    # and it is exact: ghat(s, t) = exp(-t f(s)) numerically
    s = RNG.uniform(0, 10, 10)
    f_numeric = sp.lambdify(S, f.xreplace(disp.spec.parameter_values()), "numpy")
    np.testing.assert_allclose(disp.numeric_ghat(s, 0.8), np.exp(-0.8 * f_numeric(s)), rtol=1e-12)


def test_augmented_kernels_are_the_closed_forms():
    """physics.md §4.2: Poisson ghat = e^{-tk} (Cauchy), Yukawa e^{t(m - sqrt(k^2+m^2))}."""
    s = RNG.uniform(0, 20, 40)
    t = 1.7
    poisson = analyse_dispersion(SPECS["poisson"])
    np.testing.assert_allclose(poisson.numeric_ghat(s, t), np.exp(-t * np.sqrt(s)), rtol=1e-12)
    yukawa = analyse_dispersion(catalog_specs(m=2.0)["yukawa"])
    np.testing.assert_allclose(yukawa.numeric_ghat(s, t), np.exp(t * (2.0 - np.sqrt(s + 4.0))), rtol=1e-12)


@pytest.mark.parametrize("nu", [0.5, 1.0, 3.0, 64.0, 1024.0])
def test_student_t_ghat_against_mpmath(nu):
    """2^(1-nu) u^nu K_nu(u) / Gamma(nu), including where scipy's kve overflows (small u, large nu)."""
    u = np.array([1e-8, 1e-3, 0.3, 1.0, 10.0, 40.0])
    mp.mp.dps = 30
    reference = []
    for x in u:
        integrand = lambda y, x=x: mp.exp((nu - 1) * mp.log(y) - y - mp.mpf(x) ** 2 / (4 * y) - mp.loggamma(nu))
        reference.append(float(mp.quad(integrand, [0, nu / 2, nu, 2 * nu, mp.inf])))
    np.testing.assert_allclose(student_t_ghat(nu, u), reference, rtol=1e-9, atol=1e-12)
    assert student_t_ghat(nu, np.array([0.0]))[0] == 1.0


@pytest.mark.parametrize("D", [2048.0, 30000.0])
def test_student_t_ghat_keeps_its_digits_at_large_D(D):
    """Where kve overflows (large order), the Debye form sums terms of size nu log nu; cancelled by hand it holds
    1e-12 relative at u = (0.7 .. 8) sqrt(D), where ghat goes from 0.8 to 1e-14 (the floats summed left 2e-11)."""
    nu, u = D / 2, np.array([0.7, 3.0, 8.0]) * math.sqrt(D)
    with mp.workdps(40):
        exact = [float(mp.exp((1 - nu) * mp.log(2) + nu * mp.log(x) + mp.log(mp.besselk(nu, x)) - mp.loggamma(nu)))
                 for x in u]
    np.testing.assert_allclose(student_t_ghat(nu, u), exact, rtol=1e-12, atol=0)


def test_pfgmpp_numeric_kernel_is_finite_on_the_whole_grid():
    disp = analyse_dispersion(catalog_specs(D=2048)["pfgmpp"])
    g = disp.numeric_ghat(S_GRID, 1.0)
    assert np.all(np.isfinite(g)) and np.all(np.diff(g.real) <= 1e-10) and abs(g[0] - 1) < 1e-6


def test_growth_rates():
    """lambda*(k) on the carrying branches (physics.md C2)."""
    k = np.array([0.5, 1.0, 3.0])
    s = k**2
    assert np.allclose(analyse_dispersion(SPECS["wave"]).numeric_growth(s), 0.0, atol=1e-12)
    telegraph = analyse_dispersion(catalog_specs(a=1, c=1)["telegraph"]).numeric_growth(s)
    np.testing.assert_allclose(telegraph, [-1 + math.sqrt(0.75), -1.0, -1.0], atol=1e-8)
    yukawa = analyse_dispersion(SPECS["yukawa"]).numeric_growth(s)
    np.testing.assert_allclose(yukawa, -np.sqrt(s + 1.0), rtol=1e-12)

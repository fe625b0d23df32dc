"""Damped Klein-Gordon u_tt + 2a u_t + m^2 u = c^2 lap u (issue 12): verdicts, density split and the derived
family, each worked out here independently of pde2gen's code (by hand, in mpmath, with SciPy's Bessel functions).

By hand: with w = sqrt(a^2 - m^2) > 0, P(lambda, 0) = lambda^2 + 2a lambda + m^2 = (lambda + a - w)(lambda + a + w),
and the 1-D Green's function (u(0) = 0, u_t(0) = delta) is G = e^(-at) I_0(w sqrt(t^2 - x^2/c^2)) / (2c) on |x| < ct,
i.e. e^(-(a - w) t) times the Kac Green's function of rate w. The density p = G_t + (a + w) G obeys
d_t p = c^2 u_xx - (a - w) p (flux -c^2 grad u, uniform reaction R = -(a - w) p), and p = e^(-(a - w) t) Kac_w with
Kac_w the law of the Kac process of rate w and speed c: atoms e^(-wt)/2 at +-ct and the density
(w e^(-wt) / 2c) [I_0(z) + (ct/r) I_1(z)], r = sqrt(c^2 t^2 - x^2), z = w r / c. Its Fourier transform is
e^(-wt) (cosh(W t) + w sinh(W t) / W), W = sqrt(w^2 - c^2 k^2). Mass e^(-(a - w) t); normalised: kac_product(w, c).
m^2 = a^2 (w = 0) is the pure wave (no smoothing), m^2 > a^2 has an oscillating mass; m^2 < 0 (w > a) and a < 0 with
real w > 0 keep the same identity, with a uniform birth rate w - a > 0 instead of a death rate.
"""
from __future__ import annotations

import importlib.util
import math
import re
import sys
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from pde2gen.analysis.analyse import FAIL, PASS, analyse
from pde2gen.analysis.dispersion import uniform_rate
from pde2gen.derive.derive import derive
from pde2gen.spec.parse import parse
from pde2gen.spec.spec import LAM, T

KG = "u_tt + 2*a*u_t + m2*u = c**2*lap(u)"
# (a, m^2, c): w = 1, 2, sqrt(1/2) (irrational), and a birth case (m^2 < 0: w = 2 > a = 1)
CASES = [(2, 3, 1), (3, 5, 2), (1, "1/2", 3), (1, -3, 1)]


def spec_of(a, m2, c, dim=1, construction=None):
    return parse(KG, dim=dim, construction=construction, params={"a": str(a), "m2": str(m2), "c": str(c)})


def exact(value) -> mp.mpf:
    """An exact parameter (int or "p/q") in the current mpmath precision."""
    fraction = Fraction(str(value))
    return mp.mpf(fraction.numerator) / fraction.denominator


def w_of(a, m2) -> mp.mpf:
    return mp.sqrt(exact(a) ** 2 - exact(m2))


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.conditions}


# ---------------------------------------------------------------------------------------------- the mathematics
def green(a, m2, c, x, t):
    """G = e^(-at) I_0(w sqrt(t^2 - x^2/c^2)) / (2c) inside the cone (mpmath, current precision)."""
    w = w_of(a, m2)
    return mp.exp(-a * t) * mp.besseli(0, w * mp.sqrt(t * t - x * x / c**2)) / (2 * c)


def kac_density(w, c, x, t):
    """The a.c. part of the Kac law of rate w, speed c at |x| < ct."""
    r = mp.sqrt(c * c * t * t - x * x)
    z = w * r / c
    return w * mp.exp(-w * t) / (2 * c) * (mp.besseli(0, z) + c * t / r * mp.besseli(1, z))


@pytest.mark.parametrize("a,m2,c", CASES)
def test_green_function_solves_the_pde_and_its_density_is_the_scaled_kac_law(a, m2, c):
    """In 40 digits at interior points: G solves u_tt + 2a u_t + m^2 u - c^2 u_xx = 0, and
    G_t + (a + w) G = e^(-(a - w) t) Kac_w; the uniform continuity equation d_t p = c^2 G_xx - (a - w) p holds."""
    with mp.workdps(40):
        w = w_of(a, m2)
        m2 = exact(m2)
        for x, t in ((mp.mpf("0.3"), mp.mpf("0.9")), (mp.mpf("-1.1"), mp.mpf("2.5"))):
            x = x * c
            G = lambda xx, tt: green(a, m2, c, xx, tt)
            g_t = mp.diff(lambda tt: G(x, tt), t)
            g_xx = mp.diff(lambda xx: G(xx, t), x, 2)
            residual = mp.diff(lambda tt: G(x, tt), t, 2) + 2 * a * g_t + m2 * G(x, t) - c * c * g_xx
            assert abs(residual) < mp.mpf(10) ** -30 * abs(c * c * g_xx)
            p = g_t + (a + w) * G(x, t)
            assert abs(p / (mp.exp(-(a - w) * t) * kac_density(w, c, x, t)) - 1) < mp.mpf(10) ** -30
            p_t = mp.diff(lambda tt: mp.diff(lambda s: G(x, s), tt) + (a + w) * G(x, tt), t)
            assert abs(p_t - (c * c * g_xx - (a - w) * p)) < mp.mpf(10) ** -30 * abs(p_t)


def kac_fourier(w, c, k, t):
    """e^(-wt) (cosh Wt + w sinh(Wt)/W), W = sqrt(w^2 - c^2 k^2)."""
    W = mp.sqrt(mp.mpc(w * w - (c * k) ** 2))
    return mp.re(mp.exp(-w * t) * (mp.cosh(W * t) + w * mp.sinh(W * t) / W))


def test_kac_fourier_transform_by_quadrature():
    """The transform of atoms + a.c. part, integrated in mpmath (x = ct sin(theta) removes the 1/r singularity),
    equals the closed form at k c < w and k c > w."""
    with mp.workdps(25):
        w, c, t = mp.mpf(2), mp.mpf(2), mp.mpf("0.7")
        for k in (mp.mpf("0.4"), mp.mpf("3.1")):
            front = c * t
            # p_ac dx = (w e^(-wt) t / 2) [I_0(z) cos(theta) + I_1(z)] d theta, z = w t cos(theta) (r = ct cos(theta))
            cont = mp.quad(lambda th: mp.cos(k * front * mp.sin(th)) * w * mp.exp(-w * t) * t / 2
                           * (mp.besseli(0, w * t * mp.cos(th)) * mp.cos(th) + mp.besseli(1, w * t * mp.cos(th))),
                           [-mp.pi / 2, 0, mp.pi / 2])
            transform = mp.exp(-w * t) * mp.cos(k * front) + cont
            assert abs(transform - kac_fourier(w, c, k, t)) < mp.mpf(10) ** -18


# ---------------------------------------------------------------------------------------------- the analysis
@pytest.mark.parametrize("a,m2,c", CASES)
def test_one_dimension_split_mass_and_ghat(a, m2, c):
    """N = 1: s-generative; p = u_t + (a + w) u, R = -(a - w) p (uniform), mass e^(-(a - w) t), the normalised ghat
    is the Kac transform of rate w (the analysis' numbers against the closed forms above)."""
    report = analyse(spec_of(a, m2, c), repairs=False)
    assert statuses(report) == {"C0": PASS, "C1": PASS, "C2": PASS}
    disp, values = report.dispersion, report.spec.parameter_values()
    with mp.workdps(30):
        w = w_of(a, m2)
    q = sp.Poly(disp.density_factor.xreplace(values), LAM).all_coeffs()
    assert float(q[0]) == 1.0 and abs(float(sp.N(q[1], 30)) - float(a + w)) < 1e-13
    rate = uniform_rate(disp.reaction.xreplace(values), disp.density_factor.xreplace(values))
    assert abs(float(sp.N(rate, 30)) + float(a - w)) < 1e-13
    assert report.density_split.reaction_kind == "uniform"
    assert any(text.startswith("Kac process") for text in report.equivalences)  # checked there on a (k, t) grid
    mass = sp.lambdify(T, disp.mass.xreplace(values), "mpmath")
    with mp.workdps(30):
        for t in (mp.mpf("0.05"), mp.mpf(3), mp.mpf(400)):  # e^(-(a - w) 400) underflows float64 for a = 3
            assert abs(mass(t) / mp.exp(-(a - w) * t) - 1) < mp.mpf(10) ** -25
    k = np.array([0.1, 0.9, 2.3, 7.0])  # c k != w (W = 0 is a removable 0/0 of the closed form)
    for t in (0.2, 1.5):
        expected = [float(kac_fourier(w, c, mp.mpf(kk), mp.mpf(t))) for kk in k]
        np.testing.assert_allclose(disp.numeric_ghat(k**2, t).real, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("a,m2,c", CASES[:3])
@pytest.mark.parametrize("dim", [2, 3])
def test_isotropic_fails_c1_and_the_product_construction_passes(a, m2, c, dim):
    """N >= 2 isotropic: the atoms' transform e^(-wt) cos(c k t) pushes ghat below Schoenberg's floor (C1 FAIL,
    witness re-checked with the closed form); one 1-D process per coordinate passes (product construction)."""
    report = analyse(spec_of(a, m2, c, dim=dim), repairs=False)
    assert statuses(report) == {"C0": PASS, "C1": FAIL, "C2": PASS}
    witness = report.condition("C1").witness
    with mp.workdps(30):
        assert kac_fourier(w_of(a, m2), c, mp.mpf(witness["k"]), mp.mpf(witness["t"])) < witness["schoenberg_floor"]
    product = analyse(spec_of(a, m2, c, dim=dim, construction="product"), repairs=False)
    assert statuses(product) == {"C0": PASS, "C1": PASS, "C2": PASS}
    from pde2gen.derive.recognise import recognise

    assert "use the product construction" in recognise(report.dispersion).reason


# ---------------------------------------------------------------------------------------------- the derivation
def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]


@pytest.mark.parametrize("a,m2,c,dim", [(2, 3, 1, 1), (3, 5, 2, 2), (1, "1/2", 3, 3), (1, -3, 1, 1),
                                        (1000, 999999, 1, 1)])  # w = 1 << a: w^2 cancels in floats
def test_derives_kac_product_with_rate_w(a, m2, c, dim):
    """The family is kac_product(a = w, c) (product construction in N >= 2), every self-check passes, including
    the kernel e^(-(a - w) t) Kac_w against the PDE itself, and the texts state w, the rate and the density."""
    construction = "product" if dim > 1 else None
    spec = spec_of(a, m2, c, dim=dim, construction=construction)
    derivation = derive(spec, analyse(spec, repairs=False))
    w = float(w_of(a, m2))
    assert derivation.family.name == "kac_product"
    assert derivation.family.params["a"] == pytest.approx(w, rel=1e-15) and derivation.family.params["c"] == c
    checks = {check.name: check for check in derivation.checks}
    assert all(check.passed for check in derivation.checks)
    for name in ("kernel_solves_pde", "pde_residual", "continuity", "mass", "family_matches_pde"):
        assert checks[name].value <= 1e-12 if name != "family_matches_pde" else checks[name].value <= 1e-9
    recognised = derivation.formulas["recognised"]
    assert "w = sqrt(a^2 - m^2)" in recognised and w == pytest.approx(_numbers(recognised.split("w = sqrt")[1])[2], rel=1e-5)
    assert abs(a - w) == pytest.approx(_numbers(derivation.birth_death.split("rate")[1])[0], rel=1e-5)
    assert ("death" if a > w else "birth") in derivation.birth_death
    assert "uniform" in derivation.formulas["density"]


def test_a_wrong_rate_fails_the_kernel_check():
    """The check has teeth: the Kac law of rate a (not w) times the mass does not solve the PDE."""
    from pde2gen.derive import verify
    from pde2gen.families import FamilyConfig

    spec = spec_of(2, 3, 1)
    dispersion = analyse(spec, repairs=False).dispersion
    wrong = FamilyConfig("kac_product", (("a", 2.0), ("c", 1.0)))
    check = verify.check_kernel_solves_pde(dispersion, wrong, np.random.default_rng(0), 0.01, 10.0)
    assert not check.passed and check.value > 1e-3


# ---------------------------------------------------------------------------------------------- built modules
def load_process(folder):
    name = f"dkg_process_{abs(hash(str(folder)))}"
    module_spec = importlib.util.spec_from_file_location(name, folder / "process.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def kac_continuous_cdf(w: float, c: float, t: float):
    """CDF of the a.c. part of Kac_w, conditioned on being off the atoms, from SciPy's Bessel functions in
    theta (x = ct sin(theta)), cumulative trapezoid on 40001 nodes (error ~1e-9)."""
    from scipy import special

    theta = np.linspace(-math.pi / 2, math.pi / 2, 40001)
    front = c * t
    z = w * t * np.cos(theta)  # w r / c with r = ct cos(theta)
    # (w e^(-wt)/2c)[I_0(z) + (ct/r) I_1(z)] ct cos(theta) = (w e^(-wt) t / 2)[I_0(z) cos(theta) + I_1(z)]
    integrand = w * math.exp(-w * t) * t / 2 * (special.i0(z) * np.cos(theta) + special.i1(z))
    cumulative = np.concatenate([[0.0], np.cumsum((integrand[1:] + integrand[:-1]) / 2 * np.diff(theta))])
    total = 1.0 - math.exp(-w * t)  # the mass off the two atoms
    assert abs(cumulative[-1] - total) < 1e-8
    return lambda x: np.interp(np.arcsin(np.clip(x / front, -1, 1)), theta, cumulative / total)


# DKW: P(sqrt(n) sup |F_n - F| > x) <= 2 exp(-2 x^2); a false alarm rate of 1e-6 per comparison.
FALSE_ALARM = 1e-6
KS_CRITICAL = math.sqrt(math.log(2 / FALSE_ALARM) / 2)


@pytest.mark.parametrize("a,m2,c,dim", [(2, 3, 1, 1), (3, 5, 2, 2)])
def test_built_module_draws_the_kac_law_of_rate_w(tmp_path, a, m2, c, dim):
    """pde2gen.build writes the module (N = 1; N = 2 by the product construction); its IR carries (w, c), and its
    draws at t = 1/w follow the exact Kac_w law per coordinate: the atom fraction (Bernstein bound, known variance)
    and the KS distance off the atoms (DKW), each at false-alarm rate 1e-6."""
    torch = pytest.importorskip("torch")
    from pde2gen.build import build

    construction = "product" if dim > 1 else None
    out = tmp_path / "module"
    build(KG, out, dim=dim, construction=construction, params={"a": str(a), "m2": str(m2), "c": str(c)})
    w = float(w_of(a, m2))
    card = (out / "README.md").read_text()  # the model card states w, the death rate a - w and the density
    recognised = next(line for line in card.splitlines() if line.startswith("- recognised:"))
    assert _numbers(recognised.split("w = sqrt(a^2 - m^2) =")[1])[0] == pytest.approx(w, rel=1e-5)
    assert _numbers(recognised.split("death rate a - w =")[1])[0] == pytest.approx(a - w, rel=1e-5)
    assert "- density: `p = d_t u + " in card and "(uniform)" in card
    process = load_process(out).Process().double()
    assert process.family_parameters == pytest.approx({"a": w, "c": float(c)}, rel=1e-15)
    t = 1.0 / w
    n = 40_000
    times = torch.full((n,), t, dtype=torch.float64)
    d, atoms = process.family.sample_displacement(times, (dim,), generator=torch.Generator().manual_seed(7))
    d, atoms = d.numpy().ravel(), atoms.numpy().ravel()
    front = c * t
    assert np.all(np.abs(d) <= front * (1 + 1e-12)) and np.allclose(np.abs(d[atoms]), front)
    p = math.exp(-w * t)  # both atoms together
    L = math.log(2 / FALSE_ALARM)
    bound = (L / 3 + math.sqrt(L * L / 9 + 2 * d.size * p * (1 - p) * L)) / d.size
    assert abs(atoms.mean() - p) <= bound
    off = np.sort(d[~atoms])
    F = kac_continuous_cdf(w, float(c), t)(off)
    i = np.arange(1, len(off) + 1)
    distance = max(np.max(i / len(off) - F), np.max(F - (i - 1) / len(off)))
    assert math.sqrt(len(off)) * distance <= KS_CRITICAL


# ---------------------------------------------------------------------------------------------- refusals
def test_critical_damping_is_the_pure_wave_and_refused():
    """m^2 = a^2: w = 0, lambda = -a +- i c k, Re lambda = -a = lambda*(0) for every k: C2 fails with a zero gap,
    derive says why (w = 0), and the recogniser names the pure wave."""
    from pde2gen.derive.recognise import recognise

    spec = spec_of(2, 4, 1)
    report = analyse(spec, repairs=False)
    assert statuses(report)["C2"] == FAIL and abs(report.condition("C2").witness["gap"]) < 1e-30
    assert derive(spec, report).family is None
    reason = recognise(report.dispersion).reason
    assert reason.startswith("not derivable yet") and "w = sqrt(a^2 - m^2) = 0" in reason and "\n" not in reason


def test_oscillating_mass_is_refused():
    """m^2 = 5 > a^2 = 1: mass e^-t (cos 2t + sin(2t)/2) (canonical split) first vanishes at (pi - atan 2)/2, in
    N = 1, isotropic N = 2 and the product construction; the recogniser says the mass oscillates."""
    from pde2gen.derive.recognise import recognise

    for dim, construction in ((1, None), (2, None), (2, "product")):
        spec = spec_of(1, 5, 1, dim=dim, construction=construction)
        report = analyse(spec, repairs=False)
        c0 = report.condition("C0")
        assert c0.status == FAIL
        assert c0.witness["first_zero_t"] == pytest.approx((math.pi - math.atan(2)) / 2, rel=1e-9)
        assert derive(spec, report).family is None
        assert "oscillates" in recognise(report.dispersion).reason


@pytest.mark.parametrize("a,m2,w,birth", [(-2, 3, 1, 3), (-1, 0, 1, 2)])
def test_anti_damping_with_real_w_is_a_uniform_birth(a, m2, w, birth):
    """a < 0 with real w: P(lambda, 0) = (lambda + a - w)(lambda + a + w) has the dominant root w - a > 0, so
    p = u_t + (a + w) u, R = (w - a) p, mass e^((w - a) t) (a = -2, m^2 = 3: p = u_t - u, R = 3 p; the anti-damped
    telegraph a = -1, m^2 = 0: p = u_t, R = 2 p). The identity G = e^(-(a - w) t) G_w holds for every real a, so the
    kernel is e^((w - a) t) Kac_w (positive) and the normalised one kac_product(w, c). The wave (a = m^2 = 0) stays
    refused (C2)."""
    spec = spec_of(a, m2, 1)
    report = analyse(spec, repairs=False)
    assert statuses(report) == {"C0": PASS, "C1": PASS, "C2": PASS}
    values = report.spec.parameter_values()
    rate = uniform_rate(report.dispersion.reaction.xreplace(values), report.dispersion.density_factor.xreplace(values))
    assert float(rate) == birth
    with mp.workdps(30):  # the Green's function identity in mpmath
        x, t = mp.mpf("0.4"), mp.mpf("1.2")
        G = lambda tt: green(a, m2, 1, x, tt)
        p = mp.diff(G, t) + (a + w) * G(t)
        assert abs(p / (mp.exp(birth * t) * kac_density(mp.mpf(w), 1, x, t)) - 1) < 1e-25
    derivation = derive(spec, report)
    assert derivation.family.params == {"a": float(w), "c": 1.0} and "birth" in derivation.birth_death
    wave = analyse(parse("u_tt = lap(u)", dim=1), repairs=False)
    assert statuses(wave)["C2"] == FAIL


def test_cli_builds_and_refuses_in_one_line(tmp_path, capsys):
    """The command line: the issue's PDE builds in N = 1 (exit 0); m^2 > a^2 (oscillating mass) and m^2 = a^2 (the
    pure wave) are refused with exit 1 and one line on stderr."""
    from pde2gen.cli import main

    assert main(["build", "u_tt + 4*u_t + 3*u = lap(u)", "--dim", "1", "-o", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "process.py").exists()
    for refused in ("u_tt + 2*u_t + 5*u = lap(u)", "u_tt + 2*u_t + u = lap(u)"):
        capsys.readouterr()
        assert main(["build", refused, "--dim", "1", "-o", str(tmp_path / "two")]) == 1
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and error.startswith("error[build]")
        assert not (tmp_path / "two").exists()

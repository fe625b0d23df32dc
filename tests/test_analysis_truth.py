"""The analysis tells the truth (issue 12): verdicts on PDEs in no catalog, each with its reason worked out
independently here (by hand, in mpmath), and every FAIL witness re-evaluated in high precision.

Damped Klein-Gordon u_tt + 2a u_t + m^2 u = c^2 lap u has lambda_+-(s) = -a +- sqrt(a^2 - m^2 - c^2 s). When
m^2 > a^2 the density p = u_t + 2a u has mass(t) = e^(-a t) (cos(|w| t) + (a / |w|) sin(|w| t)), w^2 = a^2 - m^2 < 0,
which oscillates. When a^2 > m^2, P(lambda, 0) = (lambda + a - w)(lambda + a + w) has real roots and the analysis
splits p = u_t + (a + w) u, R = -(a - w) p (uniform): mass e^(-(a - w) t), normalised kernel the Kac law of rate w.
"""
from __future__ import annotations

import importlib.util
import math

import mpmath as mp
import pytest

from pde2gen.analysis.analyse import FAIL, PASS, analyse
from pde2gen.spec.parse import parse


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.conditions}


def check(text: str, dim: int = 1, **params):
    return analyse(parse(text, dim=dim, params={k: str(v) for k, v in params.items()}), repairs=False)


def kg_mass(a: float, m: float, t: float) -> mp.mpf:
    """Damped Klein-Gordon mass e^(-a t) (cosh(w t) + a sinh(w t) / w) in 50-digit arithmetic (w may be i|w|)."""
    with mp.workdps(50):
        w = mp.sqrt(mp.mpc(a * a - m * m))
        return mp.re(mp.exp(-a * t) * (mp.cosh(w * t) + a * mp.sinh(w * t) / w))


# ---------------------------------------------------------------------------------------------- case 1: mass
def test_case1_damped_klein_gordon_mass_positive_despite_underflow():
    """The issue's PDE: with the uniform split its mass is e^-t exactly (the old split's 3/2 e^-t - 1/2 e^-3t, read
    as 0 where it underflowed, is gone); C0 passes and the symbolic mass equals e^-t in 50 digits at t = 749.894,
    where the old float grid said "mass = 0"."""
    import sympy as sp

    from pde2gen.spec.spec import T

    report = check("u_tt + 4*u_t + 3*u = lap(u)")
    c0 = report.condition("C0")
    assert c0.status == PASS, c0.reason
    with mp.workdps(50):
        t = mp.mpf("749.894")
        mass = sp.lambdify(T, report.dispersion.mass, "mpmath")(t)
        assert mass > 0 and abs(mass / mp.exp(-t) - 1) < mp.mpf(10) ** -40
    assert report.condition("C1").status == PASS  # N = 1: e^(-t) x the Kac law of rate w = 1


@pytest.mark.parametrize("text,terms", [
    # (d_t + 1)(d_t + 3)(d_t + 5) u = lap(u_t): p = u_tt + 9 u_t + 23 u, mass = sum_b q(mu_b) / P'(mu_b) e^(mu_b t)
    # = 15/8 e^-t - 5/4 e^-3t + 3/8 e^-5t = e^-t (15/8 - 5/4 x + 3/8 x^2), x = e^-2t in (0, 1]: >= 5/8 e^-t > 0
    ("u_ttt + 9*u_tt + 23*u_t + 15*u = lap(u_t)", ((15 / 8, -1), (-5 / 4, -3), (3 / 8, -5))),
    # coincident roots (a^2 = m^2): p = u_t + 4 u, mass = e^-2t (1 + 2t) (residue at the double root -2)
    ("u_tt + 4*u_t + 4*u = lap(u)", None),
])
def test_case1_sums_of_exponentials_underflow_without_a_false_refusal(text, terms):
    """Masses that are sums of exponentials (times polynomials) and underflow in float64 before t = 1000: C0
    passes (no sign change read off an underflowed 0); each mass is positive in 50-digit arithmetic (by hand above)
    and equals the analysis' symbolic mass there."""
    import sympy as sp

    from pde2gen.spec.spec import T

    report = check(text)
    c0 = report.condition("C0")
    assert c0.status == PASS, c0.reason
    symbolic = sp.lambdify(T, report.dispersion.mass, "mpmath")
    with mp.workdps(50):
        for t in (mp.mpf("0.3"), mp.mpf("749.894"), mp.mpf(2000)):
            if terms is None:
                exact = mp.exp(-2 * t) * (1 + 2 * t)
            else:
                exact = mp.fsum(mp.mpf(c) * mp.exp(r * t) for c, r in terms)
            assert exact > 0 and abs(symbolic(t) / exact - 1) < mp.mpf(10) ** -30
    assert math.exp(-749.894 * 2) == 0.0  # what a float grid sees there


def test_case1_oscillating_mass_fails_with_a_certified_witness():
    """a = 1, m^2 = 5: mass = e^-t (cos 2t + sin(2t)/2), first zero at t = (pi - atan 2)/2 = 1.0172."""
    c0 = check("u_tt + 2*u_t + 5*u = lap(u)").condition("C0")
    assert c0.status == FAIL
    t = c0.witness["t"]
    assert kg_mass(1, math.sqrt(5), t) < 0
    assert (math.pi - math.atan(2)) / 2 < t < 1.1


# ---------------------------------------------------------------------------------------------- case 5: C2
@pytest.mark.parametrize("name,dim", [("kac", 2), ("telegraph", 1)])
def test_case5_large_damping_smooths(name, dim):
    """The slow branch -c^2 k^2 / (a + sqrt(a^2 - c^2 k^2)) < 0 for every k > 0: C2 passes, prior c^2/(2a)."""
    report = check(name, dim=dim, a=1000)
    assert report.condition("C2").status == PASS, report.condition("C2").reason
    assert report.prior.scale == pytest.approx(9 / 2000, rel=1e-9)


def test_case5_damping_e60():
    """a = e^60 (beyond what the command line accepts): the spec written term by term, a exact."""
    import sympy as sp

    from pde2gen.spec.spec import Parameter, PDESpec, Term

    a, c = sp.Symbol("a", positive=True), sp.Symbol("c", positive=True)
    spec = PDESpec(terms=(Term(1, 2), Term(2 * a, 1), Term(c**2, 0, 1)), dim=1,
                   parameters=(Parameter("a", a, sp.exp(60)), Parameter("c", c, sp.Integer(3))))
    report = analyse(spec, repairs=False)
    assert report.condition("C2").status == PASS, report.condition("C2").reason
    assert report.prior.scale == pytest.approx(float(9 / (2 * mp.e**60)), rel=1e-6)


def test_case5_wave_gap_is_zero_and_certified():
    c2 = check("wave").condition("C2")
    assert c2.status == FAIL and c2.witness["gap"] == 0.0


# ---------------------------------------------------------------------------------------------- case 3: witnesses
def test_case3_rounding_noise_is_no_witness():
    """ghat = e^-t (cos wt + sin(wt)/w), w = sqrt(s^2 + s - 1): real for every k; the old witness was noise."""
    c1 = check("u_tt + 2*u_t = lap(u) - lap(lap(u))").condition("C1")
    assert "not real" not in c1.reason
    # ghat ~ e^-t cos(k^2 t) does not decay (no FFT); Bochner's 3-point Gram determinant disproves positivity
    assert c1.status == FAIL and "Bochner" in c1.method
    k1, k2, t = c1.witness["k1"], c1.witness["k2"], c1.witness["t"]
    with mp.workdps(50):
        def ghat(k):
            s = mp.mpf(k) ** 2
            w = mp.sqrt(mp.mpc(s * s + s - 1))
            return mp.re(mp.exp(-t) * (mp.cos(w * t) + mp.sin(w * t) / w))

        g1, g2, g12 = ghat(k1), ghat(k2), ghat(mp.mpf(k2) - mp.mpf(k1))
        det = 1 + 2 * g1 * g2 * g12 - g1**2 - g2**2 - g12**2
    assert det < 0 and float(det) == pytest.approx(c1.witness["gram_det"], rel=1e-6)


def test_case3_schoenberg_witness_holds_in_mpmath():
    """In N = 3 ghat dips below inf Lambda_3 = -0.2172: check the reported ghat in 50 digits."""
    c1 = check("u_tt + 2*u_t = lap(u) - lap(lap(u))", dim=3).condition("C1")
    assert c1.status == FAIL
    k, t = c1.witness["k"], c1.witness["t"]
    with mp.workdps(50):
        s = mp.mpf(k) ** 2
        w = mp.sqrt(mp.mpc(s * s + s - 1))
        ghat = mp.re(mp.exp(-t) * (mp.cos(w * t) + mp.sin(w * t) / w))
    assert ghat < c1.witness["schoenberg_floor"]
    assert float(ghat) == pytest.approx(c1.witness["ghat"], rel=1e-6)


# ---------------------------------------------------------------------------------------------- case 2: growth
def _max_real_root(coefficients, dps=40) -> mp.mpf:
    with mp.workdps(dps):
        return max(mp.re(r) for r in mp.polyroots(coefficients, maxsteps=200, extraprec=100))


def test_case2_fractional_growth_fails_petrovskii_and_c2():
    """lambda^3 + 3 lambda^2 + 3 lambda + s = 0: lambda^3 ~ -s, so lambda ~ s^(1/3) e^(+-i pi/3) and
    Re lambda ~ k^(2/3) / 2 without bound."""
    report = check("u_ttt + 3*u_tt + 3*u_t = lap(u)")
    c0, c2 = report.condition("C0"), report.condition("C2")
    assert c0.status == FAIL and "Petrovskii fails" in c0.reason
    assert c0.witness["growth_exponent"] == pytest.approx(2 / 3, rel=1e-12)
    assert c0.witness["leading_coefficient_real"] == pytest.approx(0.5, rel=1e-12)
    k = c0.witness["k"]
    exact = _max_real_root([1, 3, 3, k * k])
    assert float(exact) == pytest.approx(c0.witness["re_lambda"], rel=1e-9)
    assert exact > 0.4 * k ** (2 / 3)  # (1 - s)^(1/3) e^(i pi/3) - 1: Re = s^(1/3)/2 - 1 + o(1)
    assert c2.status == FAIL and c2.witness["gap"] < 0


def test_case2_newton_polygon_bounds_the_viscous_wave():
    """lambda^2 + 2 s lambda + s = 0: edges lambda ~ -2 s and lambda ~ -1/2: both bounded above."""
    c0 = check("u_tt - 2*lap(u_t) = lap(u)").condition("C0")
    assert c0.status == PASS and "Newton polygon" in c0.reason


# ---------------------------------------------------------------------------------------------- case 4: self-checks
def test_case4_poisson_in_four_dimensions_derives():
    from pde2gen.derive.derive import derive

    spec = parse("poisson", dim=4)
    derivation = derive(spec, analyse(spec, repairs=False))
    failed = [c.name for c in derivation.checks if not c.passed]
    assert derivation.family is not None and not failed, failed
    ks = next(c for c in derivation.checks if c.name == "sampler_ks")
    assert ks.value < 0.5  # N = 4 with 500000 draws: the exact KS is ~1.0 / 3.53


def test_case4_thresholds_follow_from_the_false_alarm_rate():
    from pde2gen.derive import verify

    per_test = verify.FALSE_ALARM_PER_BUILD / verify.STATISTICAL_TESTS
    assert 2 * math.exp(-2 * verify.KS_CRITICAL**2) == pytest.approx(per_test, rel=1e-12)  # DKW
    for p, n in ((0.3, 40_000), (1e-9, 10**6)):  # Bernstein's tail with the known variance, at the bound
        eps = verify._bernstein_known(p, n)
        assert 2 * math.exp(-n * eps**2 / (2 * (p * (1 - p) + eps / 3))) == pytest.approx(per_test, rel=1e-9)


def test_case4_ks_bound_brackets_the_exact_statistic():
    """The node-bracketed KS distance is >= the exact one and exceeds it by at most one node spacing."""
    import numpy as np

    from pde2gen.derive import verify

    rng = np.random.default_rng(3)
    x = np.sort(rng.standard_normal(200_000))
    cdf = lambda v: 0.5 * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))
    F = cdf(x)
    i = np.arange(1, len(x) + 1)
    exact = max(np.max(i / len(x) - F), np.max(F - (i - 1) / len(x)))
    bound = verify._ks_statistic(x, cdf)
    assert exact <= bound <= exact + 2.0 / (20 * math.sqrt(len(x)))


# ---------------------------------------------------------------------------------------------- case 7: damped KG
KG = "u_tt + 2*a*u_t + m2*u = c**2*lap(u)"


@pytest.mark.parametrize("a,m2,c", [(2, 3, 1), (3, 1, 2), (1, -3, 1)])
def test_case7_damped_klein_gordon_in_one_dimension_is_positive_when_a2_ge_m2(a, m2, c):
    """a^2 > m^2: P(lambda, 0) has the real roots -a +- w (w^2 = a^2 - m^2), the density p = u_t + (a + w) u has the
    uniform reaction R = -(a - w) p and mass e^(-(a - w) t) > 0; the kernel is e^(-(a - w) t) times the Kac law of
    rate w (atoms, I_0, I_1 terms all non-negative) and the gap w - sqrt(w^2 - c^2 s) ~ c^2 s / (2 w) > 0:
    s-generative. m^2 < 0 (w > a) is a uniform birth rate w - a instead of a death rate."""
    import sympy as sp

    from pde2gen.analysis.dispersion import uniform_rate
    from pde2gen.spec.spec import T

    report = analyse(parse(KG, dim=1, params={"a": str(a), "m2": str(m2), "c": str(c)}), repairs=False)
    assert statuses(report) == {"C0": PASS, "C1": PASS, "C2": PASS}, report.conditions
    assert report.density_split.reaction_kind == "uniform"
    w = math.sqrt(a * a - m2)
    values = report.spec.parameter_values()
    disp = report.dispersion
    rate = uniform_rate(disp.reaction.xreplace(values), disp.density_factor.xreplace(values))
    assert float(rate) == pytest.approx(-(a - w), rel=1e-12, abs=1e-15)
    assert report.prior.scale == pytest.approx(c * c / (2 * w), rel=1e-6)
    mass = sp.lambdify(T, disp.mass.xreplace(values), "mpmath")
    with mp.workdps(30):
        exact_w = mp.sqrt(a * a - m2)
        for t in (0.5, 5.0, 500.0):
            assert abs(mass(mp.mpf(t)) / mp.exp(-(a - exact_w) * mp.mpf(t)) - 1) < 1e-25


def test_case7_critical_damping_does_not_smooth():
    """a^2 = m^2: lambda = -a +- i c k, so Re lambda = -a = lambda*(0) for every k (ghat decays like 1/t, not
    exponentially): C2 fails with gap 0, while the mass e^-t (1 + t) > 0 and the kernel is positive."""
    report = analyse(parse(KG, dim=1, params={"a": "1", "m2": "1", "c": "1"}), repairs=False)
    assert statuses(report) == {"C0": PASS, "C1": PASS, "C2": FAIL}
    assert abs(report.condition("C2").witness["gap"]) < 1e-30


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_case7_oscillating_mass_fails_in_every_dimension(dim):
    """m^2 = 5 > a^2 = 1: mass e^-t (cos 2t + sin(2t)/2) < 0 on ((pi - atan 2)/2, (2 pi - atan 2)/2)."""
    report = analyse(parse(KG, dim=dim, params={"a": "1", "m2": "5", "c": "1"}), repairs=False)
    c0 = report.condition("C0")
    assert c0.status == FAIL and "changes sign" in c0.reason
    assert c0.witness["first_zero_t"] == pytest.approx((math.pi - math.atan(2)) / 2, rel=1e-9)


def kg_ghat(a: float, m2: float, c: float, k: float, t: float) -> mp.mpf:
    """Normalised ghat of damped Klein-Gordon with a^2 > m^2 in 40 digits: the Kac law of rate w = sqrt(a^2 - m^2),
    e^(-wt)(cosh Wt + w sinh(Wt)/W), W = sqrt(w^2 - c^2 k^2) (possibly imaginary); it does not depend on a."""
    with mp.workdps(40):
        w = mp.sqrt(mp.mpf(a) ** 2 - mp.mpf(m2))
        W = mp.sqrt(mp.mpc(w * w - (c * mp.mpf(k)) ** 2))
        return mp.re(mp.exp(-w * t) * (mp.cosh(W * t) + w * mp.sinh(W * t) / W))


@pytest.mark.parametrize("a,m2,c", [(3, 1, 2), (1, 0.5, 3)])
@pytest.mark.parametrize("dim", [2, 3])
def test_damped_klein_gordon_isotropic_in_two_and_three_dimensions(a, m2, c, dim):
    """a^2 > m^2 (positive mass, positive 1-D kernel) but N >= 2: ghat carries e^(-at) cos(c k t) from the atoms and
    dips below Schoenberg's floor inf Lambda_N: C1 fails with a witness that holds in mpmath (kg_ghat)."""
    report = check(KG, dim=dim, a=a, m2=m2, c=c)
    assert statuses(report)["C0"] == PASS and statuses(report)["C2"] == PASS
    c1 = report.condition("C1")
    assert c1.status == FAIL and "Schoenberg" in c1.method
    assert kg_ghat(a, m2, c, c1.witness["k"], c1.witness["t"]) < c1.witness["schoenberg_floor"]


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_damped_klein_gordon_critical_damping_in_every_dimension(dim):
    """a^2 = m^2 = 4, c = 1/2: lambda = -2 +- i k / 2, Re lambda = -2 = lambda*(0) for every k: C2 fails with a zero
    gap (by hand) in every N."""
    report = check(KG, dim=dim, a=2, m2=4, c="1/2")
    c2 = report.condition("C2")
    assert c2.status == FAIL and abs(c2.witness["gap"]) < 1e-30


def test_sum_of_three_symbols_with_a_constant():
    """u_t = lap(u) - (-lap)^(1/2) u - 2 u: f(s) = s + sqrt(s) + 2 before normalising; the constant is the uniform
    death rate 2 (mass e^(-2t) > 0), the normalised kernel is heat plus Cauchy (heat_nig, kappa = c = 1, m = 0),
    and the prior is Cauchy with scale 1 (f - 2 ~ sqrt(s) at small s): all by hand."""
    from pde2gen.derive.recognise import recognise_family

    for dim in (1, 3):
        report = check("u_t = lap(u) - fraclap(u, 1/2) - 2*u", dim=dim)
        assert statuses(report) == {"C0": PASS, "C1": PASS, "C2": PASS}
        assert report.density_split.reaction_kind == "uniform"
    assert report.prior.alpha == 1.0 and report.prior.scale == pytest.approx(1.0, rel=1e-9)
    family = recognise_family(report.dispersion)
    assert family.name == "heat_nig" and family.params == {"kappa": 1.0, "c": 1.0, "m": 0.0}


@pytest.mark.parametrize("dim", [2, 3])
def test_case7_isotropic_fails_c1_and_the_product_repairs_it(dim):
    """In N >= 2 the isotropic kernel has the 1-D atoms' Fourier transform e^(-at) cos(c k t) in ghat, which
    dips below inf Lambda_N at large k: C1 fails; one 1-D process per coordinate is the N = 1 question."""
    report = analyse(parse(KG, dim=dim, params={"a": "2", "m2": "3", "c": "1"}))
    c1 = report.condition("C1")
    assert c1.status == FAIL and "Schoenberg" in c1.method
    k, t = c1.witness["k"], c1.witness["t"]
    with mp.workdps(40):  # ghat = e^(-t)(cosh Wt + sinh(Wt)/W), W = sqrt(1 - k^2): the Kac law of rate w = 1
        W = mp.sqrt(mp.mpc(1 - mp.mpf(k) ** 2))
        ghat = mp.re(mp.exp(-t) * (mp.cosh(W * t) + mp.sinh(W * t) / W))
    assert ghat < c1.witness["schoenberg_floor"]
    product = [r for r in report.repairs if r.name == "product construction"]
    assert product and product[0].passes


def test_case7_one_dimensional_kernel_derives_as_the_kac_law_of_rate_w():
    """a = 2, m^2 = 3, c = 1: w = 1, so the normalised kernel is kac_product(a = 1, c = 1) (tests/test_damped_klein_gordon.py
    checks it in depth)."""
    from pde2gen.derive.derive import derive

    spec = parse(KG, dim=1, params={"a": "2", "m2": "3", "c": "1"})
    derivation = derive(spec, analyse(spec, repairs=False))
    assert derivation.family.name == "kac_product" and derivation.family.params == {"a": 1.0, "c": 1.0}


# ---------------------------------------------------------------------------------------------- PDEs in no catalog
def _one_d_kernel(f, x: float, t: float = 1.0) -> mp.mpf:
    """p(x, t) = (1/pi) int_0^oo cos(k x) exp(-t f(k^2)) dk in 30 digits (f grows at least like k^2)."""
    with mp.workdps(30):
        return mp.quad(lambda k: mp.cos(k * x) * mp.exp(-t * f(k * k)), [0, 1, 2, 4, 8, mp.inf]) / mp.pi


@pytest.mark.parametrize("text,alpha,scale", [
    ("u_t = lap(u) - fraclap(u, 1/2) - 3*fraclap(u, 3/4)", 1.0, 1.0),  # f = s + sqrt(s) + 3 s^(3/4)
    ("u_t = -fraclap(u, 3/4) - fraclap(u, 1/4) - 2*fraclap(u, 1/2)", 0.5, 1.0),  # f = s^(3/4) + s^(1/4) + 2 sqrt(s)
])
def test_sums_of_three_symbols_are_bernstein(text, alpha, scale):
    """A positive combination of s^beta, 0 < beta <= 1, is Bernstein: positive in every N; the prior is the
    stable law of the lowest power (f ~ scale k^alpha at small k)."""
    for dim in (1, 3):
        report = check(text, dim=dim)
        assert statuses(report) == {"C0": PASS, "C1": PASS, "C2": PASS}
        assert report.condition("C1").method.startswith("Bernstein")
    assert report.prior.alpha == alpha and report.prior.scale == pytest.approx(scale, rel=1e-9)


def test_heat_plus_a_power_above_one_is_negative_somewhere():
    """f = s + s^(5/4): s^(5/4) is not Bernstein, and the 1-D kernel (computed here by quadrature) dips below 0
    where the analysis says."""
    c1 = check("u_t = lap(u) - fraclap(u, 5/4)").condition("C1")
    assert c1.status == FAIL
    p = _one_d_kernel(lambda s: s + s ** mp.mpf(1.25), c1.witness["x"], c1.witness["t"])
    assert p < 0 and float(p) == pytest.approx(c1.witness["p"], rel=1e-3)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5])
def test_fractional_powers_alone_and_with_heat(alpha):
    """(-lap)^(alpha/2) alone: the alpha-stable law (alpha = 1: Cauchy); plus heat: f = s + s^(alpha/2) is still
    Bernstein (positive in every N), with the alpha-stable prior, since s^(alpha/2) dominates at small k."""
    from pde2gen.derive.recognise import recognise_family

    power = mp.nstr(mp.mpf(alpha) / 2, 3)
    alone = check(f"u_t = -fraclap(u, {power})", dim=2)
    assert statuses(alone) == {"C0": PASS, "C1": PASS, "C2": PASS}
    family = recognise_family(alone.dispersion)
    if alpha == 1.0:
        assert family.name == "cauchy" and family.params["c"] == pytest.approx(1.0)
    else:
        assert family.name == "stable" and family.params["alpha"] == pytest.approx(alpha)
    combined = check(f"u_t = lap(u) - fraclap(u, {power})", dim=2)
    assert statuses(combined) == {"C0": PASS, "C1": PASS, "C2": PASS}
    assert combined.prior.alpha == pytest.approx(alpha) and combined.prior.scale == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- case 6: composites
def test_case6_heat_plus_cauchy_builds_and_passes_its_self_checks(tmp_path):
    """f = s + sqrt(s): derives heat_nig(kappa = 1, c = 1, m = 0), every self-check passes, and it renders."""
    from pde2gen.build import build

    result = build("u_t = lap(u) - fraclap(u, 1/2)", tmp_path / "module", dim=2)
    family = result.derivation.family
    assert family.name == "heat_nig" and family.params == {"kappa": 1.0, "c": 1.0, "m": 0.0}
    assert all(c.passed for c in result.derivation.checks), [c.name for c in result.derivation.checks if not c.passed]
    spec = importlib.util.spec_from_file_location("heat_nig_process", result.outdir / "process.py")
    process = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(process)
    assert process.FAMILY_NAME == "heat_nig"


def test_case6_kernel_is_the_convolution():
    """The 1-D kernel of f = s + sqrt(s) at t = 0.7, by Fourier inversion in mpmath, against exp(log_kernel)."""
    import numpy as np

    from pde2gen.derive import reference
    from pde2gen.families import FamilyConfig

    family = FamilyConfig("heat_nig", (("kappa", 1.0), ("c", 1.0), ("m", 0.0)))
    for x in (0.0, 1.3, 6.0):
        exact = _one_d_kernel(lambda s: s + mp.sqrt(s), x, 0.7)
        value = math.exp(reference.log_kernel(family, np.array([[x]]), 0.7)[0])
        assert value == pytest.approx(float(exact), rel=1e-9)


@pytest.mark.parametrize("m", [0.0, 1.5])
def test_case6_sampler_velocity_and_marginal_agree(m):
    """For heat + Cauchy and heat + NIG (m = 1.5): kernel normalised, radial law of the sampler equal to the
    integrated kernel, the posterior-mean velocity equal to the radial transport field (exact identities),
    and draws pushed back along the summed quantile couplings distributed as fresh draws."""
    import numpy as np

    from pde2gen.derive import verify
    from pde2gen.families import FamilyConfig

    family = FamilyConfig("heat_nig", (("kappa", 0.5), ("c", 2.0), ("m", m)))
    for check_result in (verify.check_kernel_normalised(family), verify.check_kernel_vs_radial_law(family),
                         verify.check_velocity_radial_flux(family),
                         verify.check_velocity_transport(family, np.random.default_rng(1))):
        assert check_result.passed, check_result


def test_case6_torch_runtime_matches_the_reference():
    """pde2gen/families/heat_nig/runtime.py (what render inlines) against pde2gen.derive.reference, in N = 1, 3, 3072."""
    import numpy as np
    import torch

    from pde2gen.derive import reference
    from pde2gen.families import FamilyConfig
    from pde2gen.families.heat_nig.runtime import HeatNIGFamily

    family = FamilyConfig("heat_nig", (("kappa", 0.5), ("c", 2.0), ("m", 1.5)))
    runtime = HeatNIGFamily(0.5, 2.0, 1.5)
    for N in (1, 3, 3072):
        t = np.full(32, 0.7)
        d, X = reference.sample(family, t, 32, N, np.random.default_rng(N))
        dt, tt = torch.tensor(d), torch.tensor(t)
        np.testing.assert_allclose(runtime.log_kernel(dt, tt).numpy(), reference.log_kernel(family, d, t), rtol=1e-12)
        np.testing.assert_allclose(runtime.conditional_velocity(dt, tt).numpy(),
                                   reference.conditional_velocity(family, d, t), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(runtime.conditional_velocity(dt, tt, torch.tensor(X)).numpy(),
                                   reference.conditional_velocity(family, d, t, X), rtol=1e-12)
    times = torch.tensor([0.01, 1.0, 30.0], dtype=torch.float64)
    np.testing.assert_allclose(runtime.t_of_sigma(runtime.sigma(times)).numpy(), times.numpy(), rtol=1e-12)


@pytest.mark.parametrize("text,fragment", [
    ("u_t = -fraclap(u, 31/32) - fraclap(u, 1/4)", "sums the subordinators"),  # two stables, one beyond the tables
    ("u_t = lap(u) - fraclap(u, 31/32) - 3*fraclap(u, 3/4)", "1/32 <= p <= 15/16"),
    ("u_t = -fraclap(u, 1/4) - fraclap(u, 3/8) - fraclap(u, 1/2) - fraclap(u, 5/8) - fraclap(u, 3/4)",
     "at most 4 fractional powers"),
])
def test_case6_other_sums_say_what_is_missing(text, fragment):
    from pde2gen.derive.recognise import NOT_DERIVABLE, recognise

    report = check(text, dim=2)
    assert report.s_generative
    recognition = recognise(report.dispersion)
    assert recognition.family is None and recognition.reason.startswith(NOT_DERIVABLE)
    assert fragment in recognition.reason


# ---------------------------------------------------------------------------------------------- found bugs
@pytest.mark.parametrize("m", ["1e11", "1", "1e-12"])
def test_yukawa_is_s_generative_at_every_mass(m):
    """lambda^2 = s + m^2: the roots +-sqrt(s + m^2) reach +k only for s >> m^2, so the problem type comes from
    the Newton polygon (a root ~ +k), not from a fixed s; f = sqrt(s + m^2) - m = s / (sqrt(s + m^2) + m) is
    Bernstein and ~ s / (2 m) at small s (prior Gaussian, scale 1 / (2 m): by hand)."""
    report = analyse(parse("yukawa", dim=2, params={"m": m}), repairs=False)
    assert report.dispersion.problem_type == "augmented"
    assert report.s_generative, statuses(report)
    assert report.prior.alpha == 2.0
    assert report.prior.scale == pytest.approx(1.0 / (2.0 * float(m)), rel=1e-9)


def test_fractional_alpha_one_sixteenth_kernel_checks():
    """alpha = 1/16 (the smallest the parser admits: (-lap)^(1/32)): the positive 1/32-stable mixing law spreads
    over e^{+-100s}, so the normalisation quadrature must reach its lower tail (log P(S < x) ~ -A(0) x^(-1/31)),
    the delta limit is read where kappa t k^alpha ~ 1e-6 (at sigma = 1e-9, 1 - ghat = (sigma k)^(1/16) ~ 0.3),
    and log_kernel must not form 0 * inf where V underflows. Expected: mass 1, ghat -> 1, no NaN."""
    import numpy as np

    from pde2gen.derive import verify
    from pde2gen.families import FamilyConfig

    family = FamilyConfig("stable", (("kappa", 1.0), ("alpha", 1 / 16)))
    assert verify.check_kernel_normalised(family).value < 1e-7
    dispersion = check("fractional", alpha="1/16").dispersion
    assert verify.check_delta_limit(dispersion, family).passed
    grid = verify.time_grid(family, 0.002, 80.0, 7.0, 16)
    assert verify.check_finite(family, grid, np.random.default_rng(0)).value == 0


def test_certification_work_is_bounded():
    """u_tt + 2 u_t = -(-lap)^(7/2) u: the slow branch -s^(7/2) / (1 + sqrt(1 - s^(7/2))) ~ -s^(7/2)/2 is accurate
    in float but below the gap's absolute tolerance at ~700 grid points; each used to be re-solved in mpmath
    (5 s in C2, again in each repair). At most CERTIFY_POINTS are now; C2 still passes with gap ~ k^7 (by hand)."""
    from pde2gen.analysis.dispersion import Dispersion
    from pde2gen.analysis.positivity_checks import CERTIFY_POINTS

    calls = []
    original = Dispersion.mp_branches

    def counted(self, s, dps):
        calls.append(s)
        return original(self, s, dps)

    Dispersion.mp_branches = counted
    try:
        report = analyse(parse("u_tt + 2*u_t = -fraclap(u, 7/2)", dim=64))
    finally:
        Dispersion.mp_branches = original
    c2 = report.condition("C2")
    assert c2.status == PASS and "k^7 " in c2.reason
    assert report.condition("C1").status == FAIL  # s^(7/2): ghat = e^(-t k^7) is no characteristic function
    assert len(calls) <= 4 * 3 * CERTIFY_POINTS  # C2 at 2 precisions, in the PDE and its repair


def test_mass_of_a_sixth_order_pde_is_cancelled_first():
    """u_tttttt + u_t: q(z) / P(z, 0) = (z^5 + 1) / (z^6 + z) = 1 / z, so the mass is 1 (by hand); the residues
    over the fifth roots of -1 took SymPy 2-5 s of CPU to expand back to 1 (now ~0.05 s)."""
    import time

    import sympy as sp

    from pde2gen.analysis.dispersion import analyse_dispersion

    spec = parse("u_tttttt + u_t = -fraclap(u, 7/4)", dim=2)
    start = time.process_time()
    mass = analyse_dispersion(spec).mass
    assert time.process_time() - start < 1.5
    assert sp.sympify(mass) == 1


def test_transport_check_integrates_steep_couplings_to_convergence():
    """alpha = 1/16: the stable coupling d / (alpha t) moves d ~ t^16, so from 2t to t every draw is scaled by
    2^-16 exactly (by hand); RK4 with a fixed 12 steps was 28% off, the check now doubles its steps until two runs
    agree to 1e-4."""
    import numpy as np

    from pde2gen.derive import reference, verify
    from pde2gen.families import FamilyConfig

    family = FamilyConfig("stable", (("kappa", 1.0), ("alpha", 1 / 16)))
    start, latent = reference.sample(family, 2.0, 2000, 2, np.random.default_rng(0))
    moved, _, steps = verify._transport(family, start, 2.0, 1.0, latent, isotropic=True)
    finite = np.isfinite(start) & (start != 0)
    assert steps > verify.TRANSPORT_STEPS
    assert np.max(np.abs(moved[finite] / (start[finite] * 2.0**-16) - 1)) < 1e-5

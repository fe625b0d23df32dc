"""The analysis stage: verdicts computed from the PDE (never looked up), witnesses that reproduce, repairs with
their own verdicts. Specs come from pde2gen.spec.spec (tests/test_dispersion.py builds them term by term); a few
go through the parser too. Reference numbers: physics.md §2-§3 (and independent recomputation here).
"""
from __future__ import annotations

import json
import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from test_dispersion import catalog_specs, make_spec, parameter

from pde2gen.analysis import positivity
from pde2gen.analysis.analyse import FAIL, PASS, UNDECIDED, analyse
from pde2gen.analysis.dispersion import analyse_dispersion
from pde2gen.spec.spec import LAM, S, Term

R = sp.Rational


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.conditions}


def spec_of(name: str, dim: int = 1, **parameters):
    return catalog_specs(dim=dim, **parameters)[name]


# ---------------------------------------------------------------------------------------------- verdict table
@pytest.mark.parametrize("name", ["diffusion", "poisson", "yukawa", "fractional", "damped_diffusion", "pfgmpp"])
@pytest.mark.parametrize("dim", [1, 2, 3072])
def test_subordinated_gaussians_pass_in_every_dimension(name, dim):
    report = analyse(spec_of(name, dim))
    assert statuses(report) == {"C0": PASS, "C1": PASS, "C2": PASS}, report.conditions
    assert report.s_generative
    c1 = report.condition("C1")
    assert c1.method.startswith("Bernstein certificate") or c1.method.startswith("Student-t mixture")
    assert report.repairs == ()


@pytest.mark.parametrize("name", ["wave", "klein_gordon", "helmholtz", "schrodinger"])
def test_oscillatory_pdes_fail_smoothing(name):
    report = analyse(spec_of(name, 2))
    c2 = report.condition("C2")
    assert c2.status == FAIL and c2.witness is not None
    assert not report.s_generative
    # the witness: lambda*(k) = lambda*(0) there, recomputed from the branches
    disp = analyse_dispersion(spec_of(name, 2))
    k = c2.witness["k"]
    growth = np.max(disp.numeric_branches(np.array([k * k, 0.0])).real, axis=1)
    assert growth[0] >= growth[1] - 1e-12


def test_wave_witnesses_and_dimension_dependence():
    one = analyse(spec_of("wave", 1))
    assert statuses(one) == {"C0": PASS, "C1": PASS, "C2": FAIL}  # the 1-D wave kernel is two atoms
    two = analyse(spec_of("wave", 2))
    c1 = two.condition("C1")
    assert c1.status == FAIL and "Schoenberg" in c1.method
    k, t = c1.witness["k"], c1.witness["t"]
    assert math.cos(k * t) == pytest.approx(c1.witness["ghat"], abs=1e-9)  # ghat = cos(ckt), c = 1
    assert c1.witness["ghat"] < positivity.schoenberg_floor(2).value and c1.witness["schoenberg_floor_dim"] == 2


def test_klein_gordon_mass_changes_sign_at_pi_over_2m():
    report = analyse(spec_of("klein_gordon", 2, m=2.0))
    c0 = report.condition("C0")
    assert c0.status == FAIL
    assert c0.witness["first_zero_t"] == pytest.approx(math.pi / 4, rel=1e-9)  # mass = cos(m t)
    assert c0.witness["mass"] == pytest.approx(math.cos(2.0 * c0.witness["t"]), abs=1e-12)
    assert report.condition("C1").status == FAIL


def test_helmholtz_fails_c0_below_m_with_an_exact_witness():
    report = analyse(spec_of("helmholtz", 1, m=2))
    c0 = report.condition("C0")
    assert c0.status == FAIL
    assert 0 < c0.witness["k"] < 2 and c0.witness["k_range"][1] <= 2.0
    assert c0.witness["exact_real_parts"] == ["0", "0"]  # +-sqrt(k^2 - m^2) purely imaginary, exactly


def test_schrodinger_is_complex():
    report = analyse(spec_of("schrodinger", 3))
    assert statuses(report) == {"C0": FAIL, "C1": FAIL, "C2": FAIL}
    assert "complex" in report.condition("C0").reason
    assert report.condition("C2").witness["gap"] == 0


# ---------------------------------------------------------------------------------------------- C1 numerics
def test_hyperdiffusion_passes_c2_and_fails_c1_with_the_reference_witness():
    for dim in (1, 2, 3072):
        report = analyse(spec_of("hyperdiffusion", dim))
        assert statuses(report) == {"C0": PASS, "C1": FAIL, "C2": PASS}
        witness = report.condition("C1").witness
        assert witness["t"] == 1.0
        assert witness["x"] == pytest.approx(4.5918, abs=2e-4)
        assert witness["p"] == pytest.approx(-0.029807, abs=2e-6)  # physics.md §2: min -0.0298 at |x| ~ 4.59
        assert witness["p_doubled_grid"] == pytest.approx(witness["p"], abs=1e-12)


def test_hyperdiffusion_kernel_against_direct_quadrature():
    """p(x, 1) = (1/pi) int_0^oo exp(-k^4) cos(kx) dk, by mpmath at the witness and at 0."""
    kernel = positivity.kernel_1d(analyse_dispersion(spec_of("hyperdiffusion")), 1.0)
    mp.mp.dps = 20
    for x, value in ((0.0, kernel.p_zero), (kernel.x_min, kernel.p_min)):
        exact = mp.quad(lambda k, x=x: mp.exp(-k**4) * mp.cos(k * x), [0, 2, 4, 8]) / mp.pi
        assert value == pytest.approx(float(exact), abs=1e-12)
    assert kernel.p_zero == pytest.approx(0.28852, abs=1e-5)
    assert kernel.p_min < 0 and np.all(kernel.p >= kernel.p_min - 1e-15)


def test_bernstein_certificate_accepts_and_rejects():
    m = sp.Symbol("m", positive=True)
    alpha = sp.Rational(3, 2)
    for f in (S, sp.sqrt(S), sp.sqrt(S + m**2) - m, S ** (alpha / 2), S + sp.sqrt(S), sp.log(1 + S)):
        assert positivity.bernstein(f, {m: 2}).is_bernstein is True, f
    rejected = positivity.bernstein(S**2)
    assert rejected.is_bernstein is False
    assert rejected.witness["derivative_order"] == 2 and rejected.witness["value"] == pytest.approx(2.0)


@pytest.mark.parametrize("dim, expected", [(1, -1.0), (2, -0.40276), (3, -0.21723), (4, -0.13228), (10, -0.015921),
                                           (100, -2.0942e-10)])
def test_schoenberg_floor(dim, expected):
    floor = positivity.schoenberg_floor(dim)
    assert floor.value == pytest.approx(expected, rel=2e-4)
    # independent check: Lambda_N at x_min by mpmath, and x_min is a minimum
    nu = dim / 2 - 1
    lam = lambda x: mp.gamma(dim / 2) * (2 / mp.mpf(x)) ** nu * mp.besselj(nu, x)
    assert float(lam(floor.x_min)) == pytest.approx(floor.value, rel=1e-9)
    assert lam(floor.x_min * 0.99) > lam(floor.x_min) < lam(floor.x_min * 1.01)


@pytest.mark.parametrize("dim", [1, 2, 3, 4, 10, 100, 3072])
def test_elementary_floor_is_exact_up_to_three_and_a_bound_above(dim):
    """The scipy-free floor used first by the screen: inf Lambda_min(N,3) <= inf Lambda_N."""
    cheap, exact = positivity.elementary_floor(dim), positivity.schoenberg_floor(dim)
    if dim <= 3:
        assert cheap.value == pytest.approx(exact.value, rel=1e-12) and cheap.x_min == pytest.approx(exact.x_min)
    else:
        assert cheap.dim == 3 and cheap.value < exact.value


def test_schoenberg_floor_in_image_dimensions_is_tiny_but_negative():
    floor = positivity.schoenberg_floor(3072)
    assert floor.value < 0 and -216 < floor.log10_abs < -212
    assert positivity.schoenberg_floor(65536).log10_abs < -4000  # underflows as a float, kept as a log


def test_riemann_kernel_has_the_right_fourier_transform():
    """Atoms + Bessel part of the 2nd-order 1-D kernel, transformed back, equals p_hat (telegraph, KG)."""
    for name, params in (("telegraph", {"a": 1.5, "c": 2.0}), ("klein_gordon", {"m": 1.0})):
        disp = analyse_dispersion(spec_of(name, **params))
        riemann = positivity.riemann_kernel(disp)
        k = np.array([0.2, 1.0, 2.7])
        for t in (0.4, 1.3):
            np.testing.assert_allclose(riemann.fourier(k, t), disp.numeric_p_hat(k**2, t).real, atol=1e-12)


def test_riemann_kernel_sign():
    """Certified when b >= 0 and b^2/4 >= d; otherwise a negative value inside the cone, recomputed here from
    e^{-bt/2}/(2c) [(b/2) I_0(kappa tau) + kappa t I_1(kappa tau)/tau] (kappa^2 = b^2/4 - d) with mpmath."""
    assert positivity.RiemannKernel(2.0, 1.0, 0.0).certified_positive()  # telegraph
    assert positivity.RiemannKernel(4.0, 1.0, 1.0).certified_positive()  # overdamped Klein-Gordon
    anti_damped = positivity.RiemannKernel(-1.0, 1.0, 0.0)
    assert not anti_damped.certified_positive()
    x, t, value = anti_damped.most_negative(np.array([0.5, 1.0, 2.0]))
    kappa, tau = 0.5, math.sqrt(t * t - x * x)
    exact = mp.exp(t / 2) / 2 * (-0.5 * mp.besseli(0, kappa * tau) + kappa * t * mp.besseli(1, kappa * tau) / tau)
    assert value < 0 and value == pytest.approx(float(exact), rel=1e-10)
    underdamped = positivity.RiemannKernel(0.0, 1.0, 1.0)  # Klein-Gordon: -(1/2c) m t J_1(m tau)/tau
    assert not underdamped.certified_positive()
    x, t, value = underdamped.most_negative(np.array([1.0]))
    tau = math.sqrt(t * t - x * x)
    assert value == pytest.approx(float(-0.5 * t * mp.besselj(1, tau) / tau), rel=1e-10)


def test_telegraph_passes_in_one_dimension_and_fails_isotropically_above():
    one = analyse(spec_of("telegraph", 1, a=9, c=3))
    assert one.s_generative and one.condition("C1").method.startswith("Riemann")
    assert one.prior.large_k_gap == pytest.approx(9.0, rel=1e-9)  # gap a at k -> oo
    assert one.prior.family == "gaussian" and one.prior.scale == pytest.approx(3**2 / (2 * 9), rel=1e-6)
    for dim in (2, 3, 3072):
        report = analyse(spec_of("telegraph", dim, a=9, c=3))
        c1 = report.condition("C1")
        assert c1.status == FAIL and c1.witness["ghat"] < positivity.schoenberg_floor(dim).value
        assert [r.name for r in report.repairs] == ["product construction"] and report.repairs[0].passes
    for dim in (2, 3072):
        product = analyse(spec_of("telegraph", dim, a=9, c=3).with_options(construction="product"))
        assert product.s_generative


@pytest.mark.parametrize("dim", [2, 3])
def test_viscous_wave_fails_for_n_at_least_2(dim):
    report = analyse(spec_of("viscous_wave", dim))
    c1 = report.condition("C1")
    assert c1.status == FAIL
    # recompute ghat at the witness from the branches: lambda = (-s +- sqrt(s^2 - 4 s)) / 2 (gamma = c = 1)
    k, t = c1.witness["k"], c1.witness["t"]
    s = k * k
    root = np.sqrt(complex(s * s - 4 * s))
    lam1, lam2 = (-s + root) / 2, (-s - root) / 2
    ghat = (lam1 * np.exp(lam1 * t) - lam2 * np.exp(lam2 * t)) / (lam1 - lam2)
    assert ghat.real == pytest.approx(c1.witness["ghat"], abs=1e-9)


def test_viscous_wave_tail_is_the_predicted_power_law():
    """physics.md §3: ghat ~ -(c^2 / (gamma^2 k^2)) e^{-c^2 t / gamma} at large k (tail screen, beta = 2)."""
    disp = analyse_dispersion(spec_of("viscous_wave", gamma=2.0, c=1.5))
    tail = positivity.tail_decay(disp, 1.0)
    assert tail.beta == pytest.approx(2.0, abs=1e-6)
    assert tail.amplitude == pytest.approx(-(1.5**2 / 2.0**2) * math.exp(-(1.5**2) / 2.0), rel=1e-6)


def test_tail_screen_needs_beta_at_most_n():
    from pde2gen.analysis.positivity_checks import _tail_screen

    disp = analyse_dispersion(spec_of("viscous_wave"))
    assert _tail_screen(disp, 1) is None  # beta = 2 > N = 1: the -1/k^2 tail is integrable at x = 0
    for dim in (2, 3):
        failed = _tail_screen(disp, dim)
        assert failed.status == FAIL and failed.witness["beta"] == pytest.approx(2.0, abs=1e-6)
        assert failed.witness["amplitude"] == pytest.approx(-math.exp(-1.0), rel=1e-5)  # -(c/gamma)^2 e^{-c^2 t/gamma}


@pytest.mark.parametrize("dim", [1, 2, 3, 100])
def test_origin_value_of_the_heat_kernel(dim):
    """p(0, t) = (4 pi t)^(-N/2) through the radial integral of ghat, in log space."""
    disp = analyse_dispersion(spec_of("diffusion"))
    origin = positivity.origin_value(disp, 2.0, dim)
    assert origin.ratio == 1.0
    assert origin.log10_abs_p == pytest.approx(-dim / 2 * math.log10(8 * math.pi), abs=1e-6)


def test_origin_value_declines_when_float64_cannot_see_the_integral():
    # at N = 3072 the heat kernel's radial integrand peaks where ghat ~ 1e-667: refuse, never guess
    assert positivity.origin_value(analyse_dispersion(spec_of("diffusion")), 1.0, 3072) is None


def test_k_damped_wave_fails_at_the_origin_in_two_dimensions():
    """lambda^2 + 2 k lambda + 2 k^2 (omega = +-k - i k) with the canonical density p = u_t:
    ghat = e^{-kt} (cos kt - sin kt), p(0, t) = (1/2pi) int ghat k dk = -1/(4 pi t^2) in N = 2."""
    spec = make_spec([Term(1, 2), Term(2, 1, R(1, 2)), Term(2, 0, 1)], dim=2)
    assert positivity.riemann_kernel(analyse_dispersion(spec)) is None  # not polynomial in s
    origin = positivity.origin_value(analyse_dispersion(spec), 1.0, 2)
    assert origin.ratio < 0 and origin.log10_abs_p == pytest.approx(math.log10(1 / (4 * math.pi)), abs=1e-5)
    c1 = analyse(spec, repairs=False).condition("C1")
    assert c1.status == FAIL and c1.method.startswith("origin screen") and c1.witness["x"] == 0.0


def test_viscous_wave_in_one_dimension_is_undecided_not_guessed():
    report = analyse(spec_of("viscous_wave", 1))
    assert report.condition("C1").status == UNDECIDED and not report.s_generative
    assert any("C1 undecided" in w for w in report.warnings)


# ---------------------------------------------------------------------------------------------- prior, split
def test_priors_from_the_small_k_exponent():
    cases = {"diffusion": ("gaussian", 2.0, 1.0), "poisson": ("cauchy", 1.0, 1.0),
             "fractional": ("stable", 1.5, 1.0), "yukawa": ("gaussian", 2.0, 0.5), "pfgmpp": ("student_t", 1.0, None)}
    for name, (family, alpha, scale) in cases.items():
        prior = analyse(spec_of(name, 2)).prior
        assert (prior.family, prior.alpha) == (family, alpha), name
        if scale is not None:
            assert prior.scale == pytest.approx(scale, rel=1e-12), name
    hyper = analyse(spec_of("hyperdiffusion", 1)).prior
    assert hyper.family is None and hyper.alpha == 4.0


def test_reaction_classification():
    assert analyse(spec_of("damped_diffusion", 2)).density_split.reaction_kind == "uniform"
    assert analyse(spec_of("yukawa", 2)).density_split.reaction_kind == "spatially varying"
    assert analyse(spec_of("diffusion", 2)).density_split.reaction_kind == "none"


# ---------------------------------------------------------------------------------------------- outside catalogs
def test_rescaled_diffusion_is_recognised_from_its_kernel():
    report = analyse(make_spec([Term(1, 1), Term(3, 0, 1)], dim=2))  # u_t = 3 lap(u)
    assert report.s_generative
    assert any("kappa = 3" in e for e in report.equivalences)
    assert report.prior.scale == pytest.approx(3.0)


def test_combined_diffusion_and_half_laplacian():
    report = analyse(make_spec([Term(1, 1), Term(1, 0, 1), Term(1, 0, R(1, 2))], dim=3))  # u_t = lap u - (-lap)^1/2 u
    assert report.s_generative and report.condition("C1").method == "Bernstein certificate"
    assert report.prior.family == "cauchy"  # sqrt(s) dominates at small k


def test_third_order_pdes():
    ill_posed = analyse(make_spec([Term(1, 3), Term(1, 0, 1)]))  # u_ttt = lap u: a root ~ e^{i pi/3} k^(2/3)
    c0 = ill_posed.condition("C0")
    assert c0.status == FAIL and "Petrovskii" in c0.reason
    assert c0.witness["growth_exponent"] == pytest.approx(2 / 3, abs=1e-3)
    # (d_t + 1)(d_t + 2)(d_t - lap) u = 0: the density (d_t+1)(d_t+2)u excites only the diffusive branch
    factored = make_spec([Term(1, 3), Term(3, 2), Term(1, 2, 1), Term(2, 1), Term(3, 1, 1), Term(2, 0, 1)], dim=2)
    report = analyse(factored)
    assert report.s_generative and report.dispersion.semigroup_exponent == S
    assert any("rescaled diffusion, kappa = 1" in e for e in report.equivalences)


def test_backward_heat_fails_petrovskii():
    report = analyse(spec_of("backward_heat", 2))
    c0 = report.condition("C0")
    assert c0.status == FAIL and c0.method.startswith("structure, symbolic")
    assert c0.witness == {"k": 10, "re_lambda": 100.0, "growth_exponent": 2.0}


def test_damped_klein_gordon_depends_on_the_damping():
    """lambda^2 + 2 a lambda + s + m^2: overdamped (a > m) passes in 1-D, critically/underdamped fails C2."""
    over = analyse(make_spec([Term(1, 2), Term(4, 1), Term(1, 0, 1), Term(1, 0)]))  # a = 2, m = 1
    assert over.s_generative and over.condition("C1").method.startswith("Riemann")
    assert over.prior.large_k_gap == pytest.approx(math.sqrt(3), rel=1e-9)  # lambda*(0) + a
    under = analyse(make_spec([Term(1, 2), Term(1, 1), Term(1, 0, 1), Term(4, 0)]))  # a = 1/2, m = 2
    assert statuses(under)["C2"] == FAIL and statuses(under)["C0"] == FAIL  # mass oscillates too


def test_mixed_top_order_term_fails_c0_structurally():
    report = analyse(make_spec([Term(1, 2), Term(1, 2, 1), Term(1, 0, 1)]))  # u_tt - lap u_tt - lap u
    assert statuses(report) == {"C0": FAIL, "C1": UNDECIDED, "C2": UNDECIDED}
    assert report.dispersion is None and not report.s_generative


# ---------------------------------------------------------------------------------------------- free parameters
def test_free_parameters_decided_symbolically():
    kappa, Pk = parameter("kappa", None)
    report = analyse(make_spec([Term(1, 1), Term(kappa, 0, 1)], [Pk], dim=7))
    assert report.s_generative
    assert report.condition("C2").method == "symbolic" and report.condition("C1").method == "Bernstein certificate"
    assert any("kappa = kappa" in e for e in report.equivalences)


def test_free_parameters_decided_by_scaling():
    a, Pa = parameter("a", None)
    c, Pc = parameter("c", None)
    telegraph = [Term(1, 2), Term(2 * a, 1), Term(c**2, 0, 1)]
    assert analyse(make_spec(telegraph, [Pa, Pc], dim=1)).s_generative
    two = analyse(make_spec(telegraph, [Pa, Pc], dim=2))
    assert statuses(two)["C1"] == FAIL
    assert any("scaling" in w or "rescaling" in w for w in two.warnings)


def test_free_parameters_that_cannot_be_scaled_away_stay_undecided():
    a, Pa = parameter("a", None)
    m, Pm = parameter("m", None)
    report = analyse(make_spec([Term(1, 2), Term(2 * a, 1), Term(1, 0, 1), Term(m**2, 0)], [Pa, Pm]))
    assert UNDECIDED in statuses(report).values() and not report.s_generative
    assert all(c.reason for c in report.conditions)


# ---------------------------------------------------------------------------------------------- repairs
def test_repairs_carry_their_own_verdicts():
    wave = analyse(spec_of("wave", 1))
    by_name = {r.name: r for r in wave.repairs}
    assert by_name["add damping"].passes  # telegraph in 1-D
    rotation = by_name["imaginary time (t -> i t)"]
    assert rotation.passes and rotation.report.dispersion.problem_type == "augmented"  # Laplace: PFGM
    assert any("PFGM" in e for e in rotation.report.equivalences)

    wave3 = analyse(spec_of("wave", 3))
    names = {r.name: r.passes for r in wave3.repairs}
    assert names == {"add damping": False, "add damping, product construction": True,
                     "imaginary time (t -> i t)": True}

    kg = {r.name: r for r in analyse(spec_of("klein_gordon", 2)).repairs}
    yukawa = kg["imaginary time (t -> i t)"]
    assert yukawa.passes and any("Yukawa" in e for e in yukawa.report.equivalences)

    schrodinger = analyse(spec_of("schrodinger", 2)).repairs
    assert len(schrodinger) == 1 and schrodinger[0].passes
    assert sp.expand(schrodinger[0].spec.symbol() - (LAM + S)) == 0  # the heat equation


def test_to_dict_is_json_ready():
    for name in ("wave", "telegraph", "hyperdiffusion", "klein_gordon", "pfgmpp"):
        data = analyse(spec_of(name, 2)).to_dict()
        text = json.dumps(data, allow_nan=False)
        assert set(data) >= {"spec", "dispersion", "density_split", "conditions", "prior", "equivalences",
                             "repairs", "s_generative", "warnings", "timings_s"}
        assert json.loads(text)["conditions"][0]["name"] == "C0"


# ---------------------------------------------------------------------------------------------- through the parser
def test_through_the_parser():
    parse = pytest.importorskip("pde2gen.spec.parse").parse
    assert analyse(parse("wave+damping", dim=1)).s_generative
    assert not analyse(parse("wave+damping", dim=2), repairs=False).s_generative
    assert analyse(parse("u_t = lap(u)")).s_generative
    assert statuses(analyse(parse("hyperdiffusion", dim=3), repairs=False))["C1"] == FAIL

"""The subordinator_sum family (issue 12, composite kernels): f(s) = kappa s + sum_j kappa_j s^(alpha_j/2) +
sum_i c_i (sqrt(s + m_i^2) - m_i) with two or more non-Gaussian components. Its torch runtime (what generated modules
inline) is checked against computations that share none of its convolution machinery: the Fourier inversion of
exp(-t f(k^2)), closed forms (inverse Gaussians of one m add up to an inverse Gaussian, stables of one index to a
stable: the nig and stable families), a nested two-dimensional quadrature over the components' own laws, and the
continuity equation d/dt E phi(d_t) = E[grad phi . u]. Statistical checks state their false-alarm rate."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, special

from pde2gen.derive import reference
from pde2gen.families import FAMILIES, FamilyConfig, Shape
from pde2gen.families.reference_common import positive_stable
from pde2gen.families.subordinator_sum import NIG_SLOTS, PARAMETERS, STABLE_SLOTS

torch = pytest.importorskip("torch")

from pde2gen.families.subordinator_sum.runtime import SubordinatorSumFamily

R = sp.Rational
FALSE_ALARM = 1e-9  # per test (Bonferroni over its comparisons)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def params(kappa=0.0, stables=(), nigs=()):
    values = {name: 0.0 for name in PARAMETERS}
    values.update({f"alpha_{j}": 1.0 for j in range(1, STABLE_SLOTS + 1)})
    values["kappa"] = kappa
    for j, (coefficient, alpha) in enumerate(stables, 1):
        values[f"kappa_{j}"], values[f"alpha_{j}"] = coefficient, alpha
    for i, (c, m) in enumerate(nigs, 1):
        values[f"c_{i}"], values[f"m_{i}"] = c, m
    return values


def config(**kwargs):
    values = params(**kwargs)
    return FamilyConfig("subordinator_sum", tuple((name, values[name]) for name in PARAMETERS))


def symbol(kappa=0.0, stables=(), nigs=()):
    """f(s) as a NumPy function (written here from the definition, not from the family)."""
    def f(s):
        total = kappa * s
        for coefficient, alpha in stables:
            total = total + coefficient * s ** (alpha / 2)
        for c, m in nigs:
            total = total + c * (np.sqrt(s + m * m) - m)
        return total
    return f


# the examples (stable + stable, heat + two stables, stable + NIG, NIG + NIG) and a three-part mix
CASES = {
    "half+three_quarters": {"stables": [(1.0, 1.0), (1.0, 1.5)]},
    "heat+half+three_quarters": {"kappa": 1.0, "stables": [(1.0, 1.0), (1.0, 1.5)]},
    "three_quarters+nig": {"stables": [(1.0, 1.5)], "nigs": [(1.0, 1.0)]},
    "nig+nig": {"nigs": [(1.0, 1.0), (2.0, 2.0)]},
    "quarter+cauchy+nig": {"stables": [(0.5, 0.5), (1.0, 1.0)], "nigs": [(1.0, 0.5)]},
    "eighth+cauchy": {"stables": [(1.0, 0.25), (1.0, 1.0)]},  # a heavy part, p = 1/8 (table ~6000 nodes)
    "heat+cauchy+three_quarters": {"kappa": 1.0, "stables": [(1.0, 1.5)], "nigs": [(1.0, 0.0)]},  # Levy draws in logs
    "four_stables": {"stables": [(1.0, 0.5), (1.0, 0.75), (1.0, 1.0), (1.0, 1.25)]},  # four slots of one kind
}


@pytest.fixture(scope="module")
def runtimes():
    built = {}

    def get(name):
        if name not in built:
            built[name] = SubordinatorSumFamily(**params(**CASES[name]))
        return built[name]
    return get


def f64(values):
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


# ---------------------------------------------------------------------------------------------- recognition
def claimants(shape):
    return [name for name, info in FAMILIES.items() if info.recognise(shape) is not None]


@pytest.mark.parametrize("powers, nig", [
    ({R(1, 2): 1.0, R(3, 4): 1.0}, {}),  # s^(1/2) + s^(3/4)
    ({1: 1.0, R(1, 2): 1.0, R(3, 4): 1.0}, {}),  # s + s^(1/2) + s^(3/4)
    ({R(3, 4): 1.0}, {1.0: 1.0}),  # s^(3/4) + (sqrt(s + 1) - 1)
    ({}, {1.0: 1.0, 2.0: 2.0}),  # (sqrt(s + 1) - 1) + 2 (sqrt(s + 4) - 2)
    ({R(1, 8): 2.0, R(1, 2): 1.0, R(3, 4): 0.5}, {0.5: 1.0, 1.0: 1.0, 3.0: 1.0}),  # six components
])
def test_sums_of_two_or_more_non_gaussian_components_are_claimed_by_this_family_alone(powers, nig):
    shape = Shape("semigroup", powers=powers, nig=nig)
    assert claimants(shape) == ["subordinator_sum"]
    found, reason = FAMILIES["subordinator_sum"].recognise(shape)
    assert found["kappa"] == powers.get(1, 0.0)
    stables = sorted((found[f"alpha_{j}"] / 2, found[f"kappa_{j}"]) for j in range(1, STABLE_SLOTS + 1)
                     if found[f"kappa_{j}"] > 0)
    assert stables == sorted((float(p), c) for p, c in powers.items() if p != 1)
    assert sorted((found[f"m_{i}"], found[f"c_{i}"]) for i in range(1, NIG_SLOTS + 1)
                  if found[f"c_{i}"] > 0) == sorted(nig.items())
    assert "independent" in reason


@pytest.mark.parametrize("powers, nig, owner", [
    ({R(3, 4): 1.0}, {}, "stable"),
    ({1: 1.0, R(3, 4): 1.0}, {}, "heat_stable"),
    ({1: 1.0, R(1, 2): 1.0}, {}, "heat_nig"),
    ({}, {1.0: 1.0}, "nig"),
])
def test_one_non_gaussian_component_stays_with_its_own_family(powers, nig, owner):
    assert claimants(Shape("semigroup", powers=powers, nig=nig)) == [owner]


@pytest.mark.parametrize("powers, nig, fragment", [
    ({R(31, 32): 1.0, R(1, 2): 1.0}, {}, "1/32 <= p <= 15/16"),
    ({R(1, 64): 1.0, 1: 1.0, R(1, 2): 1.0}, {}, "s^(1/64) is outside"),
    ({R(1, 4): 1.0, R(3, 8): 1.0, R(1, 2): 1.0, R(5, 8): 1.0, R(3, 4): 1.0}, {}, "at most 4 fractional powers"),
])
def test_sums_beyond_the_tables_are_refused_with_the_limit(powers, nig, fragment):
    shape = Shape("semigroup", powers=powers, nig=nig)
    assert claimants(shape) == []
    assert fragment in FAMILIES["subordinator_sum"].refusal(shape)


def test_a_pde_with_heat_and_two_fractional_laplacians_derives_this_family():
    from pde2gen.analysis.analyse import analyse
    from pde2gen.derive.recognise import recognise
    from pde2gen.spec.parse import parse

    report = analyse(parse("u_t = lap(u) - fraclap(u, 1/2) - 2*fraclap(u, 3/4)", dim=2), repairs=False)
    assert report.s_generative
    family = recognise(report.dispersion).family
    assert family.name == "subordinator_sum"
    assert family.params == params(kappa=1.0, stables=[(1.0, 1.0), (2.0, 1.5)])


# ---------------------------------------------------------------------------------------------- the kernel
def fourier_density(f, t, r, N):
    """The kernel at radius r > 0 from exp(-t f(k^2)) alone: N = 1, (1/pi) int cos(k r) ghat dk; N = 3,
    (1 / (2 pi^2 r)) int k sin(k r) ghat dk (QAWF, Fourier integrals over [0, inf))."""
    if N == 1:
        value, _ = integrate.quad(lambda k: math.exp(-t * f(k * k)), 0, np.inf, weight="cos", wvar=r, limlst=200)
        return value / math.pi
    value, _ = integrate.quad(lambda k: k * math.exp(-t * f(k * k)), 0, np.inf, weight="sin", wvar=r, limlst=200)
    return value / (2 * math.pi**2 * r)


@pytest.mark.parametrize("name", ["half+three_quarters", "heat+half+three_quarters", "three_quarters+nig", "nig+nig",
                                  "eighth+cauchy", "four_stables"])
def test_log_kernel_is_the_fourier_inversion_of_exp_minus_t_f(name, runtimes):
    family = runtimes(name)
    f = symbol(**CASES[name])
    t = float(family.t_of_sigma(f64([1.0]))[0])
    worst = 0.0
    for N in (1, 3):
        radii = np.array([0.3, 1.0, 3.0]) * math.sqrt(N)
        d = np.zeros((len(radii), N))
        d[:, 0] = radii
        log_p = family.log_kernel(f64(d), f64(np.full(len(d), t))).numpy()
        exact = np.array([fourier_density(f, t, r, N) for r in radii])
        worst = max(worst, float(np.max(np.abs(np.exp(log_p) / exact - 1))))
    assert worst < 1e-6, worst


@pytest.mark.parametrize("parts, single", [
    ({"nigs": [(1.0, 1.0), (2.0, 1.0)]}, FamilyConfig("nig", (("c", 3.0), ("m", 1.0)))),
    ({"nigs": [(0.5, 0.0), (1.0, 0.0)]}, FamilyConfig("cauchy", (("c", 1.5),))),
    ({"stables": [(1.0, 1.5), (0.5, 1.5)]}, FamilyConfig("stable", (("kappa", 1.5), ("alpha", 1.5)))),
])
def test_components_of_one_law_add_up_to_that_law(parts, single):
    """IG(c1 t / m, (c1 t)^2) + IG(c2 t / m, (c2 t)^2) = IG((c1 + c2) t / m, ...), Levy likewise, and
    kappa1 s^(alpha/2) + kappa2 s^(alpha/2) is one stable symbol: the convolution tables must give the single
    family's kernel and posterior velocity (the posterior velocity depends on the law of V_t alone)."""
    family = SubordinatorSumFamily(**params(**parts))
    t = float(reference.t_of_sigma(single, 1.5))
    assert_kernel_and_velocity_of(family, single, t, np.random.default_rng(5), (1, 3, 3072), 1e-6)


def assert_kernel_and_velocity_of(family, single, t, rng, dims, tolerance):
    """The sum's log-kernel and posterior velocity at draws of the single family's law equal that family's (log p
    absolutely, the velocity relative to its largest value); returns the last draws and times."""
    for N in dims:
        d, _ = reference.sample(single, t, 40, N, rng)
        times = np.full(len(d), t)
        log_p = family.log_kernel(f64(d), f64(times)).numpy()
        assert np.max(np.abs(log_p - reference.log_kernel(single, d, times))) < tolerance
        velocity = family.conditional_velocity(f64(d), f64(times)).numpy()
        expected = reference.conditional_velocity(single, d, times)
        assert np.max(np.abs(velocity - expected)) < tolerance * np.max(np.abs(expected))
    return d, times


def test_inverse_gaussian_parts_stay_exact_where_their_law_narrows():
    """An inverse Gaussian's law of log X narrows as (m c t)^(-1/2): at sigma = 80 (m c t = 6400) its width is
    0.0125, a quarter of the table's spacing 0.05. The table's range starts at the part's own e^-80 point and its
    spacing is refined with m c t, so IG(t / m, t^2) + IG(2 t / m, 4 t^2) stays the single IG law of c = 3 (log p and
    velocity to 1e-8; it was 0.4 and 43% off)."""
    family = SubordinatorSumFamily(**params(nigs=[(1.0, 1.0), (2.0, 1.0)]))
    single = FamilyConfig("nig", (("c", 3.0), ("m", 1.0)))
    rng = np.random.default_rng(5)
    for sigma in (20.0, 80.0):
        t = float(reference.t_of_sigma(single, sigma))
        d, times = assert_kernel_and_velocity_of(family, single, t, rng, (1, 3072), 1e-8)
    twin = reference.log_kernel(config(nigs=[(1.0, 1.0), (2.0, 1.0)]), d, times)
    assert np.max(np.abs(twin - reference.log_kernel(single, d, times))) < 1e-8


SPACING = 0.02  # of the nested quadrature: 1/2.5 of the narrowest feature (the 1.5-stable lower tail at depth e^-40)


def nested_quadrature(kappa, stables, nigs, t, rho, N):
    """(log p(d), E[V_dot / (2 V) | d]) at |d| = rho for two components, by a two-dimensional trapezoid rule over
    w_j = log X_j with each component's own density (no convolution): the independent computation. Each axis runs
    from e^-200 in the lower tail to 30 nats above the scale (in N = 3, V^(-3/2) leaves < e^-40 beyond)."""
    grids, logs, rates = [], [], []
    for coefficient, alpha in stables:
        law = positive_stable(alpha / 2)
        log_scale = math.log(2) + (2 / alpha) * math.log(coefficient * t)
        gamma = alpha / (2 - alpha)
        w = np.arange(log_scale + (law.log_A0 - math.log(200.0)) / gamma, log_scale + 30.0, SPACING)
        grids.append(w)
        logs.append(law.log_pdf_of_log(w - log_scale) + w - log_scale)
        rates.append(np.full_like(w, 1 / alpha))
    for c, m in nigs:
        tau = c * t
        w = np.arange(math.log(tau * tau / 400), math.log(tau * tau) + 30.0, SPACING)
        x = np.exp(w)
        grids.append(w)
        logs.append(math.log(tau) - 0.5 * math.log(2 * math.pi) - 0.5 * w - (m * x - tau) ** 2 / (2 * x))
        rates.append(1 - m * np.sqrt(math.pi * x / 2) * special.erfcx((m * x + tau) / np.sqrt(2 * x)))
    (w1, w2), (l1, l2), (b1, b2) = grids, logs, rates
    x1, x2 = np.exp(w1)[:, None], np.exp(w2)[None, :]
    V = 2 * kappa * t + x1 + x2
    log_terms = l1[:, None] + l2[None, :] - 0.5 * N * np.log(2 * math.pi * V) - 0.5 * rho**2 / V
    log_p = special.logsumexp(log_terms) + 2 * math.log(SPACING)
    factor = (kappa * t + x1 * b1[:, None] + x2 * b2[None, :]) / (t * V)
    weights = np.exp(log_terms - special.logsumexp(log_terms))
    return log_p, float(np.sum(weights * factor))


@pytest.mark.parametrize("name", ["half+three_quarters", "heat+half+three_quarters", "three_quarters+nig"])
def test_kernel_and_posterior_velocity_match_a_nested_quadrature_over_the_components(name, runtimes):
    family = runtimes(name)
    case = CASES[name]
    t = float(family.t_of_sigma(f64([1.0]))[0])
    N = 3
    radii = np.array([0.2, 1.0, 4.0]) * math.sqrt(N)
    d = np.zeros((len(radii), N))
    d[:, 0] = radii
    times = f64(np.full(len(d), t))
    log_p = family.log_kernel(f64(d), times).numpy()
    factor = family.conditional_velocity(f64(d), times).numpy()[:, 0] / radii
    for i, rho in enumerate(radii):
        expected_log_p, expected_factor = nested_quadrature(case.get("kappa", 0.0), case.get("stables", []),
                                                            case.get("nigs", []), t, rho, N)
        assert abs(log_p[i] - expected_log_p) < 1e-6, (rho, log_p[i], expected_log_p)
        assert abs(factor[i] / expected_factor - 1) < 1e-6, (rho, factor[i], expected_factor)


@pytest.mark.parametrize("h", [0.05, 0.1 / 15])  # p <= 3/4 and p = 15/16 (the steepest lower tail taken)
def test_banded_interpolation_blocks_cover_the_whole_matrix(h):
    """The convolution reads its interpolation matrix (6 non-zeros per column) in blocks of at most 64 rows: the
    blocks must hold every non-zero, so that their products equal the dense product (runtime and twin alike)."""
    from pde2gen.families.subordinator_sum.reference import _ConvolutionPlan
    from pde2gen.families.subordinator_sum.runtime import SumConvolutionPlan

    for plan in (SumConvolutionPlan(h, "cpu"), _ConvolutionPlan(h)):
        weights = np.asarray(plan.weights)
        covered = np.zeros_like(weights, dtype=bool)
        for row_start, row_stop, column_start, column_stop in plan.blocks:
            assert row_stop - row_start <= 64
            covered[row_start:row_stop, column_start:column_stop] = True
        assert not np.any(weights[~covered])
        assert np.count_nonzero(covered) < 0.2 * covered.size or h == 0.05  # the saving at small h


def test_posterior_velocity_is_finite_where_the_tables_floor_out():
    """At d = 0 in N = 3072 the posterior sits on the table's lowest nodes, where density and flux are both floored
    (~e^-1500 of their peaks) and their ratio means nothing: the factor is held to its bound
    max(1/alpha_j, 1, 1/2) / t (E[V_dot / (2 V) | V] lies below it), so the velocity is 0, not NaN (p = 1/32)."""
    case = {"stables": [(1.0, 1 / 16), (1.0, 1.0)]}
    family = SubordinatorSumFamily(**params(**case))
    t = float(family.t_of_sigma(f64([1.0]))[0])
    d = np.zeros((2, 3072))
    d[1, 0] = 1e-3
    velocity = family.conditional_velocity(f64(d), f64(np.full(2, t))).numpy()
    assert np.all(velocity == np.where(d == 0, 0.0, velocity)) and np.all(np.isfinite(velocity))
    assert 0 < velocity[1, 0] / d[1, 0] <= 16 / t
    twin = reference.conditional_velocity(config(**case), d, np.full(2, t))
    assert np.all(np.isfinite(twin)) and abs(twin[1, 0] / velocity[1, 0] - 1) < 1e-6


# ---------------------------------------------------------------------------------------------- the log-t table
def exact_table(family, t):
    """The table at t by convolution at t itself (what every time had before the log-t table), normalised."""
    start, top = family._table_range(t)
    density, flux = family._exact_table(t, "cpu", start, top)
    return start, density - torch.logsumexp(density, 0) - math.log(family.h), flux


@pytest.mark.parametrize("case", [{"kappa": 1.0, "stables": [(1.0, 1.5)], "nigs": [(1.0, 0.0)]},  # the cost entry
                                  {"stables": [(1.0, 1.0), (1.0, 1.5)]}])
def test_tables_interpolated_in_log_t_give_the_exact_tables_kernel_and_velocity(case):
    """The runtime interpolates the law of log V in log t between exact tables at nodes; log p (relative to
    max(1, |log p|)) and the posterior velocity factor (relative) must match the exact per-t tables' to 1e-8 (measured
    <= 3e-9 from sigma = 0.002 to 80) at the kernel's probable radii, in N = 1 and 3072, at times off the nodes."""
    family = SubordinatorSumFamily(**params(**case))
    assert family.log_t_step is not None
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for sigma in (0.002, 0.7, 80.0):
        t = float(family.t_of_sigma(f64([sigma]))[0])
        start, density, flux = family._interpolated_table(t, "cpu")
        interpolated = (start, density - torch.logsumexp(density, 0) - math.log(family.h), flux)
        assert abs(math.log(t) / family.log_t_step % 1 - 0.5) < 0.49  # off the nodes
        for N in (1, 3072):
            d, _ = family.sample_displacement(torch.full((100,), t, dtype=torch.float64), (N,), generator=generator)
            spread = min(1.0, 10 / math.sqrt(N))
            rho2 = (d * d).sum(-1) * torch.exp(torch.linspace(-spread, spread, 100, dtype=torch.float64))
            family._tables[(t, "cpu")] = exact_table(family, t)
            log_p, factor = family._mixture_at(rho2, t, N, True)
            family._tables[(t, "cpu")] = interpolated
            log_p_table, factor_table = family._mixture_at(rho2, t, N, True)
            worst = max(worst, float(((log_p_table - log_p).abs() / log_p.abs().clamp_min(1)).max()),
                        float((factor_table / factor - 1).abs().max()))
    assert worst < 1e-8, worst


def test_velocity_at_many_distinct_times_builds_only_the_nodes_around_them(monkeypatch):
    """conditional_velocity without a latent at 64 distinct times: the exact convolution runs at the first time
    and at the six nodes around them (not once per time), and each row equals the same call made alone."""
    family = SubordinatorSumFamily(**params(kappa=1.0, stables=[(1.0, 1.5)], nigs=[(1.0, 0.0)]))
    built = []
    original = family._exact_table
    monkeypatch.setattr(family, "_exact_table", lambda t, *rest: built.append(t) or original(t, *rest))
    t0 = float(family.t_of_sigma(f64([1.0]))[0])
    step = family.log_t_step
    base = math.exp((math.floor(math.log(t0) / step) + 0.1) * step)  # 64 times inside one node interval
    times = base * torch.exp(torch.linspace(0, 0.8 * step, 64, dtype=torch.float64))
    d = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * math.sqrt(t0)
    velocity = family.conditional_velocity(d, times)
    assert len(built) == 7
    for i in (31, 63):  # (row 0 had the exact table of its own time: within 1e-8 of the interpolated one)
        alone = family.conditional_velocity(d[i:i + 1], times[i:i + 1])
        assert torch.allclose(alone, velocity[i:i + 1], rtol=1e-12, atol=0)
    scattered = SubordinatorSumFamily(**params(kappa=1.0, stables=[(1.0, 1.5)], nigs=[(1.0, 0.0)]))
    built.clear()
    exact = scattered._exact_table
    monkeypatch.setattr(scattered, "_exact_table", lambda t, *rest: built.append(t) or exact(t, *rest))
    scattered.conditional_velocity(d[:4], t0 * torch.exp(torch.arange(4, dtype=torch.float64)))  # 4 intervals
    assert len(built) == 4  # one exact table per time, no nodes


def test_sums_whose_parts_spread_over_many_powers_of_t_or_change_shape_keep_exact_tables():
    assert SubordinatorSumFamily(**params(stables=[(1.0, 0.25), (1.0, 1.0)])).log_t_step is None  # t^8 and t^2
    assert SubordinatorSumFamily(**params(nigs=[(1.0, 1.0), (2.0, 2.0)])).log_t_step is None  # m > 0
    assert SubordinatorSumFamily(**params(stables=[(1.0, 1.5)], nigs=[(1.0, 0.0)])).log_t_step == pytest.approx(
        1 / 8)  # t^(4/3) and t^2: spread 2/3, 1 / (12 spread) above the largest step


# ---------------------------------------------------------------------------------------------- draws and velocity
@pytest.mark.parametrize("name", ["heat+half+three_quarters", "three_quarters+nig", "quarter+cauchy+nig",
                                  "heat+cauchy+three_quarters"])
def test_draws_have_the_characteristic_function_and_the_radial_law(name, runtimes):
    """Empirical E cos(k d_1) against exp(-t f(k^2)) (Hoeffding: cosines in [-1, 1]) at three k, and the KS distance
    of |d| from the twin's radial law (DKW), all at false alarm FALSE_ALARM split over the four comparisons."""
    family = runtimes(name)
    f = symbol(**CASES[name])
    n, N = 20000, 2
    t = float(family.t_of_sigma(f64([1.0]))[0])
    d, latent = family.sample_displacement(torch.full((n,), t, dtype=torch.float64), (N,),
                                           generator=torch.Generator().manual_seed(11))
    assert latent.shape == (n, family.components)
    d = d.numpy()
    rate = FALSE_ALARM / 4
    bound = math.sqrt(2 * math.log(2 / rate) / n)
    for k in (0.3, 1.0, 3.0):
        assert abs(np.cos(k * d[:, 0]).mean() - math.exp(-t * f(k * k))) < bound, k
    rho = np.sort(np.linalg.norm(d, axis=1))
    cdf = reference.radial_cdf(config(**CASES[name]), rho, t, N)
    distance = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert distance < math.sqrt(math.log(2 / rate) / (2 * n)), distance


@pytest.mark.parametrize("name", ["heat+half+three_quarters", "three_quarters+nig", "nig+nig",
                                  "heat+cauchy+three_quarters"])
def test_coupled_velocity_satisfies_the_continuity_equation(name, runtimes):
    """d/dt E phi(d_t) = E[phi'(d) u] for phi = exp(-d^2 / (2 b^2)) in N = 1, b = sigma(t): the left side exactly from
    exp(-t f(k^2)) (Parseval), the right side from draws with their latent. phi'(d) u = -(d^2 / b^2) phi factor lies
    in [-(2/e) F, 0], F a bound of the factor (each component's X_dot / (2 X) <= max(1/alpha, 1) / t): Hoeffding at
    FALSE_ALARM. A coupling 10% off moves the right side by ~10%, several bounds."""
    family = runtimes(name)
    f = symbol(**CASES[name])
    t = float(family.t_of_sigma(f64([1.0]))[0])
    b = 1.0
    n = 200000
    d, latent = family.sample_displacement(torch.full((n,), t, dtype=torch.float64), (1,),
                                           generator=torch.Generator().manual_seed(3))
    u = family.conditional_velocity(d, torch.full((n,), t, dtype=torch.float64), latent).numpy()[:, 0]
    x = d.numpy()[:, 0]
    right = -(x / b**2) * np.exp(-x * x / (2 * b * b)) * u
    integral, _ = integrate.quad(lambda k: f(k * k) * math.exp(-t * f(k * k) - b * b * k * k / 2), 0, np.inf)
    left = -2 * b / math.sqrt(2 * math.pi) * integral
    alphas = [alpha for _, alpha in CASES[name].get("stables", [])]
    width = (2 / math.e) * max([1.0] + [1 / a for a in alphas]) / t
    assert abs(right.mean() - left) < width * math.sqrt(math.log(2 / FALSE_ALARM) / (2 * n)), (right.mean(), left)


def test_noise_level_is_monotone_and_inverted(runtimes):
    family = runtimes("quarter+cauchy+nig")
    times = torch.logspace(-8, 4, 25, dtype=torch.float64)
    sigma = family.sigma(times)
    assert bool((sigma[1:] > sigma[:-1]).all())
    assert torch.allclose(family.t_of_sigma(sigma), times, rtol=1e-12)
    step = 1e-6 * times
    slope = (family.sigma(times + step) - family.sigma(times - step)) / (2 * step)
    assert torch.allclose(family.dsigma_dt(times), slope, rtol=1e-6)


@pytest.mark.parametrize("case", [{"kappa": 1.0, "stables": [(1.0, 1.5)], "nigs": [(1.0, 0.0)]},
                                  {"stables": [(1.0, 0.125), (1.0, 1.0)]}, CASES["quarter+cauchy+nig"]])
def test_t_of_sigma_is_a_cubic_piece_and_one_newton_step(case, monkeypatch):
    """Inside its table (sigma from 1e-6 to 1e6) t_of_sigma evaluates sigma^2(t) once: the cubic Hermite piece of
    log t against log sigma^2 is within 1e-7 of the root (measured <= 2e-8, at p = 1/16), so one Newton step on
    the convex sigma^2(t) lands at rounding (1e-14 here; the 50-digit mpmath check is in
    tests/test_runtime_speed_paths.py)."""
    family = SubordinatorSumFamily(**params(**case))
    sigma = torch.logspace(-5.9, 5.9, 4001, dtype=torch.float64)
    root = family._newton_t_of_sigma2(sigma.square())
    family._inverse_table("cpu")  # built once per device (a Newton solve at its nodes)
    calls = []
    original = family._sigma2_and_slope
    monkeypatch.setattr(family, "_sigma2_and_slope", lambda t: calls.append(1) or original(t))
    t = family.t_of_sigma(sigma)
    assert len(calls) == 1
    assert float((t / root - 1).abs().max()) < 1e-14
    assert float((family._table_t_of_sigma2(sigma.square())[0] / root - 1).abs().max()) < 1e-7


def test_light_tailed_sums_pass_the_sampler_checks_with_their_second_moment():
    """Two inverse-Gaussian parts (light tails): the build's sampler checks include the mean of min(|d|^2, M) against
    its exact value E|d|^2 - int_M^inf P(|d|^2 > u) du, which needs the radial law's tail to vanish to 1e-13 (the
    convolution table's mass is normalised to 1); false alarm 1e-9 per build (pde2gen.derive.verify)."""
    from pde2gen.derive import verify

    family = config(**CASES["nig+nig"])
    checks = {check.name: check for check in verify.check_sampler(family, 2, np.random.default_rng(0))}
    assert "sampler_moments" in checks
    assert all(check.passed for check in checks.values()), checks
    t = float(reference.t_of_sigma(family, 1.0))
    assert 1 - reference.radial_cdf(family, np.array([60.0]), t, 3)[0] < 1e-13


@pytest.mark.slow  # a build with every self-check (~20 s) and the module's own tests (~1-2 min on one core)
def test_built_module_passes_its_own_tests(tmp_path):
    """`pde2gen build` of s^(1/2) + s^(3/4) in N = 2 runs the compiler's self-checks against the twin; the rendered
    module's tests (sampler against the Fourier transform, velocity transport, marginal velocity, finite values in
    float32 and float64, ...) then pass on the inlined runtime."""
    import subprocess
    import sys

    from pde2gen.build import build

    result = build("u_t = -fraclap(u, 1/2) - fraclap(u, 3/4)", tmp_path / "module", dim=2)
    assert result.derivation.family.name == "subordinator_sum"
    assert result.derivation.checks and all(check.passed for check in result.derivation.checks)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-m", "not slow",
         "tests/test_generated_process.py"],
        cwd=tmp_path / "module", capture_output=True, text=True, timeout=900, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-1500:]

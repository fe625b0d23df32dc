"""The NumPy reference runtime against independent mathematics: mpmath Bessel functions, Fourier inversion,
SciPy's inverse-Gaussian law, simulated Kac paths, the published PFGM++ facts, and the limits of physics.md §7.
"""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate, special, stats

from pde2gen.derive import reference
from pde2gen.families import FamilyConfig

GAUSSIAN = FamilyConfig("gaussian", (("kappa", 3.0),))
CAUCHY = FamilyConfig("cauchy", (("c", 0.5),))
STUDENT = FamilyConfig("student_t", (("c", 1.5), ("D", 6.0)))
NIG = FamilyConfig("nig", (("c", 1.2), ("m", 0.7)))
STABLE = FamilyConfig("stable", (("kappa", 2.0), ("alpha", 1.5)))
STABLE_HEAVY = FamilyConfig("stable", (("kappa", 0.7), ("alpha", 0.6)))
KAC = FamilyConfig("kac_product", (("a", 9.0), ("c", 3.0)))
ISOTROPIC = [GAUSSIAN, CAUCHY, STUDENT, NIG, STABLE, STABLE_HEAVY]
IDS = ["gaussian", "cauchy", "student_t", "nig", "stable", "stable_heavy"]


def ray(rho, N):
    d = np.zeros((len(rho), N))
    d[:, 0] = rho
    return d


# ---------------------------------------------------------------------------------------------- special functions
def exact_log_bessel_k(nu: float, x: float) -> float:
    """mpmath; half-integer orders (the N-dimensional Yukawa kernel) by the exact finite sum
    K_{n+1/2}(x) = sqrt(pi/2x) e^{-x} sum_k (n+k)! / (k! (n-k)!) (2x)^{-k}, where mp.besselk can take a minute."""
    with mp.workdps(30):
        if (2 * nu) % 2 == 1:
            n, x = int(nu - 0.5), mp.mpf(x)
            total = mp.fsum(mp.factorial(n + k) / (mp.factorial(k) * mp.factorial(n - k)) / (2 * x) ** k
                            for k in range(n + 1))
            return float(mp.log(mp.sqrt(mp.pi / (2 * x)) * total) - x)
        return float(mp.log(mp.besselk(nu, x)))


@pytest.mark.parametrize("nu", [0.5, 3.0, 50.5, 200.5, 1536.5])
def test_log_bessel_k_against_mpmath_at_every_order(nu):
    x = np.array([1e-6, 1e-2, 1.0, 30.0, 1e3, 1e5])
    exact = np.array([exact_log_bessel_k(nu, xi) for xi in x])
    assert np.max(np.abs(reference.log_bessel_k(nu, x) - exact) / np.maximum(np.abs(exact), 1.0)) < 1e-12


def test_positive_stable_half_is_the_levy_law():
    law = reference.positive_stable(0.5)  # E e^{-uS} = e^{-sqrt u}: f = x^{-3/2} e^{-1/(4x)} / (2 sqrt pi)
    w = np.linspace(-8.0, 40.0, 500)
    x = np.exp(w)
    assert np.max(np.abs(law.log_pdf_of_log(w) - (-1.5 * w - 1 / (4 * x) - math.log(2 * math.sqrt(math.pi))))) < 1e-11
    assert np.max(np.abs(law.cdf_of_log(w) - special.erfc(1 / (2 * np.sqrt(x))))) < 1e-11
    assert law.median() == pytest.approx(1 / (4 * special.erfcinv(0.5) ** 2), rel=1e-11)


@pytest.mark.parametrize("beta", [0.15, 0.3, 0.75, 0.95])
def test_positive_stable_density_has_the_stable_laplace_transform(beta):
    law = reference.positive_stable(beta)
    w = np.linspace(law.w_low - 20.0 / law.gamma, 60.0 / beta, 300001)
    density = np.exp(law.log_pdf_of_log(w) + w)
    for u in (0.1, 1.0, 5.0):
        with np.errstate(over="ignore"):
            laplace = integrate.trapezoid(density * np.exp(-u * np.exp(w)), w)
        assert laplace == pytest.approx(math.exp(-u**beta), rel=1e-9)


@pytest.mark.parametrize("beta", [0.3, 0.75])
def test_kanter_sampler_has_the_stable_laplace_transform(beta):
    draws = reference.positive_stable(beta).sample(200_000, np.random.default_rng(3))
    for u in (0.1, 1.0, 5.0):
        values = np.exp(-u * draws)
        assert abs(values.mean() - math.exp(-u**beta)) < 5 * values.std() / math.sqrt(len(draws))


# ---------------------------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("family", ISOTROPIC, ids=IDS)
def test_one_dimensional_kernel_is_the_fourier_inverse_of_ghat(family):
    t = 0.8
    x = np.array([0.0, 0.3, 1.7, 4.0])
    exact = []
    for xi in x:
        def integrand(k, xi=xi):
            return float(reference.characteristic_function(family, np.array([[k]]), t)[0]) * math.cos(k * xi) / math.pi
        exact.append(integrate.quad(integrand, 0, np.inf, limit=400, epsabs=1e-14)[0])
    assert np.exp(reference.log_kernel(family, x[:, None], t)) == pytest.approx(np.array(exact), rel=1e-7)


@pytest.mark.parametrize("family", ISOTROPIC, ids=IDS)
@pytest.mark.parametrize("N", [2, 3])
def test_kernel_in_n_dimensions_matches_its_radial_law(family, N):
    """d/d rho P(|d| <= rho) (finite differences of the radial law used for the KS tests) = |S| rho^{N-1} p."""
    t = 0.9
    scale = float(reference.sigma(family, t))
    rho = scale * np.array([0.2, 0.7, 1.5, 4.0])
    h = 1e-4 * rho
    derivative = (reference.radial_cdf(family, rho + h, t, N) - reference.radial_cdf(family, rho - h, t, N)) / (2 * h)
    density = np.exp(reference.log_sphere_area(N) + (N - 1) * np.log(rho) + reference.log_kernel(family, ray(rho, N), t))
    assert density == pytest.approx(derivative, rel=1e-6)


def test_nig_kernel_in_3072_dimensions_against_mpmath():
    N, t = 3072, 2.5
    rho = np.array([1.0, 20.0, 60.0, 400.0])
    c, m = NIG.params["c"], NIG.params["m"]
    tau = c * t
    half = mp.mpf(N + 1) / 2
    exact = [float(mp.log(2 * mp.e ** (m * tau) * (2 * mp.pi) ** -half * mp.mpf(m) ** half * tau
                          * mp.sqrt(r**2 + tau**2) ** -half * mp.besselk(half, m * mp.sqrt(r**2 + tau**2))))
             for r in rho]
    assert reference.log_kernel(NIG, ray(rho, N), t) == pytest.approx(np.array(exact), rel=1e-10)


def test_student_t_with_one_degree_of_freedom_is_cauchy():
    d = np.random.default_rng(0).standard_normal((50, 7)) * 3
    one = FamilyConfig("student_t", (("c", 0.5), ("D", 1.0)))
    assert reference.log_kernel(one, d, 1.3) == pytest.approx(reference.log_kernel(CAUCHY, d, 1.3), rel=1e-12)


def test_stable_with_alpha_one_is_cauchy():
    """Fractional alpha = 1 -> Cauchy, through the positive 1/2-stable (Levy) mixture and its quadrature."""
    stable = FamilyConfig("stable", (("kappa", 0.5), ("alpha", 1.0)))
    rng = np.random.default_rng(1)
    for N in (1, 3, 64):
        d = rng.standard_normal((40, N)) * np.exp(rng.uniform(-3, 3, (40, 1)))
        assert reference.log_kernel(stable, d, 0.8) == pytest.approx(reference.log_kernel(CAUCHY, d, 0.8), abs=1e-9)


def test_yukawa_with_vanishing_mass_is_pfgm():
    """NIG(c, m -> 0) -> Cauchy(c): Yukawa's kernel tends to PFGM's (physics.md §4.2)."""
    light = FamilyConfig("nig", (("c", 0.5), ("m", 1e-9)))
    d = np.random.default_rng(2).standard_normal((30, 5)) * 2
    assert reference.log_kernel(light, d, 1.1) == pytest.approx(reference.log_kernel(CAUCHY, d, 1.1), abs=1e-7)


def test_yukawa_at_large_mt_is_gaussian_with_variance_t_over_m():
    m, t = 50.0, 2e4  # m t = 1e6: IG relative spread 1/sqrt(m t) = 1e-3
    heavy = FamilyConfig("nig", (("c", 1.0), ("m", m)))
    gauss = FamilyConfig("gaussian", (("kappa", 1.0 / (2 * m)),))  # variance 2 kappa t = t / m
    d = np.random.default_rng(3).standard_normal((40, 4)) * math.sqrt(t / m)
    assert np.max(np.abs(reference.log_kernel(heavy, d, t) - reference.log_kernel(gauss, d, t))) < 5e-3
    assert reference.mean_square_radius(heavy, t, 4) == pytest.approx(4 * t / m)


# ---------------------------------------------------------------------------------------------- samplers
def test_michael_schucany_haas_draws_the_inverse_gaussian():
    t = 1.7
    tau, m = NIG.params["c"] * t, NIG.params["m"]
    _, V = reference.sample(NIG, t, 50_000, 1, np.random.default_rng(4))
    mu, shape = tau / m, tau**2
    assert stats.kstest(V, stats.invgauss(mu / shape, scale=shape).cdf).pvalue > 1e-3


@pytest.mark.parametrize("family", ISOTROPIC, ids=IDS)
def test_sampler_radius_follows_the_radial_law(family):
    rng = np.random.default_rng(5)
    for N in (1, 5):
        d, _ = reference.sample(family, 0.6, 20_000, N, rng)
        rho = np.sort(np.linalg.norm(d, axis=1))
        grid = np.quantile(rho, np.linspace(0, 1, 201))
        cdf = np.interp(rho, grid, reference.radial_cdf(family, grid, 0.6, N))
        assert stats.kstest(rho, lambda r, cdf=cdf, rho=rho: np.interp(r, rho, cdf)).pvalue > 1e-4


def test_kac_sampler_matches_simulated_paths():
    """Poisson + Beta draws against the Kac process itself: velocity +-c flipping at rate a."""
    a, c, t = KAC.params["a"], KAC.params["c"], 0.3
    rng = np.random.default_rng(6)
    n = 40_000
    position = np.zeros(n)
    clock = np.zeros(n)
    direction = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    running = np.ones(n, bool)
    while running.any():
        step = rng.exponential(1 / a, n)
        step = np.where(running, np.minimum(step, t - clock), 0.0)
        position += c * direction * step
        clock += step
        running &= clock < t
        direction = np.where(running, -direction, direction)
    drawn, atoms = reference.sample(KAC, t, n, 1, rng)
    assert stats.ks_2samp(drawn[:, 0], position).pvalue > 1e-3
    assert np.mean(atoms != 0) == pytest.approx(math.exp(-a * t), abs=5 * math.sqrt(math.exp(-a * t) / n))
    variance = c**2 / a * (t - (1 - math.exp(-2 * a * t)) / (2 * a))  # Var K_t (physics.md §4.5)
    for sample in (drawn[:, 0], position):
        squares = sample**2
        assert abs(squares.mean() - variance) < 4.5 * squares.std() / math.sqrt(n)


def test_kac_atoms_sit_at_the_light_cone_with_mass_exp_minus_at():
    a, c, t = KAC.params["a"], KAC.params["c"], 0.15
    d, atoms = reference.sample(KAC, t, 30_000, 3, np.random.default_rng(7))
    on = atoms != 0
    assert np.all(d[on] == atoms[on] * c * t)
    assert np.all(np.abs(d[~on]) < c * t)
    p = math.exp(-a * t)
    assert abs(on.mean() - p) < 5 * math.sqrt(p * (1 - p) / on.size)
    # the a.c. part carries 1 - e^{-at}, and the atoms e^{-at}/2 each
    x, w = np.polynomial.legendre.leggauss(200)
    continuous = np.sum(w * c * t * np.exp(reference.log_kernel(KAC, (c * t * x)[:, None], t)))
    assert continuous == pytest.approx(1 - p, rel=1e-12)
    assert reference.log_kernel(KAC, np.array([[c * t]]), t)[0] == pytest.approx(math.log(p / 2), rel=1e-14)


def test_kac_velocity_is_bounded_by_c_and_jumps_at_the_front():
    a, c, t = KAC.params["a"], KAC.params["c"], 0.4
    x = np.linspace(-c * t, c * t, 2001)[1:-1]
    v = reference.conditional_velocity(KAC, x[:, None], t)[:, 0]
    assert np.all(np.abs(v) < np.abs(x) / t + 1e-15) and np.all(np.abs(v) < c)
    front = reference.conditional_velocity(KAC, np.array([[c * t * (1 - 1e-10)]]), t)[0, 0]
    assert front == pytest.approx(c * t / (t + 2 / a), rel=1e-8)  # the a.c. limit, below c
    atoms = np.array([[1.0, -1.0]])
    assert np.all(reference.conditional_velocity(KAC, np.array([[c * t, -c * t]]), t, atoms) == atoms * c)


def test_kac_velocity_tends_to_the_heat_velocity():
    """a, c -> infinity with c^2/a fixed: v -> x / (2t) (physics.md §4.5)."""
    fast = FamilyConfig("kac_product", (("a", 1e6), ("c", 1e3)))
    x = np.array([[0.3], [1.0], [-2.0]])
    assert reference.conditional_velocity(fast, x, 1.0)[:, 0] == pytest.approx(x[:, 0] / 2.0, rel=1e-5)


def test_kac_characteristic_function_is_finite_at_k_equal_a_over_c():
    a, c = KAC.params["a"], KAC.params["c"]
    k = a / c * np.array([1 - 1e-12, 1.0, 1 + 1e-12])[:, None]
    values = reference.characteristic_function(KAC, k, 0.7)
    assert np.all(np.isfinite(values))
    assert values == pytest.approx(math.exp(-a * 0.7) * (1 + a * 0.7), rel=1e-9)  # W = 0: cosh -> 1, sinh/W -> t



@pytest.mark.parametrize("a", [100.0, 1e4])
def test_kac_characteristic_function_has_no_cancellation_at_large_rates(a):
    """c k << a: W - a = -c^2 k^2 / (a + W) loses no digits, so e^{t (W - a)} holds at t ~ a sigma^2 / c^2 (sigma = 40):
    written as W - a, the rounding of W (eps a) times t made a = 100 miss the PDE's ghat by 1.7e-9 and fail a build."""
    c = 1.0
    family = FamilyConfig("kac_product", (("a", a), ("c", c)))
    t = a * 40.0**2 / c**2
    k = np.array([[1e-3], [1e-2], [0.05], [0.3]]) * math.sqrt(a / t) / c  # |W - a| t of order 1e-6 .. 1
    values = reference.characteristic_function(family, k, t)
    with mp.workdps(40):
        for value, kk in zip(values, k[:, 0]):
            W = mp.sqrt(mp.mpf(a) ** 2 - (c * mp.mpf(float(kk))) ** 2)
            exact = mp.exp(-a * mp.mpf(t)) * (mp.cosh(W * t) + a * mp.sinh(W * t) / W)
            assert abs(value - exact) < 1e-13 * abs(exact)


@pytest.mark.parametrize("sigma", [1.0, 40.0])
def test_nig_radial_cdf_keeps_its_tail_digits_for_a_heavy_mass(sigma):
    """Yukawa m = 100: V ~ IG(c t / m, (c t)^2) is nearly deterministic (m c t >= 1e4), so |d|^2 / V is chi^2_2 and the
    moment check's E min(|d|^2, M) with M = 6 E|d|^2 is M (1 - e^-6) / 6. Its tail P(|d| > r) far out must keep
    its digits: with the CDF summed as cdf @ w, 1 - cdf stuck at 1.6e-13, which the check's former tail integral
    (E|d|^2 minus int_M^oo P(|d|^2 > u) du) multiplied by e^v up to e^60 (Yukawa m = 100 did not build)."""
    from pde2gen.derive import verify

    family = FamilyConfig("nig", (("c", 1.0), ("m", 100.0)))
    t = float(reference.t_of_sigma(family, sigma))
    M = verify.TRUNCATION * reference.mean_square_radius(family, t, 2)
    assert verify._truncated_square_mean(family, t, 2, M) / M == pytest.approx((1.0 - math.exp(-6.0)) / 6.0, rel=1e-4)
    assert 1.0 - reference.radial_cdf(family, np.array([10.0 * math.sqrt(M)]), t, 2)[0] < 1e-15

# ---------------------------------------------------------------------------------------------- velocities
def test_nig_quantile_velocity_matches_finite_differences_of_the_quantile():
    """V_t = F_t^{-1}(U) for fixed U: dV/dt by finite differences against u = (d/t) [1 - m sqrt(pi V/2) erfcx]."""
    c, m = NIG.params["c"], NIG.params["m"]
    U = np.array([0.05, 0.3, 0.5, 0.8, 0.97])

    def quantile(t):
        tau = c * t
        return stats.invgauss((tau / m) / tau**2, scale=tau**2).ppf(U)

    t, h = 1.3, 1e-5
    V = quantile(t)
    rate = (quantile(t + h) - quantile(t - h)) / (2 * h) / (2 * V)  # (dV/dt) / (2V): d = sqrt(V) eps
    d = np.sqrt(V)[:, None] * np.ones((1, 2))
    u = reference.conditional_velocity(NIG, d, t, latent=V)
    assert u[:, 0] / d[:, 0] == pytest.approx(rate, rel=1e-6)


@pytest.mark.parametrize("family", ISOTROPIC, ids=IDS)
def test_transport_back_in_time_preserves_the_marginals(family):
    rng = np.random.default_rng(8)
    start, latent = reference.sample(family, 1.6, 20_000, 2, rng)
    moved, _ = reference.transport(family, start, 1.6, 0.8, latent, steps=16)
    fresh, _ = reference.sample(family, 0.8, 20_000, 2, rng)
    assert stats.ks_2samp(np.linalg.norm(moved, axis=1), np.linalg.norm(fresh, axis=1)).pvalue > 1e-4


def test_marginal_velocity_softmax_equals_power_weights():
    """Gaussian kernel, point-mass data: sum_j w_j (x - y_j)/(2t) with w_j ∝ exp(-|x - y_j|^2 / 4t)."""
    rng = np.random.default_rng(9)
    data = rng.standard_normal((7, 3))
    x = rng.standard_normal((5, 3)) * 2
    t = 0.2
    kappa = GAUSSIAN.params["kappa"]
    diff = x[:, None, :] - data[None, :, :]
    weights = np.exp(-np.sum(diff**2, axis=2) / (4 * kappa * t))
    weights /= weights.sum(axis=1, keepdims=True)
    expected = np.einsum("ij,ijn->in", weights, diff) / (2 * t)
    assert reference.marginal_velocity(GAUSSIAN, x, t, data) == pytest.approx(expected, rel=1e-12)


# The velocity plot's data (pde2gen.report.plots.MIXTURE_2D): the light cones of these points overlap from t ~ 0.3 on.
KAC_DATA = np.array([[-1.0, -0.6], [1.2, 0.9], [0.9, -1.1], [-0.8, 1.3]])


def kac_posterior_velocity(point, t, data):
    """The exact Kac marginal velocity at one point, written out: per coordinate the law of d = x - y is a
    Dirac atom e^{-at}/2 at +-c t (moving at +-c) plus the density (a e^{-at}/2c)[I0(z) + (c t/r) I1(z)]
    inside the cone (moving at d / (t + (r/c) I0(z)/I1(z))), and nothing outside.  A data point's weight is
    the product over coordinates; a point on k atoms is produced only by the data points that put it on the
    most atoms (a Dirac outweighs any density), weighted by their masses times densities."""
    a, c = KAC.params["a"], KAC.params["c"]
    front = c * t
    candidates = []
    for y in data:
        deltas, weight, velocity = 0, 1.0, []
        for d in point - y:
            if abs(abs(d) - front) <= 1e-9 * front:
                deltas, weight = deltas + 1, weight * math.exp(-a * t) / 2
                velocity.append(math.copysign(c, d))
            elif abs(d) < front:
                r = math.sqrt(front**2 - d**2)
                z = a * r / c
                weight *= a * math.exp(-a * t) / (2 * c) * (special.iv(0, z) + front / r * special.iv(1, z))
                velocity.append(d / (t + r / c * special.iv(0, z) / special.iv(1, z)))
            else:
                weight = 0.0
                break
        if weight > 0:
            candidates.append((deltas, weight, np.array(velocity)))
    most = max(deltas for deltas, _, _ in candidates)
    weights = np.array([w for deltas, w, _ in candidates if deltas == most])
    velocities = np.array([v for deltas, _, v in candidates if deltas == most])
    return weights @ velocities / weights.sum(), len(candidates) > len(weights)


@pytest.mark.parametrize("t", [0.001, 0.01, 0.1, 0.5, 2.0])
def test_kac_marginal_velocity_weighs_atoms_and_light_cones_exactly(t):
    """Points drawn around four data points, many exactly on the atoms: |v_i| <= c and the written-out
    posterior (a coordinate outside a data point's cone excludes it; atoms outweigh densities)."""
    c = KAC.params["c"]
    rng = np.random.default_rng(13)
    d, atoms = reference.sample(KAC, t, 300, 2, rng)
    x = KAC_DATA[rng.integers(len(KAC_DATA), size=300)] + d
    v = reference.marginal_velocity(KAC, x, t, KAC_DATA)
    assert np.all(np.abs(v) <= c * (1 + 1e-12))
    expected, outweighed = zip(*(kac_posterior_velocity(point, t, KAC_DATA) for point in x))
    assert v == pytest.approx(np.array(expected), rel=1e-9, abs=1e-12)
    if t == 0.5:  # the case of an atom of one data point inside the cone of another was drawn
        assert np.any(np.array(outweighed) & (atoms != 0).any(axis=1))
    if t <= 0.01:  # nearly every coordinate sits on an atom: moves with its front, c d / (c t) = +-c (to rounding)
        assert np.mean(np.isclose(np.abs(v), c, rtol=1e-12, atol=0)) > 0.9


def test_kac_exact_flow_from_the_prior_lands_on_the_data():
    """RK4 of the marginal velocity (pde2gen.report.plots.exact_flow) on the plot's EDM time grid for the catalog's
    kac (sigma 80 -> 0.002, rho = 7): the flow ends on the data points. (Steps are not bounded by c: a coordinate
    that a step carried beyond its front moves back at c d / (c t).)"""
    from types import SimpleNamespace

    from pde2gen.report.plots import exact_flow, time_grid

    times = time_grid(SimpleNamespace(family=KAC, sigma_max=80.0, sigma_min=0.002, rho=7.0), 48)
    rng = np.random.default_rng(14)
    start = KAC_DATA[rng.integers(len(KAC_DATA), size=40)] + reference.sample(KAC, times[0], 40, 2, rng)[0]
    path = exact_flow(KAC, KAC_DATA, start, times)
    distance = np.min(np.linalg.norm(path[-1][:, None] - KAC_DATA[None], axis=2), axis=1)
    assert np.mean(distance < 0.1) >= 0.9


# ---------------------------------------------------------------------------------------------- PFGM++ facts
@pytest.mark.parametrize("D, ratio", [(64, 1.0323), (128, 1.0159), (2048, 1.0010)])
def test_pfgmpp_mean_square_distance(D, ratio):
    """E|x - y|^2 = N sigma^2 D/(D-2) with sigma = r / sqrt(D) (PFGM++ time r, c = 1)."""
    family = FamilyConfig("student_t", (("c", 1.0), ("D", float(D))))
    N, r = 3072, 5.0
    sigma = float(reference.sigma(family, r))
    assert sigma == pytest.approx(r / math.sqrt(D))
    assert reference.mean_square_radius(family, r, N) / (N * sigma**2) == pytest.approx(ratio, abs=5e-5)
    d, _ = reference.sample(family, r, 2000, N, np.random.default_rng(D))
    square = np.sum(d * d, axis=1) / (N * sigma**2)
    assert abs(square.mean() - D / (D - 2)) < 5 * square.std() / math.sqrt(len(square))


@pytest.mark.parametrize("D", [64, 2048])
def test_pfgmpp_radius_follows_f_distribution(D):
    """R^2 / (N sigma^2) ~ F(N, D)."""
    family = FamilyConfig("student_t", (("c", 1.0), ("D", float(D))))
    N, r = 3072, 2.0
    d, _ = reference.sample(family, r, 4000, N, np.random.default_rng(10 + D))
    ratio = np.sum(d * d, axis=1) / (N * float(reference.sigma(family, r)) ** 2)
    assert stats.kstest(ratio, stats.f(N, D).cdf).pvalue > 1e-3


# ---------------------------------------------------------------------------------------------- noise alignment
@pytest.mark.parametrize("family, sigma_of_t", [
    (GAUSSIAN, lambda t: math.sqrt(2 * 3.0 * t)),
    (CAUCHY, lambda t: 0.5 * t),
    (STUDENT, lambda t: 1.5 * t / math.sqrt(6.0)),
    (NIG, lambda t: 1.2 * t / math.sqrt(1 + 0.7 * 1.2 * t)),
    (KAC, lambda t: math.sqrt(9.0 / 9.0 * (t - (1 - math.exp(-18 * t)) / 18))),
], ids=["gaussian", "cauchy", "student_t", "nig", "kac"])
def test_sigma_formulas_and_inverse(family, sigma_of_t):
    times = np.array([1e-4, 0.03, 1.0, 40.0, 3000.0])
    assert reference.sigma(family, times) == pytest.approx([sigma_of_t(t) for t in times], rel=1e-12)
    assert reference.t_of_sigma(family, reference.sigma(family, times)) == pytest.approx(times, rel=1e-12)


def test_stable_sigma_is_the_median_scale():
    """sigma = sqrt(2 median S) (kappa t)^{1/alpha}: the median of V = 2 (kappa t)^{2/alpha} S is sigma^2."""
    t = 0.7
    _, kappa, alpha = None, STABLE.params["kappa"], STABLE.params["alpha"]
    S = reference.positive_stable(alpha / 2).sample(200_000, np.random.default_rng(11))
    V = 2 * (kappa * t) ** (2 / alpha) * S
    assert np.median(V) == pytest.approx(float(reference.sigma(STABLE, t)) ** 2, rel=0.01)

"""The torch runtime of every kernel family (pde2gen/families/<name>/runtime.py): samplers against SciPy / closed-form laws,
log-kernels against SciPy log-densities and quadrature, velocities that transport the law, special functions
with gradients, and numerical robustness (tiny/huge t, N = 3072, float32/float64, the Kac cone)."""
import importlib
import importlib.util
import itertools
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

torch = pytest.importorskip("torch")

import pde2gen.families.runtime_common as common
from pde2gen.codegen.render import runtime_source
from pde2gen.families.cauchy.runtime import CauchyFamily
from pde2gen.families.gaussian.runtime import GaussianFamily
from pde2gen.families.heat_nig.runtime import HeatNIGFamily
from pde2gen.families.kac_product.runtime import KacProductFamily
from pde2gen.families.nig.runtime import NIGFamily
from pde2gen.families.stable.runtime import StableFamily
from pde2gen.families.student_t.runtime import StudentTFamily

KS_ALPHA = 1e-3  # p-value below which a law is rejected; every test uses fixed seeds
F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These tests run many small tensor operations, where intra-op threads only add synchronisation (and,
    on a loaded machine, scheduling stalls); the previous setting is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def full(value, size, dtype=F64):
    return torch.full((size,), float(value), dtype=dtype)


def push_back(family, d, t_from, t_to, steps=100):
    """Integrate dd/dt = conditional_velocity(d, t) (no latent) from t_from down to t_to: RK4 in log t."""
    log_t = np.linspace(math.log(t_from), math.log(t_to), steps + 1)

    def rate(x, log_time):  # dd/dlog t = t u
        t = full(math.exp(log_time), x.shape[0], x.dtype)
        return math.exp(log_time) * family.conditional_velocity(x, t)

    for a, b in itertools.pairwise(log_t):
        h = b - a
        k1 = rate(d, a)
        k2 = rate(d + h / 2 * k1, a + h / 2)
        k3 = rate(d + h / 2 * k2, a + h / 2)
        k4 = rate(d + h * k3, b)
        d = d + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return d


FAMILIES = {
    "gaussian": lambda: GaussianFamily(kappa=0.7),
    "cauchy": lambda: CauchyFamily(c=1.3),
    "student_t": lambda: StudentTFamily(c=2.0, D=7.0),
    "student_t_inf": lambda: StudentTFamily(c=2.0, D=float("inf")),
    "nig": lambda: NIGFamily(c=1.3, m=0.8),
    "stable": lambda: StableFamily(kappa=0.6, alpha=1.4),
    "kac_product": lambda: KacProductFamily(a=9.0, c=3.0),
}
FAMILIES_BY_CLASS = {
    cls.__name__: cls for cls in (GaussianFamily, CauchyFamily, StudentTFamily, NIGFamily, StableFamily, KacProductFamily,
                                  HeatNIGFamily)
}


# ------------------------------------------------------------------------------------------------
# common: random draws, Gamma


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_standard_normal_in_chunks_draws_what_one_randn_call_draws(dtype):
    """standard_normal fills large CPU tensors chunk by chunk (cache-sized, faster); the draws and the generator's
    state afterwards are those of one torch.randn call, for sizes on and off the chunk and 16-entry boundaries."""
    chunk = common.NORMAL_CHUNK_ELEMENTS
    for shape in ((3, chunk), (5, chunk + 15), (2 * chunk + 7,), (100, 3 * chunk + 5), (7,)):
        expected, drawn = generator(4), generator(4)
        reference = torch.randn(shape, dtype=dtype, generator=expected)
        assert torch.equal(common.standard_normal(shape, dtype, torch.device("cpu"), drawn), reference), shape
        assert torch.equal(torch.rand(3, generator=drawn), torch.rand(3, generator=expected)), shape


@pytest.mark.parametrize("shape", [0.05, 0.5, 3.7, 1024.0])
def test_gamma_sampler_matches_scipy(shape):
    draws = common.sample_gamma(full(shape, 20000), generator(1))
    assert draws.dtype == F64 and bool((draws > 0).all())
    assert stats.kstest(draws.numpy(), stats.gamma(shape).cdf).pvalue > KS_ALPHA


def test_poisson_bucket_table_agrees_with_direct_inversion():
    rate = torch.tensor([0.0, 0.3, 2.5, 9.0, 40.0, 2500.0], dtype=F64)
    start, size = common.poisson_window(rate)
    assert start.tolist()[:5] == [0] * 5 and int(start[5]) == 2500 - 650 - 10
    cdf = common.poisson_cdf(rate, start, size)
    np.testing.assert_allclose(cdf[:, -1].numpy(), 1.0, rtol=1e-13)
    np.testing.assert_allclose(cdf[5, 650].numpy(), stats.poisson(2500.0).cdf(2500 - 10), rtol=1e-12)
    low, high = common.poisson_bucket_counts(cdf, 1024)
    u = torch.rand(6, 20000, dtype=F64, generator=generator(3))
    direct = torch.searchsorted(cdf, u, right=True)
    bucket = (u * 1024).long()
    lookup, upper = low.gather(1, bucket), high.gather(1, bucket)
    assert bool((lookup <= direct).all()) and bool((direct <= upper).all())
    is_pure = lookup == upper
    assert torch.equal(lookup[is_pure], direct[is_pure]) and float(is_pure.double().mean()) > 0.9
    mixed = (~is_pure).nonzero(as_tuple=True)
    searched = common.poisson_search(cdf, mixed[0], lookup[mixed], upper[mixed], u[mixed])
    assert torch.equal(searched, direct[mixed])
    assert bool((high[0] == 0).all()) and bool((low[0] == 0).all())  # rate 0: always n = 0


def test_uniform_open_excludes_end_points():
    u = common.uniform_open((200000,), torch.float32, torch.device("cpu"), generator(4))
    assert bool((u > 0).all()) and bool((u < 1).all())
    bits = common.random_bits31((100000,), torch.device("cpu"), generator(5))
    assert bits.dtype == torch.int32 and int(bits.min()) >= 0
    assert abs(float(((bits >> 30) & 1).float().mean()) - 0.5) < 0.01  # the top bit is used


# ------------------------------------------------------------------------------------------------
# common: special functions


@pytest.mark.parametrize(
    "function, reference",
    [
        (common.bessel_k0, special.k0),
        (common.bessel_k1, special.k1),
        (common.bessel_k0e, special.k0e),
        (common.bessel_k1e, special.k1e),
    ],
)
def test_bessel_k_functions_values_and_gradients(function, reference):
    x = torch.tensor([1e-3, 0.2, 1.0, 3.7, 25.0, 90.0], dtype=F64, requires_grad=True)
    value = function(x)
    assert value.requires_grad  # the torch.special versions silently drop grad_fn on torch 2.13
    np.testing.assert_allclose(value.detach().numpy(), reference(x.detach().numpy()), rtol=1e-13)
    assert torch.autograd.gradcheck(function, (x,), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(function, (x,))
    step = 1e-6 * x.detach()
    finite_difference = (reference((x.detach() + step).numpy()) - reference((x.detach() - step).numpy())) / (2 * step.numpy())
    (grad,) = torch.autograd.grad(value.sum(), x)
    np.testing.assert_allclose(grad.numpy(), finite_difference, rtol=1e-6)
    batched = torch.func.vmap(function)(x.detach().reshape(2, 3))  # generated vmap rule
    np.testing.assert_allclose(batched.reshape(-1).numpy(), value.detach().numpy(), rtol=1e-15)


@pytest.mark.parametrize("order", [0.0, 0.5, 1.0, 1.5, 2.0, 7.5, 15.0, 15.5, 16.0, 16.5, 100.0, 1536.5])
def test_log_bessel_k_matches_mpmath(order):
    mpmath = pytest.importorskip("mpmath")
    x = torch.tensor([1e-12, 1e-3, 0.3, 1.0, 7.0, 50.0, 800.0, 1e5], dtype=F64)
    got = common.log_bessel_k(order, x)
    expected = torch.tensor([float(mpmath.log(mpmath.besselk(order, v))) for v in x.tolist()], dtype=F64)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=3e-11, atol=1e-12)  # Debye: < 3e-11


def test_log_bessel_k_is_differentiable():
    x = torch.tensor([0.05, 1.0, 30.0, 2000.0], dtype=F64, requires_grad=True)
    for order in (1.0, 2.5, 40.0):
        assert torch.autograd.gradcheck(lambda v, order=order: common.log_bessel_k(order, v), (x,))
    # d/dx log K_nu = -(K_{nu-1} + K_{nu+1}) / (2 K_nu)
    order = 3.0
    (grad,) = torch.autograd.grad(common.log_bessel_k(order, x).sum(), x)
    v = x.detach().numpy()
    expected = -(special.kve(order - 1, v) + special.kve(order + 1, v)) / (2 * special.kve(order, v))
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-10)


def test_i1e_over_x_is_smooth_at_zero():
    x = torch.tensor([0.0, 1e-8, 5e-3, 0.0099, 0.0101, 0.5, 30.0], dtype=F64, requires_grad=True)
    value = common.i1e_over_x(x)
    v = x.detach().numpy()
    expected = np.where(v > 0, special.i1e(v) / np.where(v > 0, v, 1), 0.5)
    np.testing.assert_allclose(value.detach().numpy(), expected, rtol=1e-14)
    (grad,) = torch.autograd.grad(value.sum(), x)
    assert bool(torch.isfinite(grad).all())
    assert abs(float(grad[0]) + 0.5) < 1e-12  # d/dx [e^-x I1(x)/x] at 0 = -1/2


def test_gauss_legendre_is_exact_for_polynomials():
    points, weights = common.gauss_legendre(12)
    for degree in range(24):
        expected = 0.0 if degree % 2 else 2 / (degree + 1)
        assert abs(float((weights * points**degree).sum()) - expected) < 1e-13


# ------------------------------------------------------------------------------------------------
# gaussian


def test_gaussian_sampler_and_log_kernel():
    family = GaussianFamily(kappa=0.7)
    d, latent = family.sample_displacement(full(0.3, 4000), (5,), generator(1))
    assert latent is None and d.shape == (4000, 5) and d.dtype == F64
    assert stats.kstest((d.square().sum(-1) / 0.42).numpy(), stats.chi2(5).cdf).pvalue > KS_ALPHA
    t = torch.tensor([1e-3, 0.5, 40.0], dtype=F64)
    d = torch.randn(3, 4, dtype=F64, generator=generator(2)) * torch.sqrt(1.4 * t)[:, None]
    expected = [stats.norm(scale=math.sqrt(1.4 * ti)).logpdf(di).sum() for ti, di in zip(t.numpy(), d.numpy())]
    np.testing.assert_allclose(family.log_kernel(d, t).numpy(), expected, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# cauchy and student_t


def test_cauchy_sampler_and_log_kernel():
    family = CauchyFamily(c=1.3)
    d, _ = family.sample_displacement(full(0.4, 4000), (3,), generator(1))
    scale = 1.3 * 0.4
    assert stats.kstest((d.square().sum(-1) / (3 * scale**2)).numpy(), stats.f(3, 1).cdf).pvalue > KS_ALPHA
    assert stats.kstest((d[:, 0] / scale).numpy(), stats.cauchy.cdf).pvalue > KS_ALPHA
    t = torch.tensor([1e-4, 0.4, 1e4], dtype=F64)
    d = torch.randn(3, 3, dtype=F64, generator=generator(2)) * t[:, None]
    for ti, di, got in zip(t.numpy(), d.numpy(), family.log_kernel(d, t).numpy()):
        expected = stats.multivariate_t(np.zeros(3), (1.3 * ti) ** 2 * np.eye(3), df=1).logpdf(di)
        assert abs(got - expected) < 1e-10 * max(1, abs(expected))


@pytest.mark.parametrize("degrees", [1.5, 7.0, 2048.0])
def test_student_t_sampler_is_f_distributed(degrees):
    family = StudentTFamily(c=2.0, D=degrees)
    n, t = 6, 0.25
    d, _ = family.sample_displacement(full(t, 5000), (n,), generator(3))
    sigma = 2.0 * t / math.sqrt(degrees)
    assert float(family.sigma(full(t, 1))) == pytest.approx(sigma, rel=1e-14)
    scaled = (d.square().sum(-1) / (n * sigma**2)).numpy()
    assert stats.kstest(scaled, stats.f(n, degrees).cdf).pvalue > KS_ALPHA


@pytest.mark.parametrize("degrees, ratio", [(64.0, 1.0323), (2048.0, 1.0010)])
def test_student_t_second_moment(degrees, ratio):
    """E|d|^2 / (N sigma^2) = D / (D - 2) (physics.md §7): 1.0323 at D = 64, 1.0010 at D = 2048. The mixing
    factor D / chi2_D is checked on 10^6 float64 Gamma draws (error 3e-5 at D = 2048), the sampler at N = 3072."""
    assert abs(degrees / (degrees - 2) - ratio) < 1e-4
    chi2 = 2 * common.sample_gamma(full(degrees / 2, 1_000_000), generator(4))
    assert float((degrees / chi2).mean()) == pytest.approx(ratio, abs=4 * math.sqrt(2 / (degrees - 4)) / 1000)
    family = StudentTFamily(c=1.0, D=degrees)
    d, _ = family.sample_displacement(full(1.0, 4000, torch.float32), (3072,), generator(5))
    measured = float(d.double().square().sum(-1).mean()) / (3072 / degrees)
    spread = math.sqrt(2 / (degrees - 4) + 2 / 3072) / math.sqrt(4000)
    assert measured == pytest.approx(ratio, abs=4 * spread)


def test_student_t_log_kernel_matches_scipy_and_gaussian_limit():
    family = StudentTFamily(c=2.0, D=5.5)
    t = torch.tensor([1e-3, 0.3, 50.0], dtype=F64)
    d = torch.randn(3, 4, dtype=F64, generator=generator(5)) * t[:, None]
    for ti, di, got in zip(t.numpy(), d.numpy(), family.log_kernel(d, t).numpy()):
        sigma = 2.0 * ti / math.sqrt(5.5)
        assert got == pytest.approx(stats.multivariate_t(np.zeros(4), sigma**2 * np.eye(4), df=5.5).logpdf(di), rel=1e-12)
    limit = StudentTFamily(c=2.0, D=float("inf"))  # convention: N(0, (c t)^2 I), sigma = c t
    expected = [stats.norm(scale=2.0 * ti).logpdf(di).sum() for ti, di in zip(t.numpy(), d.numpy())]
    np.testing.assert_allclose(limit.log_kernel(d, t).numpy(), expected, rtol=1e-12)
    near_limit = StudentTFamily(c=2.0 * math.sqrt(1e9), D=1e9)  # same sigma, D -> inf
    np.testing.assert_allclose(near_limit.log_kernel(d, t).numpy(), expected, rtol=1e-6)
    samples, _ = limit.sample_displacement(full(0.5, 4000), (2,), generator(6))
    assert stats.kstest(samples[:, 0].numpy() / 1.0, stats.norm.cdf).pvalue > KS_ALPHA


# ------------------------------------------------------------------------------------------------
# nig (Yukawa)


def test_nig_mixing_variance_is_inverse_gaussian():
    family = NIGFamily(c=1.3, m=0.8)
    tau = 1.3 * 0.9
    variance = family.sample_mixing_variance(full(0.9, 40000), generator(7)).numpy()
    mean = tau / 0.8
    assert stats.kstest(variance, stats.invgauss(mu=mean / tau**2, scale=tau**2).cdf).pvalue > KS_ALPHA
    assert variance.mean() == pytest.approx(mean, rel=4 * math.sqrt(tau / 0.8**3 / 40000) / mean)
    assert variance.var() == pytest.approx(tau / 0.8**3, rel=0.05)  # Var V = tau / m^3
    levy = NIGFamily(c=1.3, m=0.0).sample_mixing_variance(full(0.9, 20000), generator(8)).numpy()
    assert stats.kstest(levy, stats.levy(scale=tau**2).cdf).pvalue > KS_ALPHA  # m = 0: tau^2 / Z^2


def test_nig_sampler_and_log_kernel_match_scipy_in_one_dimension():
    family = NIGFamily(c=1.3, m=0.8)
    tau = 1.3 * 0.9
    law = stats.norminvgauss(a=0.8 * tau, b=0.0, scale=tau)
    d, variance = family.sample_displacement(full(0.9, 2000), (1,), generator(9))
    assert variance.shape == (2000,)
    assert stats.kstest(d[:, 0].numpy(), law.cdf).pvalue > KS_ALPHA
    points = torch.tensor([[0.0], [0.3], [2.0], [30.0]], dtype=F64)
    np.testing.assert_allclose(family.log_kernel(points, full(0.9, 4)).numpy(), law.logpdf(points[:, 0].numpy()), rtol=1e-11)


def _nig_log_density_by_quadrature(rho2, n, tau, m):
    """log int IG(v; tau/m, tau^2) N(d; 0, v I_N) dv, scaled quadrature in log v."""

    def log_integrand(w):
        v = math.exp(w)
        return (math.log(tau) + m * tau - 0.5 * math.log(2 * math.pi * v**3) - m * m * v / 2 - tau * tau / (2 * v)
                - n / 2 * math.log(2 * math.pi * v) - rho2 / (2 * v) + w)

    r2 = rho2 + tau * tau
    mode = math.log(2 * r2 / ((n + 1) + math.sqrt((n + 1) ** 2 + 4 * m * m * r2)))
    peak = log_integrand(mode)
    value, _ = integrate.quad(lambda w: math.exp(log_integrand(w) - peak), mode - 40, mode + 40, points=[mode], limit=400, epsrel=1e-13)
    return peak + math.log(value)


@pytest.mark.parametrize("n", [3, 3072])
def test_nig_log_kernel_matches_quadrature(n):
    family = NIGFamily(c=0.5, m=2.0)
    for t, radius in [(1e-3, 0.5), (0.7, 1.0), (0.7, 3.0), (30.0, 2.0)]:
        tau = 0.5 * t
        rho2 = radius**2 * n * tau / 2.0 + tau**2  # around the typical |d|^2 ~ N tau / m
        d = torch.zeros(1, n, dtype=F64)
        d[0, 0] = math.sqrt(rho2)
        got = float(family.log_kernel(d, full(t, 1)))
        assert got == pytest.approx(_nig_log_density_by_quadrature(rho2, n, tau, 2.0), rel=1e-10, abs=1e-9)


def test_nig_limits():
    """m = 0 is the Cauchy kernel of scale c t (PFGM); m tau >> 1 approaches N(0, tau/m I) (physics.md §7)."""
    d = torch.randn(4, 5, dtype=F64, generator=generator(10))
    t = torch.tensor([0.01, 0.5, 2.0, 10.0], dtype=F64)
    np.testing.assert_allclose(
        NIGFamily(c=1.5, m=0.0).log_kernel(d, t).numpy(), CauchyFamily(c=1.5).log_kernel(d, t).numpy(), rtol=1e-13
    )
    heavy = NIGFamily(c=1.0, m=1e4)
    t = full(100.0, 4)
    gaussian = GaussianFamily(kappa=0.5e-4)  # variance 2 kappa t = tau / m
    np.testing.assert_allclose(heavy.log_kernel(d * 0.1, t).numpy(), gaussian.log_kernel(d * 0.1, t).numpy(), rtol=1e-4)


def test_nig_coupling_velocity_is_the_quantile_derivative():
    """u = (V'/(2V)) d along V_t = F_t^-1(q): the bracket equals t V'/(2V), V' by finite differences of SciPy's ppf."""
    c, m = 1.3, 0.8
    family = NIGFamily(c=c, m=m)
    t = 0.9

    def quantile(q, time):
        tau = c * time
        return stats.invgauss(mu=(tau / m) / tau**2, scale=tau**2).ppf(q)

    for q in (0.05, 0.5, 0.95):
        h = 1e-5
        v = quantile(q, t)
        derivative = (quantile(q, t + h) - quantile(q, t - h)) / (2 * h)
        d = torch.ones(1, 1, dtype=F64)
        velocity = float(family.conditional_velocity(d, full(t, 1), latent=torch.tensor([v], dtype=F64)))
        assert velocity == pytest.approx(derivative / (2 * v), rel=1e-6)


@pytest.mark.parametrize("n", [1, 3, 3072])
def test_nig_posterior_velocity_matches_adaptive_quadrature(n):
    c, m = 1.3, 0.8
    family = NIGFamily(c=c, m=m)
    tau = c * 0.9

    def bracket(w):
        v = math.exp(w)
        return 1 - m * math.sqrt(math.pi * v / 2) * special.erfcx((m * v + tau) / math.sqrt(2 * v))

    def posterior_mean_bracket(rho):
        r2 = rho**2 + tau**2
        mode = math.log(2 * r2 / ((n + 1) + math.sqrt((n + 1) ** 2 + 4 * m * m * r2)))

        def weight(w):  # posterior density of w = log V, relative to its mode
            return math.exp(-(n + 1) / 2 * (w - mode) - m * m / 2 * (math.exp(w) - math.exp(mode)) - r2 / 2 * (math.exp(-w) - math.exp(-mode)))

        span = {"a": mode - 40, "b": mode + 40, "points": [mode], "limit": 400, "epsrel": 1e-13}
        return integrate.quad(lambda w: weight(w) * bracket(w), **span)[0] / integrate.quad(weight, **span)[0]

    for rho in (0.01, 1.0, 5.0, 60.0):
        mean = posterior_mean_bracket(rho)
        d = torch.zeros(1, n, dtype=F64)
        d[0, 0] = rho
        velocity = float(family.conditional_velocity(d, full(0.9, 1))[0, 0])
        assert velocity == pytest.approx(rho / 0.9 * mean, rel=1e-9)


def test_nig_posterior_velocity_equals_radial_flux_field():
    """Averaged over V given d, the coupling velocity is the §1 radial transport field; in 1-D:
    v = -d/dt P(|X| > rho) / (2 p(rho)) (physics.md §4.4), checked against SciPy's NIG law."""
    c, m, t = 1.3, 0.8, 0.9
    family = NIGFamily(c=c, m=m)

    def law(time):
        return stats.norminvgauss(a=m * c * time, b=0.0, scale=c * time)

    for rho in (0.2, 1.5, 4.0):
        h = 1e-5
        tail_rate = 2 * (law(t + h).sf(rho) - law(t - h).sf(rho)) / (2 * h)
        expected = tail_rate / (2 * law(t).pdf(rho))
        got = float(family.conditional_velocity(torch.tensor([[rho]], dtype=F64), full(t, 1)))
        assert got == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# stable


def _positive_stable(beta):
    return stats.levy_stable(beta, 1.0, scale=math.cos(math.pi * beta / 2) ** (1 / beta))


@pytest.mark.parametrize("alpha", [0.6, 1.0, 1.7])
def test_stable_mixing_variable_and_median(alpha):
    family = StableFamily(kappa=0.6, alpha=alpha)
    beta = alpha / 2
    log_s = family.sample_mixing_variable(full(1.0, 2000), generator(11))
    law = _positive_stable(beta)
    assert stats.kstest(np.exp(log_s.numpy()), law.cdf).pvalue > KS_ALPHA
    assert float(law.cdf(float(family.median_s))) == pytest.approx(0.5, abs=2e-6)
    if alpha == 1.0:  # S = 1 / (2 Z^2): median 1 / (2 Phi^-1(3/4)^2)
        assert float(family.median_s) == pytest.approx(1 / (2 * stats.norm.ppf(0.75) ** 2), rel=1e-12)


def test_stable_sampler_is_symmetric_stable_in_one_dimension():
    family = StableFamily(kappa=0.6, alpha=1.4)
    d, latent = family.sample_displacement(full(0.5, 2000), (1,), generator(12))
    assert latent is None
    law = stats.levy_stable(1.4, 0.0, scale=(0.6 * 0.5) ** (1 / 1.4))
    assert stats.kstest(d[:, 0].numpy(), law.cdf).pvalue > KS_ALPHA


@pytest.mark.parametrize("n", [1, 2, 3, 3072])
def test_stable_log_kernel_is_cauchy_at_alpha_one(n):
    """alpha = 1: V = 2 (kappa t)^2 S with S = 1/(2 Z^2), the Cauchy kernel of scale kappa t, in every N; the
    quadrature must hold from |d| = 0 to far tails."""
    family = StableFamily(kappa=0.8, alpha=1.0)
    cauchy = CauchyFamily(c=0.8)
    t = torch.tensor([1e-3, 0.7, 5.0, 1e3], dtype=F64)
    direction = torch.randn(4, n, dtype=F64, generator=generator(13))
    direction = direction / direction.norm(dim=1, keepdim=True)
    for multiple in (0.0, 1e-3, 1.0, 30.0, 1e3, 1e8):
        d = direction * (multiple * 0.8 * t * math.sqrt(n))[:, None]
        np.testing.assert_allclose(family.log_kernel(d, t).numpy(), cauchy.log_kernel(d, t).numpy(), rtol=1e-11, atol=1e-8)


@pytest.mark.parametrize("alpha", [0.5, 1.5, 1.9])
def test_stable_log_kernel_matches_scipy_in_one_dimension(alpha):
    family = StableFamily(kappa=0.7, alpha=alpha)
    points = torch.tensor([[0.0], [0.4], [3.0], [40.0]], dtype=F64)
    law = stats.levy_stable(alpha, 0.0, scale=(0.7 * 0.3) ** (1 / alpha))
    # SciPy's own quadrature is good to ~1e-8 relative here; far tail of alpha = 1.9 to ~1e-5
    np.testing.assert_allclose(family.log_kernel(points, full(0.3, 4)).numpy(), law.logpdf(points[:, 0].numpy()), atol=2e-5)
    at_zero = math.gamma(1 + 1 / alpha) / (math.pi * (0.7 * 0.3) ** (1 / alpha))  # p(0) in closed form
    assert float(family.log_kernel(points[:1], full(0.3, 1))) == pytest.approx(math.log(at_zero), abs=1e-9)


def test_stable_log_kernel_is_normalised_in_two_dimensions():
    family = StableFamily(kappa=1.0, alpha=0.8)
    radii = torch.logspace(-6, 9, 701, dtype=F64)
    d = torch.stack([radii, torch.zeros_like(radii)], -1)
    density = torch.exp(family.log_kernel(d, full(0.4, radii.numel())))
    # int p 2 pi rho drho = int p 2 pi rho^2 dlog rho; the tail beyond 1e9 holds ~ (1e9)^-0.8 ~ 1e-7
    mass = float(torch.trapezoid(density * 2 * math.pi * radii**2, torch.log(radii)))
    assert mass == pytest.approx(1.0, abs=5e-7)


# ------------------------------------------------------------------------------------------------
# kac_product


def kac_reference_sample(a, c, t, size, seed):
    """The Kac law by its definition (physics.md §4.5 as NumPy draws): Poisson(a t) switches; none: the atom
    +-c t; else the time share S / t ~ Beta(ceil((n+1)/2), floor((n+1)/2)) with a fair direction."""
    rng = np.random.default_rng(seed)
    switches = rng.poisson(a * t, size)
    share = rng.beta(np.ceil((switches + 1) / 2), np.maximum(np.floor((switches + 1) / 2), 1))
    direction = rng.choice([-1.0, 1.0], size)
    return np.where(switches == 0, direction * c * t, direction * c * (2 * share * t - t))


@pytest.mark.parametrize("t", [0.05, 0.3, 1.0, 12.0])
def test_kac_sampler_matches_reference_law(t):
    a, c = 9.0, 3.0
    family = KacProductFamily(a=a, c=c)
    d, atoms = family.sample_displacement(full(t, 16), (2000,), generator(14))
    assert atoms.shape == d.shape and atoms.dtype == torch.bool
    x = d.numpy().ravel()
    assert stats.ks_2samp(x, kac_reference_sample(a, c, t, 60000, 1)).pvalue > KS_ALPHA
    fraction, expected = float(atoms.double().mean()), math.exp(-a * t)  # atom fraction e^{-at}
    assert abs(fraction - expected) < 5 * math.sqrt(expected * (1 - expected) / x.size) + 1e-12
    assert np.array_equal(np.abs(x[atoms.numpy().ravel()]), np.full(int(atoms.sum()), c * t))
    assert np.abs(x).max() <= c * t
    variance = c * c / a * (t - (1 - math.exp(-2 * a * t)) / (2 * a))
    assert x.var() == pytest.approx(variance, rel=0.05)


def test_kac_sampler_float32_counted_and_diffusive_rows():
    """float32 path (packed random bits): class tables (a t = 2.7), a diffusive row (a t = 810, no switch count)
    and both kinds in one batch, against the reference law."""
    family = KacProductFamily(a=9.0, c=3.0)
    for times, seed in (((0.3,), 15), ((90.0,), 16), ((0.3, 90.0), 18)):
        t = torch.tensor(times * 8, dtype=torch.float32)
        d, _ = family.sample_displacement(t, (2000,), generator(seed))
        assert d.dtype == torch.float32
        for value in times:
            rows = t == value
            reference = kac_reference_sample(9.0, 3.0, value, 60000, 2)
            front = float(3.0 * torch.tensor(value, dtype=torch.float32))  # c t as the float32 sampler forms it
            reference = np.where(np.abs(reference) == 3.0 * value, np.sign(reference) * front, reference)
            assert stats.ks_2samp(d[rows].double().numpy().ravel(), reference).pvalue > KS_ALPHA
            assert float(d[rows].abs().max()) <= front


def test_kac_log_kernel_density_and_normalisation():
    a, c, t = 4.0, 1.5, 0.6
    family = KacProductFamily(a=a, c=c)
    x = np.linspace(-0.999, 0.999, 7) * c * t
    r = np.sqrt(c * c * t * t - x * x)
    z = a * r / c
    expected = np.log(a * math.exp(-a * t) / (2 * c) * (special.i0(z) + c * t / r * special.i1(z)))
    got = family.log_kernel(torch.tensor(x, dtype=F64)[:, None], full(t, 7)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # a.c. mass 1 - e^{-at} plus two regularised atoms of mass e^{-at}/2 each
    grid = torch.linspace(-c * t - 0.01, c * t + 0.01, 400001, dtype=F64)
    density = torch.exp(family.log_kernel(grid[:, None], full(t, grid.numel())))
    mass = float(torch.trapezoid(density, grid))
    assert mass == pytest.approx(1.0, abs=2e-4)  # the front's density jump costs O(grid step)
    front_value = a * math.exp(-a * t) / (2 * c) * (1 + a * t / 2)  # physics.md §4.5
    inside = torch.tensor([[c * t * (1 - 1e-9)]], dtype=F64)
    width = family.atom_width(torch.tensor(t), F64)
    atom_density = math.exp(-a * t) / 2 / math.sqrt(2 * math.pi) / float(width)
    assert math.exp(float(family.log_kernel(inside, full(t, 1)))) == pytest.approx(front_value + atom_density, rel=1e-6)


def test_kac_velocity_is_flux_over_density_and_bounded():
    a, c, t = 4.0, 1.5, 0.6
    family = KacProductFamily(a=a, c=c)
    x = np.linspace(-0.99, 0.99, 9) * c * t
    r = np.sqrt(c * c * t * t - x * x)
    z = a * r / c
    flux = a / 2 * math.exp(-a * t) * x * special.i1(z) / r  # J_ac (physics.md §4.5)
    density = a * math.exp(-a * t) / (2 * c) * (special.i0(z) + c * t / r * special.i1(z))
    u = family.conditional_velocity(torch.tensor(x, dtype=F64)[None, :], full(t, 1))[0].numpy()
    np.testing.assert_allclose(u, flux / density, rtol=1e-12)
    edge = torch.tensor([[0.0, 1e-12, -c * t, c * t, c * t * (1 - 1e-6), c * t * (1 + 1e-3), -5.0, 5.0]], dtype=F64)
    u = family.conditional_velocity(edge, full(t, 1))
    assert bool((u[0, :5].abs() <= c).all())  # on and inside the cone
    assert u[0, 2] == -c and u[0, 3] == c  # the atoms: +-c
    # within eps_atom of the cone and over it (no latent): with the front's share, c d / (c t), so that a reverse
    # step's overshoot over the cone shrinks with t instead of staying
    np.testing.assert_allclose(u[0, 4:].numpy(), c * edge[0, 4:].numpy() / (c * t), rtol=1e-15)
    sharp = KacProductFamily(a=a, c=c, atom_rtol=1e-12)  # inside the front: the limit c t / (t + 2/a) (z -> 0)
    near_front = sharp.conditional_velocity(torch.tensor([[c * t * (1 - 1e-10)]], dtype=F64), full(t, 1))
    assert float(near_front) == pytest.approx(c * t / (t + 2 / a), rel=1e-6)
    d, atoms = family.sample_displacement(full(t, 8, torch.float32), (500,), generator(17))
    with_latent = family.conditional_velocity(d, full(t, 8, torch.float32), atoms)
    assert bool((with_latent.abs() <= c).all()) and bool((with_latent[atoms].abs() == c).all())
    limit = KacProductFamily(a=1e6, c=1e3)  # a, c -> inf with c^2/a = 1: the heat velocity x / (2t)
    xs = torch.tensor([[0.1, -0.4, 1.3]], dtype=F64)
    np.testing.assert_allclose(limit.conditional_velocity(xs, full(0.5, 1)).numpy(), (xs / 1.0).numpy(), rtol=1e-3)


def test_kac_log_kernel_is_robust_on_and_over_the_cone():
    """A particle the reverse flow merged onto a cone, slightly over it (rounding or an Euler step), must keep
    finite log-kernels, and the posterior must prefer the data point whose cones it sits on."""
    family = KacProductFamily(a=9.0, c=3.0)
    t = 0.2
    for dtype in (torch.float32, F64):
        front = 3.0 * t
        d = torch.tensor([[front], [front * (1 + 1e-7)], [front * (1 - 1e-7)], [front + 1e-3], [front + 5.0]], dtype=dtype)
        values = family.log_kernel(d, full(t, 5, dtype))
        assert bool(torch.isfinite(values).all())
        assert values[0] > values[3] > values[4]  # over the cone: penalised by the distance to the front
        data = torch.tensor([[0.1, -0.3, 0.5], [0.1, 0.35, 0.5], [-0.9, -0.3, 0.2]], dtype=dtype)
        x = data[0] + torch.tensor([front, -0.2, -front], dtype=dtype) + torch.tensor([2e-4, 0.0, -1e-4], dtype=dtype)
        weights = torch.softmax(family.log_kernel(x - data, full(t, 3, dtype)), 0)
        assert float(weights[0]) > 1 - 1e-6 and bool(torch.isfinite(weights).all())


def test_kac_sigma_inverse_and_small_times():
    family = KacProductFamily(a=9.0, c=3.0)
    t = torch.tensor([1e-9, 1e-4, 0.002, 0.05, 1.0, 30.0, 1e4], dtype=F64)
    x = 2 * 9.0 * t.numpy()
    exact = np.sqrt(9.0 / 9.0 * np.array([float(mp_h(v)) for v in x]) / (2 * 9.0))
    np.testing.assert_allclose(family.sigma(t).numpy(), exact, rtol=1e-13)
    np.testing.assert_allclose(family.t_of_sigma(family.sigma(t)).numpy(), t.numpy(), rtol=1e-12)


def mp_h(x):
    """e^-x - 1 + x in high precision."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    return mpmath.exp(-mpmath.mpf(x)) - 1 + mpmath.mpf(x)


# ------------------------------------------------------------------------------------------------
# every family: alignment, velocities transport the law, robustness, reproducibility


@pytest.mark.parametrize("name", FAMILIES)
def test_sigma_alignment_round_trip_and_derivative(name):
    family = FAMILIES[name]()
    t = torch.tensor([1e-4, 0.01, 0.3, 2.0, 100.0, 1e4], dtype=F64)
    sigma = family.sigma(t)
    assert bool((sigma[1:] > sigma[:-1]).all())
    np.testing.assert_allclose(family.t_of_sigma(sigma).numpy(), t.numpy(), rtol=1e-10)
    step = 1e-6 * t
    finite_difference = (family.sigma(t + step) - family.sigma(t - step)) / (2 * step)
    np.testing.assert_allclose(family.dsigma_dt(t).numpy(), finite_difference.numpy(), rtol=1e-7)


@pytest.mark.parametrize("name", ["gaussian", "cauchy", "student_t", "nig", "stable"])
def test_velocity_transports_the_law_backwards(name):
    """Draw at t_hi, integrate the (posterior-mean) velocity down to t_lo, compare with fresh draws at t_lo."""
    family = FAMILIES[name]()
    start, _ = family.sample_displacement(full(1.2, 1000), (3,), generator(20))
    pushed = push_back(family, start, 1.2, 0.3, steps=30)
    fresh, _ = family.sample_displacement(full(0.3, 1000), (3,), generator(21))
    assert stats.ks_2samp(pushed.square().sum(-1).numpy(), fresh.square().sum(-1).numpy()).pvalue > KS_ALPHA
    assert stats.ks_2samp(pushed[:, 0].numpy(), fresh[:, 0].numpy()).pvalue > KS_ALPHA


def test_kac_velocity_transports_the_law_backwards():
    """Only backwards (the forward flow cannot create the atoms' mass leak, physics.md §4.5). The velocity jumps
    at the front (c t / (t + 2/a) inside, c on the atom), so RK4 overshoots the cone by O(step) when a particle
    merges with it: values within 1% of c t (or beyond) count as atoms."""
    a, c, t_hi, t_lo = 9.0, 3.0, 0.25, 0.1
    family = KacProductFamily(a=a, c=c)
    start, _ = family.sample_displacement(full(t_hi, 4000), (1,), generator(20))
    pushed = push_back(family, start, t_hi, t_lo, steps=50).numpy().ravel()
    front = c * t_lo
    merged = np.abs(pushed) >= 0.99 * front
    atom_rate = math.exp(-a * t_lo)
    assert abs(merged.mean() - atom_rate) < 4 * math.sqrt(atom_rate * (1 - atom_rate) / pushed.size) + 0.01
    snapped = np.where(merged, np.sign(pushed) * front, pushed)
    fresh, _ = family.sample_displacement(full(t_lo, 4000), (1,), generator(21))
    assert stats.ks_2samp(snapped, fresh.numpy().ravel()).pvalue > KS_ALPHA
    assert stats.ks_2samp(pushed[~merged], fresh.numpy().ravel()[np.abs(fresh.numpy().ravel()) < 0.99 * front]).pvalue > KS_ALPHA


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_no_nan_or_inf_at_extreme_times_in_image_dimension(name, dtype):
    family = FAMILIES[name]()
    t = torch.tensor([1e-4, 1e-2, 1.0, 1e2, 1e4], dtype=dtype)
    d, latent = family.sample_displacement(t, (3, 32, 32), generator(22))
    assert d.shape == (5, 3, 32, 32) and d.dtype == dtype
    assert bool(torch.isfinite(d).all())
    for velocity in (family.conditional_velocity(d, t, latent), family.conditional_velocity(d, t)):
        assert velocity.dtype == dtype and bool(torch.isfinite(velocity).all())
    log_p = family.log_kernel(d, t)
    assert log_p.shape == (5,) and log_p.dtype == dtype and bool(torch.isfinite(log_p).all())
    for value in (family.sigma(t), family.dsigma_dt(t), family.t_of_sigma(family.sigma(t))):
        assert value.dtype == dtype and bool(torch.isfinite(value).all())


@pytest.mark.parametrize("name", FAMILIES)
def test_generator_reproducibility(name):
    family = FAMILIES[name]()
    t = torch.tensor([0.01, 0.5, 3.0], dtype=torch.float32)
    first, _ = family.sample_displacement(t, (4, 5), generator(7))
    again, _ = family.sample_displacement(t, (4, 5), generator(7))
    other, _ = family.sample_displacement(t, (4, 5), generator(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.dtype == torch.float32 and first.device == t.device


def test_buffers_and_constructor_keywords_follow_the_family_declarations():
    from pde2gen.families import FAMILIES as CONTRACT

    values = {"kappa": 0.5, "c": 1.5, "D": 4.0, "m": 0.3, "alpha": 1.2, "a": 2.0}
    for name, info in CONTRACT.items():
        runtime = importlib.import_module(f"pde2gen.families.{name}.runtime")
        family = getattr(runtime, info.runtime_class)(**{p: values.get(p, 1.0) for p in info.parameters})
        buffers = dict(family.named_buffers())
        for p in info.parameters:
            assert float(buffers[p]) == values.get(p, 1.0)


@pytest.mark.parametrize("module, class_name, parameters", [
    ("gaussian", "GaussianFamily", {"kappa": 0.5}),
    ("cauchy", "CauchyFamily", {"c": 1.0}),
    ("student_t", "StudentTFamily", {"c": 1.0, "D": 4.0}),
    ("nig", "NIGFamily", {"c": 1.0, "m": 0.5}),
    ("stable", "StableFamily", {"kappa": 1.0, "alpha": 1.5}),
    ("kac_product", "KacProductFamily", {"a": 2.0, "c": 1.0}),
    ("heat_nig", "HeatNIGFamily", {"kappa": 0.5, "c": 1.0, "m": 0.5}),
])
def test_inlined_runtime_is_self_contained(module, class_name, parameters, tmp_path):
    """What render inlines (runtime_common.py + <family>/runtime.py, '# runtime-import' lines dropped) must run
    on its own, with torch and math only, and agree with the modules."""
    text = runtime_source(module)
    imports = [line.strip() for line in text.splitlines() if line.lstrip().startswith(("import ", "from "))]
    assert all(line in ("import math", "import torch") or line.startswith("from fractions import") for line in imports), imports
    path = tmp_path / f"inlined_{module}.py"
    path.write_text(text + "\n")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    inlined = getattr(loaded, class_name)(**parameters)
    direct = FAMILIES_BY_CLASS[class_name](**parameters)
    t = torch.tensor([0.2, 1.0], dtype=F64)
    d, _ = inlined.sample_displacement(t, (3,), generator(30))
    expected, _ = direct.sample_displacement(t, (3,), generator(30))
    assert torch.equal(d, expected)
    assert torch.equal(inlined.log_kernel(d, t), direct.log_kernel(d, t))



def test_sigma_values_follow_families_py():
    """sigma(t) against the formulas of pde2gen/families.py (and physics.md §4.7), evaluated independently."""
    t = np.array([1e-3, 0.4, 7.0])
    tt = torch.tensor(t, dtype=F64)
    median_s = _positive_stable(0.7).ppf(0.5)
    expected = {
        "gaussian": np.sqrt(2 * 0.7 * t),
        "cauchy": 1.3 * t,
        "student_t": 2.0 * t / math.sqrt(7.0),
        "student_t_inf": 2.0 * t,  # the D = inf convention (student_t.py)
        "nig": 1.3 * t / np.sqrt(1 + 0.8 * 1.3 * t),
        "stable": np.sqrt(2 * median_s) * (0.6 * t) ** (1 / 1.4),
        "kac_product": np.sqrt(9.0 / 9.0 * (t - (1 - np.exp(-18.0 * t)) / 18.0)),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(FAMILIES[name]().sigma(tt).numpy(), values, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", ["gaussian", "cauchy", "student_t", "student_t_inf", "stable"])
def test_velocity_is_the_time_derivative_of_the_sampler_path(name):
    """Scale families draw d = s(t) * (t-independent noise): with the same seed at t +- h, the finite difference
    of the path is the conditional velocity exactly (physics.md §7: d/dt x_t = u)."""
    family = FAMILIES[name]()
    t, h = 0.7, 1e-6
    paths = [family.sample_displacement(full(time, 50), (4,), generator(31))[0] for time in (t - h, t, t + h)]
    derivative = (paths[2] - paths[0]) / (2 * h)
    np.testing.assert_allclose(family.conditional_velocity(paths[1], full(t, 50)).numpy(), derivative.numpy(), rtol=1e-7, atol=1e-9)

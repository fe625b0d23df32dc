"""The torch runtime of every kernel family (templates/runtime/): samplers against SciPy / closed-form
laws, log-kernels against SciPy log-densities, velocities that transport the law, special functions with
gradients, and numerical robustness (tiny/huge t, N = 3072, float32/float64, the Kac cone)."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "templates" / "runtime"))

from gaussian import GaussianFamily

KS_ALPHA = 1e-3  # p-value below which a sampler is rejected; all tests use fixed seeds


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def times(values, dtype=torch.float64):
    return torch.as_tensor(values, dtype=dtype)


def push_back(family, d, t_from, t_to, steps=200, latent=None):
    """Integrate dd/dt = conditional_velocity(d, t) from t_from down to t_to (RK4, uniform in log t)."""
    log_t = torch.linspace(math.log(t_from), math.log(t_to), steps + 1, dtype=torch.float64)
    batch = d.shape[0]

    def rate(x, log_time):  # dd/dlog t = t u
        t = torch.full((batch,), math.exp(log_time), dtype=d.dtype)
        return t.reshape(-1, *([1] * (x.dim() - 1))) * family.conditional_velocity(x, t, latent)

    for a, b in zip(log_t[:-1].tolist(), log_t[1:].tolist()):
        h = b - a
        k1 = rate(d, a)
        k2 = rate(d + h / 2 * k1, a + h / 2)
        k3 = rate(d + h / 2 * k2, a + h / 2)
        k4 = rate(d + h * k3, b)
        d = d + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return d


# ------------------------------------------------------------------------------------------------
# gaussian


def test_gaussian_sampler_is_chi_square_in_norm():
    family = GaussianFamily(kappa=0.7)
    t = times(np.full(4000, 0.3))
    d, latent = family.sample_displacement(t, (5,), generator(1))
    assert latent is None and d.shape == (4000, 5) and d.dtype == torch.float64
    scaled = (d.square().sum(-1) / (2 * 0.7 * 0.3)).numpy()
    assert stats.kstest(scaled, stats.chi2(5).cdf).pvalue > KS_ALPHA
    per_coordinate = d[:, 0].numpy() / math.sqrt(2 * 0.7 * 0.3)
    assert stats.kstest(per_coordinate, stats.norm.cdf).pvalue > KS_ALPHA


def test_gaussian_log_kernel_matches_scipy():
    family = GaussianFamily(kappa=1.3)
    t = times([1e-3, 0.5, 40.0])
    d = torch.randn(3, 4, dtype=torch.float64, generator=generator(2)) * torch.sqrt(2.6 * t)[:, None]
    expected = [stats.norm(scale=math.sqrt(2.6 * ti)).logpdf(di).sum() for ti, di in zip(t.numpy(), d.numpy())]
    np.testing.assert_allclose(family.log_kernel(d, t).numpy(), expected, rtol=1e-12)


def test_gaussian_sigma_alignment_and_velocity():
    family = GaussianFamily(kappa=0.25)
    t = times([1e-4, 0.1, 3.0, 1e4])
    np.testing.assert_allclose(family.sigma(t).numpy(), np.sqrt(0.5 * t.numpy()), rtol=1e-14)
    np.testing.assert_allclose(family.t_of_sigma(family.sigma(t)).numpy(), t.numpy(), rtol=1e-13)
    step = 1e-6 * t
    finite_difference = (family.sigma(t + step) - family.sigma(t - step)) / (2 * step)
    np.testing.assert_allclose(family.dsigma_dt(t).numpy(), finite_difference.numpy(), rtol=1e-7)
    d = torch.ones(4, 2, dtype=torch.float64)
    np.testing.assert_allclose(family.conditional_velocity(d, t).numpy(), (1 / (2 * t))[:, None].expand(4, 2))


def test_gaussian_velocity_transports_the_law():
    family = GaussianFamily(kappa=1.0)
    d_hi, _ = family.sample_displacement(times(np.full(3000, 2.0)), (3,), generator(3))
    pushed = push_back(family, d_hi, 2.0, 0.05, steps=50)
    fresh, _ = family.sample_displacement(times(np.full(3000, 0.05)), (3,), generator(4))
    assert stats.ks_2samp(pushed.square().sum(-1), fresh.square().sum(-1)).pvalue > KS_ALPHA
    assert stats.ks_2samp(pushed[:, 1], fresh[:, 1]).pvalue > KS_ALPHA

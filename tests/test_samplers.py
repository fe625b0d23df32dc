"""The stochastic sampler of the generated modules (process.sample_increment, process.sample_sde, sample.py
--sampler sde): exact noise increments of semigroup kernels, the refusal elsewhere, and sampling with it."""
import dataclasses
import math

import numpy as np
import pytest
from test_generated_scripts import generated_modules, module_ir, write_module

torch = pytest.importorskip("torch")

# Closed-form characteristic functions ghat(k, t) of the semigroup families at the parameters module_ir uses
# (test_generated_scripts.FAMILY_PARAMETERS): heat kappa = 1, Cauchy c = 1, stable kappa = 1 alpha = 1.5,
# NIG c = 1 m = 1.
GHAT = {
    "gaussian": lambda k, t: np.exp(-t * k**2),
    "cauchy": lambda k, t: np.exp(-t * np.abs(k)),
    "stable": lambda k, t: np.exp(-t * np.abs(k) ** 1.5),
    "nig": lambda k, t: np.exp(-t * (np.sqrt(k**2 + 1.0) - 1.0)),
}
DRAWS = 20_000
# Two-sample KS at false-alarm rate 1e-6: D > sqrt(-ln(alpha / 2) / 2) sqrt(2 / n).
KS_LIMIT = math.sqrt(-math.log(0.5e-6) / 2) * math.sqrt(2 / DRAWS)
# The empirical mean of cos(k x) (values in [-1, 1]) misses its expectation by eps with probability
# <= 2 exp(-n eps^2 / 2) (Hoeffding): eps = 0.045 at n = 20000 is a false-alarm rate below 3e-9 per point.
ECF_LIMIT = 0.045


def build(family, tmp_path_factory, semigroup=True):
    ir = dataclasses.replace(module_ir(family), semigroup=semigroup)
    return write_module(ir, tmp_path_factory.mktemp(f"{family}_module"))


@pytest.fixture(scope="module", params=sorted(GHAT))
def semigroup_module(request, tmp_path_factory):
    return request.param, build(request.param, tmp_path_factory)


def ks_statistic(a, b):
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return np.abs(cdf_a - cdf_b).max()


def test_kernel_then_increment_is_the_kernel_at_the_summed_time(semigroup_module):
    family, directory = semigroup_module
    t, step = 0.7, 1.3
    with generated_modules(directory) as generated:
        process = generated.process.Process()
        zeros = torch.zeros(DRAWS, *process.shape, dtype=torch.float64)
        at_t = process.sample_xt(zeros, t, generator=torch.Generator().manual_seed(1))
        composed = process.sample_increment(at_t, t, t + step, generator=torch.Generator().manual_seed(2))
        direct = process.sample_xt(zeros, t + step, generator=torch.Generator().manual_seed(3))
    first, direct_first = composed[:, 0].numpy(), direct[:, 0].numpy()
    assert ks_statistic(first, direct_first) < KS_LIMIT
    for k in (0.3, 1.0, 2.5):
        empirical = np.cos(k * first).mean()  # the laws are symmetric: the sine part is zero
        assert abs(empirical - GHAT[family](k, t + step)) < ECF_LIMIT, (family, k)
    # A wrong increment (the kernel at t + step instead of step) is caught by the same KS limit.
    with generated_modules(directory) as generated:
        process = generated.process.Process()
        wrong = process.sample_increment(at_t, 0.0, t + step, generator=torch.Generator().manual_seed(2))
    assert ks_statistic(wrong[:, 0].numpy(), direct_first) > KS_LIMIT


@pytest.mark.parametrize("family", ["student_t", "kac_product"])
def test_kernels_without_a_semigroup_refuse_the_stochastic_step(family, tmp_path_factory):
    directory = build(family, tmp_path_factory, semigroup=False)
    with generated_modules(directory) as generated:
        process = generated.process.Process()
        x = torch.zeros(4, *process.shape, dtype=torch.float64)
        with pytest.raises(ValueError, match="not a convolution semigroup"):
            process.sample_increment(x, 0.1, 0.2)
        with pytest.raises(ValueError, match="not a convolution semigroup"):
            generated.process.sample_sde(process, lambda x, t: x, x, process.sigma_grid(4))
        assert generated.sample.main(["--exact", "moons", "--sampler", "sde", "--out", "x.npy"]) == 3


def test_zero_churn_is_the_heun_sampler(semigroup_module):
    _, directory = semigroup_module
    with generated_modules(directory) as generated:
        process = generated.process.Process()
        velocity = (lambda x, t: -x / (1 + t[:, None]))
        x = process.sample_prior(64, generator=torch.Generator().manual_seed(0)).double()
        grid = process.sigma_grid(6)
        heun = process.sample_heun(process.sigma_velocity(velocity), x, grid)
        sde = generated.process.sample_sde(process, velocity, x, grid, churn=0.0)
        churned = generated.process.sample_sde(process, velocity, x, grid, churn=5.0,
                                               generator=torch.Generator().manual_seed(0))
    assert torch.equal(sde, heun)
    assert not torch.allclose(churned, heun)


# Share of samples within 0.05 of a point mass. The Cauchy exact flow leaves a few percent of samples short
# with 40 steps even without churn (measured on catalog pfgm: 15 of 400 with the ODE, 24 of 400 at churn 20).
LANDED = {"gaussian": 1.0, "cauchy": 0.9}


@pytest.mark.parametrize("family", sorted(LANDED))
def test_sde_with_the_exact_velocity_lands_on_point_masses_in_proportion(family, tmp_path_factory, tmp_path):
    directory = build(family, tmp_path_factory)
    points = np.array([[-2.0, 0.0], [-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # weights 1/2, 1/4, 1/4
    np.save(tmp_path / "points.npy", points)
    out = tmp_path / "sde.npy"
    with generated_modules(directory) as generated:
        assert generated.sample.main(["--exact", str(tmp_path / "points.npy"), "--n", "400", "--steps", "40",
                                      "--sampler", "sde", "--churn", "20", "--device", "cpu",
                                      "--out", str(out)]) == 0
    samples = np.load(out)
    distance = np.linalg.norm(samples[:, None] - points[None, [0, 2, 3]], axis=2)
    assert (distance.min(axis=1) < 0.05).mean() >= LANDED[family]
    shares = np.bincount(distance.argmin(axis=1), minlength=3) / len(samples)
    assert np.allclose(shares, [0.5, 0.25, 0.25], atol=0.1)  # 4 binomial standard deviations

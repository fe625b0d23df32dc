"""The ancestral sampler of the generated modules (process.sample_ancestral, sample.py --sampler ancestral):
DLPM's sampler (arXiv 2407.18609) on the PDE's own subordinated-Gaussian process. The Gaussian bridge step has the
Brownian bridge's law; the variance path and the bridges together are the exact reverse chain (given a posterior
draw of y, the sampler lands on point masses in proportion); the sampler runs from sample.py; kernels without the
structure refuse it."""
import dataclasses
import math

import numpy as np
import pytest
from test_generated_scripts import generated_modules, module_ir, write_module

torch = pytest.importorskip("torch")

POINTS = [[-2.0, 0.0], [-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]]  # point masses (-2, 0), (2, 0), (0, 3): 1/2, 1/4, 1/4
WEIGHTS = np.array([0.5, 0.25, 0.25])
MODES = np.array(POINTS)[[0, 2, 3]]


def build(family, tmp_path_factory, semigroup=True):
    ir = dataclasses.replace(module_ir(family), semigroup=semigroup)
    return write_module(ir, tmp_path_factory.mktemp(f"{family}_ancestral"))


def shares_and_landed(samples):
    distance = np.linalg.norm(samples[:, None] - MODES[None], axis=2)
    return np.bincount(distance.argmin(axis=1), minlength=3) / len(samples), (distance.min(axis=1) < 0.05).mean()


def test_the_bridge_step_has_the_brownian_bridge_law(tmp_path_factory):
    """x_t = y + B(V), x_t' = y + B(V') for a Brownian motion B: the step from x_t must give (x_t', x_t) their
    joint law, mean y and covariance [[V', V'], [V', V]] per coordinate. Each statistic is checked at 5 of its
    standard errors (normal approximation: false-alarm rate about 6e-7 each, 3 checks). The obvious slips, a mean
    ratio sqrt(V'/V) or a variance V' instead of V'(V - V')/V, move the covariance or the variance by 0.25 V' or
    more, against limits of 0.016 V'."""
    directory = build("stable", tmp_path_factory)
    n, variance, variance_next, y = 200_000, 2.0, 0.5, 1.5
    generator = torch.Generator().manual_seed(0)
    at_next = y + math.sqrt(variance_next) * torch.randn(n, 1, dtype=torch.float64, generator=generator)
    at_t = at_next + math.sqrt(variance - variance_next) * torch.randn(n, 1, dtype=torch.float64, generator=generator)
    with generated_modules(directory) as generated:
        stepped = generated.process.gaussian_bridge_step(
            at_t, torch.full_like(at_t, y), torch.full((n,), variance, dtype=torch.float64),
            torch.full((n,), variance_next, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    a, b = (stepped[:, 0] - y).numpy(), (at_t[:, 0] - y).numpy()
    assert abs(a.mean()) < 5 * math.sqrt(variance_next / n)
    assert abs(a.var() - variance_next) < 5 * variance_next * math.sqrt(2 / n)
    # Var(a b) = V' V + V'^2 for the joint Gaussian (Isserlis)
    assert abs((a * b).mean() - variance_next) < 5 * math.sqrt((variance_next * variance + variance_next**2) / n)


@pytest.mark.parametrize("family", ["stable", "cauchy"])
def test_the_exact_reverse_chain_lands_on_point_masses_in_proportion(family, tmp_path_factory):
    """With y drawn from its posterior given (x_t, V_t) as the denoiser, every step of sample_ancestral is the
    exact reverse chain given the variance path (the prior at sigma_max = 80 is centred at the data mean: an
    error of order (spread / 80)^2). Binomial check of the three shares at 4.5 standard deviations (n = 2000:
    0.050 and 0.044; false-alarm rate below 2e-5 together). The sampler as a network runs it (the mean
    E[y | x_t] read off the exact marginal velocity) gives the heavy Cauchy mode 0.60 at these settings, outside
    these limits (process.sample_ancestral says why). The share landed within
    0.05 of a mode is the kernel's own mass there at sigma_min = 0.002 (Cauchy: about 0.955)."""
    directory = build(family, tmp_path_factory)
    points = torch.tensor(POINTS, dtype=torch.float64)
    posterior_generator = torch.Generator().manual_seed(5)

    def posterior_draw(x, variance):
        log_weights = -torch.cdist(x.to(torch.float64), points).square() / (2 * variance[:, None])
        index = torch.multinomial(torch.softmax(log_weights, dim=1), 1, generator=posterior_generator)[:, 0]
        return points[index].to(x.dtype)

    n = 2000
    with generated_modules(directory) as generated:
        process = generated.process.Process(data_mean=points.mean(dim=0)).double()
        samples = generated.process.sample_ancestral(
            process, None, n, process.sigma_grid(41), dtype=torch.float64,
            generator=torch.Generator().manual_seed(3), denoiser_fn=posterior_draw).numpy()
    shares, landed = shares_and_landed(samples)
    limits = 4.5 * np.sqrt(WEIGHTS * (1 - WEIGHTS) / n)
    assert (np.abs(shares - WEIGHTS) < limits).all(), shares
    assert landed > {"stable": 0.98, "cauchy": 0.92}[family]


def test_sample_py_ancestral_with_the_exact_velocity(tmp_path_factory, tmp_path):
    """sample.py --exact --sampler ancestral (the mean denoiser from the exact marginal velocity, as a network
    gives it): lands on the modes; the shares within 0.1 (4 binomial standard deviations at n = 400: false-alarm
    rate below 2e-4) hold for stable alpha = 1.5, whose measured bias at 40 steps is 0.03-0.05 (see
    process.sample_ancestral)."""
    directory = build("stable", tmp_path_factory)
    np.save(tmp_path / "points.npy", np.array(POINTS))
    out = tmp_path / "ancestral.npy"
    with generated_modules(directory) as generated:
        assert generated.sample.main(["--exact", str(tmp_path / "points.npy"), "--n", "400", "--steps", "41",
                                      "--sampler", "ancestral", "--device", "cpu", "--out", str(out)]) == 0
    shares, landed = shares_and_landed(np.load(out))
    assert landed > 0.95
    assert np.allclose(shares, WEIGHTS, atol=0.1), shares


@pytest.mark.parametrize("family", ["student_t", "kac_product"])
def test_kernels_without_a_variance_path_refuse_the_ancestral_sampler(family, tmp_path_factory):
    directory = build(family, tmp_path_factory, semigroup=False)
    with generated_modules(directory) as generated:
        process = generated.process.Process()
        assert not generated.process.SUBORDINATED
        with pytest.raises(ValueError, match="no ancestral"):
            generated.process.sample_ancestral(process, lambda x, t: x, 4, process.sigma_grid(4))
        assert generated.sample.main(["--exact", "moons", "--sampler", "ancestral", "--out", "x.npy"]) == 3

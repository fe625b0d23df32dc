"""The torch runtime that ships (pde2gen/families/<family>/runtime.py, inlined into every generated process.py) against
the compiler's independent float64 NumPy/SciPy twin (pde2gen.derive.reference), over one battery for every family of
pde2gen.families.FAMILIES: the noise level sigma(t), its inverse and derivative, the log-kernel, the
posterior-mean velocity, and the law of the exact sampler (two-sample KS)."""
import importlib
import math

import numpy as np
import pytest

from pde2gen.codegen.lower import FAMILY_CLASSES
from pde2gen.derive import reference
from pde2gen.families import FAMILIES, FamilyConfig

torch = pytest.importorskip("torch")

# Parameter values for the battery; any other parameter of a family is 1.
SPECIAL_VALUES = {"alpha": 1.5, "D": 4.0, "m": 0.5, "kappa": 0.7, "a": 9.0, "c": 1.3}
SIGMAS = (0.02, 0.5, 5.0, 50.0)
DIM = 3
DRAWS = 4000
# Two-sample KS at false-alarm rate 1e-6 per comparison: D > sqrt(-ln(alpha / 2) / 2) sqrt(2 / n).
KS_LIMIT = math.sqrt(-math.log(0.5e-6) / 2) * math.sqrt(2 / DRAWS)


def config(name):
    return FamilyConfig(name, tuple((p, SPECIAL_VALUES.get(p, 1.0)) for p in FAMILIES[name].parameters))


def runtime(name):
    module = importlib.import_module(f"pde2gen.families.{name}.runtime")
    return getattr(module, FAMILY_CLASSES[name])(**config(name).params)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ks_distance(first, second):
    """The two-sample Kolmogorov-Smirnov statistic sup |F_1 - F_2| (ties and atoms counted exactly)."""
    a, b = np.sort(first), np.sort(second)
    grid = np.concatenate([a, b])
    return np.abs(np.searchsorted(a, grid, side="right") / len(a)
                  - np.searchsorted(b, grid, side="right") / len(b)).max()


def f64(values):
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_noise_level_its_inverse_and_derivative_agree(name):
    family, torch_family = config(name), runtime(name)
    times = reference.t_of_sigma(family, np.array(SIGMAS))
    assert np.allclose(reference.sigma(family, times), SIGMAS, rtol=1e-9)
    assert np.allclose(torch_family.sigma(f64(times)).numpy(), SIGMAS, rtol=1e-9)
    assert np.allclose(torch_family.t_of_sigma(f64(SIGMAS)).numpy(), times, rtol=1e-8)
    step = 1e-6 * times
    slope = (reference.sigma(family, times + step) - reference.sigma(family, times - step)) / (2 * step)
    assert np.allclose(torch_family.dsigma_dt(f64(times)).numpy(), slope, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("sigma", SIGMAS[1:3])
def test_log_kernel_and_posterior_velocity_agree(name, sigma):
    family, torch_family = config(name), runtime(name)
    t = float(reference.t_of_sigma(family, np.array([sigma]))[0])
    d, _ = reference.sample(family, t, 200, DIM, np.random.default_rng(7))
    d = 0.999 * d  # off the Kac atoms (the runtime regularises them, the reference keeps them exact)
    times = np.full(len(d), t)
    log_reference = reference.log_kernel(family, d, times)
    log_torch = torch_family.log_kernel(f64(d), f64(times)).numpy()
    finite = np.isfinite(log_reference)
    assert finite.mean() > 0.9
    assert np.allclose(log_torch[finite], log_reference[finite], rtol=1e-6, atol=1e-6)
    velocity_reference = reference.conditional_velocity(family, d, times)
    velocity_torch = torch_family.conditional_velocity(f64(d), f64(times)).numpy()
    scale = np.abs(velocity_reference).max()
    assert np.allclose(velocity_torch[finite], velocity_reference[finite], rtol=1e-6, atol=1e-9 * scale)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_samplers_draw_the_same_law(name):
    family, torch_family = config(name), runtime(name)
    t = float(reference.t_of_sigma(family, np.array([0.5]))[0])
    d_reference, _ = reference.sample(family, t, DRAWS, DIM, np.random.default_rng(3))
    d_torch, _ = torch_family.sample_displacement(torch.full((DRAWS,), t, dtype=torch.float64), (DIM,),
                                                  generator=torch.Generator().manual_seed(3))
    statistic = (lambda d: np.abs(d[:, 0])) if not reference.is_isotropic(family) else (
        lambda d: np.linalg.norm(d, axis=1))
    distance = ks_distance(statistic(d_reference), statistic(d_torch.numpy()))
    assert distance < KS_LIMIT, (name, distance)


@pytest.mark.parametrize("name", sorted(name for name, info in FAMILIES.items() if info.subordinated))
def test_mixing_variance_has_the_twins_law(name):
    """sample_mixing_variance(t) -> V, the variance the ancestral sampler's path is made of (declared by
    FamilyInfo.subordinated), has the law of the twin's sample_variance (two-sample KS at KS_LIMIT on V; the heat
    kernel's V = 2 kappa t is deterministic)."""
    family, torch_family = config(name), runtime(name)
    t = float(reference.t_of_sigma(family, np.array([0.5]))[0])
    twin = reference.implementation(family).sample_variance(np.full(DRAWS, t), np.random.default_rng(4))
    variance = torch_family.sample_mixing_variance(torch.full((DRAWS,), t, dtype=torch.float64),
                                                   generator=torch.Generator().manual_seed(4))
    assert variance.dtype == torch.float64 and variance.shape == (DRAWS,)
    distance = ks_distance(np.broadcast_to(twin, (DRAWS,)), variance.numpy())
    assert distance < KS_LIMIT, (name, distance)

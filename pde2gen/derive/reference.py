"""NumPy/SciPy float64 reference runtime of every family in ``pde2gen.families``: the compiler's own,
independent implementation, used by the self-checks of ``pde2gen.derive.verify`` (the torch runtime of each family,
``pde2gen/families/<family>/runtime.py``, is written separately and tested against it). Each family's
implementation is the class ``Reference`` of ``pde2gen/families/<family>/reference.py``; this module is the
one way in, the same functions for every family.

Conventions (docs/DESIGN.md): displacement d = x - y of shape (n, N); time t (a float, or one per row);
the kernel is the normalised law of d.  Isotropic families are subordinated Gaussians d = sqrt(V) eps
(physics.md §4.1); ``kac_product`` has N independent 1-D Kac coordinates, each with atoms of mass
e^{-a t}/2 at +-c t (physics.md §4.5).

Public functions (``family`` is a ``FamilyConfig``):
    sample(family, t, n, N, rng) -> (d, latent)      exact draws; latent: V for nig, atom signs for kac
    log_kernel(family, d, t) -> (n,)                   normalised log density (Kac atoms: log of their mass;
                                                       -inf outside the light cone)
    characteristic_function(family, k, t) -> (...)     E exp(i k.d) for wave vectors k of shape (..., N)
    conditional_velocity(family, d, t, latent=None)    the coupling's velocity; without latent its
                                                       posterior mean given d (the radial transport field)
    marginal_velocity(family, x, t, data)              E[v(x - y)] under softmax(log kernel) weights (Kac: over
                                                       the data points that put x on the most atoms)
    transport(family, d, t_from, t_to, latent, steps)  integrate the coupling ODE (RK4)
    sigma(family, t), t_of_sigma(family, sigma)        noise alignment (physics.md §4.7)
    radial_cdf(family, rho, t, N)                      law of |d| (isotropic families), for KS tests
    kac_continuous_cdf(family, x, t)                   law of one Kac coordinate given it is off the atoms
    mean_square_radius(family, t, N)                   E|d|^2 (inf where it diverges)
"""
from __future__ import annotations

import importlib
from functools import lru_cache

import numpy as np
from scipy import special

from ..families import FamilyConfig
from ..families.reference_common import (
    ReferenceFamily,
    as_rows,
    as_times,
    log_bessel_k,
    log_sphere_area,
    positive_stable,
)

__all__ = ["characteristic_function", "conditional_velocity", "implementation", "is_isotropic", "kac_atom_probability",
           "kac_continuous_cdf", "log_bessel_k", "log_kernel", "log_sphere_area", "marginal_velocity",
           "mean_square_radius", "positive_stable", "radial_cdf", "sample", "sigma", "t_of_sigma", "transport"]


def implementation_class(name: str) -> type[ReferenceFamily]:
    """The ``Reference`` class of pde2gen/families/<name>/reference.py."""
    return importlib.import_module(f"pde2gen.families.{name}.reference").Reference


@lru_cache(maxsize=64)
def implementation(family: FamilyConfig) -> ReferenceFamily:
    """The family's reference object with its parameters (cached: it may hold tables)."""
    return implementation_class(family.name)(**family.params)


# ============================================================================================ public API
def sample(family: FamilyConfig, t, n: int, N: int, rng: np.random.Generator):
    """n exact draws of the displacement at time(s) t in N dimensions: (d of shape (n, N), latent)."""
    return implementation(family).sample(as_times(t, n), n, N, rng)


def log_kernel(family: FamilyConfig, d, t) -> np.ndarray:
    """log of the normalised kernel at displacements d (n, N) and time(s) t."""
    d = as_rows(d)
    return implementation(family).log_kernel(d, as_times(t, len(d)))


def characteristic_function(family: FamilyConfig, k, t) -> np.ndarray:
    """E exp(i k.d) for wave vectors k of shape (..., N) at time(s) t broadcastable to k.shape[:-1]."""
    k = np.asarray(k, dtype=float)
    t = np.broadcast_to(np.asarray(t, dtype=float), k.shape[:-1])
    return implementation(family).characteristic_function(k, t)


def conditional_velocity(family: FamilyConfig, d, t, latent=None) -> np.ndarray:
    """Velocity of the exact coupling at d (n, N), time(s) t; without latent, its posterior mean given d."""
    d = as_rows(d)
    return implementation(family).conditional_velocity(d, as_times(t, len(d)), latent)


def marginal_velocity(family: FamilyConfig, x, t: float, data, chunk: int = 256) -> np.ndarray:
    """sum_j w_j v(x - y_j), w = softmax_j log kernel(x - y_j, t): the exact velocity of p_t = kernel * data.

    kac_product: the softmax runs over the data points that put x on the most atoms (``posterior_terms``);
    off every data point's support, over the distances to the fronts."""
    x, data = as_rows(x), as_rows(data)
    impl = implementation(family)
    out = np.empty_like(x)
    for start in range(0, len(x), chunk):
        block = x[start:start + chunk]
        d = (block[:, None, :] - data[None, :, :]).reshape(-1, x.shape[1])
        # the rounding of x (a sum y + d when drawn) and of x - y
        slack = 2.0 * np.finfo(float).eps * (np.abs(block[:, None, :]) + np.abs(data[None, :, :]))
        rank, log_w, v = impl.posterior_terms(d, as_times(t, len(d)), slack.reshape(d.shape))
        rank, log_w = rank.reshape(len(block), len(data)), log_w.reshape(len(block), len(data))
        log_w = np.where(rank == rank.max(axis=1, keepdims=True), log_w, -np.inf)
        weights = np.exp(log_w - special.logsumexp(log_w, axis=1, keepdims=True))
        v = v.reshape(len(block), len(data), x.shape[1])
        out[start:start + chunk] = np.einsum("bj,bjn->bn", weights, v)
    return out


def transport(family: FamilyConfig, d, t_from: float, t_to: float, latent=None, steps: int = 64):
    """Integrate the coupling ODE dd/dt = conditional_velocity from t_from to t_to (RK4): (d, latent).

    nig, heat_nig: the latent moves with d (d = sqrt(V) eps with eps fixed), so V = |d|^2 / |eps|^2 at each stage.
    kac_product: atoms move at +-c; backwards in time an a.c. coordinate that the cone overtakes joins the
    atom (the mass the atoms leak forwards), so only transport towards the data (t_to < t_from) is exact.
    """
    return implementation(family).transport(np.array(as_rows(d), dtype=float), t_from, t_to, latent, steps)


def sigma(family: FamilyConfig, t):
    """Noise level aligned with diffusion (pde2gen.families, physics.md §4.7)."""
    return implementation(family).sigma(np.asarray(t, dtype=float))


def t_of_sigma(family: FamilyConfig, sigma_value):
    """Inverse of ``sigma``."""
    return implementation(family).t_of_sigma(np.asarray(sigma_value, dtype=float))


def radial_cdf(family: FamilyConfig, rho, t: float, N: int) -> np.ndarray:
    """P(|d| <= rho) at time t in N dimensions (isotropic families)."""
    impl = implementation(family)
    if not impl.isotropic:
        raise ValueError(f"{family.name} is not isotropic: use kac_continuous_cdf per coordinate")
    return impl.radial_cdf(np.asarray(rho, dtype=float), np.asarray(t, dtype=float), N)


def kac_continuous_cdf(family: FamilyConfig, x, t: float) -> np.ndarray:
    """CDF of one kac_product coordinate given that it is off the atoms."""
    return implementation(family).continuous_cdf(np.asarray(x, dtype=float), float(t))


def kac_atom_probability(family: FamilyConfig, t) -> np.ndarray:
    """Probability e^{-a t} that a Kac coordinate sits on an atom (+-c t)."""
    return implementation(family).atom_probability(np.asarray(t, dtype=float))


def mean_square_radius(family: FamilyConfig, t: float, N: int) -> float:
    """E|d|^2 at time t in N dimensions (math.inf where it diverges)."""
    return implementation(family).mean_square_radius(float(t), N)


def is_isotropic(family: FamilyConfig) -> bool:
    return implementation(family).isotropic

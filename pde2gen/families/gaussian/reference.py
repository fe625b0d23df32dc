"""NumPy/SciPy float64 reference twin of the gaussian family: Gaussian kernel (physics.md §4.1): V = 2 kappa t.

An implementation independent of the torch runtime (runtime.py), reached through ``pde2gen.derive.reference``."""
from __future__ import annotations

import numpy as np
from scipy import stats

from ..reference_common import ReferenceFamily


class Reference(ReferenceFamily):
    velocity_exponent = 2.0

    def sample_variance(self, t, rng):
        return 2.0 * self.kappa * t

    def log_kernel(self, d, t):
        N = d.shape[1]
        variance = 2.0 * self.kappa * t
        return -0.5 * N * np.log(2.0 * np.pi * variance) - np.sum(d * d, axis=1) / (2.0 * variance)

    def radial_cf(self, k, t):
        return np.exp(-self.kappa * t * k**2)

    def sigma(self, t):
        return np.sqrt(2.0 * self.kappa * t)

    def t_of_sigma(self, sigma):
        return sigma**2 / (2.0 * self.kappa)

    def radial_cdf(self, rho, t, N):
        return stats.chi2.cdf(rho**2 / (2.0 * self.kappa * t), N)

    def mean_square_radius(self, t, N):
        return 2.0 * self.kappa * t * N

"""NumPy/SciPy float64 reference twin of the cauchy family: Cauchy (Poisson) kernel (physics.md §4.1): V = (c
t)^2 / Z^2.

An implementation independent of the torch runtime (runtime.py), reached through ``pde2gen.derive.reference``."""
from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from ..reference_common import ReferenceFamily


class Reference(ReferenceFamily):
    velocity_exponent = 1.0

    def tail_index(self):
        return 1.0

    def sample_variance(self, t, rng):
        Z = rng.standard_normal(len(t))
        return (self.c * t / Z) ** 2

    def log_kernel(self, d, t):
        # The normalised Poisson kernel: Gamma((N+1)/2) tau / (pi^{(N+1)/2} (rho^2 + tau^2)^{(N+1)/2}).
        N = d.shape[1]
        tau = self.c * t
        half = 0.5 * (N + 1)
        return (special.gammaln(half) - half * math.log(math.pi) + np.log(tau)
                - half * np.log(np.sum(d * d, axis=1) + tau**2))

    def radial_cf(self, k, t):
        return np.exp(-self.c * t * k)

    def sigma(self, t):
        return self.c * t

    def t_of_sigma(self, sigma):
        return sigma / self.c

    def radial_cdf(self, rho, t, N):
        return stats.f.cdf(rho**2 / (N * (self.c * t) ** 2), N, 1)

"""NumPy/SciPy float64 reference twin of the student_t family: Multivariate Student-t kernel: V = (c t)^2 /
chi2_D.

An implementation independent of the torch runtime (runtime.py), reached through ``pde2gen.derive.reference``."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..reference_common import ReferenceFamily, log_gamma_ratio, log_student_t_cf


class Reference(ReferenceFamily):
    velocity_exponent = 1.0

    def _scale(self, t):
        return self.c * t / math.sqrt(self.D)

    def tail_index(self):
        return self.D

    def sample_variance(self, t, rng):
        # V = (c t)^2 / chi2_D, chi2_D = 2 Gamma(D/2): a Gamma draw stays exact in float64 for any D.
        return (self.c * t) ** 2 / (2.0 * rng.standard_gamma(0.5 * self.D, len(t)))

    def log_kernel(self, d, t):
        N, D = d.shape[1], self.D
        scale = self._scale(t)
        return (log_gamma_ratio(0.5 * D, 0.5 * N) - 0.5 * N * math.log(math.pi * D)
                - N * np.log(scale) - 0.5 * (N + D) * np.log1p(np.sum(d * d, axis=1) / (D * scale**2)))

    def radial_cf(self, k, t):
        u = self.c * t * np.asarray(k, dtype=float)
        return np.where(u > 0, np.exp(log_student_t_cf(0.5 * self.D, np.where(u > 0, u, 1.0))), 1.0)

    def sigma(self, t):
        return self._scale(t)

    def t_of_sigma(self, sigma):
        return sigma * math.sqrt(self.D) / self.c

    def radial_cdf(self, rho, t, N):
        return stats.f.cdf(rho**2 / (N * self._scale(t) ** 2), N, self.D)

    def mean_square_radius(self, t, N):
        return N * self._scale(t) ** 2 * self.D / (self.D - 2.0) if self.D > 2 else math.inf

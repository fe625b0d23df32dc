"""NumPy/SciPy float64 reference twin of the nig family: Normal-inverse-Gaussian kernel (physics.md §4.4): V ~
InverseGaussian(tau / m, tau^2), tau = c t.

An implementation independent of the torch runtime (runtime.py), reached through ``pde2gen.derive.reference``."""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..reference_common import (
    MovingVarianceLatent,
    ReferenceFamily,
    chi_mixture_cdf,
    gig_nodes,
    log_bessel_ke,
)


class Reference(MovingVarianceLatent, ReferenceFamily):
    """V ~ IG(tau/m, tau^2), tau = c t: the Yukawa kernel normalised (physics.md §4.2, §4.4)."""

    def radial_log_range(self, t, bottom, top):
        # Cauchy-like out to |d| ~ 1/m when m c t is small, then e^{-m |d|}
        return bottom, max(top, math.log(60.0 / self.m))

    def latent(self, V):
        return V

    def sample_variance(self, t, rng):
        # Michael-Schucany-Haas for IG(mu, lambda) with mu = tau/m, lambda = tau^2 (physics.md §4.1).
        tau = self.c * t
        mu = tau / self.m
        q = rng.standard_normal(len(t)) ** 2 / (2.0 * self.m * tau)  # mu Z^2 / (2 lambda)
        x = mu / (1.0 + q + np.sqrt(q * q + 2.0 * q))
        U = rng.random(len(t))
        return np.where(U <= mu / (mu + x), x, mu * mu / x)

    def log_kernel(self, d, t):
        N = d.shape[1]
        tau = self.c * t
        r = np.sqrt(np.sum(d * d, axis=1) + tau**2)
        half = 0.5 * (N + 1)
        # 2 e^{m tau} (2 pi)^{-(N+1)/2} m^{(N+1)/2} tau r^{-(N+1)/2} K_{(N+1)/2}(m r), with e^{m tau} K(m r) =
        # e^{-m (r - tau)} K(m r) e^{m r} and r - tau = |d|^2 / (r + tau) (m tau - m r cancelled ~m tau eps)
        return (math.log(2.0) - half * math.log(2.0 * math.pi) + half * math.log(self.m) + np.log(tau)
                - half * np.log(r) + log_bessel_ke(half, self.m * r) - self.m * np.sum(d * d, axis=1) / (r + tau))

    def radial_cf(self, k, t):
        k = np.asarray(k, dtype=float)
        return np.exp(-self.c * t * k**2 / (np.sqrt(k**2 + self.m**2) + self.m))  # sqrt(k^2+m^2) - m, exactly

    def _bracket(self, V, tau):
        """V_dot / (2 V) * tau: the quantile coupling's factor 1 - m sqrt(pi V/2) erfcx((m V + tau)/sqrt(2 V))."""
        return 1.0 - self.m * np.sqrt(0.5 * np.pi * V) * special.erfcx((self.m * V + tau) / np.sqrt(2.0 * V))

    def conditional_velocity(self, d, t, latent):
        tau = self.c * t
        if latent is not None:
            factor = self._bracket(np.asarray(latent, dtype=float), tau)
        else:
            # Posterior of V given rho: GIG(p = -(N+1)/2, a = m^2, b = tau^2 + rho^2); average the factor.
            N = d.shape[1]
            b = tau**2 + np.sum(d * d, axis=1)
            V, log_w = gig_nodes(-0.5 * (N + 1), self.m**2, b)
            factor = np.sum(np.exp(log_w) * self._bracket(V, tau[:, None]), axis=1)
        return d * (factor / t)[:, None]

    def sigma(self, t):
        tau = self.c * t
        return tau / np.sqrt(1.0 + self.m * tau)

    def t_of_sigma(self, sigma):
        s2 = np.asarray(sigma, dtype=float) ** 2
        # tau^2 - m s^2 tau - s^2 = 0, positive root
        return 0.5 * (self.m * s2 + np.sqrt((self.m * s2) ** 2 + 4.0 * s2)) / self.c

    def radial_cdf(self, rho, t, N):
        # E_V chi2_N.cdf(rho^2 / V) over the IG prior GIG(-1/2, m^2, tau^2).
        tau = float(self.c * np.asarray(t, dtype=float).reshape(-1)[0])
        V, log_w = gig_nodes(-0.5, self.m**2, np.array([tau**2]))
        return chi_mixture_cdf(rho, V[0], log_w[0], N)

    def mean_square_radius(self, t, N):
        return N * self.c * t / self.m

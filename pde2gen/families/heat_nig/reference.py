"""NumPy/SciPy float64 reference twin of the heat_nig family: Heat kernel convolved with a
normal-inverse-Gaussian one: V = 2 kappa t + X, X ~ InverseGaussian(tau / m, tau^2).

An implementation independent of the torch runtime (runtime.py), reached through ``pde2gen.derive.reference``."""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..reference_common import (
    MovingVarianceLatent,
    RadialMixtureReference,
    ReferenceFamily,
    chi_mixture_cdf,
    gig_nodes,
    log_trapezoid,
    open_uniform,
)


def _ig_draw(tau: np.ndarray, m: float, rng) -> np.ndarray:
    """X ~ IG(tau / m, tau^2) (m = 0: the Levy law tau^2 / Z^2), Michael-Schucany-Haas without cancellation:
    with y = Z^2 and p = 2 m tau / y the smaller root is x = (2 tau^2 / y) / (1 + p + sqrt(1 + 2 p)), accepted
    with probability tau / (tau + m x), else tau^2 / (m^2 x)."""
    y = np.maximum(rng.standard_normal(len(tau)) ** 2, 1e-300)
    p = 2.0 * m * tau / y
    x = (2.0 * tau**2 / y) / (1.0 + p + np.sqrt(1.0 + 2.0 * p))
    if m == 0:
        return x
    u = open_uniform(rng, len(tau))
    return np.where(u * (tau + m * x) <= tau, x, tau**2 / (m * m * np.maximum(x, 1e-300)))


def _ig_bracket(m: float, X, tau):
    """t X_dot / (2 X) of the quantile coupling of X ~ IG(tau/m, tau^2): 1 - m sqrt(pi X/2) erfcx((m X + tau)
    / sqrt(2 X)) (physics.md §4.4); 1 at m = 0."""
    if m == 0:
        return np.ones_like(X)
    return 1.0 - m * np.sqrt(0.5 * np.pi * X) * special.erfcx((m * X + tau) / np.sqrt(2.0 * X))


HEAT_NIG_COARSE = 512


HEAT_NIG_FINE = 1024


class Reference(MovingVarianceLatent, RadialMixtureReference, ReferenceFamily):
    """f(s) = kappa s + c (sqrt(s + m^2) - m), m >= 0 (m = 0: heat plus Cauchy): the convolution of the heat
    and NIG kernels, d = sqrt(V) eps with V = 2 kappa t + X, X ~ IG(tau / m, tau^2), tau = c t, independent.

    Coupled velocity (the components' quantile couplings summed): u = (V_dot / (2 V)) d with
    V_dot = 2 kappa + 2 X bracket(X) / t. The kernel and the posterior mean of the velocity are one integral
    over X (``_mixture``); latent: X."""

    def __init__(self, kappa, c, m):
        for name, value in (("kappa", kappa), ("c", c)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"heat_nig: `{name}` must be a positive number, got {value}")
        if not (math.isfinite(m) and m >= 0):
            raise ValueError(f"heat_nig: `m` must be >= 0, got {m}")
        self.kappa, self.c, self.m = float(kappa), float(c), float(m)

    def sample(self, t, n, N, rng):
        X = _ig_draw(self.c * t, self.m, rng)
        V = 2.0 * self.kappa * t + X
        return np.sqrt(V)[:, None] * rng.standard_normal((n, N)), X

    def tail_index(self):
        return 1.0 if self.m == 0 else math.inf  # m = 0: the Cauchy component's tail

    def radial_log_range(self, t, bottom, top):
        # Cauchy-like out to |d| ~ 1/m when m c t is small, then e^{-m |d|}
        return bottom, (max(top, math.log(60.0 / self.m)) if self.m > 0 else top)

    def variance_of_latent(self, latent, t):
        return 2.0 * self.kappa * t + latent  # latent: X

    def latent_of_variance(self, V, t):
        return V - 2.0 * self.kappa * t

    def sample_variance(self, t, rng):
        return 2.0 * self.kappa * t + _ig_draw(self.c * t, self.m, rng)

    def radial_cf(self, k, t):
        k = np.asarray(k, dtype=float)
        root = np.sqrt(k**2 + self.m**2) + self.m  # sqrt(k^2 + m^2) - m = k^2 / root, exactly
        return np.exp(-t * (self.kappa * k**2 + self.c * np.where(root > 0, k**2 / np.where(root > 0, root, 1.0),
                                                                     0.0)))

    def _factor(self, X, t):
        """V_dot / (2 V) of the coupling, given X."""
        return (self.kappa * t + X * _ig_bracket(self.m, X, self.c * t)) / (t * (2.0 * self.kappa * t + X))

    def _mixture(self, d, t, with_factor: bool):
        parts = [self._mixture_block(d[i:i + 2048], t[i:i + 2048], with_factor) for i in range(0, len(d), 2048)]
        if not parts:
            return np.zeros(0), (np.zeros(0) if with_factor else None)
        return np.concatenate([p[0] for p in parts]), (np.concatenate([p[1] for p in parts]) if with_factor
                                                       else None)

    def _mixture_block(self, d, t, with_factor: bool):
        """log p(d) = log int f_X(x) N_N(d; 0, (2 kappa t + x) I) dx, and E[V_dot / (2 V) | d], by the trapezoid
        rule in w = log x: a coarse pass finds, per row, where the integrand is within e^-45 of its maximum,
        a fine uniform grid of HEAT_NIG_FINE points covers that region (the integrand is unimodal in each
        factor, not necessarily log-concave, so no mode formula is assumed)."""
        N = d.shape[1]
        rho2 = np.sum(d * d, axis=1)
        tau = self.c * t
        a = 2.0 * self.kappa * t
        m = self.m

        def log_integrand(rows, w):
            x = np.exp(w)
            V = a[rows, None] + x
            return (np.log(tau[rows, None]) - 0.5 * math.log(2 * math.pi) + m * tau[rows, None] - 0.5 * w
                    - 0.5 * (m * m * x + tau[rows, None] ** 2 / x)
                    - 0.5 * N * np.log(2 * math.pi * V) - 0.5 * rho2[rows, None] / V)

        rows = np.arange(len(rho2))
        low = np.log(tau**2 / 400.0)
        top = np.maximum(np.log(tau**2), np.log(np.maximum(rho2 / N, tau**2))) + 200.0 / (N + 1.0) + 2.0
        z = np.linspace(0.0, 1.0, HEAT_NIG_COARSE)
        coarse = low[:, None] + (top - low)[:, None] * z[None, :]
        values = log_integrand(rows, coarse)
        keep = values > values.max(axis=1, keepdims=True) - 45.0
        first = np.argmax(keep, axis=1)
        last = HEAT_NIG_COARSE - 1 - np.argmax(keep[:, ::-1], axis=1)
        left = coarse[rows, np.maximum(first - 2, 0)]
        right = coarse[rows, np.minimum(last + 2, HEAT_NIG_COARSE - 1)]
        fine = left[:, None] + (right - left)[:, None] * np.linspace(0.0, 1.0, HEAT_NIG_FINE)[None, :]
        log_terms = log_integrand(rows, fine)
        spacing = (right - left) / (HEAT_NIG_FINE - 1)
        log_p = log_trapezoid(log_terms, 1.0) + np.log(spacing)
        if not with_factor:
            return log_p, None
        ends = np.zeros(HEAT_NIG_FINE)
        ends[[0, -1]] = math.log(0.5)
        weights = np.exp(log_terms + ends - special.logsumexp(log_terms + ends, axis=1, keepdims=True))
        return log_p, np.sum(weights * self._factor(np.exp(fine), t[:, None]), axis=1)

    def _sigma2(self, t):
        tau = self.c * t
        return 2.0 * self.kappa * t + tau**2 / (1.0 + self.m * tau)

    def sigma(self, t):
        return np.sqrt(self._sigma2(np.asarray(t, dtype=float)))

    def t_of_sigma(self, sigma):
        """sigma^2(t) = 2 kappa t + tau^2 / (1 + m tau) is increasing and convex: Newton from the smaller of
        the two components' inverses (an upper bound of the root) converges monotonically."""
        s2 = np.asarray(sigma, dtype=float) ** 2
        m, c = self.m, self.c
        t = np.minimum(s2 / (2.0 * self.kappa), 0.5 * (m * s2 + np.sqrt((m * s2) ** 2 + 4.0 * s2)) / c)
        for _ in range(100):
            tau = c * t
            slope = 2.0 * self.kappa + c * tau * (2.0 + m * tau) / (1.0 + m * tau) ** 2
            step = (self._sigma2(t) - s2) / slope
            t = t - step
            if np.all(np.abs(step) <= 1e-15 * np.abs(t)):
                break
        return t

    def radial_cdf(self, rho, t, N):
        t = float(np.asarray(t, dtype=float).reshape(-1)[0])
        tau = self.c * t
        X, log_w = gig_nodes(-0.5, self.m**2, np.array([tau**2]))
        V = 2.0 * self.kappa * t + X
        return chi_mixture_cdf(rho, V[0], log_w[0], N)

    def mean_square_radius(self, t, N):
        return N * (2.0 * self.kappa * t + self.c * t / self.m) if self.m > 0 else math.inf

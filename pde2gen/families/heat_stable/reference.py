"""NumPy/SciPy float64 reference twin of the heat_stable family: the heat kernel convolved with an isotropic
alpha-stable one, f(s) = kappa s + kappa2 s^(alpha/2), 0 < alpha < 2: d = sqrt(V) eps with
V = 2 kappa t + 2 (kappa2 t)^(2/alpha) S, S positive (alpha/2)-stable, independent of eps.

An implementation independent of the torch runtime (runtime.py), reached through ``pde2gen.derive.reference``."""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..reference_common import RadialMixtureReference, ReferenceFamily, log_trapezoid, positive_stable

MIXTURE_COARSE = 240  # coarse pass over w = log S that locates each row's support
MIXTURE_BLOCK = 128  # rows sharing one fine grid
# Trapezoid spacing in w = log S: at most 1/5 of the narrowest feature (the Gaussian factor's sqrt(2/N) in log V,
# the lower tail's 1/gamma) and at most MAX_SPACING (the trapezoid rule is spectrally accurate for these smooth
# integrands: 0.25 against features of width >= 1.25 leaves ~1e-13; 0.05 cost 5x the time at alpha = 1/16)
MAX_SPACING = 0.25


class Reference(RadialMixtureReference, ReferenceFamily):
    """V = 2 kappa t + X, X = 2 (kappa2 t)^(2/alpha) S (the stable law's variance, shifted by the heat kernel's).

    Coupled velocity: each component's own coupling, summed (S is fixed along the path, as for the stable family
    alone): u = (V_dot / (2 V)) d, V_dot = 2 kappa + (2 / alpha) X / t. Latent: log S. The kernel and the
    posterior mean of the velocity given d are one integral over w = log S (``_mixture``)."""

    def __init__(self, kappa, kappa2, alpha):
        super().__init__(kappa=kappa, kappa2=kappa2, alpha=alpha)
        if not self.alpha < 2.0:
            raise ValueError(f"heat_stable: `alpha` must lie in (0, 2), got {self.alpha}")
        self.law = positive_stable(0.5 * self.alpha)

    # ---- the mixing variable
    def _stable_scale(self, t):
        """2 (kappa2 t)^(2/alpha): X = scale * S."""
        return 2.0 * (self.kappa2 * np.asarray(t, dtype=float)) ** (2.0 / self.alpha)

    def sample(self, t, n, N, rng):
        S = self.law.sample(n, rng)
        V = 2.0 * self.kappa * t + self._stable_scale(t) * S
        with np.errstate(divide="ignore"):
            return np.sqrt(V)[:, None] * rng.standard_normal((n, N)), np.log(S)

    def sample_variance(self, t, rng):
        return 2.0 * self.kappa * t + self._stable_scale(t) * self.law.sample(len(t), rng)

    def radial_cf(self, k, t):
        k = np.asarray(k, dtype=float)
        return np.exp(-t * (self.kappa * k**2 + self.kappa2 * k**self.alpha))

    # ---- velocity
    def _factor(self, log_S, t):
        """V_dot / (2 V) given log S: (kappa t + X / alpha) / (t (2 kappa t + X)) = ((1 - w)/2 + w/alpha) / t,
        w = X / V (so that S beyond the float range still gives a number)."""
        w = special.expit(np.log(self._stable_scale(t)) + log_S - np.log(2.0 * self.kappa * t))
        return ((1.0 - w) / 2.0 + w / self.alpha) / t

    def _mixture(self, d, t, with_factor: bool):
        """log p(d) = log int f_S(s) N_N(d; 0, (a + c s) I) ds (a = 2 kappa t, c = 2 (kappa2 t)^(2/alpha)) and
        E[V_dot / (2 V) | d], by the trapezoid rule in w = log s. A coarse pass finds each row's support (within
        e^-40 of its maximum; the integrand is unimodal: f_S is, and the Gaussian factor is monotone or unimodal
        in V); rows sorted by that support share a fine grid per block, whose spacing resolves the Gaussian
        factor (width sqrt(2/N) in log V, and log V moves no faster than w) and the stable law's lower tail
        (width 1/gamma)."""
        d = np.asarray(d, dtype=float)
        t = np.broadcast_to(np.asarray(t, dtype=float), (len(d),))
        N = d.shape[1]
        law = self.law
        with np.errstate(divide="ignore"):
            log_rho2 = np.log(np.sum(d * d, axis=1))
        log_a = np.log(2.0 * self.kappa * t)
        log_c = np.log(self._stable_scale(t))

        def log_integrand(rows, w):
            log_V = np.logaddexp(log_a[rows, None], log_c[rows, None] + w)
            return ((law.log_pdf_of_log(w) + w) - 0.5 * N * (math.log(2.0 * math.pi) + log_V)
                    - 0.5 * np.exp(log_rho2[rows, None] - log_V))

        coarse = np.linspace(law.w_low - 40.0 / law.gamma, law.w_far + 60.0 / (0.5 * N + law.beta), MIXTURE_COARSE)
        everything = np.arange(len(d))
        values = log_integrand(everything, np.broadcast_to(coarse, (len(d), len(coarse))))
        keep = values > values.max(axis=1, keepdims=True) - 40.0
        first = coarse[np.clip(np.argmax(keep, axis=1) - 1, 0, len(coarse) - 1)]
        last = coarse[np.clip(len(coarse) - np.argmax(keep[:, ::-1], axis=1), 0, len(coarse) - 1)]
        spacing = min(MAX_SPACING, 0.2 * math.sqrt(2.0 / N), 0.2 / law.gamma)
        log_p = np.empty(len(d))
        factor = np.empty(len(d)) if with_factor else None
        order = np.argsort(first + last)
        for block in np.array_split(order, max(1, len(order) // MIXTURE_BLOCK)):
            if len(block) == 0:
                continue
            fine = np.arange(first[block].min(), last[block].max() + spacing, spacing)
            integrand = log_integrand(block, np.broadcast_to(fine, (len(block), len(fine))))
            inside = (fine[None, :] >= first[block, None]) & (fine[None, :] <= last[block, None])
            integrand = np.where(inside, integrand, -np.inf)
            log_p[block] = log_trapezoid(integrand, spacing)
            if with_factor:
                weights = np.exp(integrand - log_p[block, None]) * spacing
                weights[:, [0, -1]] *= 0.5
                factor[block] = np.sum(weights * self._factor(fine[None, :], t[block, None]), axis=1)
        return log_p, factor

    def tail_index(self) -> float:
        """P(|d| > r) ~ r^-alpha: the stable component's tail."""
        return self.alpha

    # ---- noise level
    def _sigma2(self, t):
        t = np.asarray(t, dtype=float)
        return 2.0 * self.kappa * t + 2.0 * self.law.median() * (self.kappa2 * t) ** (2.0 / self.alpha)

    def sigma(self, t):
        return np.sqrt(self._sigma2(t))

    def t_of_sigma(self, sigma):
        """sigma^2(t) = 2 kappa t + C t^(2/alpha) is increasing and convex (2/alpha > 1): Newton from the smaller of
        the components' inverses (above the root) converges monotonically."""
        s2 = np.asarray(sigma, dtype=float) ** 2
        C = 2.0 * self.law.median() * self.kappa2 ** (2.0 / self.alpha)
        p = 2.0 / self.alpha
        t = np.minimum(s2 / (2.0 * self.kappa), (s2 / C) ** (1.0 / p))
        for _ in range(200):
            step = (2.0 * self.kappa * t + C * t**p - s2) / (2.0 * self.kappa + p * C * t ** (p - 1.0))
            t = t - step
            if np.all(np.abs(step) <= 1e-15 * np.abs(t)):
                break
        return t

    # ---- the law of |d| (KS tests)
    def radial_cdf(self, rho, t, N):
        """P(|d| <= rho) = E_S P(chi2_N <= rho^2 / V(S)), trapezoid rule in w = log S on one grid for all rho,
        from where f_S is e^-50 below its peak to where chi2.cdf(rho^2/V) f_S is e^-80 for the largest rho."""
        law = self.law
        t = float(np.asarray(t, dtype=float).reshape(-1)[0])
        rho = np.asarray(rho, dtype=float)
        a, c = 2.0 * self.kappa * t, float(self._stable_scale(t))
        probe = np.arange(law.w_low, law.w_far, 0.1)
        log_density = law.log_pdf_of_log(probe) + probe
        start = probe[np.argmax(log_density > log_density.max() - 50.0)] - 0.1
        peak = probe[np.argmax(log_density)]
        finite = rho[np.isfinite(rho)]
        with np.errstate(divide="ignore"):  # P(|d| <= inf) = 1 needs no grid beyond the finite radii
            top = 2.0 * np.log(max(float(finite.max()) if finite.size else 1.0, 1e-300)) - math.log(c)
        end = max(top, peak) + 80.0 / (0.5 * N + law.beta) + 1.0
        spacing = min(MAX_SPACING, 0.2 / law.gamma, 0.2 * math.sqrt(2.0 / N))
        w = np.arange(start, max(end, start + 2 * spacing), spacing)
        weights = np.exp(law.log_pdf_of_log(w) + w) * spacing
        weights[[0, -1]] *= 0.5
        V = a + c * np.exp(w)
        out = np.empty(rho.size)
        flat = rho.reshape(-1)
        for i in range(0, flat.size, 64):
            out[i:i + 64] = special.gammainc(0.5 * N, 0.5 * flat[i:i + 64, None] ** 2 / V[None, :]) @ weights
        return np.where(np.isposinf(rho), 1.0, out.reshape(rho.shape))


__all__ = ["Reference"]

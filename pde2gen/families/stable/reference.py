"""NumPy/SciPy float64 reference twin of the stable family: Isotropic alpha-stable kernel (physics.md §4.1): V =
2 (kappa t)^(2/alpha) S, S positive (alpha/2)-stable.

An implementation independent of the torch runtime (runtime.py), reached through ``pde2gen.derive.reference``."""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..reference_common import ReferenceFamily, log_trapezoid, positive_stable


class Reference(ReferenceFamily):
    """V = 2 (kappa t)^{2/alpha} S with S positive (alpha/2)-stable (physics.md §4.1)."""

    def __init__(self, **params):
        super().__init__(**params)
        if not self.alpha < 2.0:
            raise ValueError(f"stable: `alpha` must lie in (0, 2), got {self.alpha}")
        self.law = positive_stable(0.5 * self.alpha)
        self.velocity_exponent = self.alpha

    def tail_index(self):
        return self.alpha

    def radial_log_range(self, t, bottom, top):
        # the positive (alpha/2)-stable law's lower tail, log P(S < x) ~ -A(0) x^(-gamma), reaches far below its
        # median when gamma = beta / (1 - beta) is small: start where A(0) x^(-gamma) = 40 (and 15 lower for eps)
        law = self.law
        log_scale = math.log(2.0) + (2.0 / self.alpha) * math.log(self.kappa * t)
        return min(bottom, 0.5 * (log_scale + (law.log_A0 - math.log(40.0)) / law.gamma) - 15.0), top

    def _variance_scale(self, t):
        return 2.0 * (self.kappa * t) ** (2.0 / self.alpha)

    def sample_variance(self, t, rng):
        return self._variance_scale(t) * self.law.sample(len(t), rng)

    def radial_cf(self, k, t):
        return np.exp(-self.kappa * t * np.asarray(k, dtype=float) ** self.alpha)

    def log_kernel(self, d, t):
        N = d.shape[1]
        rho2 = np.sum(d * d, axis=1)
        log_scale = np.log(self._variance_scale(t))
        return np.concatenate([
            self._log_mixture(rho2[i:i + 4096], log_scale[i:i + 4096], N) for i in range(0, len(rho2), 4096)
        ]) if len(rho2) else np.zeros(0)

    def _log_mixture(self, rho2, log_scale, N):
        """log int f_S(s) N_N(rho; 0, C s) ds, by the trapezoid rule in w = log s.

        The integrand is unimodal in w: a coarse pass finds, for each row, the region within e^{-40} of its
        maximum; rows sorted by that region share a fine grid per block, whose spacing resolves both the
        Gaussian factor (width sqrt(2/N)) and the stable law's lower tail (width 1/gamma).
        """
        law = self.law

        with np.errstate(divide="ignore"):
            log_rho2 = np.log(rho2)  # rho2 / V as exp(log rho2 - log V): V underflows at small alpha (0 * inf)

        def gaussian_part(rows, w):
            log_V = log_scale[rows, None] + w[None, :]
            return -0.5 * N * (math.log(2.0 * math.pi) + log_V) - 0.5 * np.exp(log_rho2[rows, None] - log_V)

        everything = np.arange(len(rho2))
        coarse = np.linspace(law.w_low - 40.0 / law.gamma, law.w_far + 60.0 / (0.5 * N + law.beta), 200)
        values = (law.log_pdf_of_log(coarse) + coarse)[None, :] + gaussian_part(everything, coarse)
        keep = values > values.max(axis=1, keepdims=True) - 40.0
        first = coarse[np.clip(np.argmax(keep, axis=1) - 1, 0, len(coarse) - 1)]
        last = coarse[np.clip(len(coarse) - np.argmax(keep[:, ::-1], axis=1), 0, len(coarse) - 1)]
        spacing = min(0.05, 0.2 * math.sqrt(2.0 / N), 0.2 / law.gamma)
        out = np.empty(len(rho2))
        order = np.argsort(first + last)
        for block in np.array_split(order, max(1, len(order) // 128)):
            fine = np.arange(first[block].min(), last[block].max() + spacing, spacing)
            integrand = (law.log_pdf_of_log(fine) + fine)[None, :] + gaussian_part(block, fine)
            inside = (fine[None, :] >= first[block, None]) & (fine[None, :] <= last[block, None])
            out[block] = log_trapezoid(np.where(inside, integrand, -np.inf), spacing)
        return out

    def sigma(self, t):
        return math.sqrt(2.0 * self.law.median()) * (self.kappa * np.asarray(t, dtype=float)) ** (1.0 / self.alpha)

    def t_of_sigma(self, sigma):
        return (np.asarray(sigma, dtype=float) / math.sqrt(2.0 * self.law.median())) ** self.alpha / self.kappa

    def radial_cdf(self, rho, t, N):
        # P(|d| <= rho) = E_S P(chi2_N <= rho^2 / (C S)), by the trapezoid rule in w = log S on one grid for all
        # rho: from where f_S is e^{-50} below its peak (its lower tail is steep, width 1/gamma) to where
        # chi2.cdf(rho^2 / (C e^w)) ~ e^{-(N/2) w} times the tail e^{-beta w} is e^{-80} for the largest rho.
        law = self.law
        t = float(np.asarray(t, dtype=float).reshape(-1)[0])
        rho = np.asarray(rho, dtype=float)
        log_scale = math.log(self._variance_scale(t))
        probe = np.arange(law.w_low, law.w_far, 0.1)
        log_density = law.log_pdf_of_log(probe) + probe
        start = probe[np.argmax(log_density > log_density.max() - 50.0)] - 0.1
        peak = probe[np.argmax(log_density)]
        with np.errstate(divide="ignore"):
            top = 2.0 * np.log(max(float(rho.max()), 1e-300)) - log_scale
        end = max(top, peak) + 80.0 / (0.5 * N + law.beta) + 1.0
        # A uniform grid keeps the trapezoid rule spectrally accurate; the lower tail has width 1/gamma and
        # the chi2_N step in w has width sqrt(2/N).
        spacing = min(0.05, 0.2 / law.gamma, 0.2 * math.sqrt(2.0 / N))
        w = np.arange(start, max(end, start + 2 * spacing), spacing)
        weights = np.exp(law.log_pdf_of_log(w) + w) * spacing
        weights[[0, -1]] *= 0.5
        out = np.empty(rho.size)
        flat = rho.reshape(-1)
        for i in range(0, flat.size, 64):
            x = flat[i:i + 64, None] ** 2 / np.exp(log_scale + w)[None, :]
            out[i:i + 64] = special.gammainc(0.5 * N, 0.5 * x) @ weights
        return out.reshape(rho.shape)

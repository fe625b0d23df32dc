"""Heat kernel convolved with a normal-inverse-Gaussian one (a positive combination of Bernstein symbols,
f(s) = kappa s + c (sqrt(s + m^2) - m), m >= 0; m = 0 is heat plus Cauchy): d = sqrt(V) eps with
V = 2 kappa t + X, X ~ InverseGaussian(tau / m, tau^2), tau = c t, drawn independently.

Velocity: the components' quantile couplings summed, u = (V_dot / (2 V)) d with
V_dot = 2 kappa + (2 X / t) [1 - m sqrt(pi X / 2) erfcx((m X + tau) / sqrt(2 X))]; without X, its posterior
mean given |d| (one integral over X, as for the kernel itself).
"""
import math  # runtime-import

import torch  # runtime-import

from pde2gen.families.runtime_common import (  # runtime-import
    RadialMixtureKernel,  # runtime-import
    batch_view,  # runtime-import
    sample_inverse_gaussian,  # runtime-import
    standard_normal,  # runtime-import
)  # runtime-import

HEAT_NIG_COARSE = 512  # coarse pass over w = log X that locates the integrand's support, per row
HEAT_NIG_FINE = 1024  # fine uniform grid over that support (trapezoid rule)
HEAT_NIG_BLOCK = 2048  # rows per quadrature block (memory ~ rows * HEAT_NIG_FINE doubles, a few times)


class HeatNIGFamily(RadialMixtureKernel):
    """Heat (diffusivity ``kappa``) plus NIG (speed ``c``, mass ``m`` >= 0) kernel."""

    mixture_rows = HEAT_NIG_BLOCK

    def __init__(self, kappa, c, m):
        super().__init__()
        if not kappa > 0:
            raise ValueError(f"heat_nig: `kappa` must be > 0, got {kappa}")
        if not c > 0:
            raise ValueError(f"heat_nig: `c` must be > 0, got {c}")
        if not m >= 0:
            raise ValueError(f"heat_nig: `m` must be >= 0, got {m}")
        self.mass = float(m)  # Python copy: the m = 0 branches without a device sync
        self.register_buffer("kappa", torch.tensor(float(kappa), dtype=torch.float64))
        self.register_buffer("c", torch.tensor(float(c), dtype=torch.float64))
        self.register_buffer("m", torch.tensor(float(m), dtype=torch.float64))

    def _tau(self, t):
        return self.c * t.to(torch.float64)

    def sample_nig_variance(self, t, generator=None):
        """X ~ IG(tau / m, tau^2) (m = 0: tau^2 / Z^2; common.sample_inverse_gaussian): the NIG part of V."""
        return sample_inverse_gaussian(self._tau(t), self.mass, generator)

    def sample_mixing_variance(self, t, generator=None):
        """V_t = 2 kappa t + X per sample (float64, shape of t): the variance of the Gaussian the displacement
        is a mixture of (the ancestral sampler's variance path)."""
        t = t.to(torch.float64)
        return 2 * self.kappa * t + self.sample_nig_variance(t, generator)

    def sample_displacement(self, t, shape, generator=None):
        x = self.sample_nig_variance(t, generator)
        variance = 2 * self.kappa * t.to(torch.float64) + x
        eps = standard_normal((t.shape[0], *shape), t.dtype, t.device, generator)
        return eps.mul_(batch_view(torch.sqrt(variance).to(t.dtype), eps)), x.to(t.dtype)

    def _factor(self, x, t):
        """V_dot / (2 V) given X: (kappa t + X bracket(X)) / (t (2 kappa t + X))."""
        tau = self.c * t
        if self.mass == 0:
            bracket = torch.ones_like(x)
        else:
            argument = (self.m * x + tau) / torch.sqrt(2 * x)
            bracket = 1 - self.m * torch.sqrt(math.pi * x / 2) * torch.special.erfcx(argument)
        return (self.kappa * t + x * bracket) / (t * (2 * self.kappa * t + x))

    def _mixture(self, rho2, t, n, with_factor):
        """log int f_X(x) N_n(d; 0, (2 kappa t + x) I) dx and E[V_dot / (2 V) | d], trapezoid rule in w = log x:
        a coarse pass finds per row where the integrand is within e^-45 of its maximum, a fine uniform grid
        covers that region (the integrand is unimodal in each factor, not necessarily log-concave)."""
        tau = self.c * t
        a = 2 * self.kappa * t

        def log_integrand(w):
            x = torch.exp(w)
            variance = a.unsqueeze(-1) + x
            return (torch.log(tau).unsqueeze(-1) - 0.5 * math.log(2 * math.pi) + (self.m * tau).unsqueeze(-1)
                    - 0.5 * w - 0.5 * (self.m.square() * x + tau.square().unsqueeze(-1) / x)
                    - 0.5 * n * torch.log(2 * math.pi * variance) - 0.5 * rho2.unsqueeze(-1) / variance)

        low = torch.log(tau.square() / 400)
        top = torch.maximum(torch.log(tau.square()), torch.log(torch.maximum(rho2 / n, tau.square())))
        top = top + 200 / (n + 1) + 2
        z = torch.linspace(0, 1, HEAT_NIG_COARSE, dtype=torch.float64, device=rho2.device)
        coarse = low.unsqueeze(-1) + (top - low).unsqueeze(-1) * z
        values = log_integrand(coarse)
        keep = values > values.max(-1, keepdim=True).values - 45
        index = torch.arange(HEAT_NIG_COARSE, device=rho2.device)
        first = torch.where(keep, index, HEAT_NIG_COARSE).min(-1).values
        last = torch.where(keep, index, -1).max(-1).values
        left = coarse.gather(-1, (first - 2).clamp_min(0).unsqueeze(-1)).squeeze(-1)
        right = coarse.gather(-1, (last + 2).clamp_max(HEAT_NIG_COARSE - 1).unsqueeze(-1)).squeeze(-1)
        grid = torch.linspace(0, 1, HEAT_NIG_FINE, dtype=torch.float64, device=rho2.device)
        fine = left.unsqueeze(-1) + (right - left).unsqueeze(-1) * grid
        ends = torch.zeros(HEAT_NIG_FINE, dtype=torch.float64, device=rho2.device)
        ends[0] = ends[-1] = math.log(0.5)
        log_terms = log_integrand(fine) + ends
        log_p = torch.logsumexp(log_terms, -1) + torch.log((right - left) / (HEAT_NIG_FINE - 1))
        if not with_factor:
            return log_p, None
        weights = torch.softmax(log_terms, -1)
        return log_p, (weights * self._factor(torch.exp(fine), t.unsqueeze(-1))).sum(-1)

    def _sigma2(self, t):
        tau = self._tau(t)
        return 2 * self.kappa * t.to(torch.float64) + tau.square() / (1 + self.m * tau)

    def sigma(self, t):
        return torch.sqrt(self._sigma2(t)).to(t.dtype)

    def dsigma_dt(self, t):
        tau = self._tau(t)
        slope = 2 * self.kappa + self.c * tau * (2 + self.m * tau) / (1 + self.m * tau).square()
        return (slope / (2 * torch.sqrt(self._sigma2(t)))).to(t.dtype)

    def t_of_sigma(self, sigma):
        """The positive root of sigma^2 (1 + m c t) = 2 kappa t (1 + m c t) + c^2 t^2, a quadratic
        A t^2 + b t - sigma^2 = 0 with A = c (2 kappa m + c) > 0 and b = 2 kappa - sigma^2 m c: in closed form,
        each branch written without cancellation (2 sigma^2 / (b + root) for b >= 0, (root - b) / (2 A) below)."""
        s2 = sigma.to(torch.float64).square()
        leading = self.c * (2 * self.kappa * self.m + self.c)
        b = 2 * self.kappa - s2 * self.m * self.c
        root = torch.sqrt(b.square() + 4 * leading * s2)
        t = torch.where(b >= 0, 2 * s2 / (b + root), (root - b) / (2 * leading))
        return t.to(sigma.dtype)

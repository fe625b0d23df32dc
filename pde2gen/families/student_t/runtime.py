"""Student-t kernel (PFGM++ with D augmented dimensions, physics.md §4.1-4.2): d = sqrt(V) eps with
V = (c t)^2 / chi2_D, the multivariate Student-t with D degrees of freedom and scale sigma = c t / sqrt(D);
conditional velocity d / t (PFGM++'s dx/dr = (x - y) / r with r = c t).

D = inf is the Gaussian limit taken at fixed sigma: D -> inf with c / sqrt(D) held fixed and renamed c,
i.e. d = c t eps ~ N(0, (c t)^2 I), sigma = c t (the literal c t / sqrt(D) would vanish). Under this
convention r = sigma sqrt(D) (PFGM++'s alignment) holds for finite D, and D = inf reproduces EDM with
sigma = c t; the velocity d / t is the same law-transporting field in both cases.
"""
import math  # runtime-import

import torch  # runtime-import

from pde2gen.families.runtime_common import (  # runtime-import
    batch_view,
    event_size,
    sample_gamma,
    squared_norm,
    standard_normal,
)


def _log_gamma_ratio(x, a):
    """lgamma(x + a) - lgamma(x) for x > 0, a >= 0. At x >= 30 from Stirling's series, (x - 1/2) log1p(a/x) +
    a log(x + a) - a + r(x + a) - r(x) with r(x) = 1/(12x) - 1/(360x^3) + 1/(1260x^5) - 1/(1680x^7) (error
    < 1/(1188 x^9)): the two lgamma values (~x log x each) cancelled to 1e-7 of the log density at D = 1e8."""
    if x < 30:
        return math.lgamma(x + a) - math.lgamma(x)

    def remainder(y):
        return 1 / (12 * y) - 1 / (360 * y**3) + 1 / (1260 * y**5) - 1 / (1680 * y**7)

    return (x - 0.5) * math.log1p(a / x) + a * math.log(x + a) - a + remainder(x + a) - remainder(x)


class StudentTFamily(torch.nn.Module):
    """Multivariate Student-t kernel, ``D`` > 0 degrees of freedom (float('inf'): Gaussian, see module doc)."""

    def __init__(self, c, D):
        super().__init__()
        if not c > 0:
            raise ValueError(f"student_t: `c` must be > 0, got {c}")
        if not D > 0:
            raise ValueError(f"student_t: `D` must be > 0 (or inf), got {D}")
        self.gaussian_limit = math.isinf(D)
        self.degrees = float(D)  # Python copy for constant terms (no device sync)
        self.register_buffer("c", torch.tensor(float(c), dtype=torch.float64))
        self.register_buffer("D", torch.tensor(float(D), dtype=torch.float64))

    def _scale64(self, t):
        """sigma(t) in float64: c t / sqrt(D), or c t when D = inf."""
        scale = self.c * t.to(torch.float64)
        return scale if self.gaussian_limit else scale / torch.sqrt(self.D)

    def sample_displacement(self, t, shape, generator=None):
        batch = t.shape[0]
        if self.gaussian_limit:
            radius_scale = self._scale64(t)
        else:  # sqrt(V) = c t / sqrt(chi2_D), chi2_D = 2 Gamma(D/2): Gamma drawn in float64 (D up to 1e6+)
            chi2 = 2 * sample_gamma(self.D.to(t.device).expand(batch) / 2, generator)
            radius_scale = self.c * t.to(torch.float64) / torch.sqrt(chi2)
        eps = standard_normal((batch, *shape), t.dtype, t.device, generator)
        return eps.mul_(batch_view(radius_scale.to(t.dtype), eps)), None

    def conditional_velocity(self, d, t, latent=None):
        return d / batch_view(t, d)

    def log_kernel(self, d, t):
        n = event_size(d)
        sigma = self._scale64(t)
        rho2 = squared_norm(d).to(torch.float64)
        if self.gaussian_limit:
            log_p = -0.5 * n * torch.log(2 * math.pi * sigma.square()) - rho2 / (2 * sigma.square())
            return log_p.to(d.dtype)
        # lgamma((N+D)/2) - lgamma(D/2) - (N/2) log(pi D) - N log sigma - ((N+D)/2) log(1 + rho^2 / (D sigma^2))
        D = self.degrees
        log_p = (
            _log_gamma_ratio(D / 2, n / 2) - n / 2 * math.log(math.pi * D) - n * torch.log(sigma)
            - (n + D) / 2 * torch.log1p(rho2 / (D * sigma.square()))
        )
        return log_p.to(d.dtype)

    def sigma(self, t):
        return self._scale64(t).to(t.dtype)

    def dsigma_dt(self, t):
        rate = self.c if self.gaussian_limit else self.c / torch.sqrt(self.D)
        return rate.to(t.dtype).expand(t.shape)

    def t_of_sigma(self, sigma):
        rate = self.c if self.gaussian_limit else self.c / torch.sqrt(self.D)
        return sigma / rate.to(sigma.dtype)

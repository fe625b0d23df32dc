"""Cauchy kernel (Poisson / PFGM, physics.md §4.1-4.3): ghat = exp(-c t k), the N-dimensional Cauchy law
of scale c t, d = sqrt(V) eps with V = (c t)^2 / Z^2; conditional velocity d / t; sigma = c t."""
import math  # runtime-import

import torch  # runtime-import

from pde2gen.families.runtime_common import (  # runtime-import
    batch_view,
    event_size,
    squared_norm,
    standard_normal,
)


class CauchyFamily(torch.nn.Module):
    """Multivariate Cauchy kernel with scale ``c`` t."""

    def __init__(self, c):
        super().__init__()
        if not c > 0:
            raise ValueError(f"cauchy: `c` must be > 0, got {c}")
        self.register_buffer("c", torch.tensor(float(c), dtype=torch.float64))

    def sample_displacement(self, t, shape, generator=None):
        # the per-sample mixing scale is drawn first, so draws do not depend on the event shape's size
        z = standard_normal((t.shape[0],), torch.float64, t.device, generator)
        scale = (self.c * t.to(torch.float64) / z.abs()).to(t.dtype)
        eps = standard_normal((t.shape[0], *shape), t.dtype, t.device, generator)
        return eps.mul_(batch_view(scale, eps)), None

    def sample_mixing_variance(self, t, generator=None):
        """V_t = (c t / Z)^2 per sample (float64, shape of t), Z standard normal: d = sqrt(V_t) eps is Cauchy
        (the ancestral sampler's variance path)."""
        z = standard_normal(t.shape, torch.float64, t.device, generator)
        return (self.c * t.to(torch.float64) / z).square()

    def conditional_velocity(self, d, t, latent=None):
        return d / batch_view(t, d)

    def log_kernel(self, d, t):
        # log p = lgamma((N+1)/2) - ((N+1)/2) log(pi) - N log s - ((N+1)/2) log(1 + |d|^2 / s^2), s = c t
        n = event_size(d)
        scale = self.c * t.to(torch.float64)
        ratio = squared_norm(d).to(torch.float64) / scale.square()
        log_p = math.lgamma((n + 1) / 2) - (n + 1) / 2 * math.log(math.pi) - n * torch.log(scale)
        return (log_p - (n + 1) / 2 * torch.log1p(ratio)).to(d.dtype)

    def sigma(self, t):
        return self.c.to(t.dtype) * t

    def dsigma_dt(self, t):
        return self.c.to(t.dtype).expand(t.shape)

    def t_of_sigma(self, sigma):
        return sigma / self.c.to(sigma.dtype)

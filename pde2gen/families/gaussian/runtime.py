"""Gaussian kernel (diffusion, physics.md §4.1-4.3): ghat = exp(-kappa t k^2), d = sqrt(2 kappa t) eps,
conditional velocity d / (2 t), sigma = sqrt(2 kappa t)."""
import math  # runtime-import

import torch  # runtime-import

from pde2gen.families.runtime_common import (  # runtime-import
    batch_view,
    event_size,
    squared_norm,
    standard_normal,
)


class GaussianFamily(torch.nn.Module):
    """Heat kernel with diffusivity ``kappa``: N(0, 2 kappa t I)."""

    def __init__(self, kappa):
        super().__init__()
        if not kappa > 0:
            raise ValueError(f"gaussian: `kappa` must be > 0, got {kappa}")
        self.register_buffer("kappa", torch.tensor(float(kappa), dtype=torch.float64))

    def _kappa(self, like):
        return self.kappa.to(dtype=like.dtype, device=like.device)

    def sample_displacement(self, t, shape, generator=None):
        eps = standard_normal((t.shape[0], *shape), t.dtype, t.device, generator)
        return eps.mul_(batch_view(self.sigma(t), eps)), None

    def conditional_velocity(self, d, t, latent=None):
        return d / batch_view(2 * t, d)

    def sample_mixing_variance(self, t, generator=None):
        """V_t = 2 kappa t (float64, shape of t): the heat kernel is sqrt(V_t) eps with a deterministic V_t
        (the ancestral sampler's variance path)."""
        return 2 * self.kappa * t.to(torch.float64)

    def log_kernel(self, d, t):
        variance = 2 * self._kappa(t) * t
        return -0.5 * event_size(d) * torch.log(2 * math.pi * variance) - squared_norm(d) / (2 * variance)

    def sigma(self, t):
        return torch.sqrt(2 * self._kappa(t) * t)

    def dsigma_dt(self, t):
        return self._kappa(t) / self.sigma(t)

    def t_of_sigma(self, sigma):
        return sigma.square() / (2 * self._kappa(sigma))

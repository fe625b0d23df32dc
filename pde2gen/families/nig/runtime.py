"""Normal-inverse-Gaussian kernel (Yukawa, physics.md §4.1-4.4): ghat = exp(-c t (sqrt(k^2 + m^2) - m)),
d = sqrt(V) eps with V ~ InverseGaussian(mean tau / m, shape tau^2), tau = c t (the time Brownian motion
with drift m needs to reach tau). m = 0 is the Cauchy kernel of scale tau (PFGM).

Velocity: the quantile coupling of V (no birth/death, exact normalised marginals, physics.md §4.4),
u = (d / t) [1 - m sqrt(pi V / 2) erfcx((m V + tau) / sqrt(2 V))]; without V, its posterior mean given |d|.
"""
import math  # runtime-import

import torch  # runtime-import

from pde2gen.families.runtime_common import (  # runtime-import
    batch_view,  # runtime-import
    event_size,  # runtime-import
    log_bessel_ke,  # runtime-import
    log_concave_trapezoid,  # runtime-import
    sample_inverse_gaussian,  # runtime-import
    squared_norm,  # runtime-import
    standard_normal,  # runtime-import
)  # runtime-import

FACTOR_TABLE_MIN_VALUES = 1 << 14  # conditional_velocity without latent interpolates E[factor | |d|] from here on
FACTOR_PANEL_WIDTH = 0.5  # Chebyshev panels of this width in log(|d|^2 + tau^2) ...
FACTOR_DEGREE = 20  # ... of this degree (tests: error < 1e-12 against the quadrature)


class NIGFamily(torch.nn.Module):
    """Yukawa kernel: Gaussian scale mixture over V ~ IG(c t / m, (c t)^2); ``m`` >= 0 is the mass."""

    def __init__(self, c, m):
        super().__init__()
        if not c > 0:
            raise ValueError(f"nig: `c` must be > 0, got {c}")
        if not m >= 0:
            raise ValueError(f"nig: `m` must be >= 0, got {m}")
        self.mass = float(m)  # Python copy: selects the m = 0 (Cauchy) branches without a device sync
        self.register_buffer("c", torch.tensor(float(c), dtype=torch.float64))
        self.register_buffer("m", torch.tensor(float(m), dtype=torch.float64))

    def _tau(self, t):
        return self.c * t.to(torch.float64)

    def sample_mixing_variance(self, t, generator=None):
        """V ~ IG(tau / m, tau^2) per sample (float64; common.sample_inverse_gaussian)."""
        return sample_inverse_gaussian(self._tau(t), self.mass, generator)

    def sample_displacement(self, t, shape, generator=None):
        variance = self.sample_mixing_variance(t, generator)
        eps = standard_normal((t.shape[0], *shape), t.dtype, t.device, generator)
        return eps.mul_(batch_view(torch.sqrt(variance).to(t.dtype), eps)), variance.to(t.dtype)

    def _coupling_factor(self, variance, tau):
        """1 - m sqrt(pi V / 2) erfcx((m V + tau) / sqrt(2 V)), in (0, 1]: the quantile-coupling velocity is
        (d / t) times this (physics.md §4.4; = 1 at m = 0, -> 1/2 for m tau >> 1)."""
        if self.mass == 0:
            return torch.ones_like(variance)
        argument = (self.m * variance + tau) / torch.sqrt(2 * variance)
        return 1 - self.m * torch.sqrt(math.pi * variance / 2) * torch.special.erfcx(argument)

    def _posterior_coupling_factor(self, rho2, tau, n):
        """E[coupling factor | |d|] under the posterior of V given d, a GIG law: in w = log V its log-density
        is g(w) = -(N+1)/2 w - m^2 e^w / 2 - r^2 e^-w / 2 (r^2 = |d|^2 + tau^2), concave, with mode
        e^w* = 2 r^2 / ((N+1) + sqrt((N+1)^2 + 4 m^2 r^2)). Trapezoid rule around the mode
        (common.log_concave_trapezoid); relative error < 1e-9 against adaptive quadrature (tests)."""
        if self.mass == 0:
            return torch.ones_like(rho2)
        half_order = (n + 1) / 2
        m2 = self.m.square()
        r2 = rho2 + tau.square()
        mode_v = 2 * r2 / ((n + 1) + torch.sqrt((n + 1) ** 2 + 4 * m2 * r2))
        mode = torch.log(mode_v)
        scale = torch.rsqrt((m2 * mode_v + r2 / mode_v) / 2)

        def log_density(w):
            return -half_order * w - m2 / 2 * torch.exp(w) - r2.unsqueeze(-1) / 2 * torch.exp(-w)

        # left of the mode the curvature grows (Gaussian bound: 9 scales suffice); to the right g falls at
        # least linearly with the slope it has 3 scales out, so 40 / slope more scales reach e^-40
        w3 = mode + 3 * scale
        slope = (half_order + m2 / 2 * torch.exp(w3) - r2 / 2 * torch.exp(-w3)) * scale
        right = (3 + 40 / slope).clamp(max=60.0)
        _, w, log_terms = log_concave_trapezoid(
            log_density, mode, scale, torch.full_like(mode, 9.0), right
        )
        weights = torch.softmax(log_terms, -1)
        factor = self._coupling_factor(torch.exp(w), tau.unsqueeze(-1))
        return (weights * factor).sum(-1)

    def _interpolated_posterior_coupling_factor(self, rho2, tau, n):
        """_posterior_coupling_factor for many values at one tau (a float): Chebyshev interpolants in
        s = log(rho2 + tau^2) on the panels the values visit, each from FACTOR_DEGREE + 1 quadratures. The
        factor is smooth in s on a scale ~1 (the posterior of log V moves by ~1 when s does); the quadratures
        cost ~(panels x 21), so this pays only when the values far outnumber them (marginal_velocity)."""
        s = torch.log(rho2 + tau * tau)
        # panels anchored at s = log tau^2 (|d| = 0), where the factor is smooth: no node below it
        low = 2 * math.log(tau)
        low += math.floor((float(s.min()) - low) / FACTOR_PANEL_WIDTH) * FACTOR_PANEL_WIDTH
        position = (s - low) / FACTOR_PANEL_WIDTH
        panel = position.floor().clamp_min(0)
        index = panel.long()
        used = (torch.bincount(index, minlength=1) > 0).nonzero().squeeze(-1)
        j = torch.arange(FACTOR_DEGREE + 1, dtype=torch.float64, device=s.device)
        angles = math.pi * (j + 0.5) / (FACTOR_DEGREE + 1)
        centres = low + FACTOR_PANEL_WIDTH * (used.to(torch.float64) + 0.5)
        nodes = centres.unsqueeze(-1) + FACTOR_PANEL_WIDTH / 2 * torch.cos(angles)
        node_rho2 = (torch.exp(nodes) - tau * tau).clamp_min(0.0).reshape(-1)
        values = self._posterior_coupling_factor(node_rho2, torch.full_like(node_rho2, tau), n)
        transform = torch.cos(torch.outer(j, angles)) * (2 / (FACTOR_DEGREE + 1))
        transform[0] /= 2
        table = torch.zeros(int(index.max()) + 1, FACTOR_DEGREE + 1, dtype=torch.float64, device=s.device)
        table[used] = values.reshape(-1, FACTOR_DEGREE + 1) @ transform.T
        # each degree's coefficients gathered when Clenshaw needs them: 1-D gathers from a row of a few panels
        # cost a quarter of one (degree + 1, values) index_select along dim 1 (measured, 128k values)
        by_degree = table.T.contiguous()
        x = 2 * (position - panel) - 1
        two_x = 2 * x
        b1, b2 = by_degree[FACTOR_DEGREE].index_select(0, index), torch.zeros_like(x)
        for k in range(FACTOR_DEGREE - 1, 0, -1):  # Clenshaw
            b1, b2 = torch.addcmul(by_degree[k].index_select(0, index) - b2, two_x, b1), b1
        return torch.addcmul(by_degree[0].index_select(0, index) - b2, x, b1)

    def conditional_velocity(self, d, t, latent=None):
        tau = self._tau(t)
        if latent is not None:
            factor = self._coupling_factor(latent.to(torch.float64), tau)
        else:
            factor = self._posterior_factor(squared_norm(d).to(torch.float64), tau, event_size(d))
        return d * batch_view((factor / t.to(torch.float64)).to(d.dtype), d)

    def _posterior_factor(self, rho2, tau, n):
        """The coupling factor averaged over the posterior of V given |d|^2 = rho2: from the Chebyshev table when
        many values share one tau, else by quadrature."""
        if self.mass != 0 and rho2.numel() >= FACTOR_TABLE_MIN_VALUES and bool((tau == tau[0]).all()):
            return self._interpolated_posterior_coupling_factor(rho2, float(tau[0]), n)
        return self._posterior_coupling_factor(rho2, tau, n)

    def log_kernel_and_velocity(self, d, t):
        """(log_kernel(d, t), conditional_velocity(d, t)) with |d|^2 computed once (Process.marginal_velocity)."""
        n, tau = event_size(d), self._tau(t)
        rho2 = squared_norm(d).to(torch.float64)
        factor = self._posterior_factor(rho2, tau, n)
        return self._log_kernel_of(rho2, tau, n).to(d.dtype), d * batch_view((factor / t.to(torch.float64)).to(d.dtype), d)

    def log_kernel(self, d, t):
        return self._log_kernel_of(squared_norm(d).to(torch.float64), self._tau(t), event_size(d)).to(d.dtype)

    def _log_kernel_of(self, rho2, tau, n):
        """log p (float64) at |d|^2 = rho2 in N = n: the normalised p = 2 tau e^{m tau} (2 pi)^{-(N+1)/2}
        (m / r)^{(N+1)/2} K_{(N+1)/2}(m r), r^2 = |d|^2 + tau^2."""
        order = (n + 1) / 2
        if self.mass == 0:  # Cauchy of scale tau
            return math.lgamma(order) - order * math.log(math.pi) - n * torch.log(tau) - order * torch.log1p(rho2 / tau.square())
        r = torch.sqrt(rho2 + tau.square())
        # e^{m tau} K(m r) = e^{-m (r - tau)} K(m r) e^{m r}, r - tau = rho^2 / (r + tau): m tau - m r as floats
        # cancelled ~m tau eps (5e-5 of log p at m tau = 2.5e11)
        log_p = (
            math.log(2) + torch.log(tau) - order * math.log(2 * math.pi) + order * (torch.log(self.m) - torch.log(r))
            + log_bessel_ke(order, self.m * r) - self.m * rho2 / (r + tau)
        )
        return log_p

    def sigma(self, t):
        tau = self._tau(t)
        return (tau / torch.sqrt(1 + self.m * tau)).to(t.dtype)

    def dsigma_dt(self, t):
        growth = self.m * self._tau(t)
        return (self.c * (1 + growth / 2) / (1 + growth) ** 1.5).to(t.dtype)

    def t_of_sigma(self, sigma):
        s2 = sigma.to(torch.float64).square()
        tau = (self.m * s2 + torch.sqrt(self.m.square() * s2.square() + 4 * s2)) / 2
        return (tau / self.c).to(sigma.dtype)

"""Heat kernel convolved with an isotropic alpha-stable one (a positive combination of Bernstein symbols,
f(s) = kappa s + kappa2 s^(alpha/2), 0 < alpha < 2): d = sqrt(V) eps with V = 2 kappa t + X,
X = 2 (kappa2 t)^(2/alpha) S, S positive (alpha/2)-stable (E e^(-u S) = e^(-u^(alpha/2))), drawn by Kanter's
method independently of eps.

Velocity: each component's coupling, summed, with S fixed along the path: u = (V_dot / (2 V)) d,
V_dot = 2 kappa + (2 / alpha) X / t; the latent is log S; without it, the posterior mean given |d| (one integral
over w = log S, as for the kernel itself).

The density of S: with beta = alpha/2, g = beta / (1 - beta), y = x^(-g) and Kanter's factor
a(u) = sin(beta u)^(beta/(1-beta)) sin((1-beta) u) / sin(u)^(1/(1-beta)) (increasing from
a(0) = (1 - beta) beta^(beta/(1-beta)) to infinity at u = pi), Zolotarev's integral is
f(x) = (1/pi) int_0^pi g a(u) y / x exp(-a(u) y) du. It is tabulated once per instance as
h(w) = log f(e^w) + a(0) e^(-g w), slowly varying, on a uniform grid in w (Gauss-Legendre panels in u, refined
towards pi where a(u) blows up) up to where the convergent series
f(x) = (1/pi) sum_k (-1)^(k+1) Gamma(beta k + 1) / k! sin(pi beta k) x^(-beta k - 1) takes over, and read by
4-point Lagrange interpolation; below the table h is linear (Laplace asymptote), above it the series' first
term.
"""
import math  # runtime-import

import torch  # runtime-import

from pde2gen.families.runtime_common import (  # runtime-import
    RadialMixtureKernel,  # runtime-import
    batch_view,  # runtime-import
    gauss_legendre,  # runtime-import
    kanter_tables,  # runtime-import
    log_time_table,  # runtime-import
    read_log_time_table,  # runtime-import
    sample_log_positive_stable,  # runtime-import
    standard_normal,  # runtime-import
)  # runtime-import

ZOLOTAREV_PANELS = (0.0, math.pi - 1.0, math.pi - 0.3, math.pi - 0.05, math.pi)  # in u, refined towards pi
ZOLOTAREV_NODES = 200  # Gauss-Legendre nodes per u-panel
SERIES_TERMS = 80
SERIES_FROM = 0.3  # the series replaces the quadrature where x^(-beta) <= this
TABLE_DEPTH = 1e5  # the table starts where a(0) y = 1e5 (below: h is linear in w to rounding)
MIXTURE_COARSE = 256  # coarse pass over w = log S locating each row's support
MIXTURE_MAX_NODES = 16384  # cap of the fine grid per block (bounds memory and time)
MIXTURE_BLOCK = 256  # rows per quadrature block (memory: rows x fine nodes float64, a few times)


class HeatStableFamily(RadialMixtureKernel):
    """Heat (diffusivity ``kappa``) plus alpha-stable (``kappa2``, ``alpha`` in (0, 2)) kernel."""

    mixture_rows = MIXTURE_BLOCK

    def __init__(self, kappa, kappa2, alpha):
        super().__init__()
        if not kappa > 0:
            raise ValueError(f"heat_stable: `kappa` must be > 0, got {kappa}")
        if not kappa2 > 0:
            raise ValueError(f"heat_stable: `kappa2` must be > 0, got {kappa2}")
        if not 0 < alpha < 2:
            raise ValueError(f"heat_stable: `alpha` must lie in (0, 2), got {alpha}")
        beta = alpha / 2
        self.beta, self.g, self.exponent = beta, beta / (1 - beta), float(alpha)
        self.log_a0 = math.log(1 - beta) + self.g * math.log(beta)
        self.register_buffer("kappa", torch.tensor(float(kappa), dtype=torch.float64))
        self.register_buffer("kappa2", torch.tensor(float(kappa2), dtype=torch.float64))
        self.register_buffer("alpha", torch.tensor(float(alpha), dtype=torch.float64))
        self._build_density_table()
        self.register_buffer("median_s", torch.exp(self._log_median_s()))
        # Python copies drive the per-sample work: few tensor operations per call (at small batches their dispatch,
        # not arithmetic, is the cost), and Process.to(torch.float32), which rounds buffers, cannot round these
        p = 2 / self.exponent
        self.heat_rate = 2 * float(kappa)  # V = heat_rate t + X
        self.power = p  # X = e^(log_scale) t^p S; sigma^2 = heat_rate t + (sigma_rate t)^p
        self.log_scale = math.log(2) + p * math.log(kappa2)
        self.sigma_rate = math.exp((self.log_scale + math.log(float(self.median_s))) / p)
        self._kanter = {}  # per device: kanter_tables (float64 even after Process.to(float32))
        self._time_tables = {}  # per device: t_of_sigma's table (log_time_table)

    # ---- the positive (alpha/2)-stable law of S

    def _zolotarev_nodes(self):
        points, weights = gauss_legendre(ZOLOTAREV_NODES)
        edges = torch.tensor(ZOLOTAREV_PANELS, dtype=torch.float64)
        half = (edges[1:] - edges[:-1]).unsqueeze(-1) / 2
        u = (edges[:-1].unsqueeze(-1) + half * (points + 1)).reshape(-1)
        return u, torch.log(half * weights).reshape(-1)

    def _log_a(self, u):
        b = self.beta
        return self.g * torch.log(torch.sin(b * u)) + torch.log(torch.sin((1 - b) * u)) - torch.log(torch.sin(u)) / (1 - b)

    def _build_density_table(self):
        b, g = self.beta, self.g
        ks = torch.arange(1, SERIES_TERMS + 1, dtype=torch.float64)
        series = torch.exp(torch.lgamma(b * ks + 1) - torch.lgamma(ks + 1)) * torch.sin(math.pi * b * ks) / math.pi
        # tables: rebuilt from (kappa, kappa2, alpha) by __init__, so kept out of state_dict (persistent=False)
        self.register_buffer("series", series * torch.where(ks % 2 == 1, 1.0, -1.0).to(torch.float64),
                             persistent=False)
        self.register_buffer("series_k", ks, persistent=False)
        self.w_low = (self.log_a0 - math.log(TABLE_DEPTH)) / g
        w_series = -math.log(SERIES_FROM) / b
        self.w_far = w_series + 50.0 / b  # the first series term is exact to e^-50 beyond
        self.spacing = 0.01 * min(1.0, 1.0 / g)
        count = math.ceil((self.w_far - self.w_low) / self.spacing) + 1
        w = self.w_low + self.spacing * torch.arange(count, dtype=torch.float64)
        u, log_du = self._zolotarev_nodes()
        log_a = self._log_a(u)
        h = torch.empty_like(w)
        quadrature = w < w_series
        for start in range(0, int(quadrature.sum()), 1024):
            chunk = w[start:start + 1024].unsqueeze(-1)
            log_y = -g * chunk
            excess = torch.exp(log_a + log_y) - torch.exp(self.log_a0 + log_y)  # (a(u) - a(0)) y >= 0
            terms = log_du + math.log(g) + log_a + log_y - chunk - excess
            h[start:start + 1024] = torch.logsumexp(terms, -1) - math.log(math.pi)
        tail = w[~quadrature]
        powers = torch.exp(-b * torch.outer(tail, self.series_k))
        h[~quadrature] = torch.log(powers @ self.series) - tail + torch.exp(self.log_a0 - g * tail)
        self.register_buffer("table_h", h, persistent=False)
        self.low_slope = float((h[1] - h[0]) / self.spacing)

    def log_density_of_log(self, w):
        """log f_S(e^w), any shape, float64."""
        table = self.table_h
        last = table.shape[0] - 1
        position = ((w - self.w_low) / self.spacing).clamp(1.0, last - 2 - 1e-9)
        index = position.floor().long()
        x = position - index  # interpolate between nodes index and index + 1, with index - 1 and index + 2
        p0, p1, p2, p3 = (table[index + k] for k in (-1, 0, 1, 2))
        # 4-point Lagrange interpolation on nodes -1, 0, 1, 2 (error ~ spacing^4 |h''''| / 24)
        lagrange = (-x * (x - 1) * (x - 2) / 6 * p0 + (x + 1) * (x - 1) * (x - 2) / 2 * p1
                    - (x + 1) * x * (x - 2) / 2 * p2 + (x + 1) * x * (x - 1) / 6 * p3)
        below = table[0] + self.low_slope * (w - self.w_low)
        above = math.log(float(self.series[0])) - (1 + self.beta) * w
        h = torch.where(w < self.w_low + self.spacing, below, torch.where(w > self.w_far - 2 * self.spacing, above, lagrange))
        # f itself: h - a(0) e^(-g w) (below the table the Laplace term dominates and -> -inf)
        shift = torch.exp(torch.clamp(self.log_a0 - self.g * w, max=700.0))
        return torch.where(w > self.w_far - 2 * self.spacing, above, h - shift)

    def _log_median_s(self):
        """log median(S): bisection in w of F(e^w) = (1/pi) int exp(-a(u) e^(-g w)) du = 1/2."""
        u, log_du = self._zolotarev_nodes()
        log_a = self._log_a(u)
        low, high = -60.0 / self.g - 60.0, 60.0 / self.beta + 60.0
        for _ in range(100):
            mid = (low + high) / 2
            cdf = float(torch.exp(torch.logsumexp(log_du - torch.exp(log_a - self.g * mid), 0)) / math.pi)
            low, high = (low, mid) if cdf > 0.5 else (mid, high)
        return torch.tensor((low + high) / 2, dtype=torch.float64)

    def sample_log_stable(self, t, generator=None):
        """log S, S ~ positive (alpha/2)-stable per sample (float64, shape of t), by Kanter's method
        (runtime_common.sample_log_positive_stable). In logs: at alpha = 1/16, S exceeds the float32 range in 6% of
        the draws."""
        if t.device not in self._kanter:
            self._kanter[t.device] = kanter_tables([self.beta], t.device)
        return sample_log_positive_stable(self._kanter[t.device], t.shape, t.device, generator)

    # ---- runtime interface

    def _log_stable_scale(self, t):
        """log (2 (kappa2 t)^(2/alpha)), float64: X = scale * S."""
        return torch.log(t.to(torch.float64)).mul_(self.power).add_(self.log_scale)

    def sample_mixing_variance(self, t, generator=None):
        """V_t = 2 kappa t + X per sample (float64, shape of t), X = 2 (kappa2 t)^(2/alpha) S: the variance of
        the Gaussian the displacement is a mixture of (the ancestral sampler's variance path)."""
        t = t.to(torch.float64)
        return torch.add(torch.exp(self._log_stable_scale(t) + self.sample_log_stable(t, generator)), t,
                         alpha=self.heat_rate)

    def sample_displacement(self, t, shape, generator=None):
        """(d, latent): d = sqrt(V) eps, latent log S (in t's dtype: S itself may overflow float32)."""
        log_s = self.sample_log_stable(t, generator)
        log_t = torch.log(t.to(torch.float64))
        log_x = torch.add(log_s, log_t, alpha=self.power).add_(self.log_scale)
        log_v = torch.logaddexp(log_t + math.log(self.heat_rate), log_x)
        eps = standard_normal((t.shape[0], *shape), t.dtype, t.device, generator)
        return eps.mul_(batch_view(log_v.mul_(0.5).exp_().to(t.dtype), eps)), log_s.to(t.dtype)

    def _factor(self, log_s, t):
        """V_dot / (2 V) given log S: (kappa t + X / alpha) / (t (2 kappa t + X)) = (1/2 + w (1/alpha - 1/2)) / t
        with w = X / V = sigmoid(log X - log 2 kappa t) (finite for every S)."""
        w = torch.add(log_s, torch.log(t), alpha=self.power - 1).add_(self.log_scale - math.log(self.heat_rate))
        return w.sigmoid_().mul_(1 / self.exponent - 0.5).add_(0.5).div_(t)

    def _mixture(self, rho2, t, n, with_factor):
        """log int f_S(s) N_n(d; 0, (a + c s) I) ds (a = 2 kappa t, c = 2 (kappa2 t)^(2/alpha)) and
        E[V_dot / (2 V) | d], trapezoid rule in w = log s: a coarse pass finds each row's support (within e^-40
        of its maximum); a fine uniform grid covers it with spacing <= min(0.05, 0.2 sqrt(2/n), 0.2/g), which
        resolves the Gaussian factor (width sqrt(2/n) in log V, and log V moves no faster than w) and the
        lower tail of f_S (width 1/g). The grid ends at w_far + 60 / (n/2 + beta), so |d|^2 / (n c) beyond
        e^(w_far) (>= e^54: probability < 1e-22 under the kernel) is integrated only up to there."""
        log_a = torch.log(t) + math.log(self.heat_rate)
        log_c = self._log_stable_scale(t)
        log_rho2 = torch.log(rho2)

        def log_integrand(w):
            log_v = torch.logaddexp(log_a.unsqueeze(-1), log_c.unsqueeze(-1) + w)
            return (self.log_density_of_log(w) + w - 0.5 * n * (math.log(2 * math.pi) + log_v)
                    - 0.5 * torch.exp(log_rho2.unsqueeze(-1) - log_v))

        low = self.w_low - 40 / self.g
        high = self.w_far + 60 / (0.5 * n + self.beta)
        coarse = torch.linspace(low, high, MIXTURE_COARSE, dtype=torch.float64, device=rho2.device)
        values = log_integrand(coarse.expand(rho2.shape[0], -1))
        keep = values > values.max(-1, keepdim=True).values - 40
        index = torch.arange(MIXTURE_COARSE, device=rho2.device)
        first = torch.where(keep, index, MIXTURE_COARSE).min(-1).values
        last = torch.where(keep, index, -1).max(-1).values
        left = coarse[(first - 1).clamp_min(0)]
        right = coarse[(last + 1).clamp_max(MIXTURE_COARSE - 1)]
        spacing = min(0.05, 0.2 * math.sqrt(2 / n), 0.2 / self.g)
        nodes = int(min(MIXTURE_MAX_NODES, math.ceil(float((right - left).max()) / spacing) + 1))
        grid = torch.linspace(0, 1, nodes, dtype=torch.float64, device=rho2.device)
        fine = left.unsqueeze(-1) + (right - left).unsqueeze(-1) * grid
        ends = torch.zeros(nodes, dtype=torch.float64, device=rho2.device)
        ends[0] = ends[-1] = math.log(0.5)
        log_terms = log_integrand(fine) + ends
        log_p = torch.logsumexp(log_terms, -1) + torch.log((right - left) / (nodes - 1))
        if not with_factor:
            return log_p, None
        weights = torch.softmax(log_terms, -1)
        return log_p, (weights * self._factor(fine, t.unsqueeze(-1))).sum(-1)

    def _sigma2_parts(self, t):
        """(sigma^2(t), its stable part (sigma_rate t)^p = 2 median(S) (kappa2 t)^(2/alpha)), t float64."""
        stable = t.mul(self.sigma_rate).pow_(self.power)
        return torch.add(stable, t, alpha=self.heat_rate), stable

    def sigma(self, t):
        return self._sigma2_parts(t.to(torch.float64))[0].sqrt_().to(t.dtype)

    def dsigma_dt(self, t):
        t64 = t.to(torch.float64)
        value, stable = self._sigma2_parts(t64)
        half_slope = stable.div_(t64).mul_(self.power / 2).add_(self.heat_rate / 2)  # (d sigma^2 / dt) / 2
        return half_slope.div_(value.sqrt_()).to(t.dtype)

    def _newton_t_of_sigma2(self, s2):
        """Newton in u = log t on F(u) = log(2 kappa e^u + C e^(p u)) - log sigma^2, p = 2/alpha: F is convex
        and increasing (a log-sum-exp of two lines, slope between 1 and p), so Newton started above the root,
        at the smaller of the components' inverses (within log 2 of it), descends monotonically; in these
        coordinates the steep stable part does not slow it down (3-6 steps); 100 bound the work."""
        log_s2 = torch.log(s2)
        p = self.power
        log_heat_coefficient = math.log(self.heat_rate)
        log_stable_coefficient = p * math.log(self.sigma_rate)
        u = torch.minimum(log_s2 - log_heat_coefficient, (log_s2 - log_stable_coefficient) / p)
        for _ in range(100):
            log_heat, log_stable = log_heat_coefficient + u, log_stable_coefficient + p * u
            share = torch.sigmoid(log_stable - log_heat)  # of the stable part in sigma^2
            step = (torch.logaddexp(log_heat, log_stable) - log_s2) / (1 + (p - 1) * share)
            u = u - step
            if bool((step.abs() <= 1e-15 * (1 + u.abs())).all()):  # at rounding level in u
                break
        return torch.exp(u)

    def _sigma2_and_slope(self, t):
        value, stable = self._sigma2_parts(t)
        return value, stable.div_(t).mul_(self.power).add_(self.heat_rate)

    def t_of_sigma(self, sigma):
        """Inside its table (sigma from 1e-6 to 1e6): the cubic Hermite piece of log t against log sigma^2 and one
        Newton step on the convex sigma^2(t) (quadratic convergence: to rounding); outside it, the Newton solve."""
        s2 = sigma.to(torch.float64).square()
        if s2.device not in self._time_tables:
            self._time_tables[s2.device] = log_time_table(self._newton_t_of_sigma2, self._sigma2_and_slope, s2.device)
        t, outside = read_log_time_table(self._time_tables[s2.device], s2)
        value, slope = self._sigma2_and_slope(t)
        t = t.sub_(value.sub_(s2).div_(slope))
        if outside is not None:
            t = torch.where(outside, self._newton_t_of_sigma2(s2), t)
        return t.to(sigma.dtype)

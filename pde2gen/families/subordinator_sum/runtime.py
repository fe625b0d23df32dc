"""Sums of two or more non-Gaussian subordinators, with or without heat (a positive combination of Bernstein symbols,
f(s) = kappa s + sum_j kappa_j s^(alpha_j/2) + sum_i c_i (sqrt(s + m_i^2) - m_i)): d = sqrt(V) eps with
V = 2 kappa t + sum of independent components, X_j = 2 (kappa_j t)^(2/alpha_j) S_j (S_j positive (alpha_j/2)-stable,
Kanter's method) and X_i ~ InverseGaussian(tau_i / m_i, tau_i^2), tau_i = c_i t (m_i = 0: Levy).

Velocity: the components' quantile couplings summed, u = (V_dot / (2 V)) d, V_dot = 2 kappa + sum X_dot with
X_dot = (2 / alpha) X / t (stable) and (2 X / t) [1 - m sqrt(pi X / 2) erfcx((m X + tau) / sqrt(2 X))] (inverse
Gaussian); the latent is log X per component, (B, K). Without it, the posterior mean given |d|:
E[V_dot / (2 V) | d] = int phi_N(d; V) (2 kappa f_Y + J_Y) / (2 V) dy / p(d), where J_Y = -d/dt P(Y <= y) is the
probability flux of the law of Y = sum of the components (the continuity equation of V's law, whatever the coupling).

The law of log Y and its flux are tabulated on a uniform grid in w = log y by sequential convolution
(z f_Z(z) = int p(u) q(w + log(1 - r)) chi(r) / (1 - r) du + the same with p, q exchanged, r = e^(u - w),
chi(r) = (1 - r)^n / (r^n + (1 - r)^n); the flux of a sum is J_X * f_X' + f_X * J_X'); q off the grid is read by
6-point Lagrange interpolation of log q; far below w two prefix sums replace the sum over u. Error budget, table
range and spacing: the twin's docstring (pde2gen/families/subordinator_sum/reference.py), which this file follows
step for step. Those exact tables are built at the nodes u_k = k Delta of u = log t (lazily, once per node and
device) once a second time falls between the same two nodes (the first gets its own exact table: times scattered
one per interval cost no more than before); the table at any other t is the 6-point Lagrange interpolation in u of the node tables read along the line
w = w_i + a (u_k - u), a ~ d log sigma^2 / d log t (so that the bulk does not move between nodes) rounded to a
multiple of h / Delta (so that every node is read on its own grid points: no interpolation in w). The error is that
of interpolating in u the relative motion of the parts, whose scales move as t^(2/alpha_j), t (heat) and t^2 (Levy):
~ (Delta spread)^6 with spread = the largest minus the smallest of those exponents, so Delta = 1 / (12 spread),
at most 1/8: measured errors of log p (relative to max(1, |log p|)) and of the velocity factor (relative) <= 3e-9
against the exact per-t tables at the kernel's probable radii, N = 1 .. 3072, sigma = 0.002 .. 80 (tested to 1e-8 in
tests/test_subordinator_sum.py, far below the 1e-6 of the module's checks). Exact tables per time instead where Delta
would fall below SUM_LOG_T_MIN_STEP (parts spread over more than 4 powers of t) and with an inverse Gaussian of
m > 0 (its law changes shape with t). Tables are kept per (time, device) for SUM_TABLE_CACHE times, nodes for
SUM_NODE_CACHE.
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
    sample_inverse_gaussian,  # runtime-import
    sample_log_positive_stable,  # runtime-import
    standard_normal,  # runtime-import
)  # runtime-import

SUM_GRID_SPACING = 0.05  # at most; 0.1 / gamma where a stable component's lower tail is steeper
SUM_NEAR_SPAN = 14.0  # in w: below w - this, two prefix sums carry the convolution (error O(e^-28))
SUM_PARTITION_POWER = 6
SUM_LOG_FLOOR_DEPTH = 1500.0
SUM_LOWER_DEPTH = 80.0
SUM_HEAVY_REACH = 30.0
SUM_TABLE_CACHE = 64
SUM_NODE_CACHE = 1024  # exact tables at nodes of log t (~2 x 3000 float64 each)
SUM_LOG_T_STEPS_PER_SPREAD = 12  # node spacing in log t: 1 / (this x the spread of the parts' exponents)
SUM_LOG_T_MAX_STEP = 0.125
SUM_LOG_T_MIN_STEP = 1.0 / 48  # finer: exact tables per time (more nodes than a sampler run has times)
SUM_ROWS = 256  # rows per quadrature block
SUM_FINE_ELEMENTS = 1 << 21  # rows x nodes of one block of the fine quadrature
SUM_CHUNK = 4096  # table rows per block of the convolution (memory ~ SUM_CHUNK x 14 / h float64)
SUM_BLOCK_ROWS = 64  # rows of the interpolation matrix per block of columns (SumConvolutionPlan)
SUM_IG_SPACING = 0.5  # at most, times (m c t)^(1/2): the law of log X of an inverse Gaussian narrows as t grows
ZOLOTAREV_SUM_PANELS = (0.0, math.pi - 1.0, math.pi - 0.3, math.pi - 0.05, math.pi)
ZOLOTAREV_SUM_NODES = 200
STABLE_SERIES_TERMS = 80
STABLE_SERIES_FROM = 0.3  # the series replaces the quadrature where x^(-beta) <= this


def sum_grid_spacing(alphas):
    """SUM_GRID_SPACING, or 0.1 / gamma for the steepest stable lower tail (gamma = beta / (1 - beta))."""
    return min([SUM_GRID_SPACING] + [0.1 / (alpha / (2.0 - alpha)) for alpha in alphas])


def lagrange6(x):
    """Weights (..., 6) of 6-point Lagrange interpolation at x (node units) on nodes -2 .. 3."""
    nodes = [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    columns = []
    for k in range(6):
        weight = torch.ones_like(x)
        for m in range(6):
            if m != k:
                weight = weight * (x - nodes[m]) / (nodes[k] - nodes[m])
        columns.append(weight)
    return torch.stack(columns, -1)


def interpolate_log(values, start, h, w):
    """values on the grid start + i h read at w (any shape): 6-point Lagrange inside, linear above, -inf below."""
    last = values.shape[0] - 1
    position = (w - start) / h
    base = position.floor().clamp(2, last - 3)
    weights = lagrange6(position - base)
    index = (base.long().unsqueeze(-1) + torch.arange(-2, 4, device=w.device)).clamp(0, last)
    inside = (weights * values[index]).sum(-1)
    above = values[last] + (values[last] - values[last - 1]) * (position - last)
    return torch.where(position < 0, torch.full_like(w, -math.inf), torch.where(position > last, above, inside))


def floor_log(values):
    """Log-values floored SUM_LOG_FLOOR_DEPTH below their peak (NaN and -inf included): interpolation stays finite."""
    values = torch.nan_to_num(values, nan=-math.inf)
    peak = values.max()
    return values.clamp_min(float(peak) - SUM_LOG_FLOOR_DEPTH)


class SumConvolutionPlan:
    """The near part of one convolution half: k = 1 .. K - 1 steps below w, v - w = log(1 - e^(-k h)) read by
    6-point Lagrange interpolation, as one matrix: b(w_j + v_k - w_j) = sum_o log_b[j + o] weights[o, c], its
    columns in the order c = K - 1 - k (that of the windows of a, a[j - k] = a_windows[j, c]). The matrix is banded
    (six rows per column, moving with k): ``blocks`` (row start, row stop, column start, column stop) cover its
    non-zeros with spans of at most SUM_BLOCK_ROWS rows, so the product costs ~ SUM_BLOCK_ROWS x K per row instead
    of ~ K^2 (at p = 15/16, K = 2100: ~20x less)."""

    def __init__(self, h, device):
        self.near = math.ceil(SUM_NEAR_SPAN / h)
        k = torch.arange(self.near - 1, 0, -1, dtype=torch.float64, device=device)  # column c holds k = K - 1 - c
        r = torch.exp(-k * h)
        delta = torch.log1p(-r) / h
        base = delta.floor()
        lagrange = lagrange6(delta - base)  # (K - 1, 6) on offsets base - 2 .. base + 3
        self.low = int(base.min()) - 2  # the smallest offset read
        width = 3 - self.low + 1  # offsets low .. 3 (base <= -1)
        rows = (base.long() - 2 - self.low).unsqueeze(-1) + torch.arange(6, device=device)
        self.weights = torch.zeros(width, k.shape[0], dtype=torch.float64, device=device)
        self.weights.scatter_add_(0, rows.t(), lagrange.t())
        n = SUM_PARTITION_POWER
        log_one_minus = torch.log1p(-r)
        self.log_kernel = (n - 1) * log_one_minus - torch.logaddexp(n * torch.log(r), n * log_one_minus) + math.log(h)
        self.blocks = []
        first_rows = rows[:, 0].tolist()  # non-increasing in c (the offsets fall as k does)
        start = 0
        for c in range(1, len(first_rows) + 1):
            if c == len(first_rows) or first_rows[start] + 6 - first_rows[c] > SUM_BLOCK_ROWS:
                self.blocks.append((first_rows[c - 1], first_rows[start] + 6, start, c))
                start = c

def convolution_half(log_a, log_b, plan, h):
    """log of sum_u a(u) b(w + log(1 - r)) chi(r) / (1 - r) h, r = e^(u - w), at every grid w; far below w,
    b(w) (1 + r (1 - b'/b)) from two prefix sums of a."""
    T = log_a.shape[0]
    device = log_a.device
    w = h * torch.arange(T, dtype=torch.float64, device=device)
    prefix = torch.logcumsumexp(log_a, 0) + math.log(h)
    prefix_moment = torch.logcumsumexp(log_a + w, 0) + math.log(h)
    slope = torch.empty_like(log_b)
    slope[1:-1] = (log_b[2:] - log_b[:-2]) / (2 * h)
    slope[0] = (log_b[1] - log_b[0]) / h
    slope[-1] = (log_b[-1] - log_b[-2]) / h
    # windows[j, o - low] = log_b[j + o] (clamped to the grid), a_near[j, k - 1] = log_a[j - k] (-inf below it)
    padded_b = torch.cat([log_b[:1].expand(-plan.low), log_b, log_b[-1:].expand(3)])
    windows = padded_b.unfold(0, plan.weights.shape[0], 1)
    near = plan.near - 1
    padded_a = torch.cat([torch.full((near,), -math.inf, dtype=log_a.dtype, device=device), log_a])
    a_windows = padded_a.unfold(0, near, 1)
    near_part = torch.empty_like(log_a)
    for start in range(0, T, SUM_CHUNK):  # memory: SUM_CHUNK x K float64 at a time
        stop = min(T, start + SUM_CHUNK)
        terms = a_windows[start:stop] + plan.log_kernel
        for row_start, row_stop, column_start, column_stop in plan.blocks:
            terms[:, column_start:column_stop] += (windows[start:stop, row_start:row_stop]
                                                   @ plan.weights[row_start:row_stop, column_start:column_stop])
        near_part[start:stop] = torch.logsumexp(terms, -1)
    far_index = (torch.arange(T, device=device) - plan.near).clamp_min(0)
    correction = torch.nan_to_num((1 - slope) * torch.exp(prefix_moment[far_index] - prefix[far_index] - w), nan=0.0)
    far = torch.where(torch.arange(T, device=device) >= plan.near,
                      prefix[far_index] + log_b + torch.log1p(correction.clamp(-0.5, 0.5)),
                      torch.full_like(correction, -math.inf))
    return torch.logaddexp(near_part, far)


def convolve_log(p, q, plan, h):
    """log density of log (X + X') from those of log X and log X' on one grid."""
    return floor_log(torch.logaddexp(convolution_half(p, q, plan, h), convolution_half(q, p, plan, h)))


class SubordinatorSumFamily(RadialMixtureKernel):
    """Heat (``kappa`` >= 0) plus up to four stable (``kappa_j``, ``alpha_j``) and four inverse-Gaussian (``c_i``,
    ``m_i``) components; a zero coefficient leaves its slot unused."""

    mixture_rows = SUM_ROWS

    def __init__(self, kappa, kappa_1, alpha_1, kappa_2, alpha_2, kappa_3, alpha_3, kappa_4, alpha_4, c_1, m_1, c_2,
                 m_2, c_3, m_3, c_4, m_4):
        super().__init__()
        if not kappa >= 0:
            raise ValueError(f"subordinator_sum: `kappa` must be >= 0, got {kappa}")
        self.heat = float(kappa)
        self.stables = []
        slots = ((kappa_1, alpha_1), (kappa_2, alpha_2), (kappa_3, alpha_3), (kappa_4, alpha_4))
        for index, (coefficient, alpha) in enumerate(slots, 1):
            if not (coefficient >= 0 and (coefficient == 0 or 0 < alpha < 2)):
                raise ValueError(f"subordinator_sum: need kappa_{index} >= 0 and 0 < alpha_{index} < 2, got "
                                 f"{coefficient}, {alpha}")
            if coefficient > 0:
                self.stables.append((float(coefficient), float(alpha)))
        self.nigs = []
        for index, (c, m) in enumerate(((c_1, m_1), (c_2, m_2), (c_3, m_3), (c_4, m_4)), 1):
            if not (c >= 0 and m >= 0):
                raise ValueError(f"subordinator_sum: need c_{index} >= 0 and m_{index} >= 0, got {c}, {m}")
            if c > 0:
                self.nigs.append((float(c), float(m)))
        if not self.stables and not self.nigs:
            raise ValueError("subordinator_sum: at least one non-Gaussian component is needed")
        self.levy_only = all(m == 0 for _, m in self.nigs)  # Cauchy parts: X = (c t)^2 / Z^2
        self.levy_square_sum = sum(c * c for c, _ in self.nigs)
        # every parameter a buffer (state_dict and device moves carry them); the Python copies above drive the work
        for name, value in (("kappa", kappa), ("kappa_1", kappa_1), ("alpha_1", alpha_1), ("kappa_2", kappa_2),
                            ("alpha_2", alpha_2), ("kappa_3", kappa_3), ("alpha_3", alpha_3), ("kappa_4", kappa_4),
                            ("alpha_4", alpha_4), ("c_1", c_1), ("m_1", m_1), ("c_2", c_2), ("m_2", m_2), ("c_3", c_3),
                            ("m_3", m_3), ("c_4", c_4), ("m_4", m_4)):
            self.register_buffer(name, torch.tensor(float(value), dtype=torch.float64))
        self.h = sum_grid_spacing([alpha for _, alpha in self.stables])
        points, weights = gauss_legendre(ZOLOTAREV_SUM_NODES)
        edges = torch.tensor(ZOLOTAREV_SUM_PANELS, dtype=torch.float64)
        half = (edges[1:] - edges[:-1]).unsqueeze(-1) / 2
        # plain float64 tensors, not buffers: Process.to(torch.float32) must not round the quadrature's nodes
        self.zolotarev_u = (edges[:-1].unsqueeze(-1) + half * (points + 1)).reshape(-1)
        self.zolotarev_log_du = torch.log(half * weights).reshape(-1)
        self.log_medians = [self._log_median_stable(alpha / 2) for _, alpha in self.stables]
        self._plans = {}
        self._tables = {}
        self._nodes = {}
        self._visited = set()  # (node interval of log t, device) that a time has had an exact table in
        self._constants = {}
        self._inverse_tables = {}
        # exponents of t in the parts' scales: their spread sets the node spacing in log t (None: exact tables per
        # time). An inverse Gaussian with m > 0 changes shape with t (its law of log X narrows as (m c t)^(-1/2)):
        # measured up to 1e-6 from the exact tables, so those sums keep exact tables per time
        exponents = ([1.0] if self.heat > 0 else []) + [2 / alpha for _, alpha in self.stables] + [2.0] * len(self.nigs)
        step = min(SUM_LOG_T_MAX_STEP, 1 / (SUM_LOG_T_STEPS_PER_SPREAD * max(1e-300, max(exponents) - min(exponents))))
        self.log_t_step = step if step >= SUM_LOG_T_MIN_STEP and self.levy_only else None

    @property
    def components(self):
        return len(self.stables) + len(self.nigs)

    # ---- the positive beta-stable law (Zolotarev's integral; Kanter's draws)

    def _log_kanter(self, beta, u):
        return self._log_kanter_with(beta, u, torch.sin(u))

    def _log_kanter_with(self, beta, u, sin_u):
        """log a(u) = g log sin(beta u) + log sin((1 - beta) u) - log sin(u) / (1 - beta), sin(u) given."""
        g = beta / (1 - beta)
        return (g * torch.log(torch.sin(beta * u)) + torch.log(torch.sin((1 - beta) * u))
                - torch.log(sin_u) / (1 - beta))

    def _log_stable_density(self, beta, w):
        """log f_S(e^w), S positive beta-stable, at any w (float64): Zolotarev's integral
        f(x) = (1/pi) int g a(u) y / x exp(-a(u) y) du (y = x^(-g), g = beta / (1 - beta)) where x^(-beta) > 0.3,
        the convergent series (1/pi) sum_k (-1)^(k+1) Gamma(beta k + 1) / k! sin(pi beta k) x^(-beta k - 1) beyond."""
        g = beta / (1 - beta)
        log_a0 = math.log(1 - beta) + g * math.log(beta)
        u = self.zolotarev_u.to(w.device)
        log_du = self.zolotarev_log_du.to(w.device)  # float64 on every device
        log_a = self._log_kanter(beta, u)
        out = torch.empty_like(w)
        quadrature = w < -math.log(STABLE_SERIES_FROM) / beta
        wq = w[quadrature]
        for start in range(0, wq.shape[0], 1024):
            chunk = wq[start:start + 1024].unsqueeze(-1)
            log_y = -g * chunk
            lead = torch.exp(log_a0 + log_y)
            excess = lead * torch.expm1(log_a - log_a0)  # (a(u) - a(0)) y >= 0, inf where it overflows
            terms = log_du + math.log(g) + log_a + log_y - chunk - excess
            wq[start:start + 1024] = torch.logsumexp(terms, -1) - math.log(math.pi) - lead.squeeze(-1)
        out[quadrature] = wq
        ks = torch.arange(1, STABLE_SERIES_TERMS + 1, dtype=torch.float64, device=w.device)
        series = (torch.exp(torch.lgamma(beta * ks + 1) - torch.lgamma(ks + 1)) * torch.sin(math.pi * beta * ks)
                  / math.pi)
        series = series * torch.where(ks % 2 == 1, 1.0, -1.0).to(torch.float64)
        tail = w[~quadrature]
        out[~quadrature] = torch.log(torch.exp(-beta * torch.outer(tail, ks)) @ series) - tail
        return out

    def _log_median_stable(self, beta):
        """log median(S): bisection in w of F(e^w) = (1/pi) int exp(-a(u) e^(-g w)) du = 1/2."""
        g = beta / (1 - beta)
        log_a = self._log_kanter(beta, self.zolotarev_u)
        low, high = -60.0 / g - 60.0, 60.0 / beta + 60.0
        for _ in range(100):
            middle = (low + high) / 2
            log_cdf = torch.logsumexp(self.zolotarev_log_du - torch.exp(log_a - g * middle), 0) - math.log(math.pi)
            cdf = float(torch.exp(log_cdf))
            low, high = (low, middle) if cdf > 0.5 else (middle, high)
        return (low + high) / 2

    def _part_constants(self, device):
        """Per device, float64 tensors over the parts (as columns (K, 1): parts go first, the batch after, where a
        reduction over the parts is several times cheaper than over a last axis of a few entries): stables' Kanter
        tables, exponent p = 2/alpha of t in their
        scale, log of 2 kappa_j^p (the scale 2 (kappa_j t)^p); sigma^2's power laws (exponents, log coefficients);
        the inverse Gaussians' c and m; ``coupling``: X_dot t / (2 X) per part (1/alpha, 1 for an inverse
        Gaussian, corrected in _factor where m > 0) and 1/2 for the heat part (last, when kappa > 0)."""
        key = device
        if key not in self._constants:
            def tensor(values):
                return torch.tensor(values, dtype=torch.float64, device=device)

            def column(values):  # (K, 1), also for K = 0
                return tensor(values).reshape(-1, 1)
            powers = [2 / alpha for _, alpha in self.stables]
            log_scales = [math.log(2) + p * math.log(k) for p, (k, _) in zip(powers, self.stables)]
            # sigma^2(t) = sum of power laws e^(log scale) t^p: heat, stables (2 median(S_j) (kappa_j t)^p) and, when
            # every inverse Gaussian is a Levy part, their sum (c_i t)^2 (else those terms come separately)
            law_powers = ([1.0] if self.heat > 0 else []) + powers
            law_log_scales = ([math.log(2 * self.heat)] if self.heat > 0 else []) + [
                s + m for s, m in zip(log_scales, self.log_medians)]
            if self.nigs and self.levy_only:
                law_powers.append(2.0)
                law_log_scales.append(math.log(self.levy_square_sum))
            self._constants[key] = {
                "kanter": kanter_tables([alpha / 2 for _, alpha in self.stables], device),
                "power": column(powers), "log_scale": column(log_scales),
                "sigma_power": column(law_powers), "log_sigma_scale": column(law_log_scales),
                "one_and_power": tensor([[1.0 for _ in law_powers], law_powers]).reshape(2, -1),  # sum, p-weighted sum
                "log_levy_scale": column([2 * math.log(c) for c, _ in self.nigs]),  # X = e^this t^2 / Z^2 (m = 0)
                "c": tensor([c for c, _ in self.nigs]), "m": tensor([m for _, m in self.nigs]),
                "log_c": tensor([math.log(c) for c, _ in self.nigs]),
                "coupling": column([1 / alpha for _, alpha in self.stables] + [1.0] * len(self.nigs)
                                   + ([0.5] if self.heat > 0 else []))}
        return self._constants[key]

    # ---- the components at time t (stables first, then inverse Gaussians)

    def _stable_log_scale(self, index, t):
        coefficient, alpha = self.stables[index]
        return math.log(2) + (2 / alpha) * torch.log(coefficient * t)

    def _component_log_density(self, index, w, t):
        """log density of log X at w (t a float64 scalar tensor)."""
        if index < len(self.stables):
            shifted = w - self._stable_log_scale(index, t)
            return self._log_stable_density(self.stables[index][1] / 2, shifted) + shifted
        c, m = self.nigs[index - len(self.stables)]
        tau = c * t
        return (torch.log(tau) - 0.5 * math.log(2 * math.pi) - 0.5 * w - 0.5 * m * m * torch.exp(w) + m * tau
                - 0.5 * tau * tau * torch.exp(-w))

    def _component_log_rate(self, index, w, t):
        """log (X_dot / X) of the component's coupling at X = e^w."""
        if index < len(self.stables):
            return torch.log(2 / (self.stables[index][1] * t)) + torch.zeros_like(w)
        c, m = self.nigs[index - len(self.stables)]
        if m == 0:
            return torch.log(2 / t) + torch.zeros_like(w)
        x = torch.exp(w)
        bracket = 1 - m * torch.sqrt(math.pi * x / 2) * torch.special.erfcx((m * x + c * t) / torch.sqrt(2 * x))
        return torch.log(2 / t) + torch.log(torch.nan_to_num(bracket, nan=1.0).clamp_min(1e-300))

    def _component_range(self, index, t):
        """(lower cut, top) in w = log X (floats): e^-SUM_LOWER_DEPTH below the peak, and the top the table needs."""
        if index < len(self.stables):
            coefficient, alpha = self.stables[index]
            beta = alpha / 2
            g = beta / (1 - beta)
            log_scale = math.log(2) + (2 / alpha) * math.log(coefficient * t)
            lower = (math.log(1 - beta) + g * math.log(beta) - math.log(SUM_LOWER_DEPTH)) / g + log_scale
            return lower, log_scale + self.log_medians[index] + SUM_HEAVY_REACH / beta + 20.0
        c, m = self.nigs[index - len(self.stables)]
        tau = c * t
        # the lower root of (m x - tau)^2 / (2 x) = SUM_LOWER_DEPTH (tau^2 / (2 SUM_LOWER_DEPTH) at m = 0)
        lower = math.log(tau * tau / (m * tau + SUM_LOWER_DEPTH + math.sqrt(SUM_LOWER_DEPTH * (2 * m * tau
                                                                                   + SUM_LOWER_DEPTH))))
        if m == 0:
            return lower, math.log(tau * tau) + SUM_HEAVY_REACH / 0.5 + 20.0
        return lower, math.log(2 * (SUM_LOWER_DEPTH + m * tau) / (m * m)) + 2.0

    def _plan(self, h, device):
        key = (h, str(device))
        if key not in self._plans:
            self._plans[key] = SumConvolutionPlan(h, device)
        return self._plans[key]

    def _spacing(self, t):
        """The table's spacing in w at t: h, halved while an inverse Gaussian part (m > 0) is narrower than
        1 / SUM_IG_SPACING of it (its law of log X has width ~ (m c t)^(-1/2): at m c t = 6400 (sigma = 80) the
        spacing 0.05 left the kernel 0.4 off, h / 8 puts it within 4e-9 of the closed form; tested)."""
        h = self.h
        narrowest = max([m * c * t for c, m in self.nigs if m > 0], default=0.0)
        while h * math.sqrt(narrowest) > SUM_IG_SPACING:
            h /= 2
        return h

    def _table_range(self, t):
        """(start, top) in w of the table at time t (floats)."""
        ranges = [self._component_range(i, t) for i in range(self.components)]
        return min(low for low, _ in ranges), max(high for _, high in ranges) + math.log(self.components) + 2.0

    def _exact_table(self, t, device, start, top):
        """(log density of log Y, log y J(y)) on w = start + i h up to top at the time t (a float), by convolution."""
        h = self._spacing(t)
        time = torch.tensor(float(t), dtype=torch.float64, device=device)
        w = start + h * torch.arange(math.ceil((top - start) / h) + 1, dtype=torch.float64, device=device)
        plan = self._plan(h, device)
        density = flux = None
        for i in range(self.components):
            p = floor_log(self._component_log_density(i, w, time))
            j = floor_log(p + w + self._component_log_rate(i, w, time))
            if density is None:
                density, flux = p, j
                continue
            flux = floor_log(torch.logaddexp(convolve_log(flux, p, plan, h), convolve_log(density, j, plan, h)))
            density = convolve_log(density, p, plan, h)
        return density, flux

    def _shift_rate(self, t):
        """d log sigma^2 / d log t at t rounded to a multiple of h / Delta (>= one): the slope of the lines in
        (log t, w) along which the node tables are read."""
        value, slope = self._sigma2_and_slope(torch.tensor([t], dtype=torch.float64))
        unit = self.h / self.log_t_step
        return unit * max(1, round(float(slope[0]) * t / float(value[0]) / unit))

    def _node(self, k, device):
        """(first grid index, log density, log flux) of the exact table at t = exp(k Delta), on w = h (first + i):
        wide enough for every t whose stencil holds this node (|log t - k Delta| <= 3 Delta) to read it along its
        line."""
        key = (k, str(device))
        if key in self._nodes:
            self._nodes[key] = self._nodes.pop(key)  # most recently used last
            return self._nodes[key]
        h, step = self.h, self.log_t_step
        lows, highs = [], []
        for j in range(-24, 25):  # the reading times, 1/8 node apart, and their lines' reach at u_k
            u = (k + j / 8) * step
            start, top = self._table_range(math.exp(u))
            offset = self._shift_rate(math.exp(u)) * (k * step - u)
            lows.append(start + offset)
            highs.append(top + offset)
        first = math.floor(min(lows) / h) - 2
        density, flux = self._exact_table(math.exp(k * step), device, h * first, max(highs) + 2 * h)
        while len(self._nodes) >= SUM_NODE_CACHE:
            self._nodes.pop(next(iter(self._nodes)))
        self._nodes[key] = (first, density, flux)
        return self._nodes[key]

    def _interpolated_table(self, t, device):
        """(grid start, log density, log flux) at t from the six node tables around log t (module docstring)."""
        h, step = self.h, self.log_t_step
        u = math.log(t)
        k0 = math.floor(u / step)
        weights = lagrange6(torch.tensor(u / step - k0, dtype=torch.float64)).tolist()
        rate = self._shift_rate(t)
        per_node = round(rate * step / h)  # grid steps between neighbouring nodes along the line
        start, top = self._table_range(t)
        offset = rate * (u - k0 * step)  # w_i = offset + h (first + i) is read at h (first + i + o per_node) at k0 + o
        first = math.floor((start - offset) / h)
        size = math.ceil((top - offset) / h) - first + 1
        density = flux = 0
        for o, weight in zip(range(-2, 4), weights):
            node_first, node_density, node_flux = self._node(k0 + o, device)
            index = first + o * per_node - node_first
            if index < 0 or index + size > node_density.shape[0]:  # _node's reach covers every reader
                raise RuntimeError(f"subordinator_sum: node {k0 + o} does not cover t = {t}")
            density = density + weight * node_density[index:index + size]
            flux = flux + weight * node_flux[index:index + size]
        return offset + h * first, floor_log(density), floor_log(flux)

    def sum_table(self, t, device):
        """(grid start, log density of log Y, log y J(y)) at the time t (a float), J = -d/dt P(Y <= y)."""
        key = (float(t), str(device))
        if key in self._tables:
            return self._tables[key]
        interval = None if self.log_t_step is None else (math.floor(math.log(t) / self.log_t_step), str(device))
        if interval is not None and (interval in self._visited or all(
                (interval[0] + o, interval[1]) in self._nodes for o in range(-2, 4))):
            start, density, flux = self._interpolated_table(float(t), device)
        else:  # a time alone in its node interval: one exact table costs less than the six nodes around it
            if interval is not None:
                self._visited.add(interval)
            start, top = self._table_range(float(t))
            density, flux = self._exact_table(float(t), device, start, top)
        density = density - torch.logsumexp(density, 0) - math.log(self._spacing(t))  # mass 1 to ~1e-9: made exact
        if len(self._tables) >= SUM_TABLE_CACHE:
            self._tables.pop(next(iter(self._tables)))
        self._tables[key] = (start, density, flux)
        return self._tables[key]

    # ---- runtime interface

    def _sample_log_parts(self, t, generator=None):
        """log X per component and, when kappa > 0, log 2 kappa t last: (K [+ 1], *t.shape) float64, the log-parts of
        V (parts first: see _part_constants); the stable parts in one pass (Kanter), the inverse Gaussians in one where
        they share m (e.g. Levy parts)."""
        t = t if t.dtype == torch.float64 else t.to(torch.float64)
        constants = self._part_constants(t.device)
        log_t = torch.log(t).unsqueeze(0)
        rows = []
        if self.stables:
            log_s = sample_log_positive_stable(constants["kanter"], (len(self.stables), *t.shape), t.device, generator)
            rows.append(log_s.addcmul_(log_t, constants["power"]).add_(constants["log_scale"]))
        if self.nigs and self.levy_only:  # X = tau^2 / Z^2 (the inverse Gaussian's m = 0 limit), in logs
            z2 = standard_normal((len(self.nigs), *t.shape), torch.float64, t.device, generator).square_()
            log_x = torch.log(z2.clamp_min_(1e-300)).neg_().add_(log_t, alpha=2)
            rows.append(log_x.add_(constants["log_levy_scale"]))
        elif self.nigs:
            tau = t.unsqueeze(-1) * constants["c"]
            masses = {m for _, m in self.nigs}
            if len(masses) == 1:
                rows.append(torch.log(sample_inverse_gaussian(tau, masses.pop(), generator)).movedim(-1, 0))
            else:
                rows += [torch.log(sample_inverse_gaussian(tau[..., i], m, generator)).unsqueeze(0)
                         for i, (_, m) in enumerate(self.nigs)]
        if self.heat > 0:
            rows.append(log_t + math.log(2 * self.heat))
        return torch.cat(rows, 0)

    def sample_mixing_variance(self, t, generator=None):
        """V_t = 2 kappa t + sum of the components (float64, shape of t): the ancestral sampler's variance path."""
        return torch.exp(self._sample_log_parts(t, generator)).sum(0)

    def sample_displacement(self, t, shape, generator=None):
        """(d, latent): d = sqrt(V) eps, latent log X per component (B, K), in t's dtype."""
        parts = self._sample_log_parts(t, generator)
        log_v = parts[0]
        for part in parts[1:]:  # a few rows: cheaper than a log-sum-exp reduction at small batches
            log_v = torch.logaddexp(log_v, part)
        scale = (log_v * 0.5).exp_().to(t.dtype)
        eps = standard_normal((t.shape[0], *shape), t.dtype, t.device, generator)
        return eps.mul_(batch_view(scale, eps)), parts[:self.components].movedim(0, -1).to(t.dtype)

    def _factor(self, log_x, t):
        """V_dot / (2 V) given log X per component: sum_k w_k X_dot_k t / (2 X_k) / t over the parts' shares
        w = softmax(log X_1, ..., log 2 kappa t) of V (finite for every draw; the heat part's term is 1/2)."""
        t = t if t.dtype == torch.float64 else t.to(torch.float64)
        constants = self._part_constants(t.device)
        parts = log_x.movedim(-1, 0)  # parts first (see _part_constants); the latent's own layout when it is one
        parts = parts if parts.dtype == torch.float64 else parts.to(torch.float64)
        if self.heat > 0:
            parts = torch.cat([parts, torch.log(t).add_(math.log(2 * self.heat)).unsqueeze(0)], 0)
        share = torch.softmax(parts, 0)
        value = (share * constants["coupling"]).sum(0)
        for index, (_, m) in enumerate(self.nigs, len(self.stables)):
            if m > 0:  # the inverse Gaussian's bracket instead of the 1 in ``coupling``
                rate = torch.exp(self._component_log_rate(index, parts[index], t)) * t / 2
                value = value + share[index] * (rate - 1)
        return value.div_(t)

    def _mixture(self, rho2, t, n, with_factor):
        log_p = torch.empty_like(rho2)
        factor = torch.empty_like(rho2) if with_factor else None
        for time in torch.unique(t).tolist():
            rows = (t == time).nonzero().squeeze(-1)
            part_p, part_f = self._mixture_at(rho2[rows], time, n, with_factor)
            log_p[rows] = part_p
            if with_factor:
                factor[rows] = part_f
        return log_p, factor

    def _mixture_at(self, rho2, time, n, with_factor):
        """log int g(w) phi_N(rho; a + e^w) dw and E[V_dot / (2 V) | d] at one time: a coarse pass on the table's
        nodes (extended linearly above it to where |d|^2 / N lies) finds each row's support within e^-40 of its
        maximum; the table refined r-fold (spacing h / r <= min(h, 0.2 sqrt(2 / N)), 6-point Lagrange, once per
        call: r = 1 reads the nodes themselves) is summed over each row's support (the integrand is below e^-40 of
        its maximum at both ends, so the trapezoid rule's end corrections are below that)."""
        device = rho2.device
        h = self._spacing(time)
        start, density, flux = self.sum_table(time, device)
        a = 2 * self.heat * time
        log_a = math.log(a) if a > 0 else -math.inf
        top = start + h * (density.shape[0] - 1)
        reach = float(torch.log(torch.nan_to_num(rho2, nan=1.0).clamp(1e-300, 1e300) / n).max()) + 10.0
        steps = math.ceil((max(top, reach) - start) / h)
        coarse = start + h * torch.arange(steps + 1, dtype=torch.float64, device=device)
        coarse_log_v = torch.logaddexp(torch.full_like(coarse, log_a), coarse)
        values = (interpolate_log(density, start, h, coarse) - 0.5 * n * coarse_log_v
                  - 0.5 * rho2.unsqueeze(-1) * torch.exp(-coarse_log_v))
        keep = values > values.max(-1, keepdim=True).values - 40
        index = torch.arange(coarse.shape[0], device=device)
        left = (torch.where(keep, index, coarse.shape[0]).min(-1).values - 1).clamp_min(0)
        right = (torch.where(keep, index, -1).max(-1).values + 1).clamp_max(coarse.shape[0] - 1)
        refine = max(1, math.ceil(h / (0.2 * math.sqrt(2 / n)) - 1e-9))
        fine_h = h / refine
        low = int(left.min()) * refine  # the refined grid over the rows' supports only
        grid = start + fine_h * torch.arange(low, int(right.max()) * refine + 1, dtype=torch.float64, device=device)
        log_density = interpolate_log(density, start, h, grid)
        log_v = torch.logaddexp(torch.full_like(grid, log_a), grid)
        inverse_v = torch.exp(-log_v)
        log_gauss_base = log_density - 0.5 * n * (math.log(2 * math.pi) + log_v)
        if with_factor:
            heat_flux = (math.log(2 * self.heat) + log_density) if self.heat > 0 else torch.full_like(grid, -math.inf)
            rate = torch.exp(torch.logaddexp(heat_flux, interpolate_log(flux, start, h, grid)) - log_density - log_v) / 2
            # in [0, max_k X_dot_k t / (2 X_k)] / t, which also holds where the floored tails make the ratio meaningless
            bound = max([0.5] + [1 / alpha for _, alpha in self.stables] + [1.0] * len(self.nigs)) / time
            rate = torch.nan_to_num(rate, nan=bound, posinf=bound).clamp_max_(bound)
        log_p = torch.empty_like(rho2)
        factor = torch.empty_like(rho2) if with_factor else None
        length = int((right - left).max()) * refine + 1
        block = max(1, SUM_FINE_ELEMENTS // length)  # rows at a time: memory bounded whatever the supports
        offsets = torch.arange(length, device=device)
        for first in range(0, rho2.shape[0], block):
            rows = slice(first, first + block)
            nodes = left[rows].unsqueeze(-1) * refine - low + offsets
            inside = nodes <= right[rows].unsqueeze(-1) * refine - low
            nodes = nodes.clamp_max(grid.shape[0] - 1)
            log_terms = log_gauss_base[nodes] - 0.5 * rho2[rows].unsqueeze(-1) * inverse_v[nodes]
            log_terms = torch.where(inside, log_terms, -math.inf)
            log_p[rows] = torch.logsumexp(log_terms, -1) + math.log(fine_h)
            if with_factor:
                factor[rows] = (torch.softmax(log_terms, -1) * rate[nodes]).sum(-1)
        return log_p, factor

    # ---- noise level

    def _sigma2_and_slope(self, t):
        """sigma^2 = 2 kappa t + sum_j 2 median(S_j) (kappa_j t)^(2/alpha_j) + sum_i tau_i^2 / (1 + m_i tau_i), and
        its derivative: each component's own alignment, summed (the power laws in one pass)."""
        t = t if t.dtype == torch.float64 else t.to(torch.float64)
        constants = self._part_constants(t.device)
        terms = torch.addcmul(constants["log_sigma_scale"], constants["sigma_power"], torch.log(t).reshape(1, -1))
        value, slope = (constants["one_and_power"] @ terms.exp_()).reshape(2, *t.shape).unbind(0)
        slope = slope / t
        if self.nigs and not self.levy_only:
            tau = t.unsqueeze(-1) * constants["c"]
            denominator = 1 + constants["m"] * tau
            value = value + (tau.square() / denominator).sum(-1)
            slope = slope + ((denominator + 1) * tau / denominator.square()) @ constants["c"]
        return value, slope

    def sigma(self, t):
        return self._sigma2_and_slope(t)[0].sqrt().to(t.dtype)

    def dsigma_dt(self, t):
        value, slope = self._sigma2_and_slope(t)
        return slope.div_(value.sqrt().mul_(2)).to(t.dtype)

    def _inverse_table(self, device):
        """Per device: runtime_common.log_time_table of this sigma^2(t)."""
        key = str(device)
        if key not in self._inverse_tables:
            self._inverse_tables[key] = log_time_table(self._newton_t_of_sigma2, self._sigma2_and_slope, device)
        return self._inverse_tables[key]

    def _newton_t_of_sigma2(self, s2):
        """sigma^2(t) is increasing and convex: Newton converges monotonically from the smallest of the components'
        own inverses (each above the root); 200 steps bound the work."""
        guesses = [s2 / (2 * self.heat)] if self.heat > 0 else []
        for (coefficient, alpha), log_median in zip(self.stables, self.log_medians):
            guesses.append((s2 / (2 * math.exp(log_median))) ** (alpha / 2) / coefficient)
        for c, m in self.nigs:
            guesses.append((m * s2 + torch.sqrt((m * s2).square() + 4 * s2)) / (2 * c))
        t = torch.stack(guesses).min(0).values
        for _ in range(200):
            value, slope = self._sigma2_and_slope(t)
            step = (value - s2) / slope
            t = t - step
            if bool((step.abs() <= 1e-15 * t.abs()).all()):
                break
        return t

    def _table_t_of_sigma2(self, s2):
        """(t from the cubic Hermite piece at sigma^2 = s2 (relative error < 1e-7), whether s2 lies outside the
        table)."""
        return read_log_time_table(self._inverse_table(s2.device), s2)

    def t_of_sigma(self, sigma):
        """Inside the table (sigma from 1e-6 to 1e6): the cubic Hermite piece and one Newton step on the convex
        sigma^2(t) (quadratic convergence: to rounding); outside it, the Newton solve."""
        s2 = sigma.to(torch.float64).square()
        t, outside = self._table_t_of_sigma2(s2)
        value, slope = self._sigma2_and_slope(t)
        t = t.sub_(value.sub_(s2).div_(slope))
        if outside is not None:
            t = torch.where(outside, self._newton_t_of_sigma2(s2), t)
        return t.to(sigma.dtype)

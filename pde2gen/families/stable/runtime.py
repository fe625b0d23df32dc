"""Isotropic alpha-stable kernel (fractional diffusion, physics.md §4.1, §4.3): ghat = exp(-kappa t k^alpha),
0 < alpha < 2, d = sqrt(V) eps with V = 2 (kappa t)^(2/alpha) S, S positive (alpha/2)-stable
(E e^{-s S} = e^{-s^(alpha/2)}), drawn by Kanter's method; conditional velocity d / (alpha t) (self-similar);
sigma = sqrt(2 median(S)) (kappa t)^(1/alpha).

Kanter: with beta = alpha/2, gamma = (1 - beta)/beta, U ~ U(0, pi), E ~ Exp(1),
S = (a(U) / E)^gamma, a(u) = sin(beta u)^(beta/(1-beta)) sin((1-beta) u) / sin(u)^(1/(1-beta)),
a increasing from a(0) = beta^(beta/(1-beta)) (1 - beta) to infinity at u = pi. Hence
P(S <= s | U) = exp(-a(U) s^(-1/gamma)) (median) and, with y = log a(U), l = log E, k^2 = (kappa t)^(2/alpha),
p(d) = (4 pi k^2)^(-N/2) (1/pi) int du e^{-gamma N y / 2} int dl exp(A l - e^l - K e^{gamma (l - y)}),
A = 1 + gamma N / 2, K = |d|^2 / (4 k^2)  (log_kernel).

Quadrature of that double integral: the inner integrand is log-concave in l (trapezoid around its Newton
mode); the outer one, in y, is a bump of width ~ sd_y = sqrt(1 + 2 / (gamma^2 N)) around
y* = log(2 K / N) / gamma (joint Laplace mode), or a boundary layer at y0 = log a(0) where du/dy ~ (y - y0)^(-1/2).
The outer variable xi, y = y0 + sqrt(1 + xi^2) - 1, is smooth at the boundary (u ~ xi / sqrt(beta)) and
uniform in y far from it. Each sample gets its own xi window, cut into Gauss-Legendre panels: the region where
u(y) varies on a scale ~1 (u up to 0.9 pi), the exponential left tail e^{beta y} of the outer integrand (the
ridge S = const of the joint integrand, along which log E has a Gumbel tail), and the Laplace peak; u(xi) is
found by Newton.

log_kernel does not run that quadrature per call: p(d) depends on d only through s = log K, and
f(s) = log E[S^(-N/2) e^(-K/S)] is tabulated once per (alpha, N) (Chebyshev panels where they are first needed,
closed-form tails beyond them; |error| < 2e-7 against the quadrature, tested), so a (sample, data point) pair
of marginal_velocity costs a few dozen flops. log_kernel_quadrature is the quadrature itself.
"""
import math  # runtime-import

import torch  # runtime-import

from pde2gen.families.runtime_common import (  # runtime-import
    batch_view,  # runtime-import
    event_size,  # runtime-import
    gauss_legendre,  # runtime-import
    log_concave_trapezoid,  # runtime-import
    squared_norm,  # runtime-import
    standard_normal,  # runtime-import
    uniform_open,  # runtime-import
)  # runtime-import

PANEL_NODES = 48  # Gauss-Legendre nodes on each outer panel (boundary layer | exponential tail | peak)
INNER_NODES = 128  # trapezoid over l = log E per outer node (spacing <= 0.45 scales: error < 1e-10)
LOG_KERNEL_CHUNK = 64  # samples per quadrature block: bounds memory (chunk * 144 * 128 float64)
SMALL_U = 0.02  # below: series for log a(u) - log a(0) and its derivative (cancellation-free)
THETA_MAX = 690.0  # logit(u / pi) cap: pi - u >= pi e^-690 stays a normal float64
INVERSION_TABLE = 2048  # initial guesses for u(xi), refined by Newton
RADIAL_PANEL_WIDTH = 1.0  # radial table: Chebyshev panels of this width in s = log K ...
RADIAL_DEGREE = 28  # ... of this degree (tests: |error| < 2e-7 against the quadrature, N <= 3072)
RADIAL_TAIL_TOLERANCE = 1e-9  # the table ends where the closed-form tails below/above it are this accurate
_RADIAL_TABLES = {}  # (alpha, N) -> radial table, shared by all instances (panels built on first use)


def _log_kanter_factor(u_left, u_right, beta):
    """log a(u), with u = u_left and pi - u = u_right both given to full relative precision."""
    u = torch.where(u_left <= u_right, u_left, math.pi - u_right)
    log_sin_u = torch.log(torch.sin(torch.minimum(u_left, u_right)))
    return (
        beta / (1 - beta) * torch.log(torch.sin(beta * u)) + torch.log(torch.sin((1 - beta) * u))
        - log_sin_u / (1 - beta)
    )


class StableFamily(torch.nn.Module):
    """Rotationally invariant alpha-stable kernel, 0 < ``alpha`` < 2, with scale (``kappa`` t)^(1/alpha)."""

    def __init__(self, kappa, alpha):
        super().__init__()
        if not kappa > 0:
            raise ValueError(f"stable: `kappa` must be > 0, got {kappa}")
        if not 0 < alpha < 2:
            raise ValueError(f"stable: `alpha` must lie in (0, 2), got {alpha}")
        beta = alpha / 2
        self.beta, self.gamma, self.exponent = beta, (1 - beta) / beta, float(alpha)
        self.log_a0 = beta / (1 - beta) * math.log(beta) + math.log(1 - beta)
        # d log a / du = sum_i c_i cot(k_i u); cot x = 1/x - x/3 - x^3/45 - 2x^5/945 - x^7/4725 - ...
        # (the 1/x terms cancel): series coefficients of d log a/du in u, u^3, u^5, u^7
        pairs = ((beta * beta / (1 - beta), beta), (1 - beta, 1 - beta), (-1 / (1 - beta), 1.0))
        moments = [sum(c * k**m for c, k in pairs) for m in (1, 3, 5, 7)]
        self.slope_series = [-moments[0] / 3, -moments[1] / 45, -2 * moments[2] / 945, -moments[3] / 4725]
        self.register_buffer("kappa", torch.tensor(float(kappa), dtype=torch.float64))
        self.register_buffer("alpha", torch.tensor(float(alpha), dtype=torch.float64))
        theta_cap = torch.tensor([THETA_MAX], dtype=torch.float64)
        self.max_excess = float(self._excess(math.pi * torch.sigmoid(theta_cap), math.pi * torch.sigmoid(-theta_cap)))
        self._build_inversion_table()
        split = torch.tensor([0.9 * math.pi], dtype=torch.float64)
        self.panel_split_excess = float(self._excess(split, math.pi - split)) + 2.0
        points, weights = gauss_legendre(PANEL_NODES)
        self.register_buffer("panel_points", (points + 1) / 2)  # on [0, 1]
        self.register_buffer("panel_log_weights", torch.log(weights / 2))
        self.register_buffer("median_s", torch.exp(self._log_median_s()))

    # ---- the Kanter factor a(u) in the variables y = log a, excess = y - log a(0), theta = logit(u / pi)

    def _excess(self, u_left, u_right):
        """log a(u) - log a(0) >= 0, by series below SMALL_U (no cancellation near u = 0)."""
        small = u_left < SMALL_U
        u2 = torch.where(small, u_left, torch.zeros_like(u_left)).square()
        c1, c3, c5, c7 = self.slope_series
        series = u2 * (c1 / 2 + u2 * (c3 / 4 + u2 * (c5 / 6 + u2 * c7 / 8)))
        return torch.where(small, series, _log_kanter_factor(u_left, u_right, self.beta) - self.log_a0)

    def _slope(self, u_left, u_right):
        """d log a / du > 0 (series below SMALL_U; cot(u) taken from the nearer end point)."""
        beta = self.beta
        small = u_left < SMALL_U
        u = torch.where(u_left <= u_right, u_left, math.pi - u_right)
        cot_u = torch.where(u_left <= u_right, 1.0, -1.0) / torch.tan(torch.minimum(u_left, u_right))
        direct = beta * beta / (1 - beta) / torch.tan(beta * u) + (1 - beta) / torch.tan((1 - beta) * u) - cot_u / (1 - beta)
        us = torch.where(small, u_left, torch.zeros_like(u_left))
        u2 = us * us
        c1, c3, c5, c7 = self.slope_series
        series = us * (c1 + u2 * (c3 + u2 * (c5 + u2 * c7)))
        return torch.where(small, series, direct)

    def _build_inversion_table(self):
        """theta(xi) on a log grid of xi by bisection (excess is increasing in theta): Newton's start."""
        xi = torch.logspace(-8, math.log10(self._xi_of_excess(self.max_excess)), INVERSION_TABLE, dtype=torch.float64)
        target = self._excess_of_xi(xi)
        low, high = torch.full_like(xi, -40.0), torch.full_like(xi, THETA_MAX)
        for _ in range(90):
            mid = (low + high) / 2
            above = self._excess(math.pi * torch.sigmoid(mid), math.pi * torch.sigmoid(-mid)) > target
            low, high = torch.where(above, low, mid), torch.where(above, mid, high)
        self.register_buffer("table_log_xi", torch.log(xi))
        self.register_buffer("table_theta", (low + high) / 2)

    @staticmethod
    def _excess_of_xi(xi):
        return xi * xi / (torch.sqrt(1 + xi * xi) + 1)  # sqrt(1 + xi^2) - 1 without cancellation

    @staticmethod
    def _xi_of_excess(excess):
        return math.sqrt((excess + 1) ** 2 - 1) if isinstance(excess, float) else torch.sqrt((excess + 1) ** 2 - 1)

    def _u_of_xi(self, xi):
        """(u, pi - u) with excess(u) = sqrt(1 + xi^2) - 1, xi > 0: table start, 8 Newton steps on
        log excess(theta) - log target (linear in theta near u = 0, concave beyond: converges monotonically)."""
        log_xi = torch.log(xi)
        start = self.table_log_xi[0]
        spacing = self.table_log_xi[1] - start
        position = ((log_xi - start) / spacing).clamp(0, INVERSION_TABLE - 1 - 1e-9)
        index = position.floor().long()
        frac = position - index
        guess = self.table_theta[index] * (1 - frac) + self.table_theta[(index + 1).clamp_max(INVERSION_TABLE - 1)] * frac
        theta = torch.where(log_xi < start, log_xi - math.log(math.pi * math.sqrt(self.beta)), guess)
        log_target = torch.log(self._excess_of_xi(xi))
        for _ in range(8):
            u_left, u_right = math.pi * torch.sigmoid(theta), math.pi * torch.sigmoid(-theta)
            excess = self._excess(u_left, u_right)
            derivative = self._slope(u_left, u_right) * u_left * u_right / math.pi / excess
            theta = (theta - (torch.log(excess) - log_target) / derivative).clamp(max=THETA_MAX)
        return math.pi * torch.sigmoid(theta), math.pi * torch.sigmoid(-theta)

    def _log_median_s(self):
        """log median(S): bisection in w = log s of (1/pi) int du exp(-a(u) e^{-w/gamma}) = 1/2, integrated
        over xi (trapezoid from xi = 0, where the integrand is even, 2048 nodes up to where it is below e^-148)."""
        low, high = torch.tensor(-60.0, dtype=torch.float64), torch.tensor(60.0, dtype=torch.float64)
        for _ in range(60):
            w = (low + high) / 2
            cdf = self._cdf_log_s(w)
            low, high = torch.where(cdf > 0.5, low, w), torch.where(cdf > 0.5, w, high)
        return (low + high) / 2

    def _cdf_log_s(self, w):
        top = torch.clamp(w / self.gamma - self.log_a0 + 5.0, min=1e-6, max=self.max_excess)
        xi = torch.linspace(0.0, 1.0, 2048, dtype=torch.float64)[1:] * self._xi_of_excess(top)
        step = xi[1] - xi[0]
        u_left, u_right = self._u_of_xi(xi)
        du_dxi = xi / torch.sqrt(1 + xi * xi) / self._slope(u_left, u_right)
        log_a = self.log_a0 + self._excess_of_xi(xi)
        integrand = torch.exp(-torch.exp(log_a - w / self.gamma)) * du_dxi
        # trapezoid from xi = 0 (value 1/sqrt(beta), even integrand: half weight there)
        at_zero = torch.exp(-torch.exp(self.log_a0 - w / self.gamma)) / math.sqrt(self.beta)
        return (step * (0.5 * at_zero + integrand.sum() - 0.5 * integrand[-1])) / math.pi

    # ---- runtime interface

    def _log_scale2(self, t):
        """log (kappa t)^(2/alpha), float64."""
        return 2 / self.exponent * torch.log(self.kappa * t.to(torch.float64))

    def sample_mixing_variable(self, t, generator=None):
        """log S, S ~ positive (alpha/2)-stable per sample (float64), Kanter's method; U is kept strictly
        inside (0, pi) and sin(U), sin(pi - U) are both taken from the nearer end point."""
        u = uniform_open(t.shape, torch.float64, t.device, generator)
        log_e = torch.log(-torch.log(uniform_open(t.shape, torch.float64, t.device, generator)))
        log_a = _log_kanter_factor(math.pi * u, math.pi * (1 - u), self.beta)
        return self.gamma * (log_a - log_e)

    def sample_mixing_variance(self, t, generator=None):
        """V_t = 2 (kappa t)^(2/alpha) S per sample (float64, shape of t), S positive (alpha/2)-stable: the
        variance of the Gaussian the displacement is a mixture of (the ancestral sampler's variance path)."""
        return torch.exp(math.log(2) + self._log_scale2(t) + self.sample_mixing_variable(t, generator))

    def sample_displacement(self, t, shape, generator=None):
        log_s = self.sample_mixing_variable(t, generator)
        radius_scale = torch.exp(0.5 * (math.log(2) + self._log_scale2(t) + log_s)).to(t.dtype)
        eps = standard_normal((t.shape[0], *shape), t.dtype, t.device, generator)
        return eps.mul_(batch_view(radius_scale, eps)), None

    def conditional_velocity(self, d, t, latent=None):
        return d / batch_view(self.exponent * t, d)

    def log_kernel(self, d, t):
        """log p(d): the radial function f(log K) of the module docstring from its table (radial_log_kernel),
        float64 throughout."""
        n = event_size(d)
        log_k = torch.log(squared_norm(d).to(torch.float64)) - math.log(4) - self._log_scale2(t)
        log_p = self.radial_log_kernel(n, log_k) - n / 2 * (math.log(4 * math.pi) + self._log_scale2(t))
        return log_p.to(d.dtype)

    def log_kernel_quadrature(self, d, t):
        """log p(d) by the double quadrature of the module docstring (the reference of the table)."""
        n = event_size(d)
        log_k = torch.log(squared_norm(d).to(torch.float64)) - math.log(4) - self._log_scale2(t)
        log_p = self._radial_quadrature(n, log_k) - n / 2 * (math.log(4 * math.pi) + self._log_scale2(t))
        return log_p.to(d.dtype)

    def _radial_quadrature(self, n, log_k):
        """f(log K) = log E[S^(-N/2) e^(-K/S)] by quadrature, in blocks of LOG_KERNEL_CHUNK values."""
        log_k = log_k.to(torch.float64)
        pieces = [self._log_kernel_block(n, log_k[i : i + LOG_KERNEL_CHUNK]) for i in range(0, log_k.shape[0], LOG_KERNEL_CHUNK)]
        return torch.cat(pieces) if pieces else log_k.clone()

    # ---- the radial law f(s) = log E[S^(-N/2) e^(-e^s / S)], s = log K, tabulated once per (alpha, N)
    #
    # f is analytic; Chebyshev interpolants of degree RADIAL_DEGREE on panels of width RADIAL_PANEL_WIDTH in s
    # reproduce the quadrature to < 1e-7 (absolute, N <= 3072; tests) with some 20-120 panels. Outside the
    # panels the closed forms of the positive stable law S take over, with errors below RADIAL_TAIL_TOLERANCE:
    # - K -> 0: E[S^-q] = Gamma(1 + q/beta) / Gamma(1 + q), so f(s) = f0 - m1 e^s + O(e^2s) with
    #   m1 = E[S^(-N/2-1)] / E[S^(-N/2)]; the table starts where m1 e^s = RADIAL_TAIL_TOLERANCE (the neglected
    #   second-order term is then ~1e-18);
    # - K -> inf: the tail p_S(S) ~ beta / Gamma(1 - beta) S^(-1-beta) (1 + O(S^-beta)) gives
    #   f(s) = f1 - (N/2 + beta) s + O(N^beta e^(-beta s)); the table ends where that term is below the tolerance.

    def radial_log_kernel(self, n, log_k):
        """f(log K) from the table of this (alpha, N); any shape, float64. Panels are interpolated on first use
        (each costs RADIAL_DEGREE + 1 quadratures, ~30 ms), so a call pays only for the range of K it visits."""
        table = self._radial_table(n)
        s = log_k.to(torch.float64)
        low, high = table["low"], table["high"]
        inside = s.clamp(low, high)
        position = ((inside - low) / RADIAL_PANEL_WIDTH).clamp(0, table["panels"] - 1e-9)
        panel = position.floor()
        index = panel.long().reshape(-1)
        used = torch.bincount(index[((s >= low) & (s <= high)).reshape(-1)], minlength=table["panels"]).cpu() > 0
        missing = (used & ~table["built"]).nonzero().squeeze(-1)
        if missing.numel() > 0:
            self._interpolate_panels(n, table, missing)
        # (degree + 1, panels): one contiguous row per Chebyshev order, gathered order by order inside the
        # recurrence (a gather from a short contiguous row is ~10x cheaper per value than one (degree + 1, values)
        # gather; Process.marginal_velocity evaluates this once per (sample, data point) pair)
        coefficients = table["coefficients"].T.contiguous().to(s.device)
        x = (2 * (position - panel) - 1).reshape(-1)  # on [-1, 1]
        two_x = 2 * x
        b1, b2 = coefficients[RADIAL_DEGREE].index_select(0, index), torch.zeros_like(x)
        for k in range(RADIAL_DEGREE - 1, 0, -1):  # Clenshaw: b_k = c_k + 2x b_(k+1) - b_(k+2)
            b1, b2 = torch.addcmul(coefficients[k].index_select(0, index).sub_(b2), two_x, b1), b1
        value = torch.addcmul(coefficients[0].index_select(0, index).sub_(b2), x, b1).reshape(s.shape)
        below = table["f_low"] + table["m1"] * (math.exp(low) - torch.exp(torch.minimum(s, inside)))
        above = table["f_high"] - (n / 2 + self.beta) * (s - high)
        return torch.where(s < low, below, torch.where(s > high, above, value))

    def _radial_table(self, n):
        """The table of (alpha, N): its range [low, high] in s, the closed-form tail constants and the panels'
        Chebyshev coefficients (filled in by _interpolate_panels as panels are first used)."""
        key = (self.exponent, n)
        if key in _RADIAL_TABLES:
            return _RADIAL_TABLES[key]
        beta, q = self.beta, n / 2
        log_m1 = (math.lgamma(1 + (q + 1) / beta) - math.lgamma(2 + q)) - (math.lgamma(1 + q / beta) - math.lgamma(1 + q))
        low = math.floor(math.log(RADIAL_TAIL_TOLERANCE) - log_m1)
        # second tail term relative to the first: Gamma(q + 2 beta) / Gamma(q + beta) K^-beta (times O(1))
        log_ratio = math.lgamma(q + 2 * beta) - math.lgamma(q + beta)
        panels = math.ceil((math.ceil((log_ratio - math.log(RADIAL_TAIL_TOLERANCE)) / beta) + 2 - low) / RADIAL_PANEL_WIDTH)
        high = low + panels * RADIAL_PANEL_WIDTH
        ends = self._radial_quadrature(n, torch.tensor([float(low), float(high)], dtype=torch.float64))
        table = {"low": float(low), "high": float(high), "panels": panels, "f_low": float(ends[0]),
                 "f_high": float(ends[1]), "m1": math.exp(log_m1), "built": torch.zeros(panels, dtype=torch.bool),
                 "coefficients": torch.zeros(panels, RADIAL_DEGREE + 1, dtype=torch.float64)}
        _RADIAL_TABLES[key] = table
        return table

    def _interpolate_panels(self, n, table, panels):
        """Chebyshev coefficients of the given panels (CPU int64 indices) from the quadrature at the Chebyshev
        points of the first kind (discrete cosine transform). One panel at a time: a panel's coefficients are
        then the same bits whichever panels were built with it (the quadrature's blocks and the product's
        shape do not depend on the calls that came first)."""
        j = torch.arange(RADIAL_DEGREE + 1, dtype=torch.float64)
        angles = math.pi * (j + 0.5) / (RADIAL_DEGREE + 1)
        transform = torch.cos(torch.outer(j, angles)) * (2 / (RADIAL_DEGREE + 1))
        transform[0] /= 2
        for panel in panels.tolist():
            centre = table["low"] + RADIAL_PANEL_WIDTH * (panel + 0.5)
            s = centre + RADIAL_PANEL_WIDTH / 2 * torch.cos(angles)
            values = self._radial_quadrature(n, s.to(self.kappa.device)).cpu()
            table["coefficients"][panel] = transform @ values
            table["built"][panel] = True

    def _inner_mode(self, a_exponent, log_c):
        """Mode of A l - e^l - C e^{gamma l}: Newton on its derivative (decreasing, concave), started right of
        the root, converges monotonically (to 1e-14 within 6 steps over log C in [-30, 200]; 12 are run).
        Returns (mode, 1 / sqrt(curvature at the mode))."""
        gamma = self.gamma
        mode = torch.minimum(torch.full_like(log_c, math.log(a_exponent)), (math.log(a_exponent / gamma) - log_c) / gamma)
        for _ in range(12):
            linear, power = torch.exp(mode), torch.exp(log_c + gamma * mode)
            mode = mode + (a_exponent - linear - gamma * power) / (linear + gamma * gamma * power)
        curvature = torch.exp(mode) + gamma * gamma * torch.exp(log_c + gamma * mode)
        return mode, torch.rsqrt(curvature)

    def _log_inner(self, a_exponent, log_c):
        """log int dl exp(A l - e^l - C e^{gamma l}), elementwise in log C."""
        gamma = self.gamma
        mode, scale = self._inner_mode(a_exponent, log_c)
        # right of the mode the curvature grows (Gaussian bound); to the left the decay is at least the
        # slope found 3 scales out
        at = mode - 3 * scale
        left_slope = (a_exponent - torch.exp(at) - gamma * torch.exp(log_c + gamma * at)) * scale
        left = (3 + 40 / left_slope).clamp(max=60.0)

        def log_integrand(l):
            return a_exponent * l - torch.exp(l) - torch.exp(log_c.unsqueeze(-1) + gamma * l)

        log_inner, _, _ = log_concave_trapezoid(log_integrand, mode, scale, left, torch.full_like(mode, 9.0), INNER_NODES)
        return log_inner

    def _log_kernel_block(self, n, log_k):
        """log[(1/pi) int du e^{-gamma N y/2} inner(K e^{-gamma y})] for a block of samples (log K given)."""
        beta, gamma = self.beta, self.gamma
        a_exponent = 1 + gamma * n / 2
        sd_y = math.sqrt(1 + 2 / (gamma * gamma * n))
        excess_star = (log_k + math.log(2 / n)) / gamma - self.log_a0
        # slope of the outer log-integrand at the boundary y0 (> 0: the mass sits in a boundary layer)
        mode0, _ = self._inner_mode(a_exponent, log_k - gamma * self.log_a0)
        slope0 = gamma * n / 2 - gamma * torch.exp(log_k - gamma * self.log_a0 + gamma * mode0)
        # break points in the excess y - y0: [start | boundary panel | split | exponential tail | peak | end].
        # Along the ridge S = const the outer integrand's left tail is e^{beta y} (Gumbel tail of log E times
        # du/dy ~ e^{-(1-beta) y}): 40 / beta more units reach e^-40.
        shift = (1 - beta) * sd_y**2  # du/dy ~ e^{-(1-beta) y} moves the Laplace mode left by this
        top = self.max_excess
        start = (excess_star - shift - 14 * sd_y - 40 / beta).clamp(0.0, top - 24 * sd_y)
        peak = (excess_star - shift - 4 * sd_y).clamp(0.0, top - 16 * sd_y)
        boundary_layer = 40 / torch.clamp(slope0, min=40 / (12 * sd_y))
        end = torch.maximum(excess_star + 12 * sd_y, boundary_layer).clamp(max=top)
        split = torch.minimum(torch.maximum(start, torch.full_like(start, self.panel_split_excess)), end)
        peak = torch.minimum(torch.maximum(peak, split), end)
        breaks = self._xi_of_excess(torch.stack([start, split, peak, end], -1))  # (b, 4)
        starts, widths = breaks[:, :-1].unsqueeze(-1), (breaks[:, 1:] - breaks[:, :-1]).unsqueeze(-1)
        xi = (starts + widths * self.panel_points).flatten(-2).clamp_min(1e-30)  # (b, 3 * PANEL_NODES)
        log_weight = (torch.log(widths) + self.panel_log_weights).flatten(-2)  # empty panel: log 0 = -inf
        u_left, u_right = self._u_of_xi(xi)
        log_du_dxi = torch.log(xi / torch.sqrt(1 + xi * xi)) - torch.log(self._slope(u_left, u_right))
        y = self.log_a0 + self._excess_of_xi(xi)
        log_inner = self._log_inner(a_exponent, log_k.unsqueeze(-1) - gamma * y)
        log_terms = log_weight + log_du_dxi - gamma * n / 2 * y + log_inner
        return torch.logsumexp(log_terms, -1) - math.log(math.pi)

    def sigma(self, t):
        return (torch.sqrt(2 * self.median_s) * torch.exp(self._log_scale2(t) / 2)).to(t.dtype)

    def dsigma_dt(self, t):
        return self.sigma(t) / (self.exponent * t)

    def t_of_sigma(self, sigma):
        ratio = sigma.to(torch.float64) / torch.sqrt(2 * self.median_s)
        return (ratio**self.exponent / self.kappa).to(sigma.dtype)

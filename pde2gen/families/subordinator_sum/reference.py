"""NumPy/SciPy float64 reference twin of the subordinator_sum family: a positive combination of two or more
non-Gaussian Bernstein symbols (with or without heat),

    f(s) = kappa s + sum_j kappa_j s^(alpha_j / 2) + sum_i c_i (sqrt(s + m_i^2) - m_i),

whose kernel is d = sqrt(V) eps with V = 2 kappa t + Y, Y = sum of independent components:
X_j = 2 (kappa_j t)^(2/alpha_j) S_j (S_j positive (alpha_j/2)-stable) and X_i ~ InverseGaussian(tau_i / m_i, tau_i^2),
tau_i = c_i t (m_i = 0: the Levy law tau_i^2 / Z^2).

The law of Y, and its probability flux -d/dt P(Y <= y), are tabulated per time on a uniform grid in w = log y by
sequential convolution of the components (``sum_table``); the kernel, the radial law and the posterior velocity
are one quadrature over that table. An implementation independent of the torch runtime (runtime.py), reached
through ``pde2gen.derive.reference``; the tests check it against closed forms (IG + IG = IG, stable + stable of one
index = stable) and against the Fourier inversion of exp(-t f(k^2)).

The convolution (the error budget, in words): for Z = X + X' and z = e^w, with p, q the densities of log X, log X'
and r = x / z,

    z f_Z(z) = int p(u) q(w + log(1 - r)) chi(r) / (1 - r) du + (the same with p and q exchanged),

where chi(r) + chi(1 - r) = 1 (chi(r) = (1 - r)^n / (r^n + (1 - r)^n), n = PARTITION_POWER) splits the integral by
which of x and z - x is the smaller part: the region where z - x is tiny (unresolvable in u when z is far above the
scale of X') is weighted by (1 - r)^(n-1) in the first half and carried by the second, where it is resolved.
Integrands are smooth and vanish at both ends, so the uniform rule in u (spacing h = min(GRID_SPACING, 0.1 /
gamma_max), gamma = beta / (1 - beta) the steepness of a stable lower tail) is spectrally accurate; q off the grid is
read by 6-point Lagrange interpolation of log q (error ~ (h |d/dw|)^6 / 720 relative: measured for 1.5-stable
parts 1.3e-8 within e^-5 of the peak, 9e-8 down to e^-40; 3e-9 for inverse Gaussians, against the closed forms
of IG + IG and stable + stable of one index). For r < e^-NEAR_SPAN, q(v) chi / (1 - r) = q(w) (1 + r (1 - q'/q))
to O(r^2) < 1e-12, and the sum over u is two prefix sums. Log-densities are floored LOG_FLOOR_DEPTH below their peak (their interpolation must stay finite); the table spans from where the lowest
component's density of log X is e^-LOWER_DEPTH below its peak to HEAVY_REACH / beta_min + 20 above the centre of the
heaviest tail (mass above: < e^-30) or past the light tails' e^-LOWER_DEPTH point. Above the table log q is extended
linearly (the heavy tails are log-linear there), below it the law is cut (mass < e^-70). The table's trapezoid mass
(1 to ~1e-9) is divided out.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from scipy import special, stats

from ..reference_common import ReferenceFamily, positive_stable
from . import NIG_SLOTS, PARAMETERS, STABLE_SLOTS

GRID_SPACING = 0.05  # at most; 0.1 / gamma_max where a stable lower tail is steeper (gamma = beta / (1 - beta))
NEAR_SPAN = 14.0
PARTITION_POWER = 6
LOG_FLOOR_DEPTH = 1500.0
LOWER_DEPTH = 80.0
HEAVY_REACH = 30.0
TABLE_CACHE = 64
LAGRANGE_NODES = np.arange(-2, 4)
BLOCK_ROWS = 64  # rows of the interpolation matrix per block of columns (_ConvolutionPlan)
IG_SPACING = 0.5  # at most, times (m c t)^(1/2): the law of log X of an inverse Gaussian narrows as t grows


def grid_spacing(alphas) -> float:
    """The table's spacing in w: GRID_SPACING, or 0.1 / gamma where a stable component's lower tail
    log f ~ -A e^(-gamma w) is steeper (the interpolation error scales as (h gamma)^6)."""
    gammas = [alpha / (2.0 - alpha) for alpha in alphas]
    return min([GRID_SPACING] + [0.1 / g for g in gammas])


def lagrange_weights(x: np.ndarray) -> np.ndarray:
    """Weights (..., 6) of 6-point Lagrange interpolation at x (in node units) on nodes -2, ..., 3."""
    x = np.asarray(x, dtype=float)[..., None]
    nodes = LAGRANGE_NODES.astype(float)
    weights = np.ones(x.shape[:-1] + (6,))
    for k in range(6):
        for m in range(6):
            if m != k:
                weights[..., k] *= (x[..., 0] - nodes[m]) / (nodes[k] - nodes[m])
    return weights


def interpolate(log_values: np.ndarray, start: float, h: float, w: np.ndarray) -> np.ndarray:
    """log_values on the grid start + i h read at w: 6-point Lagrange inside, linear extension above, -inf below."""
    w = np.asarray(w, dtype=float)
    last = len(log_values) - 1
    position = (w - start) / h
    base = np.clip(np.floor(position).astype(int), 2, last - 3)
    weights = lagrange_weights(position - base)
    gathered = log_values[np.clip(base[..., None] + LAGRANGE_NODES, 0, last)]
    inside = np.sum(weights * gathered, axis=-1)
    slope = (log_values[last] - log_values[last - 1]) / h
    above = log_values[last] + slope * (position - last) * h
    return np.where(position < 0, -np.inf, np.where(position > last, above, inside))


class _ConvolutionPlan:
    """The near part (k = 1 .. K - 1 grid steps below w) of one convolution half: q at v = w + log(1 - e^(-k h)) by
    6-point Lagrange interpolation, written as one matrix over the offsets o = low .. 3 of log q[j + o], its columns
    in the order c = K - 1 - k (that of the windows of p, p[j - k] = windows[j, c]). The matrix is banded (six rows
    per column, moving with k): ``blocks`` (row start, row stop, column start, column stop) cover its non-zeros in
    spans of at most BLOCK_ROWS rows (the product costs ~ BLOCK_ROWS x K per row instead of ~ K^2)."""

    def __init__(self, h: float):
        self.near = math.ceil(NEAR_SPAN / h)
        k = np.arange(self.near - 1, 0, -1)
        r = np.exp(-k * h)
        delta = np.log1p(-r) / h  # v - w in grid units
        base = np.floor(delta).astype(int)
        self.low = int(base.min()) - 2
        self.weights = np.zeros((4 - self.low, len(k)))
        first_rows = base - 2 - self.low
        np.add.at(self.weights, (first_rows[:, None] + np.arange(6)[None, :], np.arange(len(k))[:, None]),
                  lagrange_weights(delta - base))
        n = PARTITION_POWER
        log_one_minus = np.log1p(-r)
        self.log_kernel = (n - 1) * log_one_minus - np.logaddexp(n * np.log(r), n * log_one_minus) + math.log(h)
        self.blocks = []
        start = 0
        for c in range(1, len(k) + 1):  # first_rows is non-increasing in c
            if c == len(k) or first_rows[start] + 6 - first_rows[c] > BLOCK_ROWS:
                self.blocks.append((int(first_rows[c - 1]), int(first_rows[start]) + 6, start, c))
                start = c


def _floor(log_values: np.ndarray) -> np.ndarray:
    finite = log_values[np.isfinite(log_values)]
    peak = finite.max() if finite.size else 0.0
    return np.maximum(np.nan_to_num(log_values, nan=-np.inf), peak - LOG_FLOOR_DEPTH)


def convolution_half(log_a: np.ndarray, log_b: np.ndarray, plan: _ConvolutionPlan, h: float) -> np.ndarray:
    """log of sum_u a(u) b(w + log(1 - r)) chi(r) / (1 - r) h, r = e^(u - w), at every grid w (u below w on the grid).

    Far below w (r < e^-NEAR_SPAN) the factor b(w + log(1 - r)) chi / (1 - r) = b(w) (1 + r (1 - b'/b) + O(r^2)):
    two prefix sums of a (of a and of a e^u) carry that part exactly to O(r^2) < 1e-12."""
    T = len(log_a)
    w = h * np.arange(T)  # the grid relative to its start (only differences of w enter)
    prefix = np.logaddexp.accumulate(log_a) + math.log(h)
    prefix_moment = np.logaddexp.accumulate(log_a + w) + math.log(h)
    slope = np.gradient(log_b, h)
    near = plan.near - 1
    padded_b = np.concatenate([np.full(-plan.low, log_b[0]), log_b, np.full(3, log_b[-1])])
    windows = np.lib.stride_tricks.sliding_window_view(padded_b, plan.weights.shape[0])  # [j, o - low] = b[j + o]
    padded_a = np.concatenate([np.full(near, -np.inf), log_a])
    a_windows = np.lib.stride_tricks.sliding_window_view(padded_a, near)  # [j, K - 1 - k] = a[j - k]
    near_part = np.empty(T)
    for start in range(0, T, 4096):  # memory: 4096 x K float64 at a time
        stop = min(T, start + 4096)
        terms = a_windows[start:stop] + plan.log_kernel
        for row_start, row_stop, column_start, column_stop in plan.blocks:
            terms[:, column_start:column_stop] += (windows[start:stop, row_start:row_stop]
                                                   @ plan.weights[row_start:row_stop, column_start:column_stop])
        peak = terms.max(axis=1)
        finite_peak = np.where(np.isfinite(peak), peak, 0.0)  # scipy's logsumexp does the same, with more passes
        np.subtract(terms, finite_peak[:, None], out=terms)
        with np.errstate(divide="ignore"):
            near_part[start:stop] = np.log(np.exp(terms, out=terms).sum(axis=1)) + finite_peak
    far_index = np.maximum(np.arange(T) - plan.near, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        correction = np.nan_to_num((1.0 - slope) * np.exp(prefix_moment[far_index] - prefix[far_index] - w), nan=0.0)
    far = np.where(np.arange(T) >= plan.near, prefix[far_index] + log_b + np.log1p(np.clip(correction, -0.5, 0.5)),
                   -np.inf)
    return np.logaddexp(near_part, far)


def convolve(p: np.ndarray, q: np.ndarray, plan: _ConvolutionPlan, h: float) -> np.ndarray:
    """log (density of log (X + X')) from the log-densities of log X and log X' on one grid."""
    return _floor(np.logaddexp(convolution_half(p, q, plan, h), convolution_half(q, p, plan, h)))


class Reference(ReferenceFamily):
    """V = 2 kappa t + sum of independent stable and inverse-Gaussian components (module docstring).

    Coupled velocity: the components' quantile couplings summed, u = (V_dot / (2 V)) d,
    V_dot = 2 kappa + sum_j X_j_dot,
    X_dot = (2 / alpha) X / t (stable, S fixed) or (2 X / t) [1 - m sqrt(pi X / 2) erfcx((m X + tau) / sqrt(2 X))]
    (inverse Gaussian, quantile fixed). Latent: log X_j per component (n, K), at the time of the draw."""

    def __init__(self, **params):
        names = PARAMETERS
        if set(params) != set(names):
            raise ValueError(f"subordinator_sum takes parameters {names}, got {sorted(params)}")
        values = {name: float(params[name]) for name in names}
        if not all(math.isfinite(v) for v in values.values()):
            raise ValueError(f"subordinator_sum: parameters must be finite, got {values}")
        self.kappa = values["kappa"]
        if self.kappa < 0:
            raise ValueError(f"subordinator_sum: `kappa` must be >= 0, got {self.kappa}")
        self.stables = []  # (kappa_j, alpha_j)
        for j in range(1, STABLE_SLOTS + 1):
            coefficient, alpha = values[f"kappa_{j}"], values[f"alpha_{j}"]
            if coefficient < 0 or (coefficient > 0 and not 0 < alpha < 2):  # an unused slot's alpha is free
                raise ValueError(f"subordinator_sum: need kappa_{j} >= 0 and 0 < alpha_{j} < 2, got "
                                 f"{coefficient}, {alpha}")
            if coefficient > 0:
                self.stables.append((coefficient, alpha))
        self.nigs = []  # (c_i, m_i)
        for i in range(1, NIG_SLOTS + 1):
            c, m = values[f"c_{i}"], values[f"m_{i}"]
            if c < 0 or m < 0:
                raise ValueError(f"subordinator_sum: need c_{i} >= 0 and m_{i} >= 0, got {c}, {m}")
            if c > 0:
                self.nigs.append((c, m))
        if len(self.stables) + len(self.nigs) < 1:
            raise ValueError("subordinator_sum: at least one non-Gaussian component is needed")
        self.laws = [positive_stable(0.5 * alpha) for _, alpha in self.stables]
        self.h = grid_spacing(alpha for _, alpha in self.stables)
        self._plans = {}
        self._tables: OrderedDict = OrderedDict()

    @property
    def components(self) -> int:
        return len(self.stables) + len(self.nigs)

    # ---- the components at time t
    def _stable_log_scale(self, j: int, t):
        coefficient, alpha = self.stables[j]
        return math.log(2.0) + (2.0 / alpha) * np.log(coefficient * np.asarray(t, dtype=float))

    def _component_log_density(self, index: int, w: np.ndarray, t: float) -> np.ndarray:
        """log density of log X at w, for component ``index`` (stables first, then inverse Gaussians)."""
        if index < len(self.stables):
            shifted = w - self._stable_log_scale(index, t)
            with np.errstate(over="ignore"):
                return self.laws[index].log_pdf_of_log(shifted) + shifted
        c, m = self.nigs[index - len(self.stables)]
        tau = c * t
        with np.errstate(over="ignore"):
            return (math.log(tau) - 0.5 * math.log(2 * math.pi) - 0.5 * w - 0.5 * m * m * np.exp(w) + m * tau
                    - 0.5 * tau * tau * np.exp(-w))

    def _component_log_rate(self, index: int, w: np.ndarray, t: float) -> np.ndarray:
        """log (X_dot / X) of the component's coupling at X = e^w."""
        t = np.asarray(t, dtype=float)
        if index < len(self.stables):
            return np.log(2.0 / (self.stables[index][1] * t)) + np.zeros_like(w)
        c, m = self.nigs[index - len(self.stables)]
        return np.log(2.0 / t) + np.log(_ig_bracket(m, np.exp(w), c * t))

    def _component_range(self, index: int, t: float) -> tuple[float, float]:
        """(lower cut, top) in w = log X: e^-LOWER_DEPTH below the peak, and the top the table must reach."""
        if index < len(self.stables):
            law, log_scale = self.laws[index], float(self._stable_log_scale(index, t))
            lower = (law.log_A0 - math.log(LOWER_DEPTH)) / law.gamma + log_scale
            return lower, log_scale + math.log(law.median()) + HEAVY_REACH / law.beta + 20.0
        c, m = self.nigs[index - len(self.stables)]
        tau = c * t
        # the lower root of (m x - tau)^2 / (2 x) = LOWER_DEPTH (tau^2 / (2 LOWER_DEPTH) at m = 0), without cancellation
        lower = math.log(tau * tau / (m * tau + LOWER_DEPTH + math.sqrt(LOWER_DEPTH * (2.0 * m * tau + LOWER_DEPTH))))
        if m == 0:
            return lower, math.log(tau * tau) + HEAVY_REACH / 0.5 + 20.0
        return lower, math.log(2.0 * (LOWER_DEPTH + m * tau) / (m * m)) + 2.0

    def _spacing(self, t: float) -> float:
        """The table's spacing at t: h, halved while an inverse Gaussian part (m > 0) is narrower than
        1 / IG_SPACING of it (its law of log X has width ~ (m c t)^(-1/2))."""
        h = self.h
        narrowest = max([m * c * t for c, m in self.nigs if m > 0], default=0.0)
        while h * math.sqrt(narrowest) > IG_SPACING:
            h /= 2
        return h

    def sum_table(self, t: float):
        """(w grid start, log density of log Y, log flux y J(y)) at time t, J = -d/dt P(Y <= y) (cached per t)."""
        key = float(t)
        if key in self._tables:
            self._tables.move_to_end(key)
            return self._tables[key]
        h = self._spacing(key)
        if h not in self._plans:
            self._plans[h] = _ConvolutionPlan(h)
        plan = self._plans[h]
        ranges = [self._component_range(i, key) for i in range(self.components)]
        start = min(low for low, _ in ranges)
        top = max(high for _, high in ranges) + math.log(self.components) + 2.0
        w = start + h * np.arange(math.ceil((top - start) / h) + 1)
        density = flux = None
        for i in range(self.components):
            p = _floor(self._component_log_density(i, w, key))
            j = _floor(p + w + self._component_log_rate(i, w, key))  # y J(y) = X_dot f(x) x = (X_dot / X) p
            if density is None:
                density, flux = p, j
                continue
            flux = _floor(np.logaddexp(convolve(flux, p, plan, h), convolve(density, j, plan, h)))
            density = convolve(density, p, plan, h)
        # the table's own trapezoid mass is 1 to ~1e-9; dividing it out makes P(|d| <= inf) = 1 to rounding, which the
        # tail integrals of light-tailed sums need (1 - radial_cdf must fall below 1e-13)
        density = density - special.logsumexp(density) - math.log(h)
        table = (start, density, flux)
        self._tables[key] = table
        if len(self._tables) > TABLE_CACHE:
            self._tables.popitem(last=False)
        return table

    # ---- draws
    def _sample_components(self, t: np.ndarray, rng) -> np.ndarray:
        """log X per component, (n, K)."""
        n = len(t)
        columns = []
        for j, law in enumerate(self.laws):
            columns.append(self._stable_log_scale(j, t) + np.log(law.sample(n, rng)))
        for c, m in self.nigs:
            tau = c * t
            if m == 0:
                x = stats.levy.rvs(scale=tau * tau, size=n, random_state=rng)
            else:
                x = stats.invgauss.rvs(mu=1.0 / (m * tau), scale=tau * tau, size=n, random_state=rng)
            columns.append(np.log(x))
        return np.stack(columns, axis=1)

    def sample_variance(self, t, rng):
        t = np.asarray(t, dtype=float)
        return 2.0 * self.kappa * t + np.sum(np.exp(self._sample_components(t, rng)), axis=1)

    def sample(self, t, n, N, rng):
        log_x = self._sample_components(t, rng)
        V = 2.0 * self.kappa * t + np.sum(np.exp(log_x), axis=1)
        return np.sqrt(V)[:, None] * rng.standard_normal((n, N)), log_x

    def radial_cf(self, k, t):
        k = np.asarray(k, dtype=float)
        s = k * k
        f = self.kappa * s
        for coefficient, alpha in self.stables:
            f = f + coefficient * k**alpha
        for c, m in self.nigs:
            f = f + c * s / (np.sqrt(s + m * m) + m + (s == 0))  # sqrt(s + m^2) - m without cancellation
        return np.exp(-t * f)

    # ---- velocity
    def _factor(self, log_x, t):
        """V_dot / (2 V) given the components' log X (n, K)."""
        t = np.asarray(t, dtype=float)
        x = np.exp(log_x)
        weighted = np.zeros(len(x))
        for index in range(self.components):
            weighted += x[:, index] * np.exp(self._component_log_rate(index, log_x[:, index], t)) * t / 2.0
        return (self.kappa * t + weighted) / (t * (2.0 * self.kappa * t + np.sum(x, axis=1)))

    def conditional_velocity(self, d, t, latent):
        if latent is not None:
            return d * self._factor(np.asarray(latent, dtype=float), t)[:, None]
        return d * self._mixture(d, t, with_factor=True)[1][:, None]

    def log_kernel(self, d, t):
        return self._mixture(d, t, with_factor=False)[0]

    def posterior_terms(self, d, t, slack):
        log_p, factor = self._mixture(d, t, with_factor=True)
        return np.zeros(len(d), dtype=int), log_p, d * factor[:, None]

    def _mixture(self, d, t, with_factor: bool):
        d = np.asarray(d, dtype=float)
        t = np.broadcast_to(np.asarray(t, dtype=float), (len(d),))
        log_p = np.empty(len(d))
        factor = np.empty(len(d)) if with_factor else None
        for time in np.unique(t):
            rows = np.nonzero(t == time)[0]
            for block in np.array_split(rows, max(1, len(rows) // 256)):
                if len(block):
                    log_p[block], f = self._mixture_block(d[block], float(time), with_factor)
                    if with_factor:
                        factor[block] = f
        return log_p, factor

    def _mixture_block(self, d, t: float, with_factor: bool):
        """log int g(w) N_N(d; 0, (a + e^w) I) dw and E[V_dot / (2 V) | d] = int g phi (2 kappa g + y J) / (2 V) / p,
        over w = log y: a coarse pass on the table's nodes (extended linearly above it up to where |d|^2 / N lies)
        finds each row's support within e^-40 of its maximum; the table refined r-fold (spacing h / r <=
        min(h, 0.2 sqrt(2 / N)), the Gaussian factor's width in log V being sqrt(2 / N); 6-point Lagrange, once per
        block) is summed over each row's support (the integrand is below e^-40 of its maximum at both ends, so the
        trapezoid rule's end corrections are below that)."""
        N = d.shape[1]
        h = self._spacing(t)
        start, density, flux = self.sum_table(t)
        log_a = math.log(2.0 * self.kappa * t) if self.kappa > 0 else -np.inf
        rho2 = np.sum(d * d, axis=1)
        top = start + h * (len(density) - 1)
        with np.errstate(divide="ignore"):
            reach = float(np.max(np.log(np.clip(np.nan_to_num(rho2, nan=1.0), 1e-300, 1e300) / N))) + 10.0
        steps = math.ceil((max(top, reach) - start) / h)
        coarse = start + h * np.arange(steps + 1)
        coarse_log_v = np.logaddexp(log_a, coarse)
        with np.errstate(over="ignore", invalid="ignore"):  # |d|^2 = inf far out in the heaviest tails
            values = (interpolate(density, start, h, coarse)[None, :] - 0.5 * N * coarse_log_v[None, :]
                      - 0.5 * rho2[:, None] * np.exp(-coarse_log_v)[None, :])
        keep = values > values.max(axis=1, keepdims=True) - 40.0
        left = np.maximum(np.argmax(keep, axis=1) - 1, 0)
        right = np.minimum(len(coarse) - np.argmax(keep[:, ::-1], axis=1), len(coarse) - 1)
        refine = max(1, math.ceil(h / (0.2 * math.sqrt(2.0 / N)) - 1e-9))
        low = int(left.min()) * refine  # the refined grid over the rows' supports only
        grid = start + (h / refine) * np.arange(low, int(right.max()) * refine + 1)
        log_density = interpolate(density, start, h, grid)
        log_v = np.logaddexp(log_a, grid)
        base = log_density - 0.5 * N * (math.log(2 * math.pi) + log_v)
        nodes = left[:, None] * refine - low + np.arange(int(np.max(right - left)) * refine + 1)[None, :]
        inside = nodes <= right[:, None] * refine - low
        nodes = np.minimum(nodes, len(grid) - 1)
        with np.errstate(over="ignore", invalid="ignore"):
            log_terms = np.where(inside, base[nodes] - 0.5 * rho2[:, None] * np.exp(-log_v)[nodes], -np.inf)
        log_p = special.logsumexp(log_terms, axis=1) + math.log(h / refine)
        if not with_factor:
            return log_p, None
        weights = np.exp(log_terms - special.logsumexp(log_terms, axis=1, keepdims=True))
        with np.errstate(over="ignore"):
            rate = np.exp(np.logaddexp(math.log(2.0 * self.kappa) + log_density if self.kappa > 0 else -np.inf,
                                       interpolate(flux, start, h, grid)) - log_density - log_v) / 2.0
        # E[V_dot / (2 V) | V] lies in [0, max_k X_dot_k t / (2 X_k)] / t: the bound holds where the table's floored
        # tails (J and f both ~e^-1500 of their peaks) make the ratio meaningless (e.g. d = 0 in N = 3072)
        bound = self.coupling_bound() / t
        rate = np.minimum(np.nan_to_num(rate, nan=bound, posinf=bound), bound)
        return log_p, np.sum(weights * rate[nodes], axis=1)

    def coupling_bound(self) -> float:
        """max over the parts of X_dot t / (2 X): 1/alpha (stable), <= 1 (inverse Gaussian), 1/2 (heat)."""
        return max([0.5] + [1.0 / alpha for _, alpha in self.stables] + [1.0 for _ in self.nigs])

    # ---- transport: the latents move along their own couplings
    def transport(self, d, t_from: float, t_to: float, latent, steps: int):
        """RK4 on (d, log X_j): d(log X)/dt = X_dot / X per component, dd/dt = (V_dot / (2 V)) d."""
        log_x = np.array(latent, dtype=float)

        def rates(lx, time):
            times = np.full(len(lx), time)
            return (np.stack([self._component_log_rate(i, lx[:, i], times) for i in range(self.components)], axis=1)
                    if self.components else lx)

        def field(x, lx, time):
            return x * self._factor(lx, np.full(len(x), time))[:, None], np.exp(rates(lx, time))

        h = (t_to - t_from) / steps
        time = t_from
        for _ in range(steps):
            k1 = field(d, log_x, time)
            k2 = field(d + 0.5 * h * k1[0], log_x + 0.5 * h * k1[1], time + 0.5 * h)
            k3 = field(d + 0.5 * h * k2[0], log_x + 0.5 * h * k2[1], time + 0.5 * h)
            k4 = field(d + h * k3[0], log_x + h * k3[1], time + h)
            d = d + h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            log_x = log_x + h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            time += h
        return d, log_x

    # ---- the law of |d|, tails, noise level
    def radial_cdf(self, rho, t, N):
        """P(|d| <= rho) = int g(w) P(chi2_N <= rho^2 / (a + e^w)) dw over the table (spacing refined to
        0.5 sqrt(2 / N) where the table's is coarser than the chi-square step)."""
        t = float(np.asarray(t, dtype=float).reshape(-1)[0])
        start, density, _ = self.sum_table(t)
        h = self._spacing(t)
        spacing = min(h, 0.5 * math.sqrt(2.0 / N))
        w = np.arange(start, start + h * (len(density) - 1) + 0.5 * spacing, spacing)
        weights = np.exp(interpolate(density, start, h, w))
        weights /= weights.sum()  # the table's mass is 1; its interpolant's Riemann sum is 1 to ~1e-12
        rho = np.asarray(rho, dtype=float)
        flat = rho.reshape(-1)
        out = np.empty(flat.size)
        with np.errstate(over="ignore", invalid="ignore"):  # V = inf past e^709 (heavy tails): P(chi2 <= 0) = 0
            V = 2.0 * self.kappa * t + np.exp(w)
            for i in range(0, flat.size, 64):
                out[i:i + 64] = special.gammainc(0.5 * N, 0.5 * flat[i:i + 64, None] ** 2 / V[None, :]) @ weights
        return np.where(np.isposinf(rho), 1.0, np.minimum(out.reshape(rho.shape), 1.0))

    def tail_index(self) -> float:
        indices = [alpha for _, alpha in self.stables] + [1.0 for _, m in self.nigs if m == 0]
        return min(indices) if indices else math.inf

    def radial_log_range(self, t, bottom, top):
        masses = [m for _, m in self.nigs if m > 0]
        return bottom, (max(top, math.log(60.0 / min(masses))) if masses and not self.stables
                        and all(m > 0 for _, m in self.nigs) else top)

    def mean_square_radius(self, t, N):
        if self.tail_index() < math.inf:
            return math.inf
        return N * (2.0 * self.kappa * t + sum(c * t / m for c, m in self.nigs))

    def _sigma2_and_slope(self, t):
        """sigma^2(t) = 2 kappa t + sum_j 2 median(S_j) (kappa_j t)^(2/alpha_j) + sum_i tau_i^2 / (1 + m_i tau_i),
        each component's own alignment, and its derivative."""
        t = np.asarray(t, dtype=float)
        value = 2.0 * self.kappa * t
        slope = np.full_like(t, 2.0 * self.kappa)
        for (coefficient, alpha), law in zip(self.stables, self.laws):
            term = 2.0 * law.median() * (coefficient * t) ** (2.0 / alpha)
            value = value + term
            slope = slope + (2.0 / alpha) * term / t
        for c, m in self.nigs:
            tau = c * t
            value = value + tau * tau / (1.0 + m * tau)
            slope = slope + c * tau * (2.0 + m * tau) / (1.0 + m * tau) ** 2
        return value, slope

    def sigma(self, t):
        return np.sqrt(self._sigma2_and_slope(t)[0])

    def t_of_sigma(self, sigma):
        """sigma^2(t) is increasing and convex (a sum of such terms): Newton from the smallest of the components'
        own inverses (each above the root) converges monotonically; 200 steps bound the work."""
        s2 = np.asarray(sigma, dtype=float) ** 2
        guesses = [s2 / (2.0 * self.kappa)] if self.kappa > 0 else []
        for (coefficient, alpha), law in zip(self.stables, self.laws):
            guesses.append((s2 / (2.0 * law.median())) ** (alpha / 2.0) / coefficient)
        for c, m in self.nigs:
            guesses.append(0.5 * (m * s2 + np.sqrt((m * s2) ** 2 + 4.0 * s2)) / c)
        t = np.min(np.stack(np.broadcast_arrays(*guesses)), axis=0)
        for _ in range(200):
            value, slope = self._sigma2_and_slope(t)
            step = (value - s2) / slope
            t = t - step
            if np.all(np.abs(step) <= 1e-15 * np.abs(t)):
                break
        return t


def _ig_bracket(m: float, x, tau):
    """t X_dot / (2 X) of the quantile coupling of X ~ IG(tau / m, tau^2): 1 - m sqrt(pi X / 2) erfcx((m X + tau)
    / sqrt(2 X)) (1 at m = 0), kept positive against rounding."""
    if m == 0:
        return np.ones_like(np.asarray(x, dtype=float))
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        bracket = 1.0 - m * np.sqrt(0.5 * np.pi * x) * special.erfcx((m * x + tau) / np.sqrt(2.0 * x))
    return np.maximum(np.nan_to_num(bracket, nan=1.0), 1e-300)


__all__ = ["Reference"]

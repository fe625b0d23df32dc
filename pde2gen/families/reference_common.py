"""Shared pieces of the NumPy/SciPy float64 reference twins (``pde2gen/families/<family>/reference.py``): array
conventions, log-space special functions and quadrature, the generalised inverse Gaussian quadrature, the
positive stable law, and ``ReferenceFamily``, the base class every family's ``Reference`` extends.

The public entry points are in ``pde2gen.derive.reference`` (which finds each family's class from its folder).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import interpolate, optimize, special, stats


def as_times(t, n: int) -> np.ndarray:
    """t as an (n,) float64 array (a scalar is broadcast)."""
    return np.broadcast_to(np.asarray(t, dtype=float), (n,)).copy()


def as_rows(d) -> np.ndarray:
    d = np.asarray(d, dtype=float)
    if d.ndim != 2:
        raise ValueError(f"displacements must have shape (n, N), got {d.shape}")
    return d


def log_sphere_area(N: int) -> float:
    """log |S^{N-1}| = log(2 pi^{N/2} / Gamma(N/2))."""
    return math.log(2.0) + 0.5 * N * math.log(math.pi) - special.gammaln(0.5 * N)


def log_bessel_k(nu, x) -> np.ndarray:
    """log K_nu(x) for nu > 0, x > 0, in float64 without overflow at large order (physics.md §6.2)."""
    return log_bessel_ke(nu, x) - np.asarray(x, dtype=float)


def log_bessel_ke(nu, x) -> np.ndarray:
    """log(K_nu(x) e^x) for nu > 0, x > 0: log K_nu without its -x, which a caller cancels against its own e^{m tau}
    (the NIG kernel: m tau - m r summed as floats lost 5e-5 at m tau = 2.5e11).

    SciPy's kve is exact where it is finite; where K_nu(x) overflows (large order, small argument) the
    uniform (Debye) expansion with four correction terms is used (relative error ~ u_5 / nu^5); for small
    orders at extremely small x the leading term Gamma(nu)/2 (2/x)^nu, and beyond x = 1e6 (kve is NaN from
    x ~ 1e9) Hankel's expansion sqrt(pi / 2x) (1 + a_1 / x + a_2 / x^2 + a_3 / x^3) (error < (2 nu^2 / x)^4).
    """
    nu, x = np.broadcast_arrays(np.asarray(nu, dtype=float), np.asarray(x, dtype=float))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = np.log(special.kve(nu, x))
    bad = ~np.isfinite(out)
    if np.any(bad):
        nu_b, x_b = nu[bad], x[bad]
        mu = 4.0 * nu_b * nu_b
        hankel = 1.0 + (mu - 1.0) / (8.0 * x_b) * (1.0 + (mu - 9.0) / (16.0 * x_b) * (1.0 + (mu - 25.0) / (24.0 * x_b)))
        small_order = np.where(x_b > 1e6, 0.5 * np.log(np.pi / (2.0 * x_b)) + np.log(hankel),
                               special.gammaln(nu_b) + (nu_b - 1.0) * math.log(2.0) - nu_b * np.log(x_b) + x_b)
        out[bad] = np.where(nu_b >= 8.0, _log_bessel_ke_debye(nu_b, x_b), small_order)
    return out


def _log_bessel_ke_debye(nu: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Debye's log K_nu(nu z) + nu z: -nu eta + nu z with eta - z = 1/(R + z) - log1p((1 + 1/(R + z)) / z),
    R = sqrt(1 + z^2) (eta = R + log(z / (1 + R)) minus z, without cancelling two terms ~z)."""
    z = x / nu
    root = np.sqrt(1.0 + z * z)
    eta_minus_z = 1.0 / (root + z) - np.log1p((1.0 + 1.0 / (root + z)) / z)
    return (0.5 * np.log(np.pi / (2.0 * nu)) - nu * eta_minus_z - 0.5 * np.log(root)
            + np.log(_debye_series(nu, 1.0 / root)))


def _debye_series(nu, p):
    """1 - u_1(p)/nu + u_2(p)/nu^2 - u_3(p)/nu^3 + u_4(p)/nu^4, Debye's polynomials of K_nu (relative error ~ u_5/nu^5)."""
    p2 = p * p
    u1 = p * (3.0 - 5.0 * p2) / 24.0
    u2 = p2 * (81.0 - 462.0 * p2 + 385.0 * p2 * p2) / 1152.0
    u3 = p * p2 * (30375.0 - 369603.0 * p2 + 765765.0 * p2**2 - 425425.0 * p2**3) / 414720.0
    u4 = p2 * p2 * (4465125.0 - 94121676.0 * p2 + 349922430.0 * p2**2 - 446185740.0 * p2**3
                    + 185910725.0 * p2**4) / 39813120.0
    return 1.0 - u1 / nu + u2 / nu**2 - u3 / nu**3 + u4 / nu**4


def _stirling_remainder(x):
    """log Gamma(x) - [(x - 1/2) log x - x + log(2 pi) / 2] (four terms: error < 1 / (1188 x^9))."""
    return 1.0 / (12.0 * x) - 1.0 / (360.0 * x**3) + 1.0 / (1260.0 * x**5) - 1.0 / (1680.0 * x**7)


def log_gamma_ratio(x: float, a: float) -> float:
    """log Gamma(x + a) - log Gamma(x), x > 0, a >= 0, without the cancellation of two gammaln values of size
    x log x (1.3e-7 absolute at x = 5e7: the Student-t's normalisation at D = 1e8). For x >= 10 from Stirling's
    series: (x - 1/2) log1p(a/x) + a log(x + a) - a + r(x + a) - r(x), each term of the size of the result
    (from x = 30, where the series' error 1 / (1188 x^9) is 4e-17)."""
    if x < 30.0:
        return float(special.gammaln(x + a) - special.gammaln(x))
    return float((x - 0.5) * math.log1p(a / x) + a * math.log(x + a) - a
                 + _stirling_remainder(x + a) - _stirling_remainder(x))


def log_student_t_cf(nu: float, u: np.ndarray) -> np.ndarray:
    """log[2^(1-nu) u^nu K_nu(u) / Gamma(nu)] for u > 0: the Student-t characteristic function's logarithm.

    For nu < 300 from log_bessel_k and gammaln, whose terms (~nu log nu each) cancel to ~u^2 / (4 nu): rounding
    2e-13 at nu = 300, 1e-9 at nu = 5e5. From nu = 300 (absolute error 5e-15 against mpmath; 1.6e-11 at nu = 64)
    Debye's expansion with Stirling's series, its nu log nu terms cancelled by hand: with z = u/nu, R = sqrt(1 + z^2), w = R - 1 = z^2 / (1 + R),
    the sum is nu (log1p(w/2) - w) - log(R)/2 + log(Debye series) - r(nu) (relative error ~ u_5 / nu^5)."""
    u = np.asarray(u, dtype=float)
    if nu < 300.0:
        return (1.0 - nu) * math.log(2.0) + nu * np.log(u) + log_bessel_k(nu, u) - special.gammaln(nu)
    z = u / nu
    root = np.sqrt(1.0 + z * z)
    w = z * z / (1.0 + root)
    return (nu * (np.log1p(0.5 * w) - w) - 0.5 * np.log(root) + np.log(_debye_series(nu, 1.0 / root))
            - _stirling_remainder(nu))


def logsumexp_rows(values: np.ndarray) -> np.ndarray:
    """log sum exp over the last axis (rows with a finite maximum)."""
    peak = np.max(values, axis=-1, keepdims=True)
    return np.log(np.sum(np.exp(values - peak), axis=-1)) + peak[..., 0]


def log_trapezoid(log_values: np.ndarray, spacing) -> np.ndarray:
    """log of the trapezoid rule over the last axis, from log-values on a uniform grid."""
    ends = np.zeros(log_values.shape[-1])
    ends[[0, -1]] = math.log(0.5)
    return logsumexp_rows(log_values + ends) + np.log(spacing)


# ------------------------------------------------------------- generalised inverse Gaussian quadrature
GIG_POINTS = 801
GIG_HALF_WIDTH = 40.0  # in units of the curvature scale at the mode; the tails decay at least like e^{-40 sqrt|p|}


def gig_nodes(p: float, a: float, b: np.ndarray):
    """Quadrature in w = log V for GIG(p, a, b) (density ∝ V^{p-1} exp(-(a V + b / V) / 2)).

    Returns V of shape (rows, points) and normalised log weights (the integrand is log-concave in w, with
    its mode at the root of a V^2 - 2 p V - b = 0; the grid spans +-40 curvature scales around it).
    The log weights are taken relative to the mode, w = log(mode) + delta: with b / mode = a mode - 2 p they are
    p (delta + expm1(-delta)) - 2 a mode sinh(delta/2)^2, each term O(delta^2 a mode) = O(z^2): the plain
    p w - (a V + b / V) / 2 summed terms ~a mode (4e12 for Yukawa m = 1e6 at sigma = 1) to differences of
    order one, 1e-3 of rounding per weight (the NIG velocity's posterior average was 3e-5 off).
    """
    b = np.atleast_1d(np.asarray(b, dtype=float))
    root = np.sqrt(p * p + a * b)
    mode = b / (root - p) if p <= 0 else (p + root) / a  # the cancellation-free root
    width = 1.0 / np.sqrt(0.5 * (a * mode + b / mode))
    z = np.linspace(-GIG_HALF_WIDTH, GIG_HALF_WIDTH, GIG_POINTS)
    delta = width[:, None] * z[None, :]
    V = mode[:, None] * np.exp(delta)
    log_weight = p * (delta + np.expm1(-delta)) - 2.0 * (a * mode)[:, None] * np.sinh(0.5 * delta) ** 2
    log_weight -= special.logsumexp(log_weight, axis=1, keepdims=True)
    return V, log_weight


def chi_mixture_cdf(rho, V: np.ndarray, log_w: np.ndarray, N: int) -> np.ndarray:
    """P(|d| <= rho) for d ~ N(0, V I_N) mixed over the quadrature nodes V (points,) with log weights log_w: from
    the survival function, 1 - sum w sf / sum w, so that 1 - cdf keeps its digits far in the tail (summing
    cdf @ w left 1 - cdf stuck at the weights' rounding, 1.6e-13 over 801 GIG nodes, which the derivation's tail
    integral multiplied by e^v up to e^60: Yukawa m = 100 failed its moment check by 5.6e15)."""
    rho = np.asarray(rho, dtype=float)
    weights = np.exp(log_w)
    survival = stats.chi2.sf(rho.reshape(-1, 1) ** 2 / V, N) @ weights / weights.sum()
    return (1.0 - survival).reshape(rho.shape)


# ======================================================================== positive (alpha/2)-stable law
# S > 0 with E exp(-u S) = exp(-u^beta), beta = alpha / 2.  Zolotarev / Kanter: S = (A(U) / E)^{1/gamma},
# gamma = beta / (1 - beta), U ~ U(0, pi), E ~ Exp(1), so that
#     F(x) = (1/pi) int_0^pi exp(-A(u) y) du,   f(x) = (1/pi) int_0^pi gamma A(u) y / x exp(-A(u) y) du,
# with y = x^{-gamma}.  A is even in u with A(0) = (1 - beta) beta^{gamma}: near x -> 0 the integrand
# concentrates at u = 0 and log f ~ -A(0) y, which is kept out of the interpolated table.  For large x the
# convergent series f = (1/pi) sum_k (-1)^{k+1} Gamma(beta k + 1)/k! sin(pi beta k) x^{-beta k - 1} is used.
# Gauss-Legendre panels on (0, pi), refined towards pi where A(u) blows up like (pi - u)^{-1/(1-beta)} and the
# integrand has a sharp step (accurate to ~1e-13 for alpha <= 1.9; the step sharpens as alpha -> 2).
STABLE_PANELS = (0.0, math.pi - 1.0, math.pi - 0.3, math.pi - 0.05, math.pi)
STABLE_PANEL_NODES = 200
STABLE_SERIES_TERMS = 80
STABLE_SERIES_FROM = 0.3  # use the series where x^{-beta} <= this
STABLE_TABLE_DEPTH = 1e5  # table down to A(0) y = 1e5; below, the Laplace asymptote (linear in w) is exact


class _PositiveStable:
    def __init__(self, beta: float):
        if not 0.0 < beta < 1.0:
            raise ValueError(f"stable: alpha must lie in (0, 2), got {2 * beta}")
        self.beta = beta
        self.gamma = beta / (1.0 - beta)
        u, du = _zolotarev_nodes()
        self.log_du = np.log(du)
        self.log_A = self._log_A(u)
        self.log_A0 = math.log(1.0 - beta) + self.gamma * math.log(beta)
        ks = np.arange(1, STABLE_SERIES_TERMS + 1)
        self.series_k = ks
        self.series_density = special.gamma(beta * ks + 1) / special.gamma(ks + 1) * np.sin(np.pi * beta * ks)
        self.series_density *= (-1.0) ** (ks + 1) / np.pi
        self.series_tail = self.series_density / (beta * ks)  # 1 - F = sum c_k / (beta k) x^{-beta k}
        # One table in w = log x of  h = log f + A(0) y  and  H = log F + A(0) y  (both slowly varying):
        # Zolotarev quadrature up to w_series, the series beyond, up to w_far where its first term is exact
        # to e^{-50}; below the table the Laplace asymptote (h linear in w), above it the first term.
        self.w_low = (self.log_A0 - math.log(STABLE_TABLE_DEPTH)) / self.gamma
        w_series = -math.log(STABLE_SERIES_FROM) / beta
        self.w_far = w_series + 50.0 / beta
        spacing = 0.01 * min(1.0, 1.0 / self.gamma)
        w_quadrature = np.arange(self.w_low, w_series, spacing)
        w_tail = np.linspace(w_series, self.w_far, math.ceil((self.w_far - w_series) / 0.02) + 1)
        h_quadrature, H_quadrature = self._zolotarev(w_quadrature)
        h_tail, H_tail = self._series(w_tail)
        self.w_table = np.concatenate([w_quadrature, w_tail])
        h = np.concatenate([h_quadrature, h_tail])
        H = np.concatenate([H_quadrature, H_tail])
        self._spline_h = interpolate.CubicSpline(self.w_table, h)
        self._spline_H = interpolate.CubicSpline(self.w_table, H)
        self.h_low, self.H_low = h[0], H[0]
        self.h_slope = (h[1] - h[0]) / spacing
        self.H_slope = (H[1] - H[0]) / spacing

    def _log_A(self, u: np.ndarray) -> np.ndarray:
        b = self.beta
        return self.gamma * (np.log(np.sin(b * u)) - np.log(np.sin(u)) / b
                             + (1.0 - b) / b * np.log(np.sin((1.0 - b) * u)))

    def _zolotarev(self, w: np.ndarray):
        h = np.empty_like(w)
        H = np.empty_like(w)
        for start in range(0, len(w), 2000):
            chunk = w[start:start + 2000, None]
            log_y = -self.gamma * chunk
            with np.errstate(over="ignore"):  # A(u) y = inf near u = pi: exp(-inf) = 0, as it should
                excess = np.exp(self.log_A[None, :] + log_y) - np.exp(self.log_A0 + log_y)  # (A(u) - A(0)) y
            log_cdf_terms = self.log_du[None, :] - excess
            H[start:start + 2000] = logsumexp_rows(log_cdf_terms) - math.log(math.pi)
            log_pdf_terms = log_cdf_terms + math.log(self.gamma) + self.log_A[None, :] + log_y - chunk
            h[start:start + 2000] = logsumexp_rows(log_pdf_terms) - math.log(math.pi)
        return h, H

    def _series(self, w: np.ndarray):
        powers = np.exp(-self.beta * np.outer(w, self.series_k))
        shift = self._lower_tail_shift(w)
        return np.log(powers @ self.series_density) - w + shift, np.log1p(-(powers @ self.series_tail)) + shift

    def _lower_tail_shift(self, w):
        with np.errstate(over="ignore"):  # far below the table: log f = -inf
            return np.exp(self.log_A0 - self.gamma * w)  # A(0) y

    def _evaluate(self, w, spline, low_value, low_slope):
        w = np.asarray(w, dtype=float)
        inside = (w >= self.w_low) & (w <= self.w_far)
        below = w < self.w_low
        out = np.empty_like(w)
        out[inside] = spline(w[inside])
        out[below] = low_value + low_slope * (w[below] - self.w_low)
        return out - self._lower_tail_shift(w), w > self.w_far

    def log_pdf_of_log(self, w: np.ndarray) -> np.ndarray:
        """log f(x) at w = log x."""
        out, above = self._evaluate(w, self._spline_h, self.h_low, self.h_slope)
        out[above] = math.log(self.series_density[0]) - (1.0 + self.beta) * np.asarray(w)[above]
        return out

    def cdf_of_log(self, w: np.ndarray) -> np.ndarray:
        """F(x) at w = log x."""
        log_cdf, above = self._evaluate(w, self._spline_H, self.H_low, self.H_slope)
        out = np.exp(log_cdf)
        out[above] = -np.expm1(math.log(self.series_tail[0]) - self.beta * np.asarray(w)[above])
        return out

    def median(self) -> float:
        return math.exp(optimize.brentq(lambda w: float(self.cdf_of_log(np.array([w]))[0]) - 0.5,
                                        self.w_low - 50.0, self.w_far, xtol=1e-14))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Kanter's representation (physics.md §4.1), U kept inside (0, pi)."""
        U = np.pi * open_uniform(rng, n)
        E = rng.standard_exponential(n)
        b = self.beta
        log_S = (np.log(np.sin(b * U)) - np.log(np.sin(U)) / b
                 + (1.0 - b) / b * (np.log(np.sin((1.0 - b) * U)) - np.log(E)))
        return np.exp(log_S)


@lru_cache(maxsize=1)
def _zolotarev_nodes():
    x, w = np.polynomial.legendre.leggauss(STABLE_PANEL_NODES)
    edges = np.asarray(STABLE_PANELS)
    half = 0.5 * np.diff(edges)[:, None]
    u = (edges[:-1, None] + half * (x[None, :] + 1.0)).ravel()
    return u, (half * w[None, :]).ravel()


@lru_cache(maxsize=16)
def positive_stable(beta: float) -> _PositiveStable:
    """The positive beta-stable law (cached: its tables take ~0.1 s)."""
    return _PositiveStable(float(beta))


def open_uniform(rng: np.random.Generator, n) -> np.ndarray:
    """U(0, 1) strictly inside the interval (keeps Kanter's U away from 0 and pi)."""
    return np.clip(rng.random(n), 2.0**-60, 1.0 - 2.0**-53)


# ================================================================================ the base class
class ReferenceFamily:
    """One family with its parameters; isotropic families are d = sqrt(V) eps."""

    isotropic = True
    velocity_exponent: float | None = None  # alpha of a scale family t^{-N/alpha} g(x / t^{1/alpha})

    @classmethod
    def family_name(cls) -> str:
        """The family's folder name (pde2gen/families/<name>/reference.py)."""
        return cls.__module__.rsplit(".", 2)[-2]

    def __init__(self, **params):
        for name, value in params.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{self.family_name()}: `{name}` must be a positive number, got {value}")
            setattr(self, name, float(value))

    # --- isotropic machinery -------------------------------------------------------------------------
    def sample(self, t: np.ndarray, n: int, N: int, rng):
        V = self.sample_variance(t, rng)
        eps = rng.standard_normal((n, N))
        return np.sqrt(V)[:, None] * eps, self.latent(V)

    def latent(self, V):
        return None

    def characteristic_function(self, k, t):
        return self.radial_cf(np.linalg.norm(k, axis=-1), t)

    def conditional_velocity(self, d, t, latent):
        return d / (self.velocity_exponent * t)[:, None]

    def posterior_terms(self, d, t, slack):
        """(rank, log weight, velocity) of displacements d = x - y_j for the posterior over data points: only
        the highest rank of a point counts (Kac atoms); ``slack``: the rounding of d, per coordinate."""
        return np.zeros(len(d), dtype=int), self.log_kernel(d, t), self.conditional_velocity(d, t, None)

    def mean_square_radius(self, t, N):
        return math.inf

    # --- what the self-checks (pde2gen.derive.verify) need to know about the law --------------------------------
    def tail_index(self) -> float:
        """a with P(|d| > r) ~ r^{-a}; inf for light tails."""
        return math.inf

    def radial_log_range(self, t: float, bottom: float, top: float) -> tuple[float, float]:
        """The range of log |d| the radial quadrature covers, widened where the law reaches further."""
        return bottom, top

    def check_times(self) -> list[float] | None:
        """Times of the kernel and statistical checks, where sigma = 0.5 and 2 do not suit the law (None)."""
        return None

    # --- transport of the coupling (pde2gen.derive.reference.transport) --------------------------------------------
    def transport(self, d, t_from: float, t_to: float, latent, steps: int):
        """Integrate dd/dt = conditional_velocity from t_from to t_to (RK4): (d, latent). A family whose latent
        moves with d (or whose atoms catch coordinates) says so through the three hooks below."""
        n = len(d)
        state = self.transport_start(d, t_from, t_to, latent)

        def velocity(x, time):
            return self.conditional_velocity(x, as_times(time, n), self.transport_latent(state, x, time))

        h = (t_to - t_from) / steps
        time = t_from
        for _ in range(steps):
            k1 = velocity(d, time)
            k2 = velocity(d + 0.5 * h * k1, time + 0.5 * h)
            k3 = velocity(d + 0.5 * h * k2, time + 0.5 * h)
            k4 = velocity(d + h * k3, time + h)
            d = d + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
            time += h
            d, state = self.transport_step_end(d, state, time)
        return d, self.transport_latent(state, d, t_to)

    def transport_start(self, d, t_from, t_to, latent):
        """The state carried along the path (default: the latent, fixed)."""
        return latent

    def transport_latent(self, state, x, time):
        """The latent at position x and time ``time`` (default: the state itself)."""
        return state

    def transport_step_end(self, d, state, time):
        """(d, state) after a step ends at ``time`` (default: unchanged)."""
        return d, state


class RadialMixtureReference:
    """Mixin of the families whose log-kernel and posterior factor are one quadrature per row,
    ``_mixture(d, t, with_factor) -> (log_p, factor or None)``, and whose coupled velocity is d times
    ``_factor(latent, t)`` (the NumPy twin of runtime_common.RadialMixtureKernel)."""

    def conditional_velocity(self, d, t, latent):
        if latent is not None:
            factor = self._factor(np.asarray(latent, dtype=float), t)
        else:
            factor = self._mixture(d, t, with_factor=True)[1]
        return d * factor[:, None]

    def log_kernel(self, d, t):
        return self._mixture(d, t, with_factor=False)[0]

    def posterior_terms(self, d, t, slack):
        # one quadrature gives both the weight and the velocity
        log_p, factor = self._mixture(d, t, with_factor=True)
        return np.zeros(len(d), dtype=int), log_p, d * factor[:, None]


class MovingVarianceLatent:
    """Mixin of a subordinated family whose latent X moves with d along the coupling: d = sqrt(V) eps with eps
    fixed and V = variance_of_latent(X, t), so V = |d|^2 / |eps|^2 at each stage."""

    def variance_of_latent(self, latent, t):
        return latent

    def latent_of_variance(self, V, t):
        return V

    def transport_start(self, d, t_from, t_to, latent):
        return np.sum(d * d, axis=1) / self.variance_of_latent(np.asarray(latent, dtype=float), t_from)  # |eps|^2

    def transport_latent(self, state, x, time):
        return self.latent_of_variance(np.sum(x * x, axis=1) / state, time)

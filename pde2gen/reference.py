"""NumPy/SciPy float64 reference runtime of every family in ``pde2gen.families``: the compiler's own,
independent implementation, used by the self-checks of ``pde2gen.verify`` (the torch runtime in
``templates/runtime/`` is written separately and can be tested against it).

Conventions (docs/DESIGN.md): displacement d = x - y of shape (n, N); time t (a float, or one per row);
the kernel is the normalised law of d.  Isotropic families are subordinated Gaussians d = sqrt(V) eps
(physics.md §4.1); ``kac_product`` has N independent 1-D Kac coordinates, each with atoms of mass
e^{-a t}/2 at +-c t (physics.md §4.5).

Public functions (``family`` is a ``FamilyConfig``):
    sample(family, t, n, N, rng) -> (d, latent)      exact draws; latent: V for nig, atom signs for kac
    log_kernel(family, d, t) -> (n,)                   normalised log density (Kac atoms: log of their mass;
                                                       -inf outside the light cone)
    characteristic_function(family, k, t) -> (...)     E exp(i k.d) for wave vectors k of shape (..., N)
    conditional_velocity(family, d, t, latent=None)    the coupling's velocity; without latent its
                                                       posterior mean given d (the radial transport field)
    marginal_velocity(family, x, t, data)              E[v(x - y)] under softmax(log kernel) weights (Kac: over
                                                       the data points that put x on the most atoms)
    transport(family, d, t_from, t_to, latent, steps)  integrate the coupling ODE (RK4)
    sigma(family, t), t_of_sigma(family, sigma)        noise alignment (physics.md §4.7)
    radial_cdf(family, rho, t, N)                      law of |d| (isotropic families), for KS tests
    kac_continuous_cdf(family, x, t)                   law of one Kac coordinate given it is off the atoms
    mean_square_radius(family, t, N)                   E|d|^2 (inf where it diverges)
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import interpolate, optimize, special, stats

from .families import FamilyConfig

# A Kac coordinate within this relative distance of the light cone |d| = c t is on an atom (marginal_velocity
# adds the rounding of x and of d = x - y, 2 eps (|x| + |y|) per coordinate).
KAC_ATOM_TOLERANCE = 1e-12
# Where a point is off every data point's support (a discrete flow pushed a coordinate over the cones), the
# marginal velocity scores data points by their distance to the fronts, as normal bumps of this width
# relative to c t (the atom width of the torch runtime, templates/runtime/kac_product.py).
KAC_FALLBACK_WIDTH = 1e-4


# ============================================================================================ helpers
def _times(t, n: int) -> np.ndarray:
    """t as an (n,) float64 array (a scalar is broadcast)."""
    return np.broadcast_to(np.asarray(t, dtype=float), (n,)).copy()


def _rows(d) -> np.ndarray:
    d = np.asarray(d, dtype=float)
    if d.ndim != 2:
        raise ValueError(f"displacements must have shape (n, N), got {d.shape}")
    return d


def log_sphere_area(N: int) -> float:
    """log |S^{N-1}| = log(2 pi^{N/2} / Gamma(N/2))."""
    return math.log(2.0) + 0.5 * N * math.log(math.pi) - special.gammaln(0.5 * N)


def log_bessel_k(nu, x) -> np.ndarray:
    """log K_nu(x) for nu > 0, x > 0, in float64 without overflow at large order (physics.md §6.2).

    SciPy's kve is exact where it is finite; where K_nu(x) overflows (large order, small argument) the
    uniform (Debye) expansion with four correction terms is used (relative error ~ u_5 / nu^5), and for
    small orders at extremely small x the leading term Gamma(nu)/2 (2/x)^nu.
    """
    nu, x = np.broadcast_arrays(np.asarray(nu, dtype=float), np.asarray(x, dtype=float))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scaled = special.kve(nu, x)
        out = np.log(scaled) - x
    bad = ~np.isfinite(out)
    if np.any(bad):
        nu_b, x_b = nu[bad], x[bad]
        out[bad] = np.where(nu_b >= 8.0, _log_bessel_k_debye(nu_b, x_b),
                            special.gammaln(nu_b) + (nu_b - 1.0) * math.log(2.0) - nu_b * np.log(x_b))
    return out


def _log_bessel_k_debye(nu: np.ndarray, x: np.ndarray) -> np.ndarray:
    z = x / nu
    root = np.sqrt(1.0 + z * z)
    p = 1.0 / root
    eta = root + np.log(z) - np.log1p(root)
    p2 = p * p
    u1 = p * (3.0 - 5.0 * p2) / 24.0
    u2 = p2 * (81.0 - 462.0 * p2 + 385.0 * p2 * p2) / 1152.0
    u3 = p * p2 * (30375.0 - 369603.0 * p2 + 765765.0 * p2**2 - 425425.0 * p2**3) / 414720.0
    u4 = p2 * p2 * (4465125.0 - 94121676.0 * p2 + 349922430.0 * p2**2 - 446185740.0 * p2**3
                    + 185910725.0 * p2**4) / 39813120.0
    series = 1.0 - u1 / nu + u2 / nu**2 - u3 / nu**3 + u4 / nu**4
    return 0.5 * np.log(np.pi / (2.0 * nu)) - nu * eta - 0.5 * np.log(root) + np.log(series)


def _logsumexp_rows(values: np.ndarray) -> np.ndarray:
    """log sum exp over the last axis (rows with a finite maximum)."""
    peak = np.max(values, axis=-1, keepdims=True)
    return np.log(np.sum(np.exp(values - peak), axis=-1)) + peak[..., 0]


def _log_trapezoid(log_values: np.ndarray, spacing) -> np.ndarray:
    """log of the trapezoid rule over the last axis, from log-values on a uniform grid."""
    ends = np.zeros(log_values.shape[-1])
    ends[[0, -1]] = math.log(0.5)
    return _logsumexp_rows(log_values + ends) + np.log(spacing)


# ------------------------------------------------------------- generalised inverse Gaussian quadrature
GIG_POINTS = 801
GIG_HALF_WIDTH = 40.0  # in units of the curvature scale at the mode; the tails decay at least like e^{-40 sqrt|p|}


def _gig_nodes(p: float, a: float, b: np.ndarray):
    """Quadrature in w = log V for GIG(p, a, b) (density ∝ V^{p-1} exp(-(a V + b / V) / 2)).

    Returns V of shape (rows, points) and normalised log weights (the integrand is log-concave in w, with
    its mode at the root of a V^2 - 2 p V - b = 0; the grid spans +-40 curvature scales around it).
    """
    b = np.atleast_1d(np.asarray(b, dtype=float))
    root = np.sqrt(p * p + a * b)
    mode = b / (root - p) if p <= 0 else (p + root) / a  # the cancellation-free root
    width = 1.0 / np.sqrt(0.5 * (a * mode + b / mode))
    z = np.linspace(-GIG_HALF_WIDTH, GIG_HALF_WIDTH, GIG_POINTS)
    w = np.log(mode)[:, None] + width[:, None] * z[None, :]
    V = np.exp(w)
    log_weight = p * w - 0.5 * (a * V + b[:, None] / V)
    log_weight -= special.logsumexp(log_weight, axis=1, keepdims=True)
    return V, log_weight


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
            H[start:start + 2000] = _logsumexp_rows(log_cdf_terms) - math.log(math.pi)
            log_pdf_terms = log_cdf_terms + math.log(self.gamma) + self.log_A[None, :] + log_y - chunk
            h[start:start + 2000] = _logsumexp_rows(log_pdf_terms) - math.log(math.pi)
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
        U = np.pi * _open_uniform(rng, n)
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


def _open_uniform(rng: np.random.Generator, n) -> np.ndarray:
    """U(0, 1) strictly inside the interval (keeps Kanter's U away from 0 and pi)."""
    return np.clip(rng.random(n), 2.0**-60, 1.0 - 2.0**-53)


# ================================================================================ the families
class _Family:
    """One family with its parameters; isotropic families are d = sqrt(V) eps."""

    isotropic = True
    velocity_exponent: float | None = None  # alpha of a scale family t^{-N/alpha} g(x / t^{1/alpha})

    def __init__(self, **params):
        for name, value in params.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{type(self).__name__[1:].lower()}: `{name}` must be a positive number, got {value}")
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


class _Gaussian(_Family):
    velocity_exponent = 2.0

    def sample_variance(self, t, rng):
        return 2.0 * self.kappa * t

    def log_kernel(self, d, t):
        N = d.shape[1]
        variance = 2.0 * self.kappa * t
        return -0.5 * N * np.log(2.0 * np.pi * variance) - np.sum(d * d, axis=1) / (2.0 * variance)

    def radial_cf(self, k, t):
        return np.exp(-self.kappa * t * k**2)

    def sigma(self, t):
        return np.sqrt(2.0 * self.kappa * t)

    def t_of_sigma(self, sigma):
        return sigma**2 / (2.0 * self.kappa)

    def radial_cdf(self, rho, t, N):
        return stats.chi2.cdf(rho**2 / (2.0 * self.kappa * t), N)

    def mean_square_radius(self, t, N):
        return 2.0 * self.kappa * t * N


class _Cauchy(_Family):
    velocity_exponent = 1.0

    def sample_variance(self, t, rng):
        Z = rng.standard_normal(len(t))
        return (self.c * t / Z) ** 2

    def log_kernel(self, d, t):
        # The normalised Poisson kernel: Gamma((N+1)/2) tau / (pi^{(N+1)/2} (rho^2 + tau^2)^{(N+1)/2}).
        N = d.shape[1]
        tau = self.c * t
        half = 0.5 * (N + 1)
        return (special.gammaln(half) - half * math.log(math.pi) + np.log(tau)
                - half * np.log(np.sum(d * d, axis=1) + tau**2))

    def radial_cf(self, k, t):
        return np.exp(-self.c * t * k)

    def sigma(self, t):
        return self.c * t

    def t_of_sigma(self, sigma):
        return sigma / self.c

    def radial_cdf(self, rho, t, N):
        return stats.f.cdf(rho**2 / (N * (self.c * t) ** 2), N, 1)


class _StudentT(_Family):
    velocity_exponent = 1.0

    def _scale(self, t):
        return self.c * t / math.sqrt(self.D)

    def sample_variance(self, t, rng):
        # V = (c t)^2 / chi2_D, chi2_D = 2 Gamma(D/2): a Gamma draw stays exact in float64 for any D.
        return (self.c * t) ** 2 / (2.0 * rng.standard_gamma(0.5 * self.D, len(t)))

    def log_kernel(self, d, t):
        N, D = d.shape[1], self.D
        scale = self._scale(t)
        return (special.gammaln(0.5 * (N + D)) - special.gammaln(0.5 * D) - 0.5 * N * math.log(math.pi * D)
                - N * np.log(scale) - 0.5 * (N + D) * np.log1p(np.sum(d * d, axis=1) / (D * scale**2)))

    def radial_cf(self, k, t):
        nu = 0.5 * self.D
        u = self.c * t * np.asarray(k, dtype=float)
        with np.errstate(divide="ignore"):
            log_value = ((1.0 - nu) * math.log(2.0) + nu * np.log(u) + log_bessel_k(nu, np.where(u > 0, u, 1.0))
                         - special.gammaln(nu))
        return np.where(u > 0, np.exp(log_value), 1.0)

    def sigma(self, t):
        return self._scale(t)

    def t_of_sigma(self, sigma):
        return sigma * math.sqrt(self.D) / self.c

    def radial_cdf(self, rho, t, N):
        return stats.f.cdf(rho**2 / (N * self._scale(t) ** 2), N, self.D)

    def mean_square_radius(self, t, N):
        return N * self._scale(t) ** 2 * self.D / (self.D - 2.0) if self.D > 2 else math.inf


class _NIG(_Family):
    """V ~ IG(tau/m, tau^2), tau = c t: the Yukawa kernel normalised (physics.md §4.2, §4.4)."""

    def latent(self, V):
        return V

    def sample_variance(self, t, rng):
        # Michael-Schucany-Haas for IG(mu, lambda) with mu = tau/m, lambda = tau^2 (physics.md §4.1).
        tau = self.c * t
        mu = tau / self.m
        q = rng.standard_normal(len(t)) ** 2 / (2.0 * self.m * tau)  # mu Z^2 / (2 lambda)
        x = mu / (1.0 + q + np.sqrt(q * q + 2.0 * q))
        U = rng.random(len(t))
        return np.where(U <= mu / (mu + x), x, mu * mu / x)

    def log_kernel(self, d, t):
        N = d.shape[1]
        tau = self.c * t
        r = np.sqrt(np.sum(d * d, axis=1) + tau**2)
        half = 0.5 * (N + 1)
        # 2 e^{m tau} (2 pi)^{-(N+1)/2} m^{(N+1)/2} tau r^{-(N+1)/2} K_{(N+1)/2}(m r)
        return (math.log(2.0) + self.m * tau - half * math.log(2.0 * math.pi) + half * math.log(self.m)
                + np.log(tau) - half * np.log(r) + log_bessel_k(half, self.m * r))

    def radial_cf(self, k, t):
        k = np.asarray(k, dtype=float)
        return np.exp(-self.c * t * k**2 / (np.sqrt(k**2 + self.m**2) + self.m))  # sqrt(k^2+m^2) - m, exactly

    def _bracket(self, V, tau):
        """V_dot / (2 V) * tau: the quantile coupling's factor 1 - m sqrt(pi V/2) erfcx((m V + tau)/sqrt(2 V))."""
        return 1.0 - self.m * np.sqrt(0.5 * np.pi * V) * special.erfcx((self.m * V + tau) / np.sqrt(2.0 * V))

    def conditional_velocity(self, d, t, latent):
        tau = self.c * t
        if latent is not None:
            factor = self._bracket(np.asarray(latent, dtype=float), tau)
        else:
            # Posterior of V given rho: GIG(p = -(N+1)/2, a = m^2, b = tau^2 + rho^2); average the factor.
            N = d.shape[1]
            b = tau**2 + np.sum(d * d, axis=1)
            V, log_w = _gig_nodes(-0.5 * (N + 1), self.m**2, b)
            factor = np.sum(np.exp(log_w) * self._bracket(V, tau[:, None]), axis=1)
        return d * (factor / t)[:, None]

    def sigma(self, t):
        tau = self.c * t
        return tau / np.sqrt(1.0 + self.m * tau)

    def t_of_sigma(self, sigma):
        s2 = np.asarray(sigma, dtype=float) ** 2
        # tau^2 - m s^2 tau - s^2 = 0, positive root
        return 0.5 * (self.m * s2 + np.sqrt((self.m * s2) ** 2 + 4.0 * s2)) / self.c

    def radial_cdf(self, rho, t, N):
        # E_V chi2_N.cdf(rho^2 / V) over the IG prior GIG(-1/2, m^2, tau^2).
        tau = float(self.c * np.asarray(t, dtype=float).reshape(-1)[0])
        V, log_w = _gig_nodes(-0.5, self.m**2, np.array([tau**2]))
        rho = np.asarray(rho, dtype=float)
        cdf = stats.chi2.cdf(rho.reshape(-1, 1) ** 2 / V, N)
        return (cdf @ np.exp(log_w[0])).reshape(rho.shape)

    def mean_square_radius(self, t, N):
        return N * self.c * t / self.m


def _ig_draw(tau: np.ndarray, m: float, rng) -> np.ndarray:
    """X ~ IG(tau / m, tau^2) (m = 0: the Levy law tau^2 / Z^2), Michael-Schucany-Haas without cancellation:
    with y = Z^2 and p = 2 m tau / y the smaller root is x = (2 tau^2 / y) / (1 + p + sqrt(1 + 2 p)), accepted
    with probability tau / (tau + m x), else tau^2 / (m^2 x)."""
    y = np.maximum(rng.standard_normal(len(tau)) ** 2, 1e-300)
    p = 2.0 * m * tau / y
    x = (2.0 * tau**2 / y) / (1.0 + p + np.sqrt(1.0 + 2.0 * p))
    if m == 0:
        return x
    u = _open_uniform(rng, len(tau))
    return np.where(u * (tau + m * x) <= tau, x, tau**2 / (m * m * np.maximum(x, 1e-300)))


def _ig_bracket(m: float, X, tau):
    """t X_dot / (2 X) of the quantile coupling of X ~ IG(tau/m, tau^2): 1 - m sqrt(pi X/2) erfcx((m X + tau)
    / sqrt(2 X)) (physics.md §4.4); 1 at m = 0."""
    if m == 0:
        return np.ones_like(X)
    return 1.0 - m * np.sqrt(0.5 * np.pi * X) * special.erfcx((m * X + tau) / np.sqrt(2.0 * X))


HEAT_NIG_COARSE = 512
HEAT_NIG_FINE = 1024


class _HeatNIG(_Family):
    """f(s) = kappa s + c (sqrt(s + m^2) - m), m >= 0 (m = 0: heat plus Cauchy): the convolution of the heat
    and NIG kernels, d = sqrt(V) eps with V = 2 kappa t + X, X ~ IG(tau / m, tau^2), tau = c t, independent.

    Coupled velocity (the components' quantile couplings summed): u = (V_dot / (2 V)) d with
    V_dot = 2 kappa + 2 X bracket(X) / t. The kernel and the posterior mean of the velocity are one integral
    over X (``_mixture``); latent: X."""

    def __init__(self, kappa, c, m):
        for name, value in (("kappa", kappa), ("c", c)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"heat_nig: `{name}` must be a positive number, got {value}")
        if not (math.isfinite(m) and m >= 0):
            raise ValueError(f"heat_nig: `m` must be >= 0, got {m}")
        self.kappa, self.c, self.m = float(kappa), float(c), float(m)

    def sample(self, t, n, N, rng):
        X = _ig_draw(self.c * t, self.m, rng)
        V = 2.0 * self.kappa * t + X
        return np.sqrt(V)[:, None] * rng.standard_normal((n, N)), X

    def sample_variance(self, t, rng):
        return 2.0 * self.kappa * t + _ig_draw(self.c * t, self.m, rng)

    def radial_cf(self, k, t):
        k = np.asarray(k, dtype=float)
        root = np.sqrt(k**2 + self.m**2) + self.m  # sqrt(k^2 + m^2) - m = k^2 / root, exactly
        return np.exp(-t * (self.kappa * k**2 + self.c * np.where(root > 0, k**2 / np.where(root > 0, root, 1.0),
                                                                     0.0)))

    def _factor(self, X, t):
        """V_dot / (2 V) of the coupling, given X."""
        return (self.kappa * t + X * _ig_bracket(self.m, X, self.c * t)) / (t * (2.0 * self.kappa * t + X))

    def conditional_velocity(self, d, t, latent):
        if latent is not None:
            factor = self._factor(np.asarray(latent, dtype=float), t)
        else:
            factor = self._mixture(d, t, with_factor=True)[1]
        return d * factor[:, None]

    def log_kernel(self, d, t):
        return self._mixture(d, t, with_factor=False)[0]

    def _mixture(self, d, t, with_factor: bool):
        parts = [self._mixture_block(d[i:i + 2048], t[i:i + 2048], with_factor) for i in range(0, len(d), 2048)]
        if not parts:
            return np.zeros(0), (np.zeros(0) if with_factor else None)
        return np.concatenate([p[0] for p in parts]), (np.concatenate([p[1] for p in parts]) if with_factor
                                                       else None)

    def _mixture_block(self, d, t, with_factor: bool):
        """log p(d) = log int f_X(x) N_N(d; 0, (2 kappa t + x) I) dx, and E[V_dot / (2 V) | d], by the trapezoid
        rule in w = log x: a coarse pass finds, per row, where the integrand is within e^-45 of its maximum,
        a fine uniform grid of HEAT_NIG_FINE points covers that region (the integrand is unimodal in each
        factor, not necessarily log-concave, so no mode formula is assumed)."""
        N = d.shape[1]
        rho2 = np.sum(d * d, axis=1)
        tau = self.c * t
        a = 2.0 * self.kappa * t
        m = self.m

        def log_integrand(rows, w):
            x = np.exp(w)
            V = a[rows, None] + x
            return (np.log(tau[rows, None]) - 0.5 * math.log(2 * math.pi) + m * tau[rows, None] - 0.5 * w
                    - 0.5 * (m * m * x + tau[rows, None] ** 2 / x)
                    - 0.5 * N * np.log(2 * math.pi * V) - 0.5 * rho2[rows, None] / V)

        rows = np.arange(len(rho2))
        low = np.log(tau**2 / 400.0)
        top = np.maximum(np.log(tau**2), np.log(np.maximum(rho2 / N, tau**2))) + 200.0 / (N + 1.0) + 2.0
        z = np.linspace(0.0, 1.0, HEAT_NIG_COARSE)
        coarse = low[:, None] + (top - low)[:, None] * z[None, :]
        values = log_integrand(rows, coarse)
        keep = values > values.max(axis=1, keepdims=True) - 45.0
        first = np.argmax(keep, axis=1)
        last = HEAT_NIG_COARSE - 1 - np.argmax(keep[:, ::-1], axis=1)
        left = coarse[rows, np.maximum(first - 2, 0)]
        right = coarse[rows, np.minimum(last + 2, HEAT_NIG_COARSE - 1)]
        fine = left[:, None] + (right - left)[:, None] * np.linspace(0.0, 1.0, HEAT_NIG_FINE)[None, :]
        log_terms = log_integrand(rows, fine)
        spacing = (right - left) / (HEAT_NIG_FINE - 1)
        log_p = _log_trapezoid(log_terms, 1.0) + np.log(spacing)
        if not with_factor:
            return log_p, None
        ends = np.zeros(HEAT_NIG_FINE)
        ends[[0, -1]] = math.log(0.5)
        weights = np.exp(log_terms + ends - special.logsumexp(log_terms + ends, axis=1, keepdims=True))
        return log_p, np.sum(weights * self._factor(np.exp(fine), t[:, None]), axis=1)

    def posterior_terms(self, d, t, slack):
        log_p, factor = self._mixture(d, t, with_factor=True)
        return np.zeros(len(d), dtype=int), log_p, d * factor[:, None]

    def _sigma2(self, t):
        tau = self.c * t
        return 2.0 * self.kappa * t + tau**2 / (1.0 + self.m * tau)

    def sigma(self, t):
        return np.sqrt(self._sigma2(np.asarray(t, dtype=float)))

    def t_of_sigma(self, sigma):
        """sigma^2(t) = 2 kappa t + tau^2 / (1 + m tau) is increasing and convex: Newton from the smaller of
        the two components' inverses (an upper bound of the root) converges monotonically."""
        s2 = np.asarray(sigma, dtype=float) ** 2
        m, c = self.m, self.c
        t = np.minimum(s2 / (2.0 * self.kappa), 0.5 * (m * s2 + np.sqrt((m * s2) ** 2 + 4.0 * s2)) / c)
        for _ in range(100):
            tau = c * t
            slope = 2.0 * self.kappa + c * tau * (2.0 + m * tau) / (1.0 + m * tau) ** 2
            step = (self._sigma2(t) - s2) / slope
            t = t - step
            if np.all(np.abs(step) <= 1e-15 * np.abs(t)):
                break
        return t

    def radial_cdf(self, rho, t, N):
        t = float(np.asarray(t, dtype=float).reshape(-1)[0])
        tau = self.c * t
        X, log_w = _gig_nodes(-0.5, self.m**2, np.array([tau**2]))
        V = 2.0 * self.kappa * t + X
        rho = np.asarray(rho, dtype=float)
        cdf = stats.chi2.cdf(rho.reshape(-1, 1) ** 2 / V, N)
        return (cdf @ np.exp(log_w[0])).reshape(rho.shape)

    def mean_square_radius(self, t, N):
        return N * (2.0 * self.kappa * t + self.c * t / self.m) if self.m > 0 else math.inf


class _Stable(_Family):
    """V = 2 (kappa t)^{2/alpha} S with S positive (alpha/2)-stable (physics.md §4.1)."""

    def __init__(self, **params):
        super().__init__(**params)
        if not self.alpha < 2.0:
            raise ValueError(f"stable: `alpha` must lie in (0, 2), got {self.alpha}")
        self.law = positive_stable(0.5 * self.alpha)
        self.velocity_exponent = self.alpha

    def _variance_scale(self, t):
        return 2.0 * (self.kappa * t) ** (2.0 / self.alpha)

    def sample_variance(self, t, rng):
        return self._variance_scale(t) * self.law.sample(len(t), rng)

    def radial_cf(self, k, t):
        return np.exp(-self.kappa * t * np.asarray(k, dtype=float) ** self.alpha)

    def log_kernel(self, d, t):
        N = d.shape[1]
        rho2 = np.sum(d * d, axis=1)
        log_scale = np.log(self._variance_scale(t))
        return np.concatenate([
            self._log_mixture(rho2[i:i + 4096], log_scale[i:i + 4096], N) for i in range(0, len(rho2), 4096)
        ]) if len(rho2) else np.zeros(0)

    def _log_mixture(self, rho2, log_scale, N):
        """log int f_S(s) N_N(rho; 0, C s) ds, by the trapezoid rule in w = log s.

        The integrand is unimodal in w: a coarse pass finds, for each row, the region within e^{-40} of its
        maximum; rows sorted by that region share a fine grid per block, whose spacing resolves both the
        Gaussian factor (width sqrt(2/N)) and the stable law's lower tail (width 1/gamma).
        """
        law = self.law

        with np.errstate(divide="ignore"):
            log_rho2 = np.log(rho2)  # rho2 / V as exp(log rho2 - log V): V underflows at small alpha (0 * inf)

        def gaussian_part(rows, w):
            log_V = log_scale[rows, None] + w[None, :]
            return -0.5 * N * (math.log(2.0 * math.pi) + log_V) - 0.5 * np.exp(log_rho2[rows, None] - log_V)

        everything = np.arange(len(rho2))
        coarse = np.linspace(law.w_low - 40.0 / law.gamma, law.w_far + 60.0 / (0.5 * N + law.beta), 200)
        values = (law.log_pdf_of_log(coarse) + coarse)[None, :] + gaussian_part(everything, coarse)
        keep = values > values.max(axis=1, keepdims=True) - 40.0
        first = coarse[np.clip(np.argmax(keep, axis=1) - 1, 0, len(coarse) - 1)]
        last = coarse[np.clip(len(coarse) - np.argmax(keep[:, ::-1], axis=1), 0, len(coarse) - 1)]
        spacing = min(0.05, 0.2 * math.sqrt(2.0 / N), 0.2 / law.gamma)
        out = np.empty(len(rho2))
        order = np.argsort(first + last)
        for block in np.array_split(order, max(1, len(order) // 128)):
            fine = np.arange(first[block].min(), last[block].max() + spacing, spacing)
            integrand = (law.log_pdf_of_log(fine) + fine)[None, :] + gaussian_part(block, fine)
            inside = (fine[None, :] >= first[block, None]) & (fine[None, :] <= last[block, None])
            out[block] = _log_trapezoid(np.where(inside, integrand, -np.inf), spacing)
        return out

    def sigma(self, t):
        return math.sqrt(2.0 * self.law.median()) * (self.kappa * np.asarray(t, dtype=float)) ** (1.0 / self.alpha)

    def t_of_sigma(self, sigma):
        return (np.asarray(sigma, dtype=float) / math.sqrt(2.0 * self.law.median())) ** self.alpha / self.kappa

    def radial_cdf(self, rho, t, N):
        # P(|d| <= rho) = E_S P(chi2_N <= rho^2 / (C S)), by the trapezoid rule in w = log S on one grid for all
        # rho: from where f_S is e^{-50} below its peak (its lower tail is steep, width 1/gamma) to where
        # chi2.cdf(rho^2 / (C e^w)) ~ e^{-(N/2) w} times the tail e^{-beta w} is e^{-80} for the largest rho.
        law = self.law
        t = float(np.asarray(t, dtype=float).reshape(-1)[0])
        rho = np.asarray(rho, dtype=float)
        log_scale = math.log(self._variance_scale(t))
        probe = np.arange(law.w_low, law.w_far, 0.1)
        log_density = law.log_pdf_of_log(probe) + probe
        start = probe[np.argmax(log_density > log_density.max() - 50.0)] - 0.1
        peak = probe[np.argmax(log_density)]
        with np.errstate(divide="ignore"):
            top = 2.0 * np.log(max(float(rho.max()), 1e-300)) - log_scale
        end = max(top, peak) + 80.0 / (0.5 * N + law.beta) + 1.0
        # A uniform grid keeps the trapezoid rule spectrally accurate; the lower tail has width 1/gamma and
        # the chi2_N step in w has width sqrt(2/N).
        spacing = min(0.05, 0.2 / law.gamma, 0.2 * math.sqrt(2.0 / N))
        w = np.arange(start, max(end, start + 2 * spacing), spacing)
        weights = np.exp(law.log_pdf_of_log(w) + w) * spacing
        weights[[0, -1]] *= 0.5
        out = np.empty(rho.size)
        flat = rho.reshape(-1)
        for i in range(0, flat.size, 64):
            x = flat[i:i + 64, None] ** 2 / np.exp(log_scale + w)[None, :]
            out[i:i + 64] = special.gammainc(0.5 * N, 0.5 * x) @ weights
        return out.reshape(rho.shape)


class _KacProduct(_Family):
    """N independent 1-D Kac coordinates (physics.md §4.5); latent: atom signs (+-1 on an atom, else 0)."""

    isotropic = False

    def sample(self, t, n, N, rng):
        t = t[:, None]
        flips = rng.poisson(self.a * t, size=(n, N))
        direction = np.where(rng.random((n, N)) < 0.5, -1.0, 1.0)
        # Time spent in the initial direction: the n + 1 segments are Dirichlet(1, ..., 1).
        ones = np.maximum(flips, 1)
        forward = rng.beta(np.ceil((ones + 1) / 2), np.floor((ones + 1) / 2))
        d = np.where(flips == 0, direction * self.c * t, direction * self.c * t * (2.0 * forward - 1.0))
        atoms = np.where(flips == 0, direction, 0.0)
        return d, atoms

    def _cone(self, d, t, slack=0.0):
        """Per coordinate: (atom sign, outside) with atom sign +-1 on an atom (within KAC_ATOM_TOLERANCE c t
        + slack of the light cone |d| = c t), else 0; outside: beyond the cone and off the atoms (the kernel
        is zero there)."""
        front = self.c * t[:, None]
        tolerance = KAC_ATOM_TOLERANCE * front + slack
        excess = np.abs(d) - front
        atoms = np.where(np.abs(excess) <= tolerance, np.sign(d), 0.0)
        return atoms, excess > tolerance

    def _front_signs(self, d, t):
        """Per coordinate sign(d) where it moves with the front at speed c (on an atom or beyond the cone),
        else 0: the latent of the posterior-mean velocity."""
        atoms, outside = self._cone(d, t)
        return np.where(outside, np.sign(d), atoms)

    def _log_terms(self, d, t, slack=0.0):
        """Per coordinate log(a.c. density) inside the cone, log(e^{-a t}/2) on the atoms, -inf outside; with
        the atom signs and the outside mask of ``_cone``."""
        t2 = t[:, None]
        atoms, outside = self._cone(d, t, slack)
        inside = (atoms == 0) & ~outside
        r = np.sqrt(np.clip((self.c * t2) ** 2 - d * d, 0.0, None))
        z = self.a * r / self.c
        safe_z = np.where(z > 0, z, 1.0)
        # I_1(z)/z -> 1/2 as z -> 0 (the front value (a e^{-at}/2c)(1 + a t/2)).
        i1_over_z = np.where(z > 1e-150, special.i1e(safe_z) / safe_z, 0.5 * np.exp(-z))
        continuous = (math.log(self.a / (2.0 * self.c)) - self.a * t2 + z
                      + np.log(special.i0e(z) + self.a * t2 * i1_over_z))
        atom = math.log(0.5) - self.a * t2
        per_coordinate = np.where(inside, continuous, np.where(outside, -np.inf, atom))
        return per_coordinate, atoms, outside

    def log_kernel(self, d, t):
        """Sum over coordinates of log(a.c. density) inside the cone, log(e^{-a t}/2) on the atoms (a mass, not
        a density: see ``posterior_terms``) and -inf outside the cone."""
        return np.sum(self._log_terms(d, t)[0], axis=1)

    def posterior_terms(self, d, t, slack):
        """(rank, log weight, velocity) of each displacement d = x - y_j for posterior weights over data points.

        The law of x is a sum over data points of products of atoms (Dirac masses) and densities, so a point
        on k atoms lies on a k-codimensional face of the support: given x, only the data points that put x on
        the most atoms count (each atom is infinitely more likely than a density there), weighted by their
        product of masses e^{-a t}/2 and a.c. densities.  Rank: that number of atoms; -1 off the support
        (a coordinate outside its cone), where the log weight scores the distance to the fronts instead,
        -(|d| - c t)^2 / (2 w^2), w = KAC_FALLBACK_WIDTH c t, as the torch runtime's regularised atoms do (it
        only matters where x is off every data point's support).  Velocity: ``conditional_velocity`` with the
        same atoms (+-c on them and beyond the cone)."""
        terms, atoms, outside = self._log_terms(d, t, slack)
        singular = (atoms != 0) | outside
        rank = np.where(outside.any(axis=1), -1, np.sum(atoms != 0, axis=1))
        exact = np.sum(terms, axis=1)
        front = self.c * t[:, None]
        width = KAC_FALLBACK_WIDTH * front
        excess = np.maximum(np.abs(d) - front, 0.0) / width
        atom = math.log(0.5) - self.a * t[:, None] - np.log(math.sqrt(2.0 * math.pi) * width)
        bumps = np.where(singular, atom - 0.5 * excess**2, terms)
        log_w = np.where(rank >= 0, exact, np.sum(bumps, axis=1))
        return rank, log_w, self.conditional_velocity(d, t, np.where(outside, np.sign(d), atoms))

    def characteristic_function(self, k, t):
        return np.prod(self._cf_1d(np.asarray(k, dtype=float), np.asarray(t, dtype=float)[..., None]), axis=-1)

    def _cf_1d(self, k, t):
        """e^{-a t}[cosh(t W) + a sinh(t W)/W], W = sqrt(a^2 - c^2 k^2) (entire in W^2: no 0/0, no NaN)."""
        W = np.sqrt((self.a**2 - (self.c * k) ** 2).astype(complex))
        grow = np.exp(t * (W - self.a))
        decay = np.exp(-t * (W + self.a))
        tW = t * W
        small = np.abs(tW) < 1e-3
        safe = np.where(small, 1.0, tW)
        sinhc = np.where(small, np.exp(-self.a * t) * (1.0 + tW**2 / 6.0 + tW**4 / 120.0),
                         (grow - decay) / (2.0 * safe))
        return ((grow + decay) / 2.0 + self.a * t * sinhc).real

    def conditional_velocity(self, d, t, latent):
        """d / (t + (r/c) I0(z)/I1(z)) inside the cone, +-c on the atoms (``latent``, else ``_cone``); without a
        latent a coordinate beyond the cone also moves at sign(d) c (with its front), so |v| <= c."""
        atoms = self._front_signs(d, t) if latent is None else np.asarray(latent, dtype=float)
        t2 = t[:, None]
        r = np.sqrt(np.clip((self.c * t2) ** 2 - d * d, 0.0, None))
        z = self.a * r / self.c
        safe_z = np.where(z > 0, z, 1.0)
        # (r/c) I0(z)/I1(z) = (z I0(z)/I1(z)) / a, with z I0/I1 -> 2 at the front.
        ratio = np.where(z > 1e-8, safe_z * special.i0e(safe_z) / special.i1e(safe_z), 2.0 + z * z / 4.0)
        inside = d / (t2 + ratio / self.a)
        return np.where(atoms != 0, atoms * self.c, inside)

    def sigma(self, t):
        t = np.asarray(t, dtype=float)
        return np.sqrt(self.c**2 / self.a * self._lag(t))

    def _lag(self, t):
        """t - (1 - e^{-2 a t}) / (2 a), without cancellation at small a t."""
        x = 2.0 * self.a * t
        series = x * x / 2.0 - x**3 / 6.0 + x**4 / 24.0 - x**5 / 120.0
        return np.where(x < 1e-3, series, special.expm1(-x) + x) / (2.0 * self.a)

    def t_of_sigma(self, sigma):
        sigma = np.asarray(sigma, dtype=float)
        target = sigma**2 * self.a / self.c**2

        def solve(value):
            if value <= 0:
                return 0.0
            # t - 1/(2a) < lag(t) <= a t^2: the root lies in [sqrt(value / a) / 2, value + 1/a]
            return optimize.brentq(lambda t: float(self._lag(np.array(t))) - value,
                                   0.5 * math.sqrt(value / self.a), value + 1.0 / self.a, xtol=1e-300, rtol=1e-15)

        return np.vectorize(solve, otypes=[float])(target)

    def mean_square_radius(self, t, N):
        return N * float(self.sigma(t)) ** 2

    def continuous_cdf(self, x, t: float):
        """CDF of one coordinate conditioned off the atoms (the a.c. part normalised by 1 - e^{-a t})."""
        front = self.c * t
        grid = np.linspace(-front, front, 20001)
        inner = grid.copy()
        inner[[0, -1]] *= 1.0 - 2.0 * KAC_ATOM_TOLERANCE  # the front values, not the atoms
        density = np.exp(self.log_kernel(inner[:, None], np.full(len(grid), t)))
        cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
        return np.interp(x, grid, cumulative / (1.0 - math.exp(-self.a * t)))


_CLASSES = {
    "gaussian": _Gaussian,
    "cauchy": _Cauchy,
    "student_t": _StudentT,
    "nig": _NIG,
    "stable": _Stable,
    "kac_product": _KacProduct,
    "heat_nig": _HeatNIG,
}


@lru_cache(maxsize=64)
def _implementation(family: FamilyConfig) -> _Family:
    return _CLASSES[family.name](**family.params)


# ============================================================================================ public API
def sample(family: FamilyConfig, t, n: int, N: int, rng: np.random.Generator):
    """n exact draws of the displacement at time(s) t in N dimensions: (d of shape (n, N), latent)."""
    return _implementation(family).sample(_times(t, n), n, N, rng)


def log_kernel(family: FamilyConfig, d, t) -> np.ndarray:
    """log of the normalised kernel at displacements d (n, N) and time(s) t."""
    d = _rows(d)
    return _implementation(family).log_kernel(d, _times(t, len(d)))


def characteristic_function(family: FamilyConfig, k, t) -> np.ndarray:
    """E exp(i k.d) for wave vectors k of shape (..., N) at time(s) t broadcastable to k.shape[:-1]."""
    k = np.asarray(k, dtype=float)
    t = np.broadcast_to(np.asarray(t, dtype=float), k.shape[:-1])
    return _implementation(family).characteristic_function(k, t)


def conditional_velocity(family: FamilyConfig, d, t, latent=None) -> np.ndarray:
    """Velocity of the exact coupling at d (n, N), time(s) t; without latent, its posterior mean given d."""
    d = _rows(d)
    return _implementation(family).conditional_velocity(d, _times(t, len(d)), latent)


def marginal_velocity(family: FamilyConfig, x, t: float, data, chunk: int = 256) -> np.ndarray:
    """sum_j w_j v(x - y_j), w = softmax_j log kernel(x - y_j, t): the exact velocity of p_t = kernel * data.

    kac_product: the softmax runs over the data points that put x on the most atoms (``posterior_terms``);
    off every data point's support, over the distances to the fronts."""
    x, data = _rows(x), _rows(data)
    impl = _implementation(family)
    out = np.empty_like(x)
    for start in range(0, len(x), chunk):
        block = x[start:start + chunk]
        d = (block[:, None, :] - data[None, :, :]).reshape(-1, x.shape[1])
        # the rounding of x (a sum y + d when drawn) and of x - y
        slack = 2.0 * np.finfo(float).eps * (np.abs(block[:, None, :]) + np.abs(data[None, :, :]))
        rank, log_w, v = impl.posterior_terms(d, _times(t, len(d)), slack.reshape(d.shape))
        rank, log_w = rank.reshape(len(block), len(data)), log_w.reshape(len(block), len(data))
        log_w = np.where(rank == rank.max(axis=1, keepdims=True), log_w, -np.inf)
        weights = np.exp(log_w - special.logsumexp(log_w, axis=1, keepdims=True))
        v = v.reshape(len(block), len(data), x.shape[1])
        out[start:start + chunk] = np.einsum("bj,bjn->bn", weights, v)
    return out


def transport(family: FamilyConfig, d, t_from: float, t_to: float, latent=None, steps: int = 64):
    """Integrate the coupling ODE dd/dt = conditional_velocity from t_from to t_to (RK4): (d, latent).

    nig: the latent V moves with d (d = sqrt(V) eps with eps fixed), so V = |d|^2 / |eps|^2 at each stage.
    kac_product: atoms move at +-c; backwards in time an a.c. coordinate that the cone overtakes joins the
    atom (the mass the atoms leak forwards), so only transport towards the data (t_to < t_from) is exact.
    """
    impl = _implementation(family)
    d = np.array(_rows(d), dtype=float)
    n = len(d)
    eps_norm2 = None
    if family.name == "nig":
        latent = np.asarray(latent, dtype=float)
        eps_norm2 = np.sum(d * d, axis=1) / latent
    heat_variance = 0.0  # heat_nig: V = 2 kappa t + X moves with d, the latent is X = V - 2 kappa t
    if family.name == "heat_nig":
        heat_variance = 2.0 * family.params["kappa"]
        latent = np.asarray(latent, dtype=float)
        eps_norm2 = np.sum(d * d, axis=1) / (heat_variance * t_from + latent)
    if family.name == "kac_product":
        if t_to > t_from:
            raise ValueError("kac_product: the coupling is transported towards the data only (atoms)")
        # a coordinate beyond the cone joins its atom at once (as in the loop below)
        latent = impl._front_signs(d, _times(t_from, n)) if latent is None else np.asarray(latent, dtype=float)

    def velocity(x, time):
        times = _times(time, n)
        lat = latent
        if eps_norm2 is not None:
            lat = np.sum(x * x, axis=1) / eps_norm2 - heat_variance * times
        return impl.conditional_velocity(x, times, lat)

    h = (t_to - t_from) / steps
    time = t_from
    for _ in range(steps):
        k1 = velocity(d, time)
        k2 = velocity(d + 0.5 * h * k1, time + 0.5 * h)
        k3 = velocity(d + 0.5 * h * k2, time + 0.5 * h)
        k4 = velocity(d + h * k3, time + h)
        d = d + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        time += h
        if family.name == "kac_product":
            front = family.params["c"] * time
            joined = (latent == 0) & (np.abs(d) >= front)
            latent = np.where(joined, np.sign(d), latent)
            d = np.where(latent != 0, latent * front, d)
    if eps_norm2 is not None:
        latent = np.sum(d * d, axis=1) / eps_norm2 - heat_variance * t_to
    return d, latent


def sigma(family: FamilyConfig, t):
    """Noise level aligned with diffusion (families.py, physics.md §4.7)."""
    return _implementation(family).sigma(np.asarray(t, dtype=float))


def t_of_sigma(family: FamilyConfig, sigma_value):
    """Inverse of ``sigma``."""
    return _implementation(family).t_of_sigma(np.asarray(sigma_value, dtype=float))


def radial_cdf(family: FamilyConfig, rho, t: float, N: int) -> np.ndarray:
    """P(|d| <= rho) at time t in N dimensions (isotropic families)."""
    impl = _implementation(family)
    if not impl.isotropic:
        raise ValueError(f"{family.name} is not isotropic: use kac_continuous_cdf per coordinate")
    return impl.radial_cdf(np.asarray(rho, dtype=float), np.asarray(t, dtype=float), N)


def kac_continuous_cdf(family: FamilyConfig, x, t: float) -> np.ndarray:
    """CDF of one kac_product coordinate given that it is off the atoms."""
    return _implementation(family).continuous_cdf(np.asarray(x, dtype=float), float(t))


def kac_atom_probability(family: FamilyConfig, t) -> np.ndarray:
    """Probability e^{-a t} that a Kac coordinate sits on an atom (+-c t)."""
    return np.exp(-family.params["a"] * np.asarray(t, dtype=float))


def mean_square_radius(family: FamilyConfig, t: float, N: int) -> float:
    """E|d|^2 at time t in N dimensions (math.inf where it diverges)."""
    return _implementation(family).mean_square_radius(float(t), N)


def is_isotropic(family: FamilyConfig) -> bool:
    return _implementation(family).isotropic

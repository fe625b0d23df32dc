"""Numerics and certificates for C1, the positivity of the density kernel (physics.md §2 "C1").

Everything here works on a `Dispersion` whose parameters all have values (the analysis substitutes trial
values first when a scaling argument allows it) and answers one narrow question each:

- `schoenberg_floor(N)`: inf of Lambda_N(x) = Gamma(N/2) (2/x)^(N/2-1) J_{N/2-1}(x), the most negative value a
  normalised radial positive-definite function can take in N dimensions (its first minimum);
- `normalised_transform(dispersion, s, times)`: ghat(s, t) on an (t, s) grid, vectorised;
- `tail_decay(...)`: ghat ~ A k^-beta at large k (the tail screen: A < 0, beta <= N makes p -> -inf at 0);
- `bernstein(f)`: is the semigroup exponent f Bernstein? by structure (a certificate), and a numeric sign
  check of its first derivatives (a disproof with a witness when some derivative has the wrong sign);
- `riemann_kernel(...)`: the exact 1-D kernel of lambda^2 + b lambda + c^2 s + d (atoms at +-ct plus an
  I_0/J_0 expression inside the cone) and its sign;
- `kernel_1d(...)`: the 1-D kernel by FFT of ghat, with a truncation bound and a grid-doubling check.

All statements come with the numbers that support them (witness points, values, error estimates).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from ..spec.spec import LAM, S
from .dispersion import AUGMENTED, S_GRID, Dispersion, numpy_function

K_GRID = np.sqrt(S_GRID)  # |k| from 1e-4 to 1e4
# Times at which kernels are examined, t = 1 first (the reference time of reports), then outwards.
TIME_GRID = np.array([1.0, 0.3, 3.0, 0.1, 10.0, 0.03, 30.0, 0.01, 100.0, 0.003, 0.001])
# Absolute accuracy of ghat from the branch sums (|ghat| <= 1 scale): below this, a value is "zero".
GHAT_ACCURACY = 1e-9


# ---------------------------------------------------------------------------------------------- Schoenberg
@dataclass(frozen=True)
class SchoenbergFloor:
    dim: int
    x_min: float  # where Lambda_N attains its infimum (first zero of J_{N/2})
    value: float  # inf Lambda_N (may underflow to -0.0 for huge N; log10_abs stays exact)
    log10_abs: float


@lru_cache(maxsize=64)
def schoenberg_floor(dim: int) -> SchoenbergFloor:
    """inf_x Lambda_N(x), Lambda_N(x) = Gamma(N/2) (2/x)^nu J_nu(x), nu = N/2 - 1 (Lambda_N(0) = 1).

    d/dx [x^-nu J_nu(x)] = -x^-nu J_{nu+1}(x), so the first minimum sits at the first zero of J_{nu+1};
    the oscillations decay after it, so it is the infimum. Computed in log space (the value is ~1e-200 at
    N = 3072).
    """
    if dim == 1:
        return SchoenbergFloor(1, math.pi, -1.0, 0.0)
    from scipy import special  # imported on demand: ~0.1-0.3 s that certified PDEs never pay

    nu = dim / 2.0 - 1.0
    order = nu + 1.0
    # Scan past the first zero of J_order (j_{order,1} ~ order + 1.86 order^(1/3)) and bisect the sign change.
    xs = np.linspace(order, order + 4.0 * order ** (1.0 / 3.0) + 6.0, 400)
    values = special.jv(order, xs)
    first = int(np.argmax(values < 0))
    lo, hi = xs[first - 1], xs[first]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if special.jv(order, mid) > 0:
            lo = mid
        else:
            hi = mid
    x = 0.5 * (lo + hi)
    bessel = special.jv(nu, x)
    log_abs = special.gammaln(nu + 1.0) + nu * math.log(2.0 / x) + math.log(abs(bessel))
    return SchoenbergFloor(dim, float(x), -math.exp(log_abs), float(log_abs / math.log(10.0)))


def elementary_floor(dim: int) -> SchoenbergFloor:
    """inf Lambda_M for M = min(N, 3) without special-function libraries, a lower bound on inf Lambda_N.

    Why a bound: the projection of a uniform point of S^{N-1} onto R^M has a radially symmetric law, so
    Lambda_N(x) = E[Lambda_M(x B)] for a random B in [0, 1], and an average cannot go below the infimum:
    inf Lambda_N >= inf Lambda_M. M = 1: cos, -1. M = 2: J_0, minimal at the first zero of J_1, both from Bessel's integral
    J_n(x) = (1/2pi) int_0^2pi cos(n th - x sin th) dth (the trapezoid rule is exact to rounding for such
    periodic integrands). M = 3: sin(x)/x, minimal where tan x = x. A ghat below this bound fails the Schoenberg screen
    in N without computing Lambda_N itself (which needs scipy's Bessel functions, ~0.2 s to import).
    """
    if dim == 1:
        return SchoenbergFloor(1, math.pi, -1.0, 0.0)
    theta = np.linspace(0.0, 2.0 * math.pi, 129)[:-1]  # a full period: the trapezoid rule is spectral

    def bessel(order: int, x: float) -> float:  # J_n(x) = (1/2pi) int_0^2pi cos(n th - x sin th) dth
        return float(np.mean(np.cos(order * theta - x * np.sin(theta))))

    if dim == 2:
        slope, lo, hi = (lambda x: bessel(1, x)), 3.0, 4.5  # J_0' = -J_1: J_0 is minimal at the zero of J_1
        value = lambda x: bessel(0, x)
    else:
        slope, lo, hi = (lambda x: math.sin(x) - x * math.cos(x)), math.pi, 1.5 * math.pi
        value = lambda x: math.sin(x) / x
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (slope(mid) > 0) == (slope(lo) > 0):
            lo = mid
        else:
            hi = mid
    x = 0.5 * (lo + hi)
    floor = value(x)
    return SchoenbergFloor(min(dim, 3), x, floor, math.log10(-floor))


# ---------------------------------------------------------------------------------------------- ghat grids
def normalised_transform(dispersion: Dispersion, s: np.ndarray, times: np.ndarray) -> np.ndarray:
    """ghat(s, t) = p_hat(s, t) / p_hat(0, t) as a (len(times), len(s)) complex array."""
    s = np.concatenate([[0.0], np.asarray(s, dtype=float)])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p_hat = dispersion.numeric_p_hat_times(s, np.atleast_1d(times))
        return p_hat[:, 1:] / p_hat[:, :1]


@dataclass(frozen=True)
class TailDecay:
    """ghat(k, t) ~ amplitude k^-beta as k -> oo (at time t), fitted on the top decade of the k-grid."""

    t: float
    beta: float
    amplitude: float
    k: float  # where the decay was read off
    ghat: float  # ghat there


def tail_decay(dispersion: Dispersion, t: float) -> TailDecay | None:
    """The power-law tail of a real ghat, if there is one (slope stable over the top decade to 1e-3).

    Exponentially decaying tails (diffusion) and non-decaying ones (atoms) return None.
    """
    k = np.array([1e3, 10 ** 3.5, 1e4])
    g = normalised_transform(dispersion, k**2, np.array([t]))[0]
    if np.any(~np.isfinite(g)) or np.any(np.abs(g.imag) > GHAT_ACCURACY) or np.any(g.real == 0):
        return None
    g = g.real
    if not (np.all(g > 0) or np.all(g < 0)):
        return None
    slopes = np.diff(np.log(np.abs(g))) / np.diff(np.log(k))
    if abs(slopes[1] - slopes[0]) > 1e-3 or slopes[1] > -1e-3:
        return None
    beta = -float(slopes[1])
    return TailDecay(t, beta, float(g[-1] * k[-1] ** beta), float(k[-1]), float(g[-1]))


# ---------------------------------------------------------------------------------------------- Bernstein
@dataclass(frozen=True)
class BernsteinResult:
    """is_bernstein: True (certified by structure), False (a derivative has the wrong sign: witness) or
    None (neither: the structure is not recognised and no sign violation was found)."""

    is_bernstein: bool | None
    reason: str
    witness: dict | None = None


def bernstein(f: sp.Expr, values: dict | None = None) -> BernsteinResult:
    """Decide whether the semigroup exponent f(s) (with f(0) = 0) is a Bernstein function.

    Structure: sums with positive coefficients of s, s^beta (0 < beta <= 1), g^beta with g Bernstein plus a
    positive constant (sqrt(s + m^2)), log(c + g), and -(c + g)^-beta (beta > 0); constants are free since
    only f - f(0) matters. Numerics: (-1)^(n-1) f^(n)(s) >= 0 for n = 1..4 on the s-grid, at the parameter
    values ``values`` (a sign violation there disproves the Bernstein property with a witness).
    """
    structural, why = _bernstein_structure(sp.expand(f))
    violation = _derivative_sign_violation(f, values or {})
    if violation is not None:
        order, s_value, deriv = violation
        if structural:  # the structure and the numerics disagree: an internal inconsistency, never hide it
            raise AssertionError(f"f = {f} is Bernstein by structure but f^({order})({s_value}) = {deriv}")
        if isinstance(deriv, complex):
            return BernsteinResult(
                False, f"f(s) = {sp.sstr(f)} is not real (f^({order}) = {deriv:.4g} at k = {math.sqrt(s_value):.4g})",
                {"k": math.sqrt(s_value), "s": s_value, "derivative_order": order,
                 "value_real": deriv.real, "value_imag": deriv.imag},
            )
        sign = ">" if deriv > 0 else "<"
        return BernsteinResult(
            False,
            f"f(s) = {sp.sstr(f)} is not Bernstein: f^({order})(s) = {deriv:.4g} {sign} 0 at k = "
            f"{math.sqrt(s_value):.4g}, so f' is not completely monotone",
            {"k": math.sqrt(s_value), "s": s_value, "derivative_order": order, "value": deriv},
        )
    if structural:
        return BernsteinResult(True, why)
    return BernsteinResult(None, f"f(s) = {sp.sstr(f)}: {why}; no derivative sign violation on the grid")


def _bernstein_structure(f: sp.Expr) -> tuple[bool, str]:
    terms = [term for term in sp.Add.make_args(f) if term.has(S)]
    if not terms:
        return False, "f is constant"
    for term in terms:
        coefficient, atom = term.as_independent(S, as_Add=False)
        kind = _atom_kind(atom)
        if kind == "bernstein" and coefficient.is_positive:
            continue
        if kind == "completely monotone" and coefficient.is_negative:
            continue
        if kind is None:
            return False, f"the term {sp.sstr(term)} is not a recognised Bernstein atom"
        return False, f"the term {sp.sstr(term)} has a coefficient of the wrong (or unknown) sign"
    return True, (f"f(s) = {sp.sstr(f)} is a positive combination of Bernstein functions (s^beta, 0 < beta <= 1; "
                  "g^beta, log(c + g), -(c + g)^-beta for Bernstein g)")


def _atom_kind(atom: sp.Expr) -> str | None:
    """'bernstein', 'completely monotone' (for -atom Bernstein up to a constant) or None."""
    if atom == S:
        return "bernstein"
    if isinstance(atom, sp.Pow):
        base, exponent = atom.args
        if not _is_bernstein_or_positive_constant(base):
            return None
        if exponent.is_positive and (exponent - 1).is_nonpositive:
            return "bernstein"
        if exponent.is_negative and _has_positive_value_at_zero(base):
            return "completely monotone"
        return None
    if isinstance(atom, sp.log) and _is_bernstein_or_positive_constant(atom.args[0]):
        return "bernstein" if _has_positive_value_at_zero(atom.args[0]) else None
    return None


def _is_bernstein_or_positive_constant(g: sp.Expr) -> bool:
    if not g.has(S):
        return bool(g.is_nonnegative)
    for term in sp.Add.make_args(sp.expand(g)):
        if not term.has(S):
            if not term.is_nonnegative:
                return False
            continue
        coefficient, atom = term.as_independent(S, as_Add=False)
        if not (coefficient.is_positive and _atom_kind(atom) == "bernstein"):
            return False
    return True


def _has_positive_value_at_zero(g: sp.Expr) -> bool:
    return bool(sp.expand(g).xreplace({S: 0}).is_positive) if g.has(S) else bool(g.is_positive)


def _derivative_sign_violation(f: sp.Expr, values: dict, orders: int = 4):
    """(n, s, f^(n)(s)) for the first n with (-1)^(n-1) f^(n)(s) < 0 on the s-grid, or None."""
    f_numeric = sp.expand(f.xreplace(values))
    if f_numeric.free_symbols - {S}:
        return None
    s = S_GRID
    derivative = f_numeric
    for n in range(1, orders + 1):
        derivative = sp.diff(derivative, S)
        evaluate = numpy_function(S, derivative)
        with np.errstate(all="ignore"):
            vals = np.broadcast_to(np.asarray(evaluate(s), dtype=complex), s.shape)
        if np.any(np.abs(vals.imag) > 1e-12 * (1.0 + np.abs(vals.real))):
            i = int(np.argmax(np.abs(vals.imag)))
            return n, float(s[i]), complex(vals[i])
        signed = (-1) ** (n - 1) * vals.real
        scale = 1e-12 * np.max(np.abs(vals.real)[np.isfinite(vals.real)], initial=1.0)
        bad = np.flatnonzero(signed < -scale)
        if len(bad):
            # report the violation nearest to k = 1, where the numbers read best
            i = bad[np.argmin(np.abs(np.log(s[bad])))]
            return n, float(s[i]), float(vals.real[i])
    return None


# ---------------------------------------------------------------------------------------------- Riemann
@dataclass(frozen=True)
class RiemannKernel:
    """The 1-D kernel of lambda^2 + b lambda + c^2 s + d (after dividing by the lambda^2 coefficient).

    phi = e^{-bt/2} G with G the Klein-Gordon Riemann function (1/2c) J_0(mu tau) (mu^2 = d - b^2/4; I_0 for
    mu^2 < 0), tau = sqrt(t^2 - x^2/c^2); the density p = phi_t + beta phi (beta = b for the canonical split,
    b/2 + kappa for the uniform one, kappa^2 = -mu^2) has atoms e^{-bt/2}/2 at x = +-ct and, inside the cone,
    e^{-bt/2}/(2c) [(beta - b/2) J_0(mu tau) - mu t J_1(mu tau)/tau] (I_0 / +kappa I_1 for mu^2 < 0).
    """

    b: float
    c: float
    d: float
    beta: float | None = None  # the density's p = phi_t + beta phi; None: beta = b (the canonical split)

    @property
    def offset(self) -> float:
        """beta - b/2, the I_0 (J_0) coefficient of the continuous part."""
        return (self.b if self.beta is None else self.beta) - self.b / 2.0

    @property
    def mu_squared(self) -> float:
        return self.d - self.b**2 / 4.0

    def atom_weight(self, t: float) -> float:
        return 0.5 * math.exp(-self.b * t / 2.0)

    def continuous_part(self, x: np.ndarray, t: float) -> np.ndarray:
        """The absolutely continuous part at |x| < ct (0 outside); log-safe via scaled Bessel functions."""
        from scipy import special

        x = np.asarray(x, dtype=float)
        inside = np.abs(x) < self.c * t
        tau = np.sqrt(np.where(inside, t * t - (x / self.c) ** 2, 0.0))
        mu2 = self.mu_squared
        with np.errstate(invalid="ignore", divide="ignore"):
            if mu2 > 0:
                mu = math.sqrt(mu2)
                z = mu * tau
                ratio = np.where(tau > 0, mu * special.j1(z) / np.where(tau > 0, tau, 1.0), mu2 / 2.0)
                bracket = self.offset * special.j0(z) - t * ratio
                log_scale = np.zeros_like(z)
            else:
                kappa = math.sqrt(-mu2)
                z = kappa * tau
                # I_n(z) = e^z i_ne(z): carry e^z as a log factor (I_0 overflows at z ~ 710)
                ratio = np.where(tau > 0, kappa * special.i1e(z) / np.where(tau > 0, tau, 1.0), kappa**2 / 2.0)
                bracket = self.offset * special.i0e(z) + t * ratio
                log_scale = z
            value = np.exp(log_scale - self.b * t / 2.0) * bracket / (2.0 * self.c)
        return np.where(inside, value, 0.0)

    def fourier(self, k: np.ndarray, t: float, n: int = 120) -> np.ndarray:
        """Its Fourier transform: the atoms exactly, the continuous part by Gauss-Legendre in x = ct sin(theta)
        (tau = t cos(theta) is smooth in theta, so the square-root front costs no accuracy)."""
        from scipy import special

        nodes, weights = special.roots_legendre(n)
        theta = 0.5 * math.pi * nodes
        x = self.c * t * np.sin(theta)
        jacobian = 0.5 * math.pi * self.c * t * np.cos(theta)
        inside = np.clip(x, -self.c * t * (1 - 1e-15), self.c * t * (1 - 1e-15))
        cont = self.continuous_part(inside, t) * jacobian * weights
        return 2 * self.atom_weight(t) * np.cos(self.c * np.asarray(k) * t) + np.cos(np.outer(k, x)) @ cont

    def certified_positive(self) -> bool:
        """beta >= b/2 and mu^2 <= 0: every term (atoms, I_0, I_1) is non-negative for every t (canonical split:
        b >= 0; the uniform split has beta - b/2 = kappa >= 0 whatever the sign of b)."""
        return self.offset >= 0 and self.mu_squared <= 0

    def most_negative(self, times: np.ndarray) -> tuple[float, float, float] | None:
        """(x, t, value) of the most negative continuous-part value on a grid inside the cone, or None."""
        best = None
        for t in times:
            frac = np.linspace(0.0, 1.0, 801)[:-1]  # x / (ct)
            values = self.continuous_part(frac * self.c * t, float(t))
            i = int(np.argmin(values))
            if values[i] < 0 and (best is None or values[i] < best[2]):
                best = (float(frac[i] * self.c * t), float(t), float(values[i]))
        return best


def riemann_kernel(dispersion: Dispersion) -> RiemannKernel | None:
    """The RiemannKernel when the (numeric) symbol is c2 lambda^2 + c1 lambda + e s + c0 with e / c2 > 0 and
    the PDE is an evolution problem; None otherwise."""
    if dispersion.problem_type == AUGMENTED or dispersion.t_order != 2:
        return None
    symbol = sp.expand(dispersion.symbol.xreplace(dispersion.spec.parameter_values()))
    if symbol.free_symbols - {LAM, S} or not symbol.is_polynomial(LAM, S):
        return None
    poly = sp.Poly(symbol, LAM, S)
    allowed = {(2, 0), (1, 0), (0, 1), (0, 0)}
    if any(monom not in allowed for monom in poly.monoms()):
        return None
    coeff = {monom: complex(value) for monom, value in zip(poly.monoms(), poly.coeffs())}
    if any(abs(v.imag) > 0 for v in coeff.values()):
        return None
    lead = coeff[(2, 0)].real
    speed_squared = coeff.get((0, 1), 0j).real / lead
    if speed_squared <= 0:
        return None
    q = sp.Poly(sp.expand(dispersion.density_factor.xreplace(dispersion.spec.parameter_values())), LAM).all_coeffs()
    if len(q) != 2:
        return None
    return RiemannKernel(coeff.get((1, 0), 0j).real / lead, math.sqrt(speed_squared),
                         coeff.get((0, 0), 0j).real / lead, float(sp.N(q[1] / q[0])))


# ---------------------------------------------------------------------------------------------- origin
@dataclass(frozen=True)
class OriginValue:
    """The sign of p(0, t) in N dimensions: p(0, t) = |S^(N-1)| / (2 pi)^N int_0^oo ghat(k, t) k^(N-1) dk."""

    t: float
    ratio: float  # int ghat k^(N-1) dk / int |ghat| k^(N-1) dk, in [-1, 1]
    ratio_doubled: float  # the same on a grid twice as fine
    log10_abs_p: float  # log10 |p(0, t)|


def origin_value(dispersion: Dispersion, t: float, dim: int, n: int = 1 << 14) -> OriginValue | None:
    """p(0, t) of the isotropic N-dimensional kernel, or None when ghat(k) k^(N-1) does not decay on the
    k-grid (then the integral does not converge as a plain integral).

    The integrand is scaled by its largest envelope value (k^3071 overflows at N = 3072) and integrated by the
    trapezoid rule on a uniform grid over the k-range where the envelope is within e^-40 of its maximum;
    the grid is fine enough to follow ghat's oscillations there, and the doubled grid confirms it.
    """
    probe = _ghat_1d(dispersion, K_GRID, t)
    with np.errstate(divide="ignore"):
        log_envelope = np.log(np.abs(probe)) + (dim - 1) * np.log(K_GRID)
    top = np.max(log_envelope)
    if not np.isfinite(top) or log_envelope[-1] > top - 40.0:
        return None
    # ghat underflows to 0 long before k^(N-1) stops growing when N is large (diffusion, N = 3072: the
    # integrand peaks at k ~ 39 where ghat ~ 1e-667): then float64 cannot see the integral at all.
    representable = probe != 0
    last = np.flatnonzero(representable)[-1]
    if last < len(probe) - 1 and log_envelope[last] > top - 40.0:
        return None
    k_max = K_GRID[np.flatnonzero(log_envelope > top - 40.0)[-1] + 1]

    def integrals(size: int):
        k = np.linspace(0.0, k_max, size)
        g = _ghat_1d(dispersion, k, t)
        with np.errstate(divide="ignore"):  # log 0 = -inf -> a zero term, never inf * 0
            log_term = np.log(np.abs(g)) + (dim - 1) * np.log(k) - top if dim > 1 else np.log(np.abs(g)) - top
        term = np.exp(log_term)
        weights = np.full(size, k[1] - k[0])
        weights[[0, -1]] *= 0.5
        return float(np.sum(weights * np.sign(g) * term)), float(np.sum(weights * term))

    signed, absolute = integrals(n)
    signed_fine, absolute_fine = integrals(2 * n)
    if absolute <= 0:
        return None
    log_sphere = math.log(2.0) + (dim / 2.0) * math.log(math.pi) - math.lgamma(dim / 2.0)
    log_p = log_sphere - dim * math.log(2.0 * math.pi) + top + math.log(abs(signed) or 1e-300)
    return OriginValue(t, signed / absolute, signed_fine / absolute_fine, log_p / math.log(10.0))


# ---------------------------------------------------------------------------------------------- FFT kernel
@dataclass(frozen=True)
class Kernel1D:
    """The normalised 1-D kernel at time t on x in [0, L/2), its minimum and error estimates."""

    t: float
    x: np.ndarray
    p: np.ndarray
    truncation_error: float  # (1/pi) int_{K}^oo |ghat| dk, a bound on the error from cutting the k-range
    x_min: float
    p_min: float
    p_min_fine: float | None  # p at x_min on a grid twice as long and fine (computed only when p_min < 0)
    p_zero: float


def _ghat_1d(dispersion: Dispersion, k: np.ndarray, t: float) -> np.ndarray:
    g = normalised_transform(dispersion, k**2, np.array([t]))[0]
    return g.real


def kernel_1d(dispersion: Dispersion, t: float, n: int = 1 << 14) -> Kernel1D | None:
    """The 1-D kernel p(x, t) = (1/pi) int_0^oo ghat(k, t) cos(kx) dk by FFT, or None when ghat does not decay
    (atoms, e.g. the telegraph front) so that no FFT of it converges.

    The k-step is set from the half-width of ghat (x-range 400 kernel widths), the k-range from where |ghat|
    falls below 1e-15; what is cut off is bounded by (1/pi) int |ghat| over the rest of the k-grid.
    """
    probe = _ghat_1d(dispersion, K_GRID, t)
    if not np.all(np.isfinite(probe)) or abs(probe[-1]) > 1e-3:
        return None
    half = np.flatnonzero(np.abs(probe) < 0.5)
    if not len(half):
        return None
    k_half = K_GRID[half[0]]

    def on_grid(dk: float, size: int):
        k = dk * np.arange(size // 2 + 1)
        g = _ghat_1d(dispersion, k, t)
        spectrum = np.concatenate([g, g[-2:0:-1]])  # even extension, FFT order
        p = (dk * size / (2.0 * math.pi)) * np.fft.ifft(spectrum).real
        x = (2.0 * math.pi / (dk * size)) * np.arange(size // 2)
        return k, g, x, p[: size // 2]

    dk = 2.0 * math.pi * k_half / 400.0
    k, g, x, p = on_grid(dk, n)
    k_cut = k[-1]
    beyond = K_GRID > k_cut
    truncation = float(np.trapezoid(np.abs(probe[beyond]), K_GRID[beyond]) / math.pi) if beyond.sum() > 1 else 0.0
    if abs(probe[-1]) > 1e-15:  # power tail beyond the probe grid: bound it by the fitted power law
        tail = tail_decay(dispersion, t)
        if tail is None or tail.beta <= 1.0:
            return None
        truncation += abs(tail.amplitude) * K_GRID[-1] ** (1.0 - tail.beta) / ((tail.beta - 1.0) * math.pi)
    i = int(np.argmin(p))
    if p[i] >= -(3.0 * truncation + 1e-10 * abs(p[0])):
        return Kernel1D(t, x, p, truncation, float(x[i]), float(p[i]), None, float(p[0]))
    x_min, p_min = _refine_minimum(k, g, dk, x, p, i)
    # Grid doubling: the k-range twice as long at half the step (an x-range twice as long): aliasing and
    # truncation both show up as a change of the value.
    k2, g2, _, _ = on_grid(dk / 2.0, 4 * n)
    p_min_fine = _direct_sum(k2, g2, dk / 2.0, np.array([x_min]))[0]
    return Kernel1D(t, x, p, truncation, x_min, p_min, float(p_min_fine), float(p[0]))


def _direct_sum(k: np.ndarray, g: np.ndarray, dk: float, x: np.ndarray) -> np.ndarray:
    """(1/pi) trapezoid of ghat(k) cos(kx) over k >= 0, at chosen points x."""
    weights = np.full(len(k), dk / math.pi)
    weights[0] *= 0.5
    return np.cos(np.outer(x, k)) @ (weights * g)


def _refine_minimum(k, g, dk, x, p, i):
    """Locate the grid minimum to ~1e-6 of the grid step by two rounds of 21-point zooming."""
    if i == 0:
        return float(x[0]), float(p[0])
    step = x[1] - x[0]
    centre = x[i]
    for _ in range(3):
        xs = np.linspace(centre - step, centre + step, 21)
        vals = _direct_sum(k, g, dk, xs)
        j = int(np.argmin(vals))
        centre, step = xs[j], step / 10.0
    value = _direct_sum(k, g, dk, np.array([centre]))[0]
    return float(centre), float(value)


# ---------------------------------------------------------------------------------------------- mass sign
@dataclass(frozen=True)
class ExponentialSign:
    """The sign of an exponential polynomial m(t) = sum_i c_i t^n_i e^(r_i t) on t > 0, decided exactly where
    a rule applies (leading term, Descartes' rule of signs for real exponentials) and otherwise on a
    high-precision (mpmath) grid of m(t) e^(-R t), R the largest Re r_i, which neither under- nor overflows."""

    status: str  # "positive", "changes sign" (witness found and re-evaluated in mpmath) or "unknown"
    reason: str
    witness: dict | None


EXP_SUM_DIGITS = 50
EXP_SUM_GRID = 4000


def exponential_terms(expr: sp.Expr, t: sp.Symbol) -> list[tuple[sp.Expr, int, sp.Expr]] | None:
    """[(c, n, r)] with expr = sum c t^n exp(r t) (numbers c, r; integer n >= 0), or None for other shapes."""
    terms = []
    for term in sp.Add.make_args(sp.expand(expr)):
        rate, power, coefficient = sp.Integer(0), 0, sp.Integer(1)
        for factor in sp.Mul.make_args(term):
            base, exponent = factor.as_base_exp()
            if isinstance(factor, sp.exp) or base == sp.E:
                argument = sp.expand(factor.args[0] if isinstance(factor, sp.exp) else exponent)
                r = sp.expand(argument / t)
                if r.has(t):
                    return None
                rate += r
            elif base == t and exponent.is_Integer and exponent >= 0:
                power += int(exponent)
            elif factor.has(t):
                return None
            else:
                coefficient *= factor
        if coefficient.free_symbols or rate.free_symbols:
            return None
        terms.append((coefficient, power, rate))
    return terms


def exponential_sum_sign(expr: sp.Expr, t: sp.Symbol) -> ExponentialSign | None:
    """Is sum c t^n e^(r t) > 0 for every t > 0? None when expr is not such a sum."""
    import mpmath

    terms = exponential_terms(expr, t)
    if not terms:
        return None
    with mpmath.workdps(EXP_SUM_DIGITS):
        numeric = [(mpmath.mpc(complex(sp.N(c, EXP_SUM_DIGITS))) if not c.is_real else
                    mpmath.mpf(sp.N(c, EXP_SUM_DIGITS)), n, mpmath.mpmathify(sp.N(r, EXP_SUM_DIGITS))) for c, n, r
                   in terms]
        numeric = [(mpmath.mpc(c), n, mpmath.mpc(r)) for c, n, r in numeric]
        lead_re = max(r.real for _, _, r in numeric)
        close = mpmath.mpf(10) ** (-EXP_SUM_DIGITS + 10)

        def scaled(time):  # m(t) e^(-R t): bounded as t -> oo, no underflow
            time = mpmath.mpf(time)
            return sum(c * time ** n * mpmath.exp((r - lead_re) * time) for c, n, r in numeric)

        def witness(time):
            value = scaled(time)
            log10_abs = float(mpmath.log10(abs(value.real)) + lead_re * mpmath.mpf(time) / mpmath.ln(10)) \
                if value.real != 0 else -math.inf
            return {"t": float(time), "mass_sign": -1 if value.real < 0 else 1, "log10_abs_mass": log10_abs,
                    "mass": float(value.real * mpmath.exp(lead_re * mpmath.mpf(time)))}

        leading = [(c, n, r) for c, n, r in numeric if abs(r.real - lead_re) < close]
        top_power = max(n for _, n, _ in leading)
        leading = [(c, r) for c, n, r in leading if n == top_power]
        oscillating = [(c, r) for c, r in leading if abs(r.imag) > close and abs(c) > close]
        steady = sum((c for c, r in leading if abs(r.imag) <= close), mpmath.mpc(0))
        # Where the mass changes sign, search for the witness on a grid reaching far past the time scales.
        rates = [abs(r) for _, _, r in numeric if abs(r) > close]
        horizon = 60.0 / float(min(rates)) if rates else 60.0
        grid = [horizon * (i / EXP_SUM_GRID) ** 2 for i in range(1, EXP_SUM_GRID + 1)]
        if all(abs(r.imag) <= close and abs(c.imag) <= close for c, _, r in numeric) and \
                all(n == 0 for _, n, _ in numeric) and steady.real > 0:
            ordered = [c.real for c, _, r in sorted(numeric, key=lambda item: -item[2].real) if abs(c) > close]
            changes = sum(1 for a, b in itertools.pairwise(ordered) if (a > 0) != (b > 0))
            at_zero = sum(ordered)
            if changes <= 1 and at_zero > 0:
                return ExponentialSign("positive", (
                    f"{changes} sign change(s) among the coefficients ordered by rate (Descartes' rule for "
                    "exponential sums: at most that many zeros), positive at t = 0 and leading coefficient "
                    f"{mpmath.nstr(steady.real, 6)} > 0, hence no zero on t > 0"), None)
        for i, time in enumerate(grid):
            if scaled(time).real < 0:
                w = witness(time)
                before = grid[i - 1] if i else 0.0
                zero = mpmath.findroot(lambda x: scaled(x).real, (before, time), solver="illinois")
                w["first_zero_t"] = float(zero)
                return ExponentialSign("changes sign", (
                    f"mass({time:.6g}) < 0 (mass = -10^{w['log10_abs_mass']:.4g}, re-evaluated in mpmath, "
                    f"{EXP_SUM_DIGITS} digits), first zero at t = {float(zero):.6g}"), w)
        if oscillating and sum(abs(c) for c, _ in oscillating) > abs(steady.real):
            frequency = float(max(abs(r.imag) for _, r in oscillating))
            # sample one period far out, where the leading group dominates
            start = horizon
            for i in range(400):
                time = start + i * (2 * math.pi / frequency) / 400
                if scaled(time).real < 0:
                    w = witness(time)
                    return ExponentialSign("changes sign", (
                        f"the leading exponentials e^({mpmath.nstr(lead_re, 6)} t) oscillate (frequency "
                        f"{frequency:.6g}) with amplitude above their mean: mass < 0 at t = {time:.6g} "
                        f"(mass = -10^{w['log10_abs_mass']:.4g}, mpmath {EXP_SUM_DIGITS} digits)"), w)
        if not oscillating and steady.real < 0:
            time = grid[-1]
            while scaled(time).real >= 0:
                time *= 2
            w = witness(time)
            return ExponentialSign("changes sign", (
                f"the leading term {mpmath.nstr(steady.real, 6)} t^{top_power} e^({mpmath.nstr(lead_re, 6)} t) "
                f"is negative: mass < 0 at t = {time:.6g} (mass = -10^{w['log10_abs_mass']:.4g})"), w)
        if not oscillating and steady.real > 0:
            return ExponentialSign("positive", (
                f"leading term {mpmath.nstr(steady.real, 6)} t^{top_power} e^({mpmath.nstr(lead_re, 6)} t) > 0 "
                f"and m(t) e^(-R t) > 0 on a {EXP_SUM_GRID}-point mpmath grid of (0, {horizon:.3g}] "
                "(numerics, not a proof)"), None)
    return ExponentialSign("unknown", "the leading exponentials oscillate around a positive mean", None)

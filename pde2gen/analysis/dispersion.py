"""Dispersion analysis: operator symbol, branches, problem type and the carrying Fourier kernel.

From a PDESpec this computes (physics.md §1):
- the symbol P(lambda, s) (d_t -> lambda, -Laplacian -> s = k**2) and its branches lambda_b(s), the roots of
  Poly(P, lambda) taken with an assumption-free lambda so that none is dropped (physics.md §6.8);
- the problem type: (E) evolution / causal initial-value problem, or (A) augmented / elliptic, where t is an
  extra coordinate and only the decaying root is kept; PFGM++'s radial augmentation is (A) with D extra dims;
- the density split p = q(d_t) phi with q(lambda) = (P(lambda, 0) - P(0, 0)) / lambda, J from the s-terms and
  R = -P(0, 0) phi, with the overall sign chosen so that the density of a unit source starts positive; for a
  second-order evolution problem whose P(lambda, 0) has two distinct real roots mu_1 > mu_2 (damped Klein-Gordon
  with a^2 > m^2) instead q(lambda) = c_2 (lambda - mu_2) = P(lambda, 0) / (lambda - mu_1) and R = mu_1 p: the
  reaction is then a uniform rate (d_t p + div J = mu_1 p, mass e^(mu_1 t)), physics.md §1 and §4.5d;
- the Fourier transform p_hat(s, t) of the density kernel, its mass p_hat(0, t), the normalised
  ghat(s, t) = p_hat(s, t) / p_hat(0, t), and the semigroup exponent f(s) when ghat = exp(-t f(s)).

Everything symbolic is also available numerically (`Dispersion.numeric_*`), robustly: branches from numpy's
polynomial roots, p_hat through the matrix exponential of the companion matrix (exact also where branches
coincide, e.g. the telegraph at c k = a, where the branch-sum formula divides by zero).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import sympy as sp

from ..errors import AnalysisError, UnsupportedPDEError
from ..spec.spec import LAM, PDESpec, S, T

EVOLUTION = "evolution"
AUGMENTED = "augmented"

# The s-grid on which numeric statements are made (s = k^2); wide enough to see both asymptotic regimes of
# every catalog PDE with O(1)-O(100) parameters.
S_GRID = np.logspace(-8, 8, 1601)


@dataclass(frozen=True)
class Dispersion:
    """The dispersion analysis of one PDE. Symbolic fields carry parameter symbols; numeric ones use values."""

    spec: PDESpec
    symbol: sp.Expr  # P(lambda, s)
    t_order: int
    branches: tuple[sp.Expr, ...] | None  # lambda_b(s), or None when SymPy gives no closed-form roots
    problem_type: str  # EVOLUTION or AUGMENTED
    problem_type_reason: str
    density_factor: sp.Expr  # q(lambda): p = q(d_t) phi
    # R = reaction(d_t) phi, a polynomial in lambda: -P(0, 0) up to the overall sign, or mu_1 q(lambda) for the
    # uniform split (R = mu_1 p)
    reaction: sp.Expr
    sign: int  # overall sign applied to the split so that p starts positive
    p_hat: sp.Expr | None  # Fourier transform of the density kernel, p_hat(s, t)
    mass: sp.Expr | None  # p_hat(0, t)
    ghat: sp.Expr | None  # p_hat(s, t) / p_hat(0, t)
    semigroup_exponent: sp.Expr | None  # f(s) with ghat = exp(-t f(s)), if of that form
    augmented_dims: sp.Expr | None  # D of PFGM++'s radial augmentation

    # ------------------------------------------------------------------ numeric side
    @cached_property
    def _numeric_coefficients(self):
        """Coefficients of P in powers of lambda (highest first) as numpy functions of s."""
        values = self.spec.parameter_values()
        poly = sp.Poly(sp.expand(self.symbol.xreplace(values)), LAM)
        coeffs = poly.all_coeffs()
        free = set().union(*(c.free_symbols for c in coeffs)) - {S}
        if free:
            names = ", ".join(sorted(str(f) for f in free))
            raise AnalysisError(
                f"parameters without values: {names}", hint="give them with --param name=value"
            )
        # sp.N first: exact numbers such as sqrt(10**24 + 5) would reach numpy as Python ints it cannot sqrt.
        return [numpy_function(S, sp.N(c)) for c in coeffs]

    def numeric_coefficients(self, s: np.ndarray) -> np.ndarray:
        """(len(s), J+1) complex array of P's lambda-coefficients, highest power first."""
        s = np.asarray(s, dtype=float)
        cols = [np.broadcast_to(np.asarray(f(s), dtype=complex), s.shape) for f in self._numeric_coefficients]
        return np.stack(cols, axis=-1)

    def numeric_branches(self, s: np.ndarray) -> np.ndarray:
        """(len(s), J) complex roots lambda_b(s), each row sorted by decreasing real part.

        Eigenvalues of the stacked companion matrices (what np.roots does row by row, vectorised: the
        per-row loop cost ~50 us a row, too slow for the 1601-point grid).
        """
        coeffs = self.numeric_coefficients(s)
        J = self.t_order
        if J == 1:
            roots = -coeffs[:, 1:] / coeffs[:, :1]
        elif J == 2:
            roots = _quadratic_roots(*coeffs.T)
        else:
            companion = np.zeros((len(coeffs), J, J), dtype=complex)
            companion[:, 0, :] = -coeffs[:, 1:] / coeffs[:, :1]
            companion[:, np.arange(1, J), np.arange(J - 1)] = 1.0
            roots = np.linalg.eigvals(companion) if len(coeffs) else np.zeros((0, J), complex)
        order = np.argsort(-roots.real, axis=1, kind="stable")
        return np.take_along_axis(roots, order, axis=1)

    def numeric_p_hat(self, s: np.ndarray, t: float) -> np.ndarray:
        """p_hat(s, t) for an array of s >= 0 at one time t > 0 (complex array)."""
        return self.numeric_p_hat_times(s, np.array([t]))[0]

    def numeric_p_hat_times(self, s: np.ndarray, times: np.ndarray) -> np.ndarray:
        """p_hat(s, t) as a (len(times), len(s)) complex array; branches and amplitudes are computed once."""
        s = np.asarray(s, dtype=float)
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if self.problem_type == AUGMENTED:
            return np.array([self._augmented_p_hat(s, float(t)) for t in times])
        coeffs = self.numeric_coefficients(s)
        J = self.t_order
        roots = self.numeric_branches(s)
        if J == 2:
            return self._two_branch_p_hat(roots, times, coeffs[:, 0])
        amplitudes = self.numeric_amplitudes(s, roots)
        with np.errstate(over="ignore", invalid="ignore"):
            result = np.einsum("nb,tnb->tn", amplitudes, np.exp(roots[None] * times[:, None, None]))
        # The branch sum loses ~eps/|lambda_i - lambda_j| near coincident roots: use expm there only.
        if J > 1:
            gaps = np.where(np.eye(J, dtype=bool)[None], np.inf, np.abs(roots[:, :, None] - roots[:, None, :]))
            scale = 1.0 + np.max(np.abs(roots), axis=1)
            close = (np.min(gaps, axis=(1, 2)) < 1e-4 * scale) | ~np.isfinite(amplitudes).all(axis=1)
            if np.any(close):
                for i, t in enumerate(times):
                    result[i, close] = self._expm_p_hat(s[close], float(t), coeffs[close])
        return result

    def _two_branch_p_hat(self, roots: np.ndarray, times: np.ndarray, lead: np.ndarray) -> np.ndarray:
        """J = 2 exactly, also where the two roots coincide (telegraph at c k = a, wave at k = 0).

        Separated roots: the branch sum sum_b q(lambda_b) e^{lambda_b t} / P'(lambda_b) (exact when a branch is
        not excited, q(lambda_b) = 0, where the form below would cancel e^{lambda t} against itself).
        Close roots (|lambda_1 - lambda_2| < 1e-3 (1 + |lambda|)): with mean root m and half-difference d,
        p_hat = (q(m) e^{mt} sinh(dt)/d + q_1 e^{mt} cosh(dt)) / c_2, q(lambda) = q_1 lambda + q_0 the density
        factor and sinh(dt)/d by its series for small |dt|; no division by the small gap there.
        """
        q0, q1 = self._numeric_density_factor_coefficients(np.zeros(1))[0]
        mean = 0.5 * (roots[:, 0] + roots[:, 1])
        half = 0.5 * (roots[:, 0] - roots[:, 1])
        close = np.abs(half) < 0.5e-3 * (1.0 + np.max(np.abs(roots), axis=1))
        t = times[:, None]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            e1, e2 = np.exp(roots[None, :, 0] * t), np.exp(roots[None, :, 1] * t)
            safe_half = np.where(close, 1.0, half)
            a1 = (q1 * roots[:, 0] + q0) / (2.0 * safe_half * lead)
            a2 = -(q1 * roots[:, 1] + q0) / (2.0 * safe_half * lead)
            separated = a1[None] * e1 + a2[None] * e2
            cosh_part = 0.5 * (e1 + e2)
            small = np.abs(half[None] * t) < 1e-3
            dt2 = (half[None] * t) ** 2
            series = np.exp(mean[None] * t) * t * (1.0 + dt2 / 6.0 + dt2 * dt2 / 120.0)
            sinh_part = np.where(small, series, (e1 - e2) / (2.0 * np.where(half == 0, 1.0, half))[None])
            merged = ((q1 * mean[None] + q0) * sinh_part + q1 * cosh_part) / lead[None]
            return self.sign * np.where(close[None], merged, separated)

    def _expm_p_hat(self, s: np.ndarray, t: float, coeffs: np.ndarray) -> np.ndarray:
        """p_hat by the matrix exponential of the companion system (exact where branches coincide)."""
        J = self.t_order
        lead = coeffs[:, 0]
        # Companion matrix of y = (phi, phi', ..., phi^(J-1)): y' = C y.
        C = np.zeros((len(s), J, J), dtype=complex)
        if J > 1:
            C[:, np.arange(J - 1), np.arange(1, J)] = 1.0
        C[:, J - 1, :] = -coeffs[:, :0:-1] / lead[:, None]  # -c_0/c_J, -c_1/c_J, ...
        y0 = np.zeros((len(s), J), dtype=complex)
        y0[:, J - 1] = 1.0 / lead  # causal data: d_t^(J-1) phi(0) = 1 / c_J
        import scipy.linalg  # on demand: only coincident roots of order >= 3 need it

        y = np.einsum("nij,nj->ni", scipy.linalg.expm(C * t), y0)
        q = self._numeric_density_factor_coefficients(s)  # (n, J): q(lambda) = sum_j q_j lambda^j
        return self.sign * np.einsum("nj,nj->n", q, y)

    @cached_property
    def _density_coefficients(self) -> np.ndarray:
        """q's coefficients (lowest power first, J of them) without the overall sign, as complex numbers."""
        q = sp.Poly(sp.expand(self.sign * self.density_factor.xreplace(self.spec.parameter_values())), LAM)
        ascending = [complex(sp.N(c)) for c in q.all_coeffs()[::-1]]
        return np.array(ascending + [0j] * (self.t_order - len(ascending)), dtype=complex)

    def _numeric_density_factor_coefficients(self, s: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._density_coefficients, (len(s), self.t_order))

    def _augmented_p_hat(self, s: np.ndarray, t: float) -> np.ndarray:
        if self.augmented_dims is not None:
            return self._radial_p_hat(s, t)
        roots = self.numeric_branches(s)
        decaying = roots[:, -1]  # lowest real part; C0 checks that it is the only decaying one
        q = self._numeric_density_factor_coefficients(s)  # q(lambda) = sum_j q_j lambda^j
        # q(lambda)/lambda without 0/0 at the double root lambda = 0 of PFGM's P(., 0) (q_0 = 0 there).
        q_over = np.einsum("nj,nj->n", q[:, 1:], decaying[:, None] ** np.arange(self.t_order - 1)[None, :])
        if np.any(q[:, 0] != 0):
            q_over = q_over + q[:, 0] / decaying
        lead = self.numeric_coefficients(s)[:, 0]
        # Even extension in t of the potential of a unit charge: jump of c_2 d_t phi across t = 0 is -1.
        return self.sign * (-q_over / (2.0 * lead)) * np.exp(decaying * t)

    def _radial_p_hat(self, s: np.ndarray, t: float) -> np.ndarray:
        """PFGM++: flux through the sphere |z| = t of D augmented dims, normalised to mass 1."""
        nu = float(self.augmented_dims.xreplace(self.spec.parameter_values())) / 2.0
        speed = float(self._radial_speed)
        return student_t_ghat(nu, np.sqrt(s) * speed * t).astype(complex)

    @cached_property
    def _radial_speed(self) -> sp.Expr:
        values = self.spec.parameter_values()
        coeffs = sp.Poly(sp.expand(self.symbol.xreplace(values)), LAM).all_coeffs()
        lead, s_coeff = coeffs[0], -coeffs[-1].coeff(S)
        return sp.sqrt(s_coeff / lead)

    def numeric_ghat(self, s: np.ndarray, t: float) -> np.ndarray:
        """Normalised ghat(s, t) = p_hat(s, t) / p_hat(0, t)."""
        return self.numeric_p_hat(s, t) / self.numeric_p_hat(np.zeros(1), t)[0]

    def numeric_mass(self, t: float) -> complex:
        return complex(self.numeric_p_hat(np.zeros(1), t)[0])

    def numeric_growth(self, s: np.ndarray) -> np.ndarray:
        """lambda*(s) = max real part over the branches that carry the solution (physics.md §2, C2)."""
        roots = self.numeric_branches(s)
        if self.problem_type == AUGMENTED:
            if self.augmented_dims is not None:
                return -float(self._radial_speed) * np.sqrt(np.asarray(s, float))
            return roots[:, -1].real
        amps = np.abs(self.numeric_amplitudes(s, roots))
        # Coincident roots (infinite individual amplitudes, finite sum) all carry the solution.
        finite = np.isfinite(amps)
        scale = np.max(np.where(finite, amps, 0.0), axis=1, keepdims=True)
        carrying = ~finite | (amps > 1e-12 * np.maximum(scale, 1e-300))
        return np.max(np.where(carrying, roots.real, -np.inf), axis=1)

    # ------------------------------------------------------------------ high precision (witness certificates)
    @cached_property
    def _mp_coefficients(self):
        """P's lambda-coefficients (highest first) and q's (lowest first) as mpmath functions of s."""
        values = self.spec.parameter_values()
        poly = sp.Poly(sp.expand(self.symbol.xreplace(values)), LAM)
        coeffs = [sp.lambdify(S, c, modules="mpmath") for c in poly.all_coeffs()]
        q_poly = sp.Poly(sp.expand(self.density_factor.xreplace(values)), LAM)
        q = q_poly.all_coeffs()[::-1]
        return coeffs, [sp.lambdify(S, c, modules="mpmath") for c in q]

    def mp_branches(self, s, dps: int) -> list | None:
        """The roots lambda_b(s) in mpmath at ``dps`` digits (sorted by decreasing real part), or None."""
        import mpmath

        with mpmath.workdps(dps):
            coeffs = [mpmath.mpmathify(f(mpmath.mpf(s))) for f in self._mp_coefficients[0]]
            try:
                roots = mpmath.polyroots(coeffs, maxsteps=400, extraprec=2 * dps) if len(coeffs) > 2 else \
                    [-coeffs[1] / coeffs[0]]
            except mpmath.libmp.NoConvergence:
                return None
            return sorted((mpmath.mpc(r) for r in roots), key=lambda r: -r.real)

    def mp_amplitudes(self, s, roots: list, dps: int) -> list | None:
        """a_b = q(lambda_b) / P'(lambda_b) in mpmath, or None where two roots coincide."""
        import mpmath

        with mpmath.workdps(dps):
            P, q = self._mp_coefficients
            coeffs = [mpmath.mpmathify(f(mpmath.mpf(s))) for f in P]
            q_values = [mpmath.mpmathify(f(mpmath.mpf(s))) for f in q]
            J = len(coeffs) - 1
            out = []
            for r in roots:
                derivative = sum(coeffs[J - j] * j * r ** (j - 1) for j in range(1, J + 1))
                if derivative == 0:
                    return None
                out.append(self.sign * sum(c * r**j for j, c in enumerate(q_values)) / derivative)
            return out

    def mp_p_hat(self, s, t, dps: int):
        """p_hat(s, t) in mpmath (evolution problems, separated roots), or None."""
        import mpmath

        if self.problem_type == AUGMENTED:
            return None
        roots = self.mp_branches(s, dps)
        if roots is None:
            return None
        amplitudes = self.mp_amplitudes(s, roots, dps)
        if amplitudes is None:
            return None
        with mpmath.workdps(dps):
            return mpmath.fsum(a * mpmath.exp(r * mpmath.mpf(t)) for a, r in zip(amplitudes, roots))

    def mp_growth(self, s, dps: int):
        """lambda*(s) (max real part over the carrying branches) in mpmath, or None."""
        import mpmath

        roots = self.mp_branches(s, dps)
        if roots is None:
            return None
        with mpmath.workdps(dps):
            if self.problem_type == AUGMENTED:
                return -self._radial_speed_mp(s) if self.augmented_dims is not None else roots[-1].real
            amplitudes = self.mp_amplitudes(s, roots, dps)
            if amplitudes is None:
                return max(r.real for r in roots)
            scale = max(abs(a) for a in amplitudes)
            floor = scale * mpmath.mpf(10) ** (-dps // 2)
            return max(r.real for r, a in zip(roots, amplitudes) if abs(a) > floor)

    def _radial_speed_mp(self, s):
        import mpmath

        return mpmath.mpf(sp.N(self._radial_speed, mpmath.mp.dps)) * mpmath.sqrt(mpmath.mpf(s))

    def numeric_amplitudes(self, s: np.ndarray, roots: np.ndarray | None = None) -> np.ndarray:
        """(len(s), J) amplitudes a_b = q(lambda_b) / P'(lambda_b) of p_hat = sum_b a_b exp(lambda_b t).

        Where two roots coincide the individual amplitudes are infinite (their sum stays finite); such s
        are reported as inf and callers evaluate p_hat itself instead.
        """
        if roots is None:
            roots = self.numeric_branches(s)
        coeffs = self.numeric_coefficients(s)
        J = self.t_order
        powers = np.arange(J + 1)[::-1]
        dP = np.einsum("nj,nbj->nb", coeffs[:, :-1] * powers[None, :-1], roots[:, :, None] ** (powers[None, None, :-1] - 1))
        q = self._numeric_density_factor_coefficients(s)
        q_val = np.einsum("nj,nbj->nb", q, roots[:, :, None] ** np.arange(J)[None, None, :])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.abs(dP) > 0, self.sign * q_val / dP, np.inf)


def numpy_function(args, expr: sp.Expr):
    """sp.lambdify(args, expr, "numpy") without its `from numpy import *`, which imports numpy.f2py and
    numpy.testing on first use (0.2-1 s of a 1 s budget): the NumPy printer with a namespace holding numpy."""
    from sympy.printing.numpy import NumPyPrinter

    printer = NumPyPrinter({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False,
                            "user_functions": {}})
    return sp.lambdify(args, expr, modules=[{"numpy": np}], printer=printer)


def student_t_ghat(nu: float, u: np.ndarray) -> np.ndarray:
    """2^(1-nu) u^nu K_nu(u) / Gamma(nu) (= 1 at u = 0), the characteristic function of the Student-t.

    In log space through scipy's kve; where K_nu overflows (small u, large nu: u < 7e-4 at nu = 64) by the
    small-u expansion E[exp(-u^2/(4X))], X ~ Gamma(nu), = sum_n (-u^2/4)^n Gamma(nu-n) / (n! Gamma(nu)),
    whose terms there shrink by a factor u^2 / (4 n (nu - n)) < 1e-6.
    """
    from scipy.special import gammaln, kve

    u = np.asarray(u, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_val = (1 - nu) * np.log(2.0) + nu * np.log(u) + np.log(kve(nu, u)) - u - gammaln(nu)
        out = np.exp(log_val)
    bad = ~np.isfinite(out) & (u > 0)
    if np.any(bad) and nu >= 8:
        out[bad] = np.exp(_debye_log_ghat(nu, u[bad]))
    elif np.any(bad):
        x = -0.25 * u[bad] ** 2
        series, term = np.ones_like(x), np.ones_like(x)
        for n in range(1, min(4, math.ceil(nu))):
            term = term * x / (n * (nu - n))
            series = series + term
        out[bad] = series
    return np.where(u == 0, 1.0, out)


def _debye_log_ghat(nu: float, u: np.ndarray) -> np.ndarray:
    """log[2^(1-nu) u^nu K_nu(u) / Gamma(nu)] by Debye's uniform expansion of K_nu in 1/nu (three correction terms:
    relative error ~ 2e-4 nu^-4) and Stirling's series for log Gamma(nu), with the terms of size nu log nu
    cancelled by hand: with z = u / nu, R = sqrt(1 + z^2) and w = R - 1 = z^2 / (1 + R), the sum is
    nu (log1p(w / 2) - w) - log(R) / 2 + log(1 - u1/nu + u2/nu^2 - u3/nu^3) - (Stirling's remainder of log Gamma).
    Summing nu log u, -nu eta and -log Gamma(nu) as floats instead left rounding errors ~ nu log nu eps (1e-9
    relative at nu = 5e5), which the derivation's finite differences amplified past their tolerance."""
    z = u / nu
    root = np.sqrt(1.0 + z * z)
    w = z * z / (1.0 + root)
    p = 1.0 / root
    u1 = (3 * p - 5 * p**3) / 24.0
    u2 = (81 * p**2 - 462 * p**4 + 385 * p**6) / 1152.0
    u3 = (30375 * p**3 - 369603 * p**5 + 765765 * p**7 - 425425 * p**9) / 414720.0
    correction = 1.0 - u1 / nu + u2 / nu**2 - u3 / nu**3
    # log Gamma(nu) - [(nu - 1/2) log nu - nu + log(2 pi) / 2]: four terms, error < 1 / (1188 nu^9)
    stirling = 1 / (12 * nu) - 1 / (360 * nu**3) + 1 / (1260 * nu**5) - 1 / (1680 * nu**7)
    return nu * (np.log1p(0.5 * w) - w) - 0.5 * np.log(root) + np.log(correction) - stirling


def _quadratic_roots(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Both roots of a z^2 + b z + c, without cancellation: q = -(b + sqrt(b^2 - 4ac))/2 with the sign of
    the square root aligned with b, roots q/a and c/q (both 0 when q = 0)."""
    root = np.sqrt(b * b - 4.0 * a * c)
    root = np.where((np.conj(b) * root).real < 0, -root, root)
    q = -0.5 * (b + root)
    safe_q = np.where(q == 0, 1.0, q)
    return np.stack([q / a, np.where(q == 0, 0.0, c / safe_q)], axis=1)


# ---------------------------------------------------------------------------------------------- analysis
def analyse_dispersion(spec: PDESpec) -> Dispersion:
    """Compute the dispersion analysis of ``spec`` (symbolic where SymPy can, numeric always)."""
    symbol = sp.expand(spec.symbol())
    if not symbol.has(LAM):
        raise UnsupportedPDEError("the PDE has no time derivative", hint="add a d_t term, e.g. diff(u, t)")
    poly = sp.Poly(symbol, LAM)
    J = poly.degree()
    coeffs = poly.all_coeffs()  # highest first
    lead = coeffs[0]
    if lead.has(S):
        raise UnsupportedPDEError(
            "mixed top-order term: the highest time derivative is multiplied by a Laplacian",
            hint="pde2gen handles PDEs whose highest d_t term has a constant coefficient (physics.md C0)",
        )
    at_zero = [sp.expand(c.subs(S, 0)) for c in coeffs]
    density_factor = sp.expand(sum(at_zero[J - j] * LAM ** (j - 1) for j in range(1, J + 1)))
    reaction = -at_zero[J]

    D = spec.augmented_dims
    problem_type, reason = _choose_problem_type(spec, coeffs, J, D)
    branches = _symbolic_branches(poly, J)
    dominant = None
    if problem_type == EVOLUTION and D is None:
        uniform = uniform_rate_split(at_zero, spec.parameter_values())
        if uniform is not None:
            density_factor, dominant = uniform
            reaction = sp.expand(dominant * density_factor)

    sign = _density_sign(spec, poly, density_factor, problem_type, J)
    p_hat, mass, ghat, exponent = _symbolic_kernel(poly, J, density_factor, problem_type, branches, sign, D,
                                                   dominant)
    return Dispersion(
        spec=spec, symbol=symbol, t_order=J, branches=branches, problem_type=problem_type,
        problem_type_reason=reason, density_factor=sign * density_factor, reaction=sign * reaction, sign=sign,
        p_hat=p_hat, mass=mass, ghat=ghat, semigroup_exponent=exponent, augmented_dims=D,
    )


def uniform_rate_split(at_zero: list, values: dict) -> tuple[sp.Expr, sp.Expr] | None:
    """(q, mu_1) of the density split with a uniform reaction, or None where it does not apply.

    ``at_zero``: P(lambda, 0)'s coefficients, highest first. For P(lambda, 0) = c_2 (lambda - mu_1)(lambda - mu_2)
    with real mu_1 > mu_2 (decided with the parameter values; undecided keeps the canonical split),
    q = P(lambda, 0) / (lambda - mu_1) = c_2 (lambda - mu_2) gives d_t p = lambda q phi = [P(lambda, 0) + mu_1 q] phi
    = -div J + mu_1 p: a continuity equation whose reaction R = mu_1 p is a uniform rate, and the mass is
    e^(mu_1 t) (the residue of q / P(., 0) = 1 / (lambda - mu_1)). Damped Klein-Gordon u_tt + 2a u_t + m^2 u:
    mu_1,2 = -a +- w, w = sqrt(a^2 - m^2), so p = u_t + (a + w) u and R = -(a - w) p. Where mu_1 = 0 this is the
    canonical split already (the telegraph: q = lambda + 2a, R = 0), which is kept as it is.
    """
    if len(at_zero) != 3:
        return None
    c_2, c_1, c_0 = at_zero
    half_b, d = c_1 / (2 * c_2), c_0 / c_2
    numbers = [sp.sympify(x).xreplace(values) for x in (half_b, d)]
    if not all(x.is_real for x in numbers):
        return None
    if (half_b * half_b - d).xreplace(values).is_positive is not True:
        return None  # complex (Klein-Gordon: the mass oscillates) or coincident roots, or not decidable
    if c_0 == 0 and numbers[0].is_nonnegative:
        return None  # mu_1 = 0: the canonical split has R = 0 already
    root = sp.sqrt(sp.expand(half_b * half_b - d))
    mu_1, mu_2 = -half_b + root, -half_b - root
    return sp.expand(c_2 * (LAM - mu_2)), mu_1


def uniform_rate(reaction: sp.Expr, density_factor: sp.Expr) -> sp.Expr | None:
    """r with R = r p (reaction(lambda) = r q(lambda), r free of lambda), or None where R is not proportional to p.
    By leading coefficients and an expanded difference (cancel() does not see through the radicals of mu_1)."""
    reaction, density_factor = sp.sympify(reaction), sp.sympify(density_factor)
    if reaction == 0:
        return sp.Integer(0)
    R, q = sp.Poly(reaction, LAM), sp.Poly(density_factor, LAM)
    if R.degree() != q.degree():
        return None
    rate = R.LC() / q.LC()
    return rate if sp.expand(reaction - rate * density_factor) == 0 else None


def _symbolic_branches(poly: sp.Poly, J: int) -> tuple[sp.Expr, ...] | None:
    found = sp.roots(poly, LAM)
    listed = [r for r, mult in found.items() for _ in range(mult)]
    if len(listed) != J:
        return None
    return tuple(listed)


def _choose_problem_type(spec: PDESpec, coeffs, J: int, D) -> tuple[str, str]:
    if D is not None:
        return AUGMENTED, f"radial augmentation: t is the radius of D = {D} extra dimensions (PFGM++)"
    if spec.problem_type is not None:
        return spec.problem_type, "set by the user"
    if J != 2:
        return EVOLUTION, f"order {J} in t: causal initial-value problem"
    # J = 2: hyperbolic (E) when d_t^2 and the Laplacian enter with opposite signs, i.e. the branches stay
    # bounded (Petrovskii); elliptic (A) when a root grows like +k and only the decaying one can be kept.
    values = spec.parameter_values()
    numeric = [c.xreplace(values) for c in coeffs]
    if any(c.free_symbols - {S} for c in numeric):
        symbols_left = set().union(*(c.free_symbols for c in numeric)) - {S}
        # Decide from the signs of the symbolic coefficients (parameters are positive).
        numeric = [sp.sympify(c.xreplace({p: sp.S.One for p in symbols_left})) for c in numeric]
    if _has_growing_root(numeric):
        return AUGMENTED, (
            "order 2 in t with d_t^2 and the Laplacian of the same sign: elliptic, a root grows like +k, so t "
            "is an augmented coordinate and the decaying branch is kept (as in PFGM)"
        )
    return EVOLUTION, "order 2 in t with bounded branches (hyperbolic): causal initial-value problem"


def _has_growing_root(coeffs) -> bool:
    """Does a root grow like +C k^(2q) (q > 0, Re C > 0) as k -> oo? From the Newton polygon, so the verdict does
    not depend on the parameters' scale (Yukawa with m = 1e11 has roots +-sqrt(s + m^2) that reach +k only for
    s >> m^2; a fixed s = 1e6 read them as bounded). Coefficients of other shapes: roots at s = 1e6 against s = 0."""
    poly = sp.Poly(sum(c * LAM**j for j, c in enumerate(reversed(coeffs))), LAM)
    groups = newton_polygon_growth(poly)
    if groups is not None:
        return any(c.real > 1e-20 * abs(c) for g in groups if g.exponent > 0 for c in g.coefficients)
    big = [complex(sp.N(c.subs(S, 1e6))) for c in coeffs]
    at_zero = max(np.roots([complex(sp.N(c.subs(S, 0))) for c in coeffs]).real, default=0.0)
    return bool(max(np.roots(big).real) > 10.0 * (1.0 + at_zero))


def _trial_values(spec: PDESpec) -> dict[sp.Symbol, sp.Expr]:
    """Parameter values, with 1 for parameters that have none (all parameters are positive symbols)."""
    return {p.symbol: (p.value if p.value is not None else sp.Integer(1)) for p in spec.parameters}


def _density_sign(spec: PDESpec, poly: sp.Poly, density_factor: sp.Expr, problem_type: str, J: int) -> int:
    """+1 or -1 so that the density of a unit source is positive at t -> 0+ (physics.md §1).

    (E): p_hat(s, 0+) = sum_b q(lambda_b)/P'(lambda_b) = (leading coefficient of q)/c_J = 1 by partial fractions,
    since q has degree J-1 and leading coefficient c_J: the sign is always +1.
    (A): p_hat(0, 0+) = -(q(lambda)/lambda)/(2 c_2) at the decaying root lambda of P(., 0).
    """
    if problem_type == EVOLUTION or spec.augmented_dims is not None:
        return 1
    trial = _trial_values(spec)
    lead = complex(sp.N(poly.all_coeffs()[0].xreplace(trial)))
    small_s = sp.Float(1e-12)
    coeffs = [complex(sp.N(c.xreplace(trial).subs(S, small_s))) for c in poly.all_coeffs()]
    decaying = min(np.roots(coeffs), key=lambda r: r.real)
    value = -_q_over_lambda(density_factor.xreplace(trial), decaying) / (2 * lead)
    return 1 if value.real >= 0 else -1


def _q_over_lambda(density_factor: sp.Expr, lam: complex) -> complex:
    """q(lambda)/lambda evaluated without 0/0 when q(0) = 0 (PFGM: q = lambda, decaying root -> 0 at s = 0)."""
    q = sp.Poly(density_factor, LAM).all_coeffs()[::-1]  # ascending
    value = sum(complex(sp.N(c)) * lam ** (j - 1) for j, c in enumerate(q) if j >= 1)
    if q and q[0] != 0:
        value += complex(sp.N(q[0])) / lam
    return value


def _residue_sum(numerator: sp.Expr, denominator_poly: sp.Poly) -> sp.Expr:
    """Inverse Laplace transform of numerator(z)/denominator(z) by residues (poles with multiplicity)."""
    z = LAM
    total = sp.Integer(0)
    poles = sp.roots(denominator_poly, z)
    lead = denominator_poly.LC()
    for pole, mult in poles.items():
        # the cofactor of (z - pole)^mult, as a product over the other roots (polynomial division over the
        # expression domain costs ~0.1 s a pole when the roots carry parameters and radicals)
        others = lead * sp.Mul(*[(z - q) ** m for q, m in poles.items() if q != pole])
        g = numerator * sp.exp(z * T) / others
        total += sp.diff(g, z, mult - 1).subs(z, pole) / sp.factorial(mult - 1)
    return total


def _symbolic_kernel(poly, J, density_factor, problem_type, branches, sign, D, dominant=None):
    """p_hat(s, t), mass, ghat and the semigroup exponent, symbolically where SymPy gives them quickly.
    ``dominant``: mu_1 of the uniform split (q / P(., 0) = 1 / (lambda - mu_1) by construction)."""
    if D is not None:
        nu = D / 2
        coeffs = poly.all_coeffs()
        speed = sp.sqrt(-coeffs[-1].coeff(S) / coeffs[0])
        u = speed * sp.sqrt(S) * T
        ghat = 2 ** (1 - nu) * u**nu * sp.besselk(nu, u) / sp.gamma(nu)
        return ghat, sp.Integer(1), ghat, None
    if problem_type == AUGMENTED:
        if branches is None:
            return None, None, None, None
        decaying = min(branches, key=lambda r: _numeric_real_part(r))
        lead = poly.all_coeffs()[0]
        p_hat = sp.expand(sign * density_factor.subs(LAM, decaying) * (-1 / (2 * lead * decaying))) * sp.exp(decaying * T)
        p_hat = sp.powsimp(sp.cancel(p_hat))
        mass = sp.cancel(p_hat.subs(S, 0))
        ghat = sp.powsimp(sp.cancel(p_hat / mass))
        return p_hat, mass, ghat, _semigroup_exponent(ghat)
    # Evolution: mass from the residues of q(z) / P(z, 0) (exact even where roots coincide at s = 0).
    at_zero = sp.Poly(poly.as_expr().subs(S, 0), LAM)
    # common factors cancelled first: u_tttttt + u_t has q / P(., 0) = (z^5 + 1) / (z^6 + z) = 1 / z, whose
    # residues over the fifth roots of -1 took SymPy 2-5 s to expand back to 1
    if dominant is not None:
        numerator, denominator = sp.Integer(1), LAM - dominant
    else:
        numerator, denominator = sp.fraction(sp.cancel(density_factor / at_zero.as_expr()))
    mass = sp.expand(sign * _residue_sum(numerator, sp.Poly(denominator, LAM)))
    if J == 1:
        lam = branches[0] if branches else None
        lam0 = lam.subs(S, 0)
        ghat = sp.exp((lam - lam0) * T)
        p_hat = mass * ghat
        return p_hat, mass, ghat, sp.expand(lam0 - lam)
    if branches is None or len(set(branches)) != J:
        return None, mass, None, None
    dP = sp.diff(poly.as_expr(), LAM)
    p_hat = sum(sign * density_factor.subs(LAM, b) / dP.subs(LAM, b) * sp.exp(b * T) for b in branches)
    ghat = p_hat / mass if mass != 0 else None
    return p_hat, mass, ghat, None


def _numeric_real_part(expr: sp.Expr) -> float:
    trial = {sym: sp.Integer(1) for sym in expr.free_symbols if sym != S}
    return float(sp.re(sp.N(expr.xreplace(trial).subs(S, 1))))


def with_semigroup_exponent(disp: Dispersion) -> Dispersion:
    """Fill in f(s) with ghat = exp(-t f(s)) for higher-order PDEs whose branches are polynomial in s: their
    ghat is a rational function times exponentials, and cancelling the amplitudes of the branches that the
    density does not excite can leave a pure semigroup (e.g. (d_t+1)(d_t+2)(d_t-Lap) u = 0 is diffusion).
    The one place besides the first-order case below that derives f (the analysis and the recogniser use it)."""
    if disp.semigroup_exponent is not None or disp.ghat is None or disp.branches is None:
        return disp
    if not all(sp.sympify(b).is_polynomial(S) for b in disp.branches):
        return disp
    ghat = sp.cancel(disp.ghat)
    exponent = _semigroup_exponent(ghat)
    if exponent is None or exponent.has(sp.log):
        return disp
    return replace(disp, ghat=ghat, semigroup_exponent=exponent)


def _semigroup_exponent(ghat: sp.Expr) -> sp.Expr | None:
    """f(s) if ghat = exp(-t f(s)) exactly (checked by substitution, not by simplify)."""
    log_g = sp.expand_log(sp.log(ghat), force=True)
    candidate = sp.expand(-log_g / T)
    if candidate.has(T):
        return None
    return candidate


# ---------------------------------------------------------------------------------------------- asymptotics
@dataclass(frozen=True)
class BranchGrowth:
    """A group of branches with lambda ~ C s^q as s -> oo (Newton polygon of P in (lambda, s)): ``count``
    roots, one per root C of the edge polynomial; Re lambda ~ Re(C) k^(2q)."""

    exponent: sp.Rational  # q (in s; the growth exponent in k is 2q)
    coefficients: tuple[complex, ...]  # the C's (30-digit accurate)

    @property
    def k_exponent(self) -> float:
        return float(2 * self.exponent)


def branch_growth(disp: Dispersion) -> tuple[BranchGrowth, ...] | None:
    """The large-s asymptotics lambda ~ C s^q of every branch (fractional q included), from the upper edges
    of the Newton polygon of P(lambda, s) = sum c_jb lambda^j s^b; None when a coefficient is not a sum of
    numeric multiples of powers of s. Branches that are identically 0 (no lambda^0 term) are left out."""
    values = disp.spec.parameter_values()
    return newton_polygon_growth(sp.Poly(sp.expand(large_s_expansion(disp.symbol.xreplace(values))), LAM))


def screened_roots(expr: sp.Expr) -> dict[sp.Expr, tuple[sp.Expr, sp.Expr]]:
    """The square roots sqrt(a s + b) (a > 0, b >= 0 free of s) in expr, as {root: (sqrt(a), mu)} with
    root = sqrt(a) sqrt(s + mu^2): the relap terms' symbols (SymPy writes sqrt(s + 1/4) as sqrt(4 s + 1)/2)."""
    found = {}
    for atom in expr.atoms(sp.Pow):
        if atom.exp != sp.S.Half or not atom.base.is_Add:
            continue
        slope = atom.base.coeff(S)
        offset = sp.expand(atom.base - slope * S)
        if slope.has(S) or offset.has(S) or not slope.is_positive or not offset.is_nonnegative:
            continue
        found[atom] = (sp.sqrt(slope), sp.sqrt(offset / slope))
    return found


def large_s_expansion(expr: sp.Expr) -> sp.Expr:
    """expr with each screened root sqrt(a) sqrt(s + mu^2) of relap replaced by its two leading terms
    sqrt(a) (s^(1/2) + (mu^2 / 2) s^(-1/2)) as s -> oo (error O(s^(-3/2))): sums of powers of s, whose leading
    term the Newton polygon and Petrovskii's test read (relap grows like k, as (-lap)^(1/2) does)."""
    roots = {atom: scale * (S**sp.S.Half + mu**2 / 2 * S**(-sp.S.Half))
             for atom, (scale, mu) in screened_roots(expr).items()}
    return expr.xreplace(roots) if roots else expr


def newton_polygon_growth(poly: sp.Poly) -> tuple[BranchGrowth, ...] | None:
    """``branch_growth`` of a polynomial in lambda with numeric coefficients in powers of s."""
    import mpmath

    points: dict[tuple[int, sp.Rational], sp.Expr] = {}
    for (j,), coefficient in zip(poly.monoms(), poly.coeffs()):
        for term in sp.Add.make_args(sp.expand(coefficient)):
            c, b = term.as_coeff_exponent(S)
            if c.free_symbols or not sp.sympify(b).is_Rational or c == 0:
                return None
            points[(j, b)] = points.get((j, b), 0) + c
    points = {key: c for key, c in points.items() if c != 0}
    candidates = sorted({sp.Rational(b1 - b2, 1) / (j2 - j1) for (j1, b1) in points for (j2, b2) in points
                         if j1 != j2})
    groups = []
    for q in candidates:
        heights = {key: key[1] + key[0] * q for key in points}
        top = max(heights.values())
        edge = {j: points[(j, b)] for (j, b), h in heights.items() if h == top}
        if len(edge) < 2:
            continue
        low, high = min(edge), max(edge)
        # the edge polynomial sum c_j C^(j - low): its high - low non-zero roots
        coefficients = [edge.get(j, 0) for j in range(high, low - 1, -1)]
        with mpmath.workdps(30):
            roots = mpmath.polyroots([mpmath.mpmathify(sp.N(c, 30)) if sp.sympify(c).is_real else
                                      mpmath.mpc(complex(sp.N(c, 30))) for c in coefficients], maxsteps=200,
                                     extraprec=60) if high - low > 1 else \
                [-mpmath.mpmathify(sp.N(coefficients[1], 30)) / mpmath.mpmathify(sp.N(coefficients[0], 30))]
        groups.append(BranchGrowth(q, tuple(complex(r) for r in roots)))
    return tuple(groups)

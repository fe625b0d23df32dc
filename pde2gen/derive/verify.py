"""The compiler's self-checks: every derived object is verified against the PDE and against each other.

Each check returns a ``Check(name, passed, value, tolerance, detail)``: ``value`` is the worst error found
(relative or absolute, or a test statistic over its critical value for the statistical checks), and the
check passes when ``value <= tolerance``.  Seeds are fixed, so a run is reproducible; the statistical checks'
critical values follow from a stated false-alarm rate (FALSE_ALARM_PER_BUILD = 1e-9 per build, split over
the comparisons) through finite-sample bounds (DKW, Bernstein, empirical Bernstein: no normal approximation),
so a correct kernel fails its build with probability at most 1e-9 whatever the dimension and parameters.

  pde_residual          P(d_t, s) applied to p_hat(s, t) at random (s, t) (mpmath, 40 digits; PFGM++, in
                        float64: the radial operator applied to the potential int_t^inf r^{1-D} p_hat(r) dr)
  continuity            d_t p_hat + div J_hat - R_hat = 0 for the density split, with p_hat = q(d_t) phi_hat
                        compared with the kernel's p_hat (extra digits where unexcited branches dominate)
  mass                  the symbolic mass p_hat(0, t) against the numeric one
  kernel_normalised     the family's log_kernel integrates to 1 in N = 1, 2, 3 (Kac: with its atoms)
  kernel_vs_radial_law  partial integrals of the kernel against the radial law used by the KS tests
                        (Kac: the a.c. flux at the light cone balances the mass the atoms lose)
  delta_limit           ghat(k, t) -> 1 as t -> 0 (data are reproduced at t -> 0)
  family_matches_pde    the family's characteristic function equals the PDE's ghat on a (k, t) grid
  kernel_solves_pde     P(d_t, s) applied to mass(t) x the family's own ghat vanishes (evolution problems)
  sampler_*             draws against the kernel: empirical characteristic function, KS of |d| (Kac: of
                        the coordinates off the atoms, and the atom mass), the mean of |d|^2 truncated at
                        6 E|d|^2 (exact from the law) where E|d|^4 < inf
  velocity_transport    draws at 2t (Kac: 1.5t) pushed back to t along the coupling's velocity: KS against
                        the exact law at t, and the truncated second moment where E|d|^4 < inf
  velocity_radial_flux  the posterior-mean velocity equals the radial transport field of physics.md §1
  sigma_round_trip      t_of_sigma(sigma(t)) = t on the time grid
  finite                no NaN/Inf over the time grid, at the Kac light cone, in N = 1, 2, 3072
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath as mp
import numpy as np
import sympy as sp

from ..analysis.dispersion import AUGMENTED, Dispersion
from ..families import FamilyConfig
from ..spec.spec import LAM, S, T
from . import reference

PRECISION = 40  # mpmath digits for the symbolic residuals
MAX_DIGITS = 600  # continuity: cap of the adaptive precision
RESIDUAL_TOLERANCE = 1e-12
RESIDUAL_DIGITS = (PRECISION, 2 * PRECISION, 4 * PRECISION, 8 * PRECISION, 16 * PRECISION)  # kernel_solves_pde
RADIAL_TOLERANCE = 1e-8  # the float64 path of PFGM++ (quadrature 1e-13, 5-point differences ~1e-11)
MASS_TOLERANCE = 1e-9
NORMALISATION_TOLERANCE = 1e-7
MATCH_TOLERANCE = 1e-9
DELTA_TOLERANCE = 1e-3
FLUX_TOLERANCE = 1e-5
ROUND_TRIP_TOLERANCE = 1e-9
# Statistical checks report (statistic / critical value). A correct kernel must build: the false-alarm rate of
# one build is at most FALSE_ALARM_PER_BUILD, split evenly (Bonferroni) over at most STATISTICAL_TESTS
# comparisons (sampler: 3 k x 3 dims characteristic function, 3 KS, 3 atom or moment tests; transport: 2 x 2).
# Every critical value is a finite-sample bound that holds for every n and every law (no normal approximation):
# CDFs by Dvoretzky-Kiefer-Wolfowitz-Massart, means of bounded variables (cosines, |d|^2 truncated at a level
# whose truncated mean the exact law gives, atom indicators) by Bernstein's inequality with the known variance
# or, where the variance is not known, the empirical Bernstein bound of Maurer & Pontil (2009, Theorem 4).
FALSE_ALARM_PER_BUILD = 1e-9
STATISTICAL_TESTS = 32
FALSE_ALARM_PER_TEST = FALSE_ALARM_PER_BUILD / STATISTICAL_TESTS
# KS: Dvoretzky-Kiefer-Wolfowitz-Massart, P(sqrt(n) D_n > x) <= 2 exp(-2 x^2) for every n (one sample).
KS_CRITICAL = math.sqrt(math.log(2.0 / FALSE_ALARM_PER_TEST) / 2.0)
DRAWS = 160_000  # power: a 3% error of the variance moves the truncated mean |d|^2 by ~1.8 bounds in N = 3
TRANSPORT_DRAWS = 40_000  # velocity_transport (RK4 over every draw: its cost); a 10% velocity error is caught
TRUNCATION = 6.0  # |d|^2 is compared as min(|d|^2, TRUNCATION E|d|^2): bounded, its mean exact from the law
SAMPLE_SIGMAS = (0.5, 2.0)  # noise levels (physics.md §4.7) of the kernel and statistical checks (not Kac)
TRANSPORT_STEPS = 12  # RK4 steps of the transport check (isotropic families: doubled until converged)
TRANSPORT_AGREEMENT = 1e-4  # relative agreement of two step counts; RK4 then leaves ~1e-5 (far below KS's 1e-2)
MAX_TRANSPORT_STEPS = 768


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float
    tolerance: float
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "value": self.value, "tolerance": self.tolerance,
                "detail": self.detail}


def _check(name: str, value: float, tolerance: float, detail: str) -> Check:
    value = float(value)
    return Check(name, bool(np.isfinite(value) and value <= tolerance), value, float(tolerance), detail)


def run_checks(dispersion: Dispersion, family: FamilyConfig, *, t_min: float, t_max: float, sigma_min: float,
               sigma_max: float, rho: float, seed: int = 0) -> tuple[Check, ...]:
    """All self-checks of a derived family (see the module docstring)."""
    rng = np.random.default_rng(seed)
    grid = time_grid(family, sigma_min, sigma_max, rho, 16)
    checks = [
        check_pde_residual(dispersion, rng, t_min, t_max),
        check_continuity(dispersion, rng, t_min, t_max),
        check_mass(dispersion, rng, t_min, t_max),
        check_kernel_normalised(family),
        check_kernel_vs_radial_law(family),
        check_delta_limit(dispersion, family),
        check_family_matches_pde(dispersion, family),
    ]
    # its own generator, so that the statistical checks below draw what they drew before it existed
    solves = check_kernel_solves_pde(dispersion, family, np.random.default_rng([seed, 1]), t_min, t_max)
    if solves is not None:
        checks.append(solves)
    checks += check_sampler(family, dispersion.spec.dim, rng)
    checks.append(check_velocity_transport(family, rng))
    if reference.is_isotropic(family):
        checks.append(check_velocity_radial_flux(family))
    checks.append(check_sigma_round_trip(family, grid))
    checks.append(check_finite(family, grid, rng))
    return tuple(checks)


def time_grid(family: FamilyConfig, sigma_min: float, sigma_max: float, rho: float, n: int) -> np.ndarray:
    """t_i = t_of_sigma(sigma_i), sigma_i uniform in sigma^(1/rho) from sigma_max down to sigma_min (EDM)."""
    i = np.arange(n) / (n - 1)
    sigmas = (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return np.asarray(reference.t_of_sigma(family, sigmas), dtype=float)


# ============================================================================ (a), (b), (c): the PDE side
def _values(dispersion: Dispersion) -> dict:
    return dispersion.spec.parameter_values()


def _mp_function(expr: sp.Expr, dispersion: Dispersion):
    """expr(s, t) as an mpmath function (parameters substituted)."""
    return sp.lambdify((S, T), sp.sympify(expr).xreplace(_values(dispersion)), modules="mpmath")


def _coefficients(dispersion: Dispersion):
    """P's lambda-coefficients (lowest power first) as mpmath functions of s."""
    poly = sp.Poly(sp.expand(dispersion.symbol.xreplace(_values(dispersion))), LAM)
    return [sp.lambdify(S, c, modules="mpmath") for c in poly.all_coeffs()[::-1]]


def _random_points(rng, t_min: float, t_max: float, count: int = 8):
    """(s, t) pairs: s log-uniform over [1e-2, 1e2] / t-scale, t log-uniform over the time window."""
    t = np.exp(rng.uniform(math.log(t_min), math.log(t_max), count))
    s = 10.0 ** rng.uniform(-2.0, 2.0, count)
    return [(mp.mpf(float(si)), mp.mpf(float(ti))) for si, ti in zip(s, t)]


def _relative(residual, terms) -> float:
    scale = max(abs(term) for term in terms)
    return float(abs(residual) / scale) if scale != 0 else float(abs(residual) != 0)


def _radial_pieces(dispersion: Dispersion):
    """PFGM++: floats (c_2, c_r, c_s, D) of c_2 phi'' + (c_r / t) phi' + c_s s phi = 0, and p_hat(s, t).

    High-precision Bessel K of order D/2 is too slow in mpmath (0.1 s per value at D = 128), so this path
    runs in float64: the lead's kve-based p_hat, SciPy quadrature and a 5-point finite difference.
    """
    values = _values(dispersion)
    c_2 = c_r = c_s = 0.0
    for term in dispersion.spec.terms:
        coefficient = float(sp.N(sp.sympify(term.coefficient).xreplace(values)))
        if term.t_power == -1:
            c_r += coefficient
        elif term.t_order == 2:
            c_2 += coefficient
        elif term.t_order == 0 and term.space_power == 1:
            c_s += coefficient
    D = float(sp.N(sp.sympify(dispersion.augmented_dims).xreplace(values)))

    def p_hat(s: float, t: float) -> float:
        return float(dispersion.numeric_p_hat(np.array([s]), t)[0].real)

    return c_2, c_r, c_s, D, p_hat


def _radial_points(c_2: float, c_s: float, D: float, rng, t_min: float, t_max: float, count: int = 6):
    """(s, t, u) with u = c k t log-uniform in [0.7, 8] sqrt(D): there log ghat ~ -u^2/(2D) is of order one,
    so that d_t p_hat is not swamped by the rounding of p_hat ~ 1 and p_hat does not underflow."""
    t = np.exp(rng.uniform(math.log(t_min), math.log(t_max), count))
    root = math.sqrt(max(D, 1.0))
    u = np.exp(rng.uniform(math.log(0.7 * root), math.log(8.0 * root), count))
    return [(float((ui / ti) ** 2 * c_2 / -c_s), float(ti), float(ui)) for ui, ti in zip(u, t)]


def _scaled_radial_potential(dispersion: Dispersion, s: float, t: float, D: float, speed: float) -> float:
    """t^{D-1} phi_hat(t), phi_hat(t) = int_t^inf r^{1-D} p_hat(s, r) dr (so p_hat = -t^{D-1} phi_hat').

    With r = t e^v this is t int_0^inf e^{(2-D) v} p_hat(s, t e^v) dv, and p_hat(s, t e^v) = p_hat(s e^{2v}, t)
    (p_hat depends on k t only), so one vectorised call evaluates all nodes.  Gauss-Legendre panels follow
    the decay e^{(2-D) v} (scale 1/(D-2)); p_hat ~ exp(-c k t e^v), c k t >= 0.7 (_radial_points), is
    negligible long before v = 64 scale + 40.
    """
    scale = 1.0 / max(D - 2.0, 0.25)
    edges = np.array([0.0, scale / 4, scale, 4 * scale, 16 * scale, 64 * scale, 64 * scale + 40.0])
    x, w = np.polynomial.legendre.leggauss(64)
    half = 0.5 * np.diff(edges)[:, None]
    v = (edges[:-1, None] + half * (x[None, :] + 1.0)).ravel()
    weights = (half * w[None, :]).ravel()
    # Where u = c k t e^v has u^2 / (u + D) > 2000 the flux is below ~e^{-1000} (log ghat ~ -u for u >> D,
    # ~ -u^2 / 2D for u << D; a cut at u = 2000 dropped the whole integrand at D = 1e5); SciPy's kve is NaN from u ~ 1e17
    u = speed * math.sqrt(s) * t * np.exp(v)
    alive = u * u / (u + D) < 2000.0
    flux = np.zeros_like(v)
    flux[alive] = dispersion.numeric_p_hat(s * np.exp(2.0 * v[alive]), t).real
    return t * float(np.sum(weights * np.exp((2.0 - D) * v) * flux))


def _time_derivative(f, t: float, u: float, D: float) -> float:
    """5-point difference. p_hat = ghat(u), u = c k t, varies on the time scale t / (u^2 / (u + D)): log ghat ~ -u
    for u >> D and ~ -u^2 / (2D) for u << D (the Student-t's Gaussian limit). A step on that scale keeps the
    truncation ~ (1e-2)^4 and the rounding of p_hat (relative 1e-11 at D ~ 1e4, where log ghat is a sum of terms
    ~ D log D) amplified only 1e2 times; the step t / u made D = 4096 and above fail by 1e-8 .. 1e-6."""
    h = 1e-2 * t / max(u * u / (u + D), 1.0)
    return (-f(t + 2 * h) + 8 * f(t + h) - 8 * f(t - h) + f(t - 2 * h)) / (12 * h)


def check_pde_residual(dispersion: Dispersion, rng, t_min: float, t_max: float) -> Check:
    if dispersion.p_hat is None:
        return _check("pde_residual", math.inf, RESIDUAL_TOLERANCE, "no symbolic p_hat(s, t) to verify")
    worst = 0.0
    if dispersion.augmented_dims is not None:
        c_2, c_r, c_s, D, p_hat = _radial_pieces(dispersion)
        for s, t, u in _radial_points(c_2, c_s, D, rng, t_min, t_max):
            # t^{D-1} x (c_2 phi'' + (c_r/t) phi' + c_s s phi), with phi' = -t^{1-D} p_hat
            flux = p_hat(s, t)
            d_flux = _time_derivative(lambda r, s=s: p_hat(s, r), t, u, D)
            terms = (c_2 * ((D - 1.0) * flux / t - d_flux), -c_r * flux / t,
                     c_s * s * _scaled_radial_potential(dispersion, s, t, D, math.sqrt(-c_s / c_2)))
            worst = max(worst, _relative(sum(terms), terms))
        return _check("pde_residual", worst, RADIAL_TOLERANCE,
                      "radial ODE c_2 phi'' + (c_r/t) phi' + c_s s phi = 0 for the potential phi of the normalised "
                      "flux p_hat (float64: quadrature for phi, 5-point differences), 6 random (s, t)")
    with mp.workdps(PRECISION):
        coefficients = _coefficients(dispersion)
        derivatives = [_mp_function(sp.diff(dispersion.p_hat, T, j), dispersion) for j in range(len(coefficients))]
        for s, t in _random_points(rng, t_min, t_max):
            terms = [c(s) * dp(s, t) for c, dp in zip(coefficients, derivatives)]
            worst = max(worst, _relative(sum(terms), terms))
    return _check("pde_residual", worst, RESIDUAL_TOLERANCE,
                  "P(d_t, s) p_hat(s, t) / max |term| at 8 random (s, t), symbolic derivatives, 40 digits")


def _solution_derivatives(dispersion: Dispersion, coefficients, s, t, orders: int):
    """d_t^i phi_hat(s, t), i < orders, for the Green's function of the split (causal or decaying branch)."""
    values = [c(s) for c in coefficients]  # lowest power first
    roots = mp.polyroots(values[::-1], maxsteps=200, extraprec=2 * PRECISION)
    if dispersion.problem_type == AUGMENTED:
        lam = min(roots, key=lambda r: mp.re(r))
        base = -mp.exp(lam * t) / (2 * values[-1] * lam)  # even extension: unit jump of c_J d_t phi at t = 0
        return [lam**i * base for i in range(orders)]
    derivative = [j * v for j, v in enumerate(values)][1:]
    dP = [sum(c * r**j for j, c in enumerate(derivative)) for r in roots]
    return [sum(r**i * mp.exp(r * t) / d for r, d in zip(roots, dP)) for i in range(orders)]


def check_continuity(dispersion: Dispersion, rng, t_min: float, t_max: float) -> Check:
    if dispersion.p_hat is None:
        return _check("continuity", math.inf, RESIDUAL_TOLERANCE, "no symbolic p_hat(s, t) to verify")
    worst = 0.0
    if dispersion.augmented_dims is not None:
        c_2, _, c_s, D, p_hat = _radial_pieces(dispersion)
        for s, t, u in _radial_points(c_2, c_s, D, rng, t_min, t_max):
            # p = -t^{D-1} phi', J = -t^{D-1} c^2 grad phi: d_t p + div J = -t^{D-1}(phi'' + (D-1) phi'/t - c^2 s phi)
            terms = (_time_derivative(lambda r, s=s: p_hat(s, r), t, u, D),
                     -c_s / c_2 * s * _scaled_radial_potential(dispersion, s, t, D, math.sqrt(-c_s / c_2)))
            worst = max(worst, _relative(sum(terms), terms))
        return _check("continuity", worst, RADIAL_TOLERANCE,
                      "d_t p_hat + c^2 s t^(D-1) phi_hat = 0: flux through the sphere of radius t (PFGM++), float64")
    p_hat = _mp_function(dispersion.p_hat, dispersion)
    values = _values(dispersion)
    coefficients = _coefficients(dispersion)
    density = sp.Poly(sp.sympify(dispersion.density_factor).xreplace(values), LAM).all_coeffs()[::-1]
    # R = reaction(d_t) phi: a constant (R = -P(0, 0) phi) or, for the uniform split, mu_1 q(lambda) (R = mu_1 p)
    reaction = sp.Poly(sp.sympify(dispersion.reaction).xreplace(values), LAM).all_coeffs()[::-1]
    J = len(coefficients) - 1
    skipped, moved = 0, []

    def digits_needed(s, t) -> int:
        # phi carries every branch, p = q(d_t) phi only the excited ones: where an unexcited branch dominates
        # the kernel by e^{x}, p_split cancels x / ln(10) digits, which are added to the working precision.
        with mp.workdps(PRECISION):
            kernel = p_hat(s, t)
            roots = mp.polyroots([c(s) for c in coefficients][::-1], maxsteps=200, extraprec=2 * PRECISION)
            excess = max(mp.re(r) for r in roots) * t - mp.log(abs(kernel)) if kernel != 0 else mp.inf
        return PRECISION + max(0, int(mp.ceil(excess / mp.log(10)))) if excess != mp.inf else math.inf

    for s, t in _random_points(rng, t_min, t_max):
        drawn, digits = t, digits_needed(s, t)
        # The identity holds at every t > 0; where the excess (~ linear in t: e.g. 2 m t for Yukawa) needs more
        # than MAX_DIGITS, the point moves to a smaller t where it does not (m = 1e4: every t of the window
        # needed > 600 digits, the check could decide nothing).
        for _ in range(4):
            if digits <= MAX_DIGITS:
                break
            t = t * mp.mpf(0.9) * (MAX_DIGITS - PRECISION) / (digits - PRECISION) if digits < math.inf else t / 1000
            digits = digits_needed(s, t)
        if t != drawn:  # spread the moved points over two decades below, as the drawn ones spread over the window
            position = math.log(float(drawn) / t_min) / max(math.log(t_max / t_min), 1e-300)
            t = t * mp.mpf(10) ** (-2 * min(max(position, 0.0), 1.0))
            digits = digits_needed(s, t)
            moved.append(float(t))
        if digits > MAX_DIGITS:
            skipped += 1
            continue
        with mp.workdps(digits):
            q = [_mp_number(c, digits) for c in density]
            phi = _solution_derivatives(dispersion, coefficients, s, t, J + 1)
            p_split = sum(q_i * phi[i] for i, q_i in enumerate(q))
            kernel = p_hat(s, t)
            mismatch = abs(p_split - kernel) / abs(kernel)
            d_p = mp.diff(lambda r, s=s: p_hat(s, r), t)
            div_J = dispersion.sign * sum((c(s) - c(0)) * phi[j] for j, c in enumerate(coefficients))
            source = sum(_mp_number(r, digits) * phi[i] for i, r in enumerate(reaction))
            terms = (d_p, div_J, source)
            worst = max(worst, _relative(d_p + div_J - source, terms), float(mismatch))
    if skipped == 8:
        return _check("continuity", math.inf, RESIDUAL_TOLERANCE, "every point needs more than "
                      f"{MAX_DIGITS} digits (the kernel is exponentially small against an unexcited branch)")
    detail = ("d_t p_hat + div J_hat - R_hat with p = q(d_t) phi, div J = sign [P(d_t, s) - P(d_t, 0)] phi, "
              "R = reaction(d_t) phi (phi: Green's function from the roots); p = q(d_t) phi also equals the kernel; "
              f"8 random (s, t), {PRECISION}+ digits" + (f" ({skipped} skipped: > {MAX_DIGITS} digits)" if skipped else "")
              + (f" ({len(moved)} moved to smaller t = {min(moved):.3g} .. {max(moved):.3g}, where <= {MAX_DIGITS}"
                 " digits decide it)" if moved else ""))
    return _check("continuity", worst, RESIDUAL_TOLERANCE, detail)


def _mp_number(expr, digits: int):
    """A numeric SymPy expression as an mpmath number at ``digits`` digits (a radical such as the uniform split's
    sqrt(a^2 - m^2) keeps its digits; complex() would round it to a double)."""
    value = sp.N(expr, digits)
    real, imaginary = (mp.mpf(str(part)) for part in value.as_real_imag())
    return mp.mpc(real, imaginary) if imaginary else real


def check_mass(dispersion: Dispersion, rng, t_min: float, t_max: float) -> Check:
    if dispersion.mass is None:
        return _check("mass", math.inf, MASS_TOLERANCE, "no symbolic mass")
    mass = _mp_function(dispersion.mass, dispersion)
    worst = 0.0
    for _, t in _random_points(rng, t_min, t_max, 8):
        symbolic = complex(mass(0, t))
        if not 1e-200 < abs(symbolic) < 1e200:  # beyond what the float64 kernel represents (e.g. e^{-m t}, m t > 460,
            continue  # or a uniform birth's e^{r t})
        numeric = dispersion.numeric_mass(float(t))
        worst = max(worst, abs(symbolic - numeric) / abs(symbolic))
    return _check("mass", worst, MASS_TOLERANCE,
                  f"symbolic mass {sp.sstr(sp.sympify(dispersion.mass).xreplace(_values(dispersion)))} against "
                  "p_hat(0, t) from the numeric kernel")


# ================================================================================ the family's kernel
def _tail_index(family: FamilyConfig) -> float:
    """a with P(|d| > r) ~ r^{-a}; inf for light tails (the family's reference knows its law)."""
    return reference.implementation(family).tail_index()


def _radial_panels(family: FamilyConfig, t: float):
    """Gauss-Legendre nodes/weights in w = log rho, panels of width 1/2 from log sigma - 30 to the tail."""
    center = math.log(float(reference.sigma(family, t)))
    # out to where the tail P(|d| > rho) ~ (rho / sigma)^-a is below e^-25, while |d|^2 stays a float64
    top = min(center + 25.0 / _tail_index(family) + 5.0, max(center + 80.0, RADIAL_LOG_LIMIT))
    bottom, top = reference.implementation(family).radial_log_range(t, center - 30.0, top)
    edges = np.arange(bottom, top + 0.5, 0.5)
    x, w = np.polynomial.legendre.leggauss(20)
    nodes = (edges[:-1, None] + 0.25 * (x[None, :] + 1.0))
    weights = np.broadcast_to(0.25 * w, nodes.shape)
    return edges, nodes, weights


RADIAL_LOG_LIMIT = 350.0  # log |d| below which |d|^2 (e^700) is finite in float64


def _radial_mass_by_panel(family: FamilyConfig, t: float, N: int):
    """(panel edges, mass of |d| in each panel) from exp(log_kernel) along a ray."""
    edges, nodes, weights = _radial_panels(family, t)
    rho = np.exp(nodes.ravel())
    d = np.zeros((len(rho), N))
    d[:, 0] = rho
    log_density = reference.log_sphere_area(N) + N * np.log(rho) + reference.log_kernel(family, d, t)
    return edges, np.sum(np.exp(log_density).reshape(nodes.shape) * weights, axis=1)


def _kac_continuous_mass(family: FamilyConfig, t: float) -> float:
    front = family.params["c"] * t
    x, w = np.polynomial.legendre.leggauss(200)
    return float(np.sum(w * front * np.exp(reference.log_kernel(family, (front * x)[:, None], t))))


def _check_times(family: FamilyConfig) -> list[float]:
    """Two times of the kernel and statistical checks: sigma = 0.5 and 2; for Kac, where the atoms carry
    e^{-1/2} and e^{-3} of each coordinate (at sigma = 0.5 a fast Kac process has long lost its atoms): the
    family's reference says when it has times of its own."""
    own = reference.implementation(family).check_times()
    return own if own is not None else [float(reference.t_of_sigma(family, s)) for s in SAMPLE_SIGMAS]


def check_kernel_normalised(family: FamilyConfig) -> Check:
    worst = 0.0
    if not reference.is_isotropic(family):
        for t in _check_times(family):
            atoms = 2.0 * math.exp(math.log(0.5) - family.params["a"] * t)
            worst = max(worst, abs(_kac_continuous_mass(family, t) + atoms - 1.0))
        return _check("kernel_normalised", worst, NORMALISATION_TOLERANCE,
                      "one Kac coordinate: Gauss-Legendre integral of the a.c. part + the two atoms e^{-at}/2")
    t = _check_times(family)[0]
    for N in (1, 2, 3):
        _, masses = _radial_mass_by_panel(family, t, N)
        worst = max(worst, abs(masses.sum() - 1.0))
    return _check("kernel_normalised", worst, NORMALISATION_TOLERANCE,
                  "|S^(N-1)| int rho^(N-1) exp(log_kernel) drho, N = 1, 2, 3 at sigma = 0.5, Gauss-Legendre panels "
                  "in log rho")


def check_kernel_vs_radial_law(family: FamilyConfig) -> Check:
    worst = 0.0
    if not reference.is_isotropic(family):
        a, c = family.params["a"], family.params["c"]
        for t in _check_times(family):
            # Just inside the cone, (c - v) p_ac differs from its front value by O(z^2) = O((a t)^2 offset):
            # two offsets (off the atoms, > KAC_ATOM_TOLERANCE) and a linear extrapolation to the front.
            inside = c * t * (1.0 - np.array([[2e-12], [4e-12]]))
            density = np.exp(reference.log_kernel(family, inside, t))
            speed = reference.conditional_velocity(family, inside, t)[:, 0]
            flux = (c - speed) * density
            leak = 0.5 * a * math.exp(-a * t)  # -d/dt of the atom mass e^{-at}/2
            worst = max(worst, abs(2 * flux[0] - flux[1] - leak) / leak)
        return _check("kernel_vs_radial_law", worst, 1e-7,
                      "Kac front balance: (c - v) p_ac at the light cone equals the atoms' loss a e^{-at}/2")
    t = _check_times(family)[1]
    for N in (1, 3):
        edges, masses = _radial_mass_by_panel(family, t, N)
        cumulative = np.cumsum(masses)
        radial = reference.radial_cdf(family, np.exp(edges[1:]), t, N)
        informative = (radial > 1e-3) & (radial < 1 - 1e-3)
        worst = max(worst, float(np.max(np.abs(cumulative - radial)[informative])))
    return _check("kernel_vs_radial_law", worst, NORMALISATION_TOLERANCE,
                  "P(|d| <= rho) from integrating exp(log_kernel) against the radial law of the sampler tests, "
                  "N = 1, 3 at sigma = 2")


def _k_grid(family: FamilyConfig, t: float) -> np.ndarray:
    return np.logspace(-2, 1.5, 24) / float(reference.sigma(family, t))


def check_delta_limit(dispersion: Dispersion, family: FamilyConfig) -> Check:
    # sigma = 1e-9, and at most 1e-6 of the time where sigma = 1: for alpha-stable kernels 1 - ghat ~ (sigma k)^alpha
    # is still 0.3 at sigma = 1e-9, k = 10 when alpha = 1/16, while kappa t k^alpha ~ 1e-6 there
    t = float(min(reference.t_of_sigma(family, 1e-9), 1e-6 * reference.t_of_sigma(family, 1.0)))
    k = np.linspace(0.0, 10.0, 41)
    pde, _ = _pde_ghat(dispersion, k, t)
    pde = pde.real
    vectors = np.zeros((len(k), 1 if not reference.is_isotropic(family) else 2))
    vectors[:, 0] = k
    fam = reference.characteristic_function(family, vectors, t)
    worst = float(max(np.max(np.abs(1.0 - pde)), np.max(np.abs(1.0 - fam))))
    return _check("delta_limit", worst, DELTA_TOLERANCE,
                  f"max |1 - ghat(k, t)| for k in [0, 10] at t = {t:.3g} (sigma <= 1e-9, t <= 1e-6 t(sigma = 1)): the "
                  "data are reproduced")


def _pde_ghat(dispersion: Dispersion, k: np.ndarray, t: float) -> tuple[np.ndarray, bool]:
    """(the PDE's normalised ghat(k^2, t), whether from the symbolic ghat): in mpmath where SymPy has ghat (the
    numeric p_hat(s, t) / p_hat(0, t) is 0/0 where the mass e^{-m t} underflows, e.g. damped diffusion at
    m^2 t = 5e17), else numeric; mpmath's Bessel K of large order is too slow for a grid, so Bessel kernels use
    the numeric ghat (kve)."""
    symbolic = dispersion.ghat is not None and not dispersion.ghat.has(sp.besselk)
    with np.errstate(invalid="ignore", over="ignore"):  # 0/0 where the mass underflows: replaced just below
        pde = dispersion.numeric_ghat(k**2, t)
    if symbolic:
        ghat = _mp_function(dispersion.ghat, dispersion)
        for i, kk in enumerate(k):
            # the exponent may cancel terms ~m t (Yukawa: t m - t sqrt(k^2 + m^2), m t = 1.6e23 at m = 1e10 left
            # 7 of 30 digits): the precision doubles until two evaluations agree to 1e-20
            previous = None
            for digits in (30, 60, 120, 240):
                try:
                    with mp.workdps(digits):
                        value = complex(ghat(mp.mpf(float(kk)) ** 2, mp.mpf(t)))
                except ZeroDivisionError:  # a removable 0/0 of the branch sum (coincident roots): keep numeric
                    break
                if previous is not None and abs(value - previous) <= 1e-20:
                    break
                previous = value
            else:
                continue  # no agreement at 240 digits: keep the numeric value
            if previous is not None:
                pde[i] = value
    return pde, symbolic


def check_family_matches_pde(dispersion: Dispersion, family: FamilyConfig) -> Check:
    worst, symbolic = 0.0, False
    sigmas = (0.01, 0.3, 1.0, 5.0, 40.0)
    for sigma_value in sigmas:
        t = float(reference.t_of_sigma(family, sigma_value))
        k = _k_grid(family, t)
        vectors = np.zeros((len(k), 3))
        vectors[:, 0] = k
        fam = reference.characteristic_function(family, vectors, t)
        pde, symbolic = _pde_ghat(dispersion, k, t)
        worst = max(worst, float(np.max(np.abs(fam - pde))))
    source = "symbolic ghat (mpmath)" if symbolic else "numeric ghat"
    return _check("family_matches_pde", worst, MATCH_TOLERANCE,
                  f"max |family characteristic function - PDE {source}| over 24 k x 5 t (sigma 0.01 to 40)")


def check_kernel_solves_pde(dispersion: Dispersion, family: FamilyConfig, rng, t_min: float,
                            t_max: float) -> Check | None:
    """P(d_t, s) [mass(t) x the family's own ghat(s, t)] = 0 at 8 random (s, t), 40 digits or more: the family's kernel
    times the PDE's mass solves the PDE itself (damped Klein-Gordon: e^(-(a - w) t) times the Kac law of rate w
    against u_tt + 2a u_t + m^2 u - c^2 u_xx). Evolution problems with a symbolic mass whose family has a closed
    form (None otherwise: PFGM's augmented coordinate, Bessel-K forms)."""
    from ..families import S_SYMBOL, T_SYMBOL

    if dispersion.problem_type == AUGMENTED or dispersion.mass is None or not family.info.checked_against_analysis:
        return None
    # exact parameters (the float's own binary value): as 17-digit Floats, SymPy rounded products such as a^3 in the
    # derivatives to 17 digits, and the Kac time derivatives cancel terms ~a^3 t to ~(c^2 s / a)^2 (a = 9e9: 1e45)
    ghat = family.info.ghat({name: sp.Rational(value) for name, value in family.parameters}, S_SYMBOL, T_SYMBOL)
    if ghat.has(sp.besselk):
        return None
    kernel = sp.sympify(dispersion.mass).xreplace(_values(dispersion)) * ghat.xreplace({S_SYMBOL: S, T_SYMBOL: T})
    worst, most_digits = 0.0, PRECISION
    coefficients = _coefficients(dispersion)
    derivatives = [_mp_function(sp.diff(kernel, T, j), dispersion) for j in range(len(coefficients))]
    for s, t in _random_points(rng, t_min, t_max):
        # the precision doubles until the terms agree to 1e-20 of the largest at two precisions (the residual is
        # then below ~1e-20 of it for a kernel that solves the PDE)
        previous = None
        for digits in RESIDUAL_DIGITS:
            with mp.workdps(digits):
                terms = [c(s) * dp(s, t) for c, dp in zip(coefficients, derivatives)]
                relative = _relative(sum(terms), terms)
                scale = max(abs(term) for term in terms)
                agreed = previous is not None and max(abs(x - y) for x, y in zip(terms, previous)) <= 1e-20 * scale
            previous = terms
            if agreed:
                break
        most_digits = max(most_digits, digits)
        worst = max(worst, relative)
    return _check("kernel_solves_pde", worst, RESIDUAL_TOLERANCE,
                  f"P(d_t, s) applied to mass(t) x the family's ghat (mass {sp.sstr(kernel / ghat.xreplace({S_SYMBOL: S, T_SYMBOL: T}))}) / "
                  f"max |term| at 8 random (s, t), up to {most_digits} digits: the family's kernel solves the PDE")


# ================================================================================ statistical checks
def _ks_statistic(samples: np.ndarray, cdf) -> float:
    """One-sample KS distance, bounded above without evaluating the CDF at every draw: at m sorted draws
    x_(i_1) < ... < x_(i_m) (m ~ 20 sqrt(n)) the exact CDF is compared with the empirical one, and between two
    nodes monotonicity bounds |F_n - F| by max(F_n(b) - F(a), F(b) - F_n(a-)). The result exceeds the exact
    distance by at most one node spacing (<= 1 / (20 sqrt(n)) in probability, 5% of a sqrt(n)-scaled unit)."""
    x = np.sort(samples)
    n = len(x)
    count = min(n, max(257, int(20 * math.sqrt(n))))
    index = np.unique(np.linspace(0, n - 1, count).round().astype(int))
    F = np.clip(np.asarray(cdf(x[index]), dtype=float), 0.0, 1.0)
    above = (index + 1) / n  # F_n at a node (right limit)
    below = index / n  # F_n just before a node
    at_nodes = max(float(np.max(above - F)), float(np.max(F - below)))
    between = max(float(np.max(below[1:] - F[:-1])), float(np.max(F[1:] - above[:-1]))) if len(index) > 1 else 0.0
    # below the first draw and above the last, F(x_(1)) and 1 - F(x_(n)) bound the distance: both are nodes
    return max(at_nodes, between)


def _dims_and_draws(dim: int):
    plans = [(1, DRAWS), (3, DRAWS)]
    if dim > 3:
        N = min(dim, 3072)
        plans.append((N, max(1000, 2_000_000 // N)))
    return plans


def check_sampler(family: FamilyConfig, dim: int, rng) -> list[Check]:
    isotropic = reference.is_isotropic(family)
    worst_cf = worst_ks = worst_atoms = worst_moment = 0.0
    moments_tested = False
    for (N, n), t in zip(_dims_and_draws(dim), _check_times(family) * 2):
        sigma_value = float(reference.sigma(family, t))
        d, latent = reference.sample(family, t, n, N, rng)
        # empirical characteristic function along a random direction
        direction = rng.standard_normal(N) if isotropic else np.eye(N)[0]
        direction /= np.linalg.norm(direction)
        for k in (0.3, 1.0, 3.0):
            wave = k / sigma_value * direction
            cosines = np.cos(d @ wave)
            expected = float(reference.characteristic_function(family, wave[None, :], t)[0])
            worst_cf = max(worst_cf, abs(cosines.mean() - expected) / _empirical_bernstein(cosines, 2.0))
        if isotropic:
            rho = np.linalg.norm(d, axis=1)
            worst_ks = max(worst_ks, _ks_statistic(rho, lambda r, t=t, N=N: reference.radial_cdf(family, r, t, N))
                           * math.sqrt(n) / KS_CRITICAL)
        else:
            off = d[latent == 0]
            worst_ks = max(worst_ks, _ks_statistic(off, lambda x, t=t: reference.kac_continuous_cdf(family, x, t))
                           * math.sqrt(len(off)) / KS_CRITICAL)
            p = float(reference.kac_atom_probability(family, t))
            # coordinates of one draw are independent: the n N atom indicators are iid Bernoulli(p)
            worst_atoms = max(worst_atoms, abs(float(np.mean(latent != 0)) - p) / _bernstein_known(p, d.size))
        if _has_fourth_moment(family):
            moments_tested = True
            worst_moment = max(worst_moment, _square_radius_statistic(family, d, t))
    plans = ", ".join(f"N = {N} ({n} draws)" for N, n in _dims_and_draws(dim))
    checks = [
        _check("sampler_characteristic_function", worst_cf, 1.0,
               f"|empirical - exact characteristic function| / empirical Bernstein bound (cosines in [-1, 1], "
               f"false alarm {FALSE_ALARM_PER_TEST:.2g} each), k sigma in "
               f"{{0.3, 1, 3}}; {plans}"),
        _check("sampler_ks", worst_ks, 1.0,
               ("KS distance of |d| from the radial law" if isotropic else
                "KS distance of the coordinates off the atoms from the a.c. law")
               + f" / DKW critical value {KS_CRITICAL:.4g} (false alarm {FALSE_ALARM_PER_TEST:.2g} each, "
               f"{FALSE_ALARM_PER_BUILD:g} per build); {plans}"),
    ]
    if not isotropic:
        checks.append(_check("sampler_atom_mass", worst_atoms, 1.0,
                             "atom fraction against e^(-a t), / Bernstein bound with the known variance p (1 - p) "
                             f"(false alarm {FALSE_ALARM_PER_TEST:.2g})"))
    if moments_tested:
        checks.append(_check("sampler_moments", worst_moment, 1.0,
                             f"mean of min(|d|^2, {TRUNCATION:g} E|d|^2) against its exact value from the law, / "
                             f"empirical Bernstein bound (false alarm {FALSE_ALARM_PER_TEST:.2g})"))
    return checks


def _bernstein_known(p: float, n: int) -> float:
    """eps with P(|mean - p| >= eps) <= FALSE_ALARM_PER_TEST for n iid Bernoulli(p) indicators: Bernstein's
    inequality 2 exp(-n eps^2 / (2 (p (1 - p) + eps / 3))) (|X - p| <= 1) solved for eps."""
    L = math.log(2.0 / FALSE_ALARM_PER_TEST)
    return (L / 3.0 + math.sqrt(L * L / 9.0 + 2.0 * n * p * (1.0 - p) * L)) / n


def _empirical_bernstein(values: np.ndarray, width: float) -> float:
    """eps with P(|mean - E| > eps) <= FALSE_ALARM_PER_TEST for n iid draws in an interval of length ``width``:
    Maurer & Pontil (2009, Theorem 4) for X / width and for 1 - X / width at half the rate each,
    sqrt(2 V_n L / n) + 7 width L / (3 (n - 1)), L = log(4 / rate), V_n the unbiased sample variance."""
    n = len(values)
    L = math.log(4.0 / FALSE_ALARM_PER_TEST)
    return math.sqrt(2.0 * float(np.var(values, ddof=1)) * L / n) + 7.0 * width * L / (3.0 * (n - 1))


def _square_radius_statistic(family: FamilyConfig, d: np.ndarray, t: float) -> float:
    """|mean of min(|d|^2, M) - its exact value| / empirical Bernstein bound. Isotropic families: M = TRUNCATION
    E|d|^2 and E min(R^2, M) = int_0^M P(R^2 > u) du from the radial law (_truncated_square_mean); Kac:
    |d|^2 <= N (c t)^2 is bounded already (M = N (c t)^2, no truncation)."""
    N = d.shape[1]
    expected = reference.mean_square_radius(family, t, N)
    square = np.sum(d * d, axis=1)
    if reference.is_isotropic(family):
        M = TRUNCATION * expected
        expected = _truncated_square_mean(family, t, N, M)
        square = np.minimum(square, M)
    else:
        M = N * (family.params["c"] * t) ** 2
    return abs(float(square.mean()) - expected) / _empirical_bernstein(square, M)


def _truncated_square_mean(family: FamilyConfig, t: float, N: int, M: float) -> float:
    """E min(|d|^2, M) = int_0^M P(|d|^2 > u) du = M int_0^oo e^(-v) P(|d| > sqrt(M) e^(-v/2)) dv, by Gauss-Legendre
    panels of width 1/2 in v, until P(|d| > r) is 1 in float64 (the rest, int_0^u 1 du = u, is added exactly) or
    v = TRUNCATED_MEAN_DEPTH (the rest, at most M e^(-v), likewise). Integrated directly rather than as E|d|^2 minus
    the tail beyond M: where most of E|d|^2 lies far beyond M (Yukawa m = 1e-12: E|d|^2 = N c t / m, the truncated
    mean 1e-6 of it) that difference cancelled, and the tail's share in V ~ 1/m^2 escaped the radial law's
    quadrature: the expected value came out 6e11 for 3.8e6 and the build failed sampler_moments (206)."""
    x, w = np.polynomial.legendre.leggauss(32)
    total = 0.0
    for start in np.arange(0.0, TRUNCATED_MEAN_DEPTH, 0.5):
        u = M * np.exp(-(start + 0.25 * (x + 1.0)))
        survival = np.clip(1.0 - reference.radial_cdf(family, np.sqrt(u), t, N), 0.0, 1.0)
        total += float(np.sum(0.25 * w * u * survival))
        if survival[-1] == 1.0:
            break
    return total + M * math.exp(-(start + 0.5))


TRUNCATED_MEAN_DEPTH = 40.0  # _truncated_square_mean integrates u down to M e^-40; below, P(|d|^2 > u) is taken as 1


def _has_fourth_moment(family: FamilyConfig) -> bool:
    """E|d|^4 < inf with room to spare: the truncated mean of |d|^2 is checked where its estimator has a
    variance (tail index above 8)."""
    return _tail_index(family) > 8


def check_velocity_transport(family: FamilyConfig, rng) -> Check:
    """Draw at 2t (Kac: 1.5t, atoms cannot be created forwards), transport back to t, KS against fresh draws."""
    isotropic = reference.is_isotropic(family)
    worst = 0.0
    for N, t in zip((1, 3 if isotropic else 2), _check_times(family)):
        later = (2.0 if isotropic else 1.5) * t
        start, latent = reference.sample(family, later, TRANSPORT_DRAWS, N, rng)
        moved, moved_latent, steps = _transport(family, start, later, t, latent, isotropic)
        # the transported draws must follow the law at t: one-sample comparisons with the exact law
        if isotropic:
            rho = np.linalg.norm(moved, axis=1)
            worst = max(worst, _ks_statistic(rho, lambda r, t=t, N=N: reference.radial_cdf(family, r, t, N))
                        * math.sqrt(TRANSPORT_DRAWS) / KS_CRITICAL)
            if _has_fourth_moment(family):  # the second moment is far more sensitive than KS to a scale error
                worst = max(worst, _square_radius_statistic(family, moved, t))
        else:
            off = moved[moved_latent == 0]
            worst = max(worst, _ks_statistic(off, lambda x, t=t: reference.kac_continuous_cdf(family, x, t))
                        * math.sqrt(len(off)) / KS_CRITICAL)
            p = float(reference.kac_atom_probability(family, t))
            worst = max(worst, abs(float(np.mean(moved_latent != 0)) - p) / _bernstein_known(p, moved.size))
    what = "KS of |d| (and the mean of |d|^2 truncated, where E|d|^4 < inf)" if isotropic else (
        "KS of the coordinates off the atoms, and the atom fraction")
    return _check("velocity_transport", worst, 1.0,
                  f"draws pushed back along the coupling's velocity (RK4, up to {steps} steps) against the "
                  f"exact law at the earlier time: {what}, / finite-sample bounds at false alarm "
                  f"{FALSE_ALARM_PER_TEST:.2g} each, N = 1 and {3 if isotropic else 2}")


def _transport(family: FamilyConfig, start, t_from: float, t_to: float, latent, isotropic: bool):
    """(moved, moved latent, steps): RK4 along the coupling. For isotropic families (smooth flows) the step count
    starts at TRANSPORT_STEPS / 2 and doubles until two runs agree to TRANSPORT_AGREEMENT relative: a coupling as
    steep as d ~ t^16 (alpha = 1/16) is 28% off with 12 steps from 2t to t. Kac keeps TRANSPORT_STEPS: its
    velocity jumps at the light cone, where no step count converges uniformly."""
    if not isotropic:
        return (*reference.transport(family, start, t_from, t_to, latent, steps=TRANSPORT_STEPS), TRANSPORT_STEPS)
    steps = TRANSPORT_STEPS // 2
    coarse, _ = reference.transport(family, start, t_from, t_to, latent, steps=steps)
    while True:
        steps *= 2
        fine, fine_latent = reference.transport(family, start, t_from, t_to, latent, steps=steps)
        finite = np.isfinite(fine) & np.isfinite(coarse) & (fine != 0)
        if steps >= MAX_TRANSPORT_STEPS or not np.any(finite) or \
                np.max(np.abs(coarse[finite] / fine[finite] - 1.0)) <= TRANSPORT_AGREEMENT:
            return fine, fine_latent, steps
        coarse = fine


def check_velocity_radial_flux(family: FamilyConfig) -> Check:
    """v(d) = (d/rho) d_t P(|d| > rho) / (|S^{N-1}| rho^{N-1} p(d)) for the velocity without latent."""
    worst = 0.0
    for N in (1, 3):
        t = float(reference.t_of_sigma(family, 1.0))
        sigma_t = float(reference.sigma(family, t))
        rho = sigma_t * np.array([0.3, 1.0, 2.5]) * math.sqrt(N)
        d = np.zeros((len(rho), N))
        d[:, 0] = rho
        h = 1e-4 * t
        tail_rate = -(reference.radial_cdf(family, rho, t + h, N) - reference.radial_cdf(family, rho, t - h, N)) / (2 * h)
        density = np.exp(reference.log_sphere_area(N) + (N - 1) * np.log(rho) + reference.log_kernel(family, d, t))
        velocity = reference.conditional_velocity(family, d, t)[:, 0]
        worst = max(worst, float(np.max(np.abs(velocity / (tail_rate / density) - 1.0))))
    return _check("velocity_radial_flux", worst, FLUX_TOLERANCE,
                  "posterior-mean velocity / radial transport field of the kernel (physics.md §1), N = 1, 3")


# ================================================================================ grid and numerics
def check_sigma_round_trip(family: FamilyConfig, grid: np.ndarray) -> Check:
    back = reference.t_of_sigma(family, reference.sigma(family, grid))
    worst = float(np.max(np.abs(back / grid - 1.0)))
    return _check("sigma_round_trip", worst, ROUND_TRIP_TOLERANCE,
                  f"t_of_sigma(sigma(t)) / t - 1 on the {len(grid)}-point time grid")


def check_finite(family: FamilyConfig, grid: np.ndarray, rng) -> Check:
    bad = 0
    where: list[str] = []
    isotropic = reference.is_isotropic(family)
    for N in (1, 2, 3072):
        for t in grid:
            d, latent = reference.sample(family, t, 3, N, rng)
            probes = [d]
            if isotropic:
                probes.append(np.zeros((1, N)))
                far = np.zeros((1, N))
                far[0, 0] = 1e3 * float(reference.sigma(family, t)) * math.sqrt(N)
                probes.append(far)
            else:
                front = family.params["c"] * t
                probes.append(np.full((1, N), front * (1.0 - 1e-9)))
                probes.append(np.full((1, N), -front))
                probes.append(np.zeros((1, N)))
            results = [reference.conditional_velocity(family, d, t, latent)]
            for probe in probes:
                results += [reference.log_kernel(family, probe, t), reference.conditional_velocity(family, probe, t)]
            results.append(np.atleast_1d(reference.sigma(family, t)))
            count = sum(int(np.sum(~np.isfinite(r))) for r in results)
            if count:
                bad += count
                where.append(f"N={N}, t={t:.3g}")
    detail = "NaN/Inf in sample, log_kernel, velocities, sigma over the time grid and probes (0, far, light cone)"
    if where:
        detail += "; at " + ", ".join(where[:4])
    return _check("finite", bad, 0, detail)


__all__ = ["Check", "run_checks", "time_grid"]

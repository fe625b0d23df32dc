"""C1 positivity of the density kernel in the data dimension N: screens (mass, |ghat| <= 1, Gram, Schoenberg,
origin, tail), certificates (Bernstein, Student-t mixture, Riemann closed form) and the 1-D FFT numerics;
the numerical kernels themselves are in positivity.py."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import sympy as sp

from . import positivity
from .admissibility import _MassResult
from .dispersion import S_GRID, Dispersion
from .verdicts import FAIL, PASS, UNDECIDED, Condition

FFT_METHOD = "FFT 1-D kernel (2^14 points, grid doubling check)"


RIEMANN_METHOD = "Riemann function (closed form)"


ONE_D_METHODS = (FFT_METHOD, RIEMANN_METHOD)  # a C1 failure found by these is a failure of the 1-D question


# ---------------------------------------------------------------------------------------------- C1
def _check_positivity(disp, numeric, mass: _MassResult, admissibility: Condition, dim: int,
                      bernstein: positivity.BernsteinResult | None) -> Condition:
    where = "per coordinate (product construction: the 1-D question)" if dim == 1 and \
        disp.spec.construction == "product" else f"in N = {dim}"
    if admissibility.witness and "coefficient" in admissibility.witness:
        return Condition("C1", FAIL, "the field is complex: its density |psi|^2 is quadratic in psi, not a linear "
                                     "density flow (interference)", admissibility.witness, "structure")
    if mass.status == FAIL:
        return Condition("C1", FAIL, f"screen 1 (mass > 0) fails: {mass.reason}", mass.witness, mass.method)

    if disp.augmented_dims is not None:
        return _student_t_certificate(disp, numeric)
    if bernstein is not None and bernstein.is_bernstein:
        return Condition("C1", PASS, f"ghat = exp(-t f(k^2)) with f Bernstein: the kernel is a Gaussian scale "
                                     f"mixture (subordinated Brownian motion), positive in every N. "
                                     f"{bernstein.reason}", None, "Bernstein certificate")
    if numeric is None:
        return Condition("C1", UNDECIDED, "no certificate applies and parameters without values prevent the "
                                          "numeric checks", None, "certificates")

    screens = _screens(numeric, dim)
    if screens is not None:
        return screens
    one_d = _one_dimensional(numeric)
    if one_d.status == UNDECIDED:  # e.g. no FFT (ghat does not decay): Bochner's 3-point test still applies
        one_d = _gram_screen(numeric) or one_d
    if one_d.status == FAIL:
        extra = "" if dim == 1 else f" (the 1-D marginal of an isotropic kernel in N = {dim} has the same ghat, " \
                                    "so the N-dimensional kernel is negative too)"
        return replace(one_d, reason=one_d.reason + extra)
    not_bernstein = f" ({bernstein.reason})" if bernstein is not None and bernstein.is_bernstein is False else ""
    if dim == 1:
        if one_d.status == PASS:
            return replace(one_d, reason=f"{where}: {one_d.reason}")
        return Condition("C1", UNDECIDED, f"{where}: screens pass, no certificate applies{not_bernstein}; "
                                          f"{one_d.reason}", one_d.witness, one_d.method)
    return Condition("C1", UNDECIDED, f"{where}: screens (mass, |ghat| <= 1, Schoenberg bound, tail) pass and the "
                                      f"1-D kernel shows no negative value ({one_d.reason}), but no certificate "
                                      f"applies in N = {dim}{not_bernstein}", None,
                     "screens + 1-D kernel")


def _student_t_certificate(disp: Dispersion, numeric: Dispersion | None) -> Condition:
    """PFGM++: ghat(u) = 2^(1-nu) u^nu K_nu(u) / Gamma(nu) = E exp(-u^2 / (2 G)), G ~ chi2_D (nu = D/2)."""
    D = sp.sympify(disp.augmented_dims)
    if numeric is not None:
        D = D.xreplace(numeric.spec.parameter_values())
    if not D.is_positive:
        return Condition("C1", UNDECIDED if D.is_positive is None else FAIL,
                         f"radial augmentation needs D > 0 extra dimensions (D = {D})", None, "structure")
    return Condition("C1", PASS, f"the kernel is a Gaussian scale mixture, ghat(u) = 2^(1-D/2) u^(D/2) K_(D/2)(u) / "
                                 f"Gamma(D/2) = E exp(-u^2 / (2 chi2_D)) with u = c t k (mixing law V = (c t)^2 / "
                                 f"chi2_D, multivariate Student-t, D = {sp.sstr(D)}): positive in every N", None,
                     "Student-t mixture")


def _screens(numeric: Dispersion, dim: int) -> Condition | None:
    """Necessary conditions on ghat over the (k, t)-grid; a Condition if one fails, else None."""
    g = positivity.normalised_transform(numeric, S_GRID, positivity.TIME_GRID)
    times = positivity.TIME_GRID
    k = np.sqrt(S_GRID)

    def at(mask):
        ti, si = np.unravel_index(int(np.argmax(mask)), mask.shape)
        return float(k[si]), float(times[ti]), g[ti, si]

    # Every witness is re-evaluated in mpmath (_certified_mask); float rounding alone never fails a screen.
    # |ghat| <= 1 (overflow included): the smallest violating k at the first time of the grid (t = 1 first).
    too_big = ~np.isfinite(g) | (np.abs(g) > 1.0 + positivity.GHAT_ACCURACY)
    too_big = _certified_mask(numeric, too_big, times, lambda value: abs(value) > 1 + 1e-12)
    if np.any(too_big):
        kk, tt, value = at(too_big)
        shown = f"{value.real:.6g}" if np.isfinite(value) else "overflow"
        return Condition("C1", FAIL, f"screen 2: |ghat| > 1 (ghat({kk:.4g}, {tt:g}) = {shown}): the Fourier "
                                     "transform of a positive measure is bounded by its mass",
                         {"k": kk, "t": tt, "ghat": value.real if np.isfinite(value) else math.inf},
                         "screen |ghat| <= 1")
    complex_part = np.abs(g.imag) > positivity.GHAT_ACCURACY * np.maximum(1.0, np.abs(g.real))
    complex_part = _certified_mask(numeric, complex_part, times,
                                   lambda value: abs(value.imag) > 1e-20 * max(1, abs(value.real)))
    if np.any(complex_part):
        kk, tt, value = at(complex_part)
        return Condition("C1", FAIL, f"screen 2: ghat is not real (ghat({kk:.4g}, {tt:g}) = {value:.4g}): the "
                                     "kernel is not a real density", {"k": kk, "t": tt, "ghat_real": value.real,
                                                                     "ghat_imag": value.imag}, "screen ghat real")
    real = np.where(np.isfinite(g), g.real, 0.0)
    schoenberg = _schoenberg_screen(real, k, times, dim)
    if schoenberg is not None:
        floor = schoenberg.witness["schoenberg_floor"]
        low = real < floor - positivity.GHAT_ACCURACY
        if not np.any(_certified_mask(numeric, low, times, lambda value: value.real < floor - 1e-12)):
            schoenberg = None
    if schoenberg is not None:
        return schoenberg
    tail = _tail_screen(numeric, dim)
    if tail is not None:
        return tail
    return _origin_screen(numeric, dim) if dim > 1 else None  # in 1-D the full kernel is examined instead


CERTIFY_DIGITS = 40  # mpmath digits of the witness re-evaluation (and twice that for the agreement check)


CERTIFY_POINTS = 24  # flagged grid points re-evaluated before a screen is cleared


def _mp_ghat(numeric: Dispersion, s: float, t: float, dps: int):
    import mpmath

    with mpmath.workdps(dps):
        value, mass = numeric.mp_p_hat(s, t, dps), numeric.mp_p_hat(0.0, t, dps)
        return None if value is None or mass is None or mass == 0 else complex(value / mass)


def _certified_mask(numeric: Dispersion, mask: np.ndarray, times: np.ndarray, holds) -> np.ndarray:
    """The (t, s) grid points of ``mask`` where ``holds(ghat)`` is true of ghat re-evaluated in mpmath (at
    CERTIFY_DIGITS and twice that); the first certified point, in grid order, is the one kept. Where no
    high-precision value exists (augmented problems, coincident roots) the float verdict stands. At most
    CERTIFY_POINTS points are tried, spread over the flagged ones."""
    flagged = np.argwhere(mask)
    if len(flagged) == 0:
        return mask
    certified = np.zeros_like(mask)
    step = max(1, len(flagged) // CERTIFY_POINTS)
    for ti, si in flagged[::step][:CERTIFY_POINTS]:
        s_value, t_value = float(S_GRID[si]), float(times[ti])
        low = _mp_ghat(numeric, s_value, t_value, CERTIFY_DIGITS)
        high = _mp_ghat(numeric, s_value, t_value, 2 * CERTIFY_DIGITS)
        if low is None or high is None:
            return mask
        if holds(low) and holds(high):
            certified[ti, si] = True
            return certified
    return certified


GRAM_RATIOS = np.geomspace(1e-6, 0.5, 48)  # k2 = k1 (1 + ratio): from nearly equal to well apart


def _gram_screen(numeric: Dispersion) -> Condition | None:
    """Screen 3b (Bochner): the Fourier transform of a positive measure is positive definite, so for wave
    vectors 0, k1, k2 on one axis (any N) det [[1, g1, g2], [g1, 1, g12], [g2, g12, 1]] >= 0 with g1 = ghat(k1),
    g2 = ghat(k2), g12 = ghat(k2 - k1). A negative determinant on a (k1, k2, t) grid is re-evaluated in mpmath.
    Catches kernels whose ghat does not decay (chirps like e^-t cos(k^2 t)), where no FFT exists."""
    k1 = positivity.K_GRID[::8]
    k2 = (k1[:, None] * (1.0 + GRAM_RATIOS[None, :])).ravel()
    k1 = np.repeat(k1, len(GRAM_RATIOS))
    s_all = np.concatenate([k1**2, k2**2, (k2 - k1) ** 2])
    for t in positivity.TIME_GRID[:5]:
        g = positivity.normalised_transform(numeric, s_all, np.array([t]))[0].real
        g1, g2, g12 = np.split(g, 3)
        det = 1 + 2 * g1 * g2 * g12 - g1**2 - g2**2 - g12**2
        order = np.argsort(det)[:CERTIFY_POINTS]
        for i in order:
            if not det[i] < -1e-6:
                break
            exact = [_gram_det(numeric, k1[i], k2[i], float(t), digits) for digits in (CERTIFY_DIGITS,
                                                                                        2 * CERTIFY_DIGITS)]
            if exact[0] is None or exact[1] is None:
                return None
            if exact[0] < -1e-12 and exact[1] < -1e-12:
                return Condition("C1", FAIL, (f"screen 3b (positive definiteness): at t = {t:g} the Gram determinant "
                                              f"of ghat at 0, k1 = {k1[i]:.6g}, k2 = {k2[i]:.6g} is {exact[1]:.4g} "
                                              "< 0 (mpmath): ghat is not positive definite, so no positive kernel "
                                              "in any N has it (Bochner)"),
                                 {"k1": float(k1[i]), "k2": float(k2[i]), "t": float(t), "gram_det": exact[1]},
                                 "Bochner 3-point screen, witness in mpmath")
    return None


def _gram_det(numeric: Dispersion, k1: float, k2: float, t: float, digits: int) -> float | None:
    values = [_mp_ghat(numeric, k * k, t, digits) for k in (k1, k2, k2 - k1)]
    if any(v is None for v in values):
        return None
    g1, g2, g12 = (v.real for v in values)
    return 1 + 2 * g1 * g2 * g12 - g1 * g1 - g2 * g2 - g12 * g12


def _origin_screen(numeric: Dispersion, dim: int) -> Condition | None:
    """Screen 5: p(0, t) < 0 in N dimensions, from the radial integral of ghat k^(N-1) (a Hankel transform
    at r = 0); decided only when clearly negative (ratio < -1e-6) and stable under grid doubling."""
    for t in (1.0, 0.1, 10.0):
        origin = positivity.origin_value(numeric, t, dim)
        if origin is None:
            continue
        stable = abs(origin.ratio - origin.ratio_doubled) < 1e-3 * abs(origin.ratio) + 1e-9
        if origin.ratio < -1e-6 and stable:
            return Condition("C1", FAIL, f"screen 5 (origin): p(0, {t:g}) < 0 in N = {dim} (int ghat k^(N-1) dk / "
                                         f"int |ghat| k^(N-1) dk = {origin.ratio:.4g}, |p(0)| ~ "
                                         f"1e{origin.log10_abs_p:.1f})",
                             {"x": 0.0, "t": t, "signed_ratio": origin.ratio,
                              "signed_ratio_doubled_grid": origin.ratio_doubled, "log10_abs_p": origin.log10_abs_p},
                             "origin screen (radial integral of ghat)")
    return None


def _tail_screen(numeric: Dispersion, dim: int) -> Condition | None:
    """Screen 4: ghat ~ A k^-beta with A < 0 and beta <= N makes the kernel tend to -oo at the origin
    (the N-dimensional transform of k^-beta behaves like |x|^(beta-N), or log|x| at beta = N)."""
    for t in (1.0, 0.1, 10.0):
        tail = positivity.tail_decay(numeric, t)
        if tail is not None and tail.amplitude < 0 and tail.beta <= dim + 1e-6:
            return Condition("C1", FAIL, f"screen 4 (tail): ghat ~ {tail.amplitude:.4g} k^-{tail.beta:.4g} as "
                                         f"k -> oo at t = {t:g}, negative with beta <= N = {dim}: the kernel tends "
                                         f"to -oo at the origin",
                             {"t": t, "beta": tail.beta, "amplitude": tail.amplitude, "k": tail.k,
                              "ghat": tail.ghat}, "tail screen")
    return None


def _schoenberg_screen(real: np.ndarray, k: np.ndarray, times: np.ndarray, dim: int) -> Condition | None:
    """ghat < inf Lambda_N somewhere on the (k, t) grid disproves C1 in N (screen 3).

    The elementary bound inf Lambda_min(N,3) <= inf Lambda_N decides the clear cases without scipy's Bessel
    functions; only a negative ghat above that bound needs inf Lambda_N itself.
    """
    ti, si = np.unravel_index(int(np.argmin(real)), real.shape)
    value = float(real[ti, si])
    if value >= -positivity.GHAT_ACCURACY:
        return None  # a non-negative ghat is above every (negative) floor
    floor = positivity.elementary_floor(dim)
    if value >= floor.value - positivity.GHAT_ACCURACY:
        floor = positivity.schoenberg_floor(dim)
        if value >= floor.value - positivity.GHAT_ACCURACY:
            return None
    bound = "" if floor.dim == dim else f" <= inf Lambda_{dim} (Lambda_{dim} averages Lambda_{floor.dim})"
    return Condition("C1", FAIL, f"screen 3 (Schoenberg): ghat({k[si]:.4g}, {times[ti]:g}) = {value:.6g} < "
                                 f"inf Lambda_{floor.dim} = {floor.value:.6g}{bound}: no positive radial density "
                                 f"in N = {dim} has this Fourier transform",
                     {"k": float(k[si]), "t": float(times[ti]), "ghat": value, "schoenberg_floor": floor.value,
                      "schoenberg_floor_dim": floor.dim}, "Schoenberg screen on a (k, t) grid")


def _one_dimensional(numeric: Dispersion) -> Condition:
    """The 1-D kernel: Riemann closed form where it applies, else FFT. FAIL in every N if negative."""
    riemann = positivity.riemann_kernel(numeric)
    if riemann is not None:
        form = (f"1-D kernel of lambda^2 + {riemann.b:.6g} lambda + {riemann.c:.6g}^2 s + {riemann.d:.6g} with "
                f"p = phi_t + {riemann.offset + riemann.b / 2:.6g} phi: atoms e^(-bt/2)/2 at x = +-ct "
                "plus a Bessel expression inside the cone")
        if riemann.certified_positive():
            return Condition("C1", PASS, f"{form}; beta - b/2 = {riemann.offset:.6g} >= 0 and b^2/4 >= d make every "
                                         "term (atoms, I_0, I_1) non-negative for all t", None, RIEMANN_METHOD)
        worst = riemann.most_negative(positivity.TIME_GRID)
        if worst is not None:
            x, t, value = worst
            normalised = value / numeric.numeric_mass(t).real
            return Condition("C1", FAIL, f"{form}; it is negative at x = {x:.6g}, t = {t:g}: p = {normalised:.6g} "
                                         "(normalised)", {"x": x, "t": t, "p": normalised}, RIEMANN_METHOD)
        return Condition("C1", UNDECIDED, f"{form}; no negative value on the (x, t) grid but no certificate", None,
                         RIEMANN_METHOD)
    checked = []
    for t in positivity.TIME_GRID[[0, 3, 4]]:  # t = 1, 0.1, 10
        kernel = positivity.kernel_1d(numeric, float(t))
        if kernel is None:
            return Condition("C1", UNDECIDED, f"ghat does not decay at t = {t:g} (singular part): the 1-D kernel "
                                              "has no FFT and no closed form here", None, "FFT 1-D kernel")
        error = 3.0 * kernel.truncation_error + 1e-10 * abs(kernel.p_zero)
        agrees = kernel.p_min_fine is not None and \
            abs(kernel.p_min_fine - kernel.p_min) <= 0.01 * abs(kernel.p_min) + error
        if kernel.p_min < -error and agrees:
            return Condition("C1", FAIL, f"the 1-D kernel is negative: p({kernel.x_min:.6g}, {t:g}) = "
                                         f"{kernel.p_min:.6g} against p(0, {t:g}) = {kernel.p_zero:.6g}",
                             {"x": kernel.x_min, "t": float(t), "p": kernel.p_min, "p_at_zero": kernel.p_zero,
                              "p_doubled_grid": kernel.p_min_fine, "truncation_error": kernel.truncation_error},
                             FFT_METHOD)
        checked.append(t)
    return Condition("C1", UNDECIDED, f"no negative value of the 1-D kernel at t = "
                                      f"{', '.join(f'{t:g}' for t in checked)} (numerics, not a proof)", None,
                     "FFT 1-D kernel")

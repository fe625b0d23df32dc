"""The prior: the small-k law lambda*(0) - lambda*(k) ~ scale k^alpha of the gap, and its k -> oo limit."""
from __future__ import annotations

import math

import sympy as sp

from ..spec.spec import S
from .dispersion import Dispersion
from .smoothing import _Gap, _large_k_gap, _small_k_exponent
from .verdicts import FAIL, Condition, Prior


# ---------------------------------------------------------------------------------------------- prior
def _prior(disp: Dispersion, gap: _Gap, smoothing: Condition) -> Prior:
    if disp.augmented_dims is not None:
        D = sp.sympify(disp.augmented_dims).xreplace(disp.spec.parameter_values())
        return Prior("student_t", 1.0, None, math.inf,
                     f"multivariate Student-t with D = {sp.sstr(D)} degrees of freedom, scale c t / sqrt(D) "
                     "(PFGM++), whatever t")
    large = _large_k_gap(gap.values) if gap.values is not None else None
    if smoothing.status == FAIL:
        return Prior(None, None, None, large, "no prior: the PDE does not smooth (C2 fails)")
    alpha_scale = None
    if gap.symbolic is not None and gap.symbolic != 0:
        leading = _lowest_power(gap.symbolic)  # exact and cheap for sums of c s^p
        if leading is None and not gap.symbolic.xreplace(disp.spec.parameter_values()).free_symbols - {S}:
            leading = _leading_term_in_mpmath(gap.symbolic.xreplace(disp.spec.parameter_values()))
        # as_leading_term costs ~0.1-0.5 s on sums of powers, but ran for minutes on the Re() of a branch with free
        # parameters (Abs / atan2 of a polynomial, e.g. u_tt + pi p^2 u_txx = lap u): only without numbers, and
        # only on expressions free of those functions
        if leading is None and gap.values is None and not gap.symbolic.has(*UNBOUNDED_SERIES_FUNCTIONS):
            try:
                leading = gap.symbolic.as_leading_term(S).as_coeff_exponent(S)
            except (NotImplementedError, ValueError, TypeError):  # e.g. Abs has no leading-term routine
                leading = None
        if leading is not None and not leading[0].has(S) and leading[1].is_Rational and leading[1] > 0:
            coefficient = leading[0].xreplace(disp.spec.parameter_values())
            alpha_scale = (float(2 * leading[1]), coefficient)
    if alpha_scale is None and gap.values is not None:
        alpha_scale = _small_k_exponent(gap.values)
        if alpha_scale is not None and gap.symbolic is not None:
            # the grid's gap loses ~1e-8 to cancellation at k = 1e-4; with f known, read the scale off
            # f(s) / s^(alpha/2) at s = 1e-20 in 60-digit arithmetic instead (next-order terms ~1e-20)
            tiny = sp.Float("1e-20", 60)
            ratio = (gap.symbolic / S ** sp.nsimplify(alpha_scale[0] / 2)).xreplace(disp.spec.parameter_values())
            value = sp.N(ratio.xreplace({S: tiny}), 60)
            if value.is_number and value.is_real:
                alpha_scale = (alpha_scale[0], float(value))
    if alpha_scale is None:
        return Prior(None, None, None, large, "small-k behaviour not read off")
    alpha, a = alpha_scale
    scale = float(a) if not isinstance(a, sp.Expr) or a.is_number else None
    a_text = f"{scale:.6g}" if scale is not None else sp.sstr(a)
    if alpha == 2:
        return Prior("gaussian", alpha, scale, large, f"Gaussian: ghat ~ exp(-{a_text} t k^2) at small k, variance "
                                                      f"2 * {a_text} * t per coordinate at large t")
    if alpha == 1:
        return Prior("cauchy", alpha, scale, large, f"Cauchy: ghat ~ exp(-{a_text} t k) at small k, scale "
                                                    f"{a_text} * t at large t")
    if 0 < alpha < 2:
        return Prior("stable", alpha, scale, large, f"isotropic {alpha:g}-stable: ghat ~ exp(-{a_text} t k^{alpha:g})"
                                                    f" at small k, scale ({a_text} t)^(1/{alpha:g})")
    return Prior(None, alpha, scale, large, f"ghat ~ exp(-{a_text} t k^{alpha:g}) at small k with alpha > 2 is not "
                                            "the characteristic function of any probability law: no prior")


UNBOUNDED_SERIES_FUNCTIONS = (sp.Abs, sp.atan2, sp.arg, sp.re, sp.im, sp.sign)
LEADING_S = (sp.Rational(1, 10**60), sp.Rational(1, 10**58))  # far below any parameter scale (values >= 1e-12)


def _leading_term_in_mpmath(expr: sp.Expr) -> tuple[sp.Expr, sp.Rational] | None:
    """(coefficient, power) of gap ~ a s^p as s -> 0, read off at s = 1e-60 and 1e-58 with SymPy's adaptive
    precision (evalf re-evaluates cancelling differences such as sqrt(s + m^2) - m, m = 1e11, to 30 digits).
    The power is rounded to a fraction with denominator <= 64; None when the two points disagree."""
    try:
        g1, g2 = (sp.N(expr.xreplace({S: s}), 30) for s in LEADING_S)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (g1.is_real and g2.is_real and g1 > 0 and g2 > 0):
        return None
    slope = float(sp.log(g2 / g1) / sp.log(LEADING_S[1] / LEADING_S[0]))
    power = sp.Rational(round(slope * 64), 64)
    if power <= 0 or abs(slope - float(power)) > 1e-6:
        return None
    return sp.Float(g1 / LEADING_S[0] ** power, 15), power


def _lowest_power(expr: sp.Expr) -> tuple[sp.Expr, sp.Rational] | None:
    """(coefficient, power) of the lowest positive power of s when expr is a sum of c * s^p, else None."""
    best = None
    for term in sp.Add.make_args(sp.expand(expr)):
        coefficient, power = term.as_coeff_exponent(S)
        if coefficient.has(S) or not power.is_Rational:
            return None
        if power > 0 and (best is None or power < best[1]):
            best = (coefficient, power)
    return best

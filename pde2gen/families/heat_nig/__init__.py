"""The heat kernel convolved with a normal-inverse-Gaussian (or Cauchy) one kernel family: this declaration, its
NumPy/SciPy reference twin (reference.py) and its torch runtime (runtime.py, read as text by the renderer and
inlined into generated modules; never imported by the compiler)."""
from __future__ import annotations

import sympy as sp

from ..declaration import FamilyInfo, Shape


def _recognise(shape: Shape):
    """kappa s + c sqrt(s) or kappa s + c (sqrt(s + m^2) - m): the sum of the heat and one Cauchy/NIG
    subordinator (V = 2 kappa t + X, independent draws)."""
    if shape.route != "semigroup" or 1 not in shape.powers:
        return None
    kappa = shape.powers[1]
    others = {p: c for p, c in shape.powers.items() if p != 1}
    if len(others) + len(shape.nig) != 1 or not (set(others) == {sp.Rational(1, 2)} or len(shape.nig) == 1):
        return None
    if shape.nig:
        (m, c), = shape.nig.items()
    else:
        m, c = 0.0, others[sp.Rational(1, 2)]
    what = "Cauchy" if m == 0 else f"NIG (m = {m:.6g})"
    return {"kappa": kappa, "c": c, "m": m}, (f"f(s) = {kappa:.6g} s + {c:.6g} (sqrt(s + m^2) - m), m = {m:.6g}: heat "
                                              f"kernel convolved with {what} (V = 2 kappa t + X, independent draws)")


def _describe(p: dict) -> str:
    other = "Cauchy (PFGM)" if p["m"] == 0 else f"Yukawa (NIG, m = {p['m']:.6g})"
    return (f"diffusion (kappa = {p['kappa']:.6g}) convolved with {other} of speed c = {p['c']:.6g}: "
            "the sum of the two subordinators")


FAMILY = FamilyInfo(
    name="heat_nig",
    parameters=("kappa", "c", "m"),
    runtime_class="HeatNIGFamily",
    ghat_text="exp(-t [kappa k^2 + c (sqrt(k^2 + m^2) - m)]), m >= 0 (m = 0: heat plus Cauchy)",
    sampler="V = 2 kappa t + X, X ~ InverseGaussian(tau/m, tau^2), tau = c t (m = 0: X = tau^2 / Z^2)",
    velocity="quantile couplings summed: (V_dot / (2 V)) d, V_dot = 2 kappa + (2 X / t) [1 - m sqrt(pi X/2) "
             "erfcx((m X + tau)/sqrt(2 X))]",
    sigma="sqrt(2 kappa t + tau^2 / (1 + m tau))",
    kernel=("E_X[N(d; 0, (2 kappa t + X) I)], X ~ InverseGaussian(c t / m, (c t)^2) (m = 0: the Levy law "
            "of (c t)^2 / Z^2): the heat kernel convolved with the NIG (Cauchy) kernel"),
    log_kernel="log of that one-dimensional mixture, by the trapezoid rule in log X on the integrand's support",
    prior=lambda p, t_max: ("y + sqrt(2 kappa t_max + X) eps, X ~ InverseGaussian(c t_max / m, (c t_max)^2)"
                            + (" (heavy-tailed: Cauchy component)" if p["m"] == 0 else "")),
    describe=_describe,
    ghat=lambda p, s, t: sp.exp(-t * (p["kappa"] * s + p["c"] * (sp.sqrt(s + p["m"] ** 2) - p["m"]))),
    recognise=_recognise,
    velocity_note="  (exact coupling; without its latent: the posterior mean given d)",
    subordinated=True,
)

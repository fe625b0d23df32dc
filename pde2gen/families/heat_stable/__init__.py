"""The heat kernel convolved with an isotropic alpha-stable one: this declaration, its NumPy/SciPy reference twin
(reference.py) and its torch runtime (runtime.py, read as text by the renderer and inlined into generated
modules; never imported by the compiler)."""
from __future__ import annotations

import sympy as sp

from ..declaration import FamilyInfo, Shape


def _recognise(shape: Shape):
    """kappa s + kappa2 s^beta, 0 < beta < 1, beta != 1/2 (heat plus Cauchy is heat_nig with m = 0): the sum of
    the heat and one stable subordinator (V = 2 kappa t + 2 (kappa2 t)^(2/alpha) S, independent draws)."""
    if shape.route != "semigroup" or shape.nig or 1 not in shape.powers or len(shape.powers) != 2:
        return None
    kappa = shape.powers[1]
    (power, kappa2), = ((p, c) for p, c in shape.powers.items() if p != 1)
    if not (0 < power < 1) or power == sp.Rational(1, 2):
        return None
    alpha = float(2 * power)
    reason = (f"f(s) = {kappa:.6g} s + {kappa2:.6g} s^({power}): heat kernel convolved with the isotropic "
              f"{alpha:.6g}-stable one (V = 2 kappa t + 2 (kappa2 t)^(2/alpha) S, independent draws)")
    return {"kappa": kappa, "kappa2": kappa2, "alpha": alpha}, reason


FAMILY = FamilyInfo(
    name="heat_stable",
    parameters=("kappa", "kappa2", "alpha"),
    runtime_class="HeatStableFamily",
    ghat_text="exp(-t [kappa k^2 + kappa2 k^alpha]), 0 < alpha < 2",
    sampler="V = 2 kappa t + 2 (kappa2 t)^(2/alpha) S, S positive (alpha/2)-stable (Kanter)",
    velocity="couplings summed, S fixed: (V_dot / (2 V)) d, V_dot = 2 kappa + (2/alpha) (V - 2 kappa t) / t",
    sigma="sqrt(2 kappa t + 2 median(S) (kappa2 t)^(2/alpha))",
    kernel=("E_S[N(d; 0, (2 kappa t + 2 (kappa2 t)^(2/alpha) S) I)], S positive (alpha/2)-stable: the heat kernel "
            "convolved with the alpha-stable one"),
    log_kernel="log of that one-dimensional mixture over the Zolotarev density of S, by the trapezoid rule in log S",
    prior=lambda p, t_max: "y + sqrt(2 kappa t_max + 2 (kappa2 t_max)^(2/alpha) S) eps (heavy-tailed: stable component)",
    describe=lambda p: (f"diffusion (kappa = {p['kappa']:.6g}) convolved with fractional diffusion (alpha = "
                        f"{p['alpha']:.6g}, kappa2 = {p['kappa2']:.6g}): the sum of the two subordinators"),
    ghat=lambda p, s, t: sp.exp(-t * (p["kappa"] * s + p["kappa2"] * s ** (p["alpha"] / 2))),
    recognise=_recognise,
    velocity_note="  (exact coupling; without its latent S: the posterior mean given d)",
    subordinated=True,
)

"""The isotropic alpha-stable (fractional diffusion) kernel family: this declaration, its NumPy/SciPy reference
twin (reference.py) and its torch runtime (runtime.py, read as text by the renderer and inlined into generated
modules; never imported by the compiler)."""
from __future__ import annotations

import sympy as sp

from ..declaration import FamilyInfo, Shape


def _recognise(shape: Shape):
    if shape.route != "semigroup" or shape.nig or len(shape.powers) != 1:
        return None
    (power, kappa), = shape.powers.items()
    if not (0 < power < 1) or power == sp.Rational(1, 2):
        return None
    alpha = float(2 * power)
    return ({"kappa": kappa, "alpha": alpha},
            f"f(s) = {kappa:.6g} s^({power}): isotropic {alpha:.6g}-stable (fractional diffusion)")


FAMILY = FamilyInfo(
    name="stable",
    parameters=("kappa", "alpha"),
    runtime_class="StableFamily",
    ghat_text="exp(-kappa t k^alpha), 0 < alpha < 2",
    sampler="V = 2 (kappa t)^(2/alpha) S, S positive (alpha/2)-stable (Kanter)",
    velocity="d / (alpha t)",
    sigma="sqrt(2 median(S)) (kappa t)^(1/alpha)",
    kernel="E_S[N(d; 0, 2 (kappa t)^(2/alpha) S I)], S positive (alpha/2)-stable: no closed form",
    log_kernel="log of the Zolotarev-density mixture, by quadrature in log S",
    prior=lambda p, t_max: "y + sqrt(2 (kappa t_max)^(2/alpha) S) eps (isotropic alpha-stable, heavy-tailed)",
    describe=lambda p: (f"fractional diffusion (-Lap)^(alpha/2) with alpha = {p['alpha']:.6g}, "
                        f"kappa = {p['kappa']:.6g}"),
    ghat=lambda p, s, t: sp.exp(-p["kappa"] * t * s ** (p["alpha"] / 2)),
    recognise=_recognise,
    subordinated=True,
    ancestral_denoiser_exact=True,
)

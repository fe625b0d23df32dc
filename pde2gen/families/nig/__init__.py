"""The normal-inverse-Gaussian (Yukawa) kernel family: this declaration, its NumPy/SciPy reference twin
(reference.py) and its torch runtime (runtime.py, read as text by the renderer and inlined into generated
modules; never imported by the compiler)."""
from __future__ import annotations

import math

import sympy as sp

from ..declaration import FamilyInfo, Shape


def _recognise(shape: Shape):
    if shape.route == "semigroup" and not shape.powers and len(shape.nig) == 1:
        (m, c), = shape.nig.items()
        return {"c": c, "m": m}, f"f(s) = {c:.6g} (sqrt(s + m^2) - m), m = {m:.6g}: normal inverse Gaussian (Yukawa)"
    return None


def _weights(p: dict, t_min: float, t_max: float, reaction: str) -> str:
    spread = [1.0 / math.sqrt(max(p["m"] * p["c"] * t, 1e-300)) for t in (t_min, t_max)]
    return (f"R = ({reaction}) phi is not proportional to p (the death rate R/p varies in x): the "
            "default velocity is the quantile coupling, a pure transport of the normalised kernel (no weights). "
            "The PDE's own flow J/p = d/t would need importance weights d log w/dt = R/p ~ m^2 V/t, whose "
            f"relative spread ~ 1/sqrt(m c t) is {spread[0]:.6g} at t_min and {spread[1]:.6g} at "
            "t_max: the weights degenerate unless m c t >> 1 (monitor the ESS if used)")


FAMILY = FamilyInfo(
    name="nig",
    parameters=("c", "m"),
    runtime_class="NIGFamily",
    ghat_text="exp(-c t (sqrt(k^2 + m^2) - m))",
    sampler="V ~ InverseGaussian(mean tau/m, shape tau^2), tau = c t  (Michael-Schucany-Haas)",
    velocity="quantile coupling: (d/t) [1 - m sqrt(pi V/2) erfcx((m V + tau)/sqrt(2 V))]",
    sigma="tau / sqrt(1 + m tau)",
    kernel=("2 e^(m tau) (2 pi)^(-(N+1)/2) m^((N+1)/2) tau r^(-(N+1)/2) K_((N+1)/2)(m r), tau = c t, "
            "r = sqrt(|d|^2 + tau^2)"),
    log_kernel=("log 2 + m tau - ((N+1)/2) log(2 pi) + ((N+1)/2) log m + log tau - ((N+1)/2) log r "
                "+ log K_((N+1)/2)(m r)  (large order: uniform Debye expansion)"),
    prior=lambda p, t_max: "y + sqrt(V) eps, V ~ InverseGaussian(c t_max / m, (c t_max)^2)",
    describe=lambda p: f"Yukawa with m = {p['m']:.6g}, time rescaled by c = {p['c']:.6g}",
    ghat=lambda p, s, t: sp.exp(-p["c"] * t * (sp.sqrt(s + p["m"] ** 2) - p["m"])),
    recognise=_recognise,
    velocity_note="  (exact coupling; without its latent: the posterior mean given d)",
    weights=_weights,
    subordinated=True,
)

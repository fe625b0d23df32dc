"""The Cauchy (Poisson, PFGM) kernel family: this declaration, its NumPy/SciPy reference twin (reference.py) and
its torch runtime (runtime.py, read as text by the renderer and inlined into generated modules; never imported
by the compiler)."""
from __future__ import annotations

import sympy as sp

from ...citations import PFGM
from ..declaration import FamilyInfo, Shape


def _recognise(shape: Shape):
    if shape.route == "semigroup" and not shape.nig and set(shape.powers) == {sp.Rational(1, 2)}:
        c = shape.powers[sp.Rational(1, 2)]
        return {"c": c}, f"f(s) = {c:.6g} sqrt(s): Cauchy (Poisson / PFGM)"
    if shape.route == "radial_augmentation" and shape.D == 1:
        return {"c": shape.c}, f"radial augmentation with D = 1 is Poisson: f(s) = {shape.c:.6g} sqrt(s) (Cauchy)"
    return None


FAMILY = FamilyInfo(
    name="cauchy",
    parameters=("c",),
    runtime_class="CauchyFamily",
    ghat_text="exp(-c t k)",
    sampler="V = (c t)^2 / Z^2, Z ~ N(0,1)  (N-dimensional Cauchy, scale c t)",
    velocity="d / t",
    sigma="c t",
    kernel="Gamma((N+1)/2) c t / (pi^((N+1)/2) (|d|^2 + (c t)^2)^((N+1)/2))",
    log_kernel="lgamma((N+1)/2) - ((N+1)/2) log(pi) + log(c t) - ((N+1)/2) log(|d|^2 + (c t)^2)",
    prior=lambda p, t_max: "y + multivariate Cauchy of scale c t_max (radii heavy-tailed; not clipped)",
    describe=lambda p: f"PFGM (D = 1) with time rescaled by c = {p['c']:.6g}",
    ghat=lambda p, s, t: sp.exp(-p["c"] * t * sp.sqrt(s)),
    recognise=_recognise,
    subordinated=True,
    ancestral_denoiser_exact=True,
    citations=(PFGM,),
)

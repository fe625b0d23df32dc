"""The Kac product (telegraph equation, product construction) kernel family: this declaration, its NumPy/SciPy
reference twin (reference.py) and its torch runtime (runtime.py, read as text by the renderer and inlined into
generated modules; never imported by the compiler)."""
from __future__ import annotations

import sympy as sp

from ...citations import KAC
from ..declaration import FamilyInfo, Shape


def _recognise(shape: Shape):
    if shape.route == "telegraph":
        return {"a": shape.a, "c": shape.c}, (f"{shape.context}: lambda^2 + 2 a lambda + c^2 s with a = {shape.a:.6g}, "
                                              f"c = {shape.c:.6g} (Kac process)")
    return None


def _ghat(p, s, t):
    """e^{-a t}[cosh(t W) + a sinh(t W) / W] of one coordinate, W = sqrt(a^2 - c^2 s); sinh(t W) / (t W) as
    sinc(i t W), finite at W = 0 and real on both sides of it."""
    w = sp.sqrt(p["a"] ** 2 - p["c"] ** 2 * s)
    return sp.exp(-p["a"] * t) * (sp.cosh(w * t) + p["a"] * t * sp.sinc(sp.I * w * t))


FAMILY = FamilyInfo(
    name="kac_product",
    parameters=("a", "c"),
    runtime_class="KacProductFamily",
    ghat_text="prod_i e^{-a t}[cosh(t W_i) + a sinh(t W_i)/W_i],  W_i = sqrt(a^2 - c^2 k_i^2)",
    sampler="per coordinate: n ~ Poisson(a t); n = 0: +-c t; else c(2 t Beta(ceil((n+1)/2), floor((n+1)/2)) - t) * sign",
    velocity="per coordinate: d / (t + (r/c) I0(z)/I1(z)), r = sqrt(c^2 t^2 - d^2), z = a r / c; +-c on the atoms",
    sigma="sqrt((c^2/a) [t - (1 - exp(-2 a t)) / (2 a)])",
    kernel=("prod_i [(a e^(-a t) / 2c)(I0(z_i) + a t I1(z_i)/z_i) on |d_i| < c t, z_i = a sqrt(c^2 t^2 - d_i^2)/c] "
            "+ atoms e^(-a t)/2 at d_i = +-c t"),
    log_kernel="sum_i of log a.c. density (|d_i| < c t) or log(e^(-a t)/2) on an atom (via i0e, i1e)",
    prior=lambda p, t_max: "y + N independent Kac coordinates at t_max, in [-c t_max, c t_max]",
    describe=lambda p: f"Kac process (persistent random walk) with a = {p['a']:.6g}, c = {p['c']:.6g}",
    ghat=_ghat,
    recognise=_recognise,
    isotropic=False,
    bounded_support=True,
    linear_path_schedule="identity",  # the Kac flow as published: kernel time g(t) = t
    atoms=("none (R = 0); each coordinate has atoms e^(-a t)/2 at +-c t that feed the a.c. part at the light "
           "cone: they are sampled explicitly in the latent and move at +-c"),
    citations=(KAC,),
)

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


# The generated test's exact one-coordinate law: the Kac density by SciPy's Bessel functions plus the two atoms,
# independent of the runtime's sampler.
_TEST_COORDINATE_LAW = """\
    special = pytest.importorskip("scipy.special")
    import numpy as np

    a, c = process.family_parameters["a"], process.family_parameters["c"]
    front = c * g
    grid = np.linspace(-front, front, 200_001)
    r = np.sqrt(np.clip(front**2 - grid**2, 0.0, None))
    z = a * r / c
    # (a e^{-a g} / 2c) [I0(z) + a g I1(z) / z] with exponentially scaled Bessel functions
    ratio = np.where(z > 1e-8, special.i1e(z) / np.where(z > 1e-8, z, 1.0), 0.5 * np.exp(-z))
    density = a / (2 * c) * np.exp(z - a * g) * (special.i0e(z) + a * g * ratio)
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    atom = math.exp(-a * g) / 2

    def cdf(x):
        inside = atom + np.interp(x, grid, cumulative)
        return np.where(x < -front, 0.0, np.where(x >= front, 1.0, inside))

    return cdf, ((-front, atom), (front, atom))
"""

# The model card's paragraph on the linear path (bench/paths.py's measurements for this family).
_LINEAR_PATH_NOTE = (
    "for Kac, the pde2gen repository's bench/paths.py measured this path better at few steps: on three 2-D toys",
    "(3 seeds) its samples were closer to the data than the ve path's at 5, 10 and 20 network evaluations with Euler",
    "and Heun, and on par on average at 50. On 8x8 digits (1 seed) g = t was worse than ve from 10 evaluations on",
    "(Frechet distance 210 against 186 at Euler 20) while the quadratic clock (`--path-schedule quadratic`) was the",
    "best model measured (135 at Euler 20; flow matching 206, EDM 192). The default stays ve until larger runs",
    "confirm this.",
)

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
    front_speed_parameter="c",
    test_coordinate_law=_TEST_COORDINATE_LAW,
    linear_path_note=_LINEAR_PATH_NOTE,
    linear_path_note_brief=("for Kac the linear path, the Kac-flow paper's, was better at 5-20 network evaluations "
                            "on the 2-D toys and on par on average at 50; on 8x8 digits g = t was worse from 10 "
                            "evaluations on, the quadratic clock `--path-schedule quadratic` better at every NFE"),
    linear_path_schedule="identity",  # the Kac flow as published: kernel time g(t) = t
    atoms=("each coordinate has atoms e^(-a t)/2 at +-c t that feed the a.c. part at the light cone: they are "
           "sampled explicitly in the latent and move at +-c"),
    citations=(KAC,),
)

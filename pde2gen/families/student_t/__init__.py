"""The multivariate Student-t (PFGM++) kernel family: this declaration, its NumPy/SciPy reference twin
(reference.py) and its torch runtime (runtime.py, read as text by the renderer and inlined into generated
modules; never imported by the compiler)."""
from __future__ import annotations

import sympy as sp

from ...citations import PFGM, PFGM_PP
from ..declaration import FamilyInfo, Shape


def _recognise(shape: Shape):
    if shape.route == "radial_augmentation" and shape.D != 1:
        c, D = shape.c, shape.D
        return {"c": c, "D": D}, (f"Poisson in N + D dimensions read at radius t, D = {D:.6g}: Student-t with D "
                                  f"degrees of freedom and scale {c:.6g} t / sqrt(D) (PFGM++)")
    return None


def _ghat(p, s, t):
    u = p["c"] * t * sp.sqrt(s)
    half = p["D"] / 2
    return 2 ** (1 - half) * u**half * sp.besselk(half, u) / sp.gamma(half)


# The generated test's exact one-coordinate law (SciPy's Student t, independent of the runtime's sampler).
_TEST_COORDINATE_LAW = """\
    stats = pytest.importorskip("scipy.stats")
    c, D = process.family_parameters["c"], process.family_parameters["D"]
    if math.isinf(D):
        return (lambda x: stats.norm.cdf(x, scale=c * g)), ()
    return (lambda x: stats.t.cdf(x, D, scale=c * g / math.sqrt(D))), ()
"""

FAMILY = FamilyInfo(
    name="student_t",
    parameters=("c", "D"),
    runtime_class="StudentTFamily",
    ghat_text="2^(1-D/2) u^(D/2) K_{D/2}(u) / Gamma(D/2),  u = c t k",
    sampler="V = (c t)^2 / chi2_D  (multivariate Student-t, D degrees of freedom, scale c t / sqrt(D))",
    velocity="d / t",
    sigma="c t / sqrt(D)",
    kernel="Gamma((N+D)/2) / (Gamma(D/2) (pi D)^(N/2) s^N) (1 + |d|^2 / (D s^2))^(-(N+D)/2), s = c t / sqrt(D)",
    log_kernel="lgamma((N+D)/2) - lgamma(D/2) - (N/2) log(pi D) - N log s - ((N+D)/2) log1p(|d|^2 / (D s^2))",
    prior=lambda p, t_max: "y + multivariate Student-t, D degrees of freedom, scale c t_max / sqrt(D)",
    describe=lambda p: f"PFGM++ with D = {p['D']:.6g} (speed c = {p['c']:.6g}); D = 1 is PFGM",
    ghat=_ghat,
    recognise=_recognise,
    test_coordinate_law=_TEST_COORDINATE_LAW,
    checked_against_analysis=False,  # the analysis' numeric ghat of PFGM++ is this formula itself
    citations=(PFGM, PFGM_PP),
)

"""The Gaussian (heat) kernel family: this declaration, its NumPy/SciPy reference twin (reference.py) and its
torch runtime (runtime.py, read as text by the renderer and inlined into generated modules; never imported by
the compiler)."""
from __future__ import annotations

import sympy as sp

from ..declaration import FamilyInfo, Shape


def _recognise(shape: Shape):
    if shape.route == "semigroup" and not shape.nig and set(shape.powers) == {1}:
        kappa = shape.powers[1]
        return {"kappa": kappa}, f"f(s) = {kappa:.6g} s: Gaussian (diffusion)"
    return None


def _describe(p: dict) -> str:
    kappa = p["kappa"]
    rescale = "" if abs(kappa - 1) < 1e-12 else f", time rescaled t -> {kappa:.6g} t"
    return f"same normalised kernel as diffusion: a rescaled diffusion, kappa = {kappa:.6g}{rescale}"


# The generated test's exact one-coordinate law (erf, independent of the runtime's sampler).
_TEST_COORDINATE_LAW = """\
    scale = math.sqrt(2 * process.family_parameters["kappa"] * g)
    return (lambda x: 0.5 * (1 + torch.special.erf(torch.as_tensor(x) / (scale * math.sqrt(2)))).numpy()), ()
"""

FAMILY = FamilyInfo(
    name="gaussian",
    parameters=("kappa",),
    runtime_class="GaussianFamily",
    ghat_text="exp(-kappa t k^2)",
    sampler="V = 2 kappa t",
    velocity="d / (2 t)",
    sigma="sqrt(2 kappa t)",
    kernel="(4 pi kappa t)^(-N/2) exp(-|d|^2 / (4 kappa t))",
    log_kernel="-(N/2) log(4 pi kappa t) - |d|^2 / (4 kappa t)",
    prior=lambda p, t_max: f"y + N(0, 2 kappa t_max I) = N(0, {2 * p['kappa'] * t_max:.6g} I)",
    describe=_describe,
    ghat=lambda p, s, t: sp.exp(-p["kappa"] * t * s),
    recognise=_recognise,
    product_is_itself=True,  # a product of independent 1-D Gaussians is the isotropic Gaussian
    gaussian_kernel=True,
    subordinated=True,
    ancestral_denoiser_exact=True,
    test_coordinate_law=_TEST_COORDINATE_LAW,
)

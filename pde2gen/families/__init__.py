"""The kernel families pde2gen can derive, sample and transport exactly: the contract between the
derive stage (which recognises a family and its parameters from the analysis) and the runtimes that
implement it. Each family has a folder ``pde2gen/families/<name>/``: its NumPy/SciPy reference
(``reference.py``, for the compiler's own checks, reached through ``pde2gen.reference``) and its torch runtime
(``runtime.py``, read as text and inlined into every generated ``process.py``; the compiler never imports it).

Notation: data point y, time t (the PDE's own variable), displacement d = x - y in R^N, eps ~ N(0, I_N).
Every isotropic family is a subordinated Gaussian  d = sqrt(V_t) * eps  with a scalar V_t >= 0
(physics.md §4.1); ``kac_product`` is the product of N independent 1-D Kac laws (physics.md §4.5).
``ghat`` is the normalised Fourier transform of the kernel, ghat(k, t) = p_hat(k, t) / p_hat(0, t).
``sigma`` is the noise level aligned with diffusion (physics.md §4.7): the time grid is uniform in
sigma**(1/rho) as in EDM and mapped back to t, so one set of hyperparameters serves every family.

Parameters are plain floats; each runtime must accept exactly the names listed here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

# The family folders, and runtime_common.py, the torch helpers every runtime.py inlines with it.
FAMILIES_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class FamilyInfo:
    name: str
    parameters: tuple[str, ...]
    ghat: str  # formula, for reports
    sampler: str
    velocity: str
    sigma: str
    isotropic: bool = True
    bounded_support: bool = False  # the kernel lives in a bounded set at every t (Kac: the light cone)


FAMILIES = MappingProxyType(
    {
        "gaussian": FamilyInfo(
            "gaussian",
            ("kappa",),
            ghat="exp(-kappa t k^2)",
            sampler="V = 2 kappa t",
            velocity="d / (2 t)",
            sigma="sqrt(2 kappa t)",
        ),
        "cauchy": FamilyInfo(
            "cauchy",
            ("c",),
            ghat="exp(-c t k)",
            sampler="V = (c t)^2 / Z^2, Z ~ N(0,1)  (N-dimensional Cauchy, scale c t)",
            velocity="d / t",
            sigma="c t",
        ),
        "student_t": FamilyInfo(
            "student_t",
            ("c", "D"),
            ghat="2^(1-D/2) u^(D/2) K_{D/2}(u) / Gamma(D/2),  u = c t k",
            sampler="V = (c t)^2 / chi2_D  (multivariate Student-t, D degrees of freedom, scale c t / sqrt(D))",
            velocity="d / t",
            sigma="c t / sqrt(D)",
        ),
        "nig": FamilyInfo(
            "nig",
            ("c", "m"),
            ghat="exp(-c t (sqrt(k^2 + m^2) - m))",
            sampler="V ~ InverseGaussian(mean tau/m, shape tau^2), tau = c t  (Michael-Schucany-Haas)",
            velocity="quantile coupling: (d/t) [1 - m sqrt(pi V/2) erfcx((m V + tau)/sqrt(2 V))]",
            sigma="tau / sqrt(1 + m tau)",
        ),
        "stable": FamilyInfo(
            "stable",
            ("kappa", "alpha"),
            ghat="exp(-kappa t k^alpha), 0 < alpha < 2",
            sampler="V = 2 (kappa t)^(2/alpha) S, S positive (alpha/2)-stable (Kanter)",
            velocity="d / (alpha t)",
            sigma="sqrt(2 median(S)) (kappa t)^(1/alpha)",
        ),
        "heat_nig": FamilyInfo(
            "heat_nig",
            ("kappa", "c", "m"),
            ghat="exp(-t [kappa k^2 + c (sqrt(k^2 + m^2) - m)]), m >= 0 (m = 0: heat plus Cauchy)",
            sampler="V = 2 kappa t + X, X ~ InverseGaussian(tau/m, tau^2), tau = c t (m = 0: X = tau^2 / Z^2)",
            velocity="quantile couplings summed: (V_dot / (2 V)) d, V_dot = 2 kappa + (2 X / t) [1 - m sqrt(pi X/2) "
                     "erfcx((m X + tau)/sqrt(2 X))]",
            sigma="sqrt(2 kappa t + tau^2 / (1 + m tau))",
        ),
        "kac_product": FamilyInfo(
            "kac_product",
            ("a", "c"),
            ghat="prod_i e^{-a t}[cosh(t W_i) + a sinh(t W_i)/W_i],  W_i = sqrt(a^2 - c^2 k_i^2)",
            sampler="per coordinate: n ~ Poisson(a t); n = 0: +-c t; else c(2 t Beta(ceil((n+1)/2), floor((n+1)/2)) - t) * sign",
            velocity="per coordinate: d / (t + (r/c) I0(z)/I1(z)), r = sqrt(c^2 t^2 - d^2), z = a r / c; +-c on the atoms",
            sigma="sqrt((c^2/a) [t - (1 - exp(-2 a t)) / (2 a)])",
            isotropic=False,
            bounded_support=True,
        ),
    }
)


@dataclass(frozen=True)
class FamilyConfig:
    """A family with its parameters fixed: the plain data that reaches the templates."""

    name: str
    parameters: tuple[tuple[str, float], ...]

    def __post_init__(self):
        info = FAMILIES.get(self.name)
        if info is None:
            raise ValueError(f"unknown family {self.name!r}")
        names = tuple(n for n, _ in self.parameters)
        if names != info.parameters:
            raise ValueError(f"family {self.name} takes parameters {info.parameters}, got {names}")

    @property
    def params(self) -> dict[str, float]:
        return dict(self.parameters)

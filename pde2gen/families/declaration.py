"""What a kernel family declares about itself: ``FamilyInfo`` (one per folder ``pde2gen/families/<name>/``,
as ``FAMILY`` in its ``__init__.py``), and the ``Shape`` the recogniser reads off a PDE for the families to
match.

Everything here is plain data or a pure function of plain numbers (and SymPy for ``ghat``): the stages ask the
family object instead of testing its name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

# ghat is built from these symbols: s = |k|^2 for an isotropic family, s = k_i^2 of one coordinate for a product
# family (ghat is then the product over the coordinates), t the time.
S_SYMBOL = sp.Symbol("s", nonnegative=True)
T_SYMBOL = sp.Symbol("t", positive=True)


@dataclass(frozen=True)
class Shape:
    """The structure the recogniser read off a PDE's dispersion, as plain numbers.

    route "semigroup": ghat = exp(-t f(s)) with f = sum_p powers[p] s^p + sum_m nig[m] (sqrt(s + m^2) - m)
          (powers keyed by SymPy Rationals, nig by m > 0; coefficients positive, f(0) = 0 checked);
    route "telegraph": the symbol A (lambda^2 + 2 a lambda + c^2 s), a, c > 0, in the product construction or
          in one dimension;
    route "radial_augmentation": Poisson A (lambda^2 - c^2 s) in N + D dimensions read at radius t.
    """

    route: str
    powers: dict = field(default_factory=dict)
    nig: dict = field(default_factory=dict)
    a: float | None = None
    c: float | None = None
    D: float | None = None
    context: str = ""  # how the route was reached, for the recognition text


@dataclass(frozen=True)
class FamilyInfo:
    """The declaration of one family (the folder contract, docs/DESIGN.md)."""

    name: str  # the folder name
    parameters: tuple[str, ...]  # names the runtime and the reference accept, in this order
    runtime_class: str  # the torch class in runtime.py
    # --- report texts
    ghat_text: str  # ghat(k, t) as a formula
    sampler: str
    velocity: str
    sigma: str  # sigma(t) as a formula (physics.md §4.7)
    kernel: str  # the kernel, its log, and the prior, for the report and the model card
    log_kernel: str
    prior: Callable[[dict, float], str]  # (parameters, t_max) -> the prior's text
    describe: Callable[[dict], str]  # (parameters) -> what the PDE is equivalent to, for the equivalences
    # --- the mathematics
    ghat: Callable[[dict, sp.Symbol, sp.Symbol], sp.Expr]  # (parameters, s, t) -> ghat, the one closed form
    # (parameters, how it was recognised in one line) if the shape is this family's, else None
    recognise: Callable[[Shape], tuple[dict, str] | None]
    # why the family declines a shape of its kind that it cannot take yet (limits of its tables), else None: the
    # recogniser's "not derivable yet" says it
    refusal: Callable[[Shape], str | None] = lambda shape: None
    isotropic: bool = True
    bounded_support: bool = False  # the kernel lives in a bounded set at every t (Kac: the light cone)
    product_is_itself: bool = False  # the product of its 1-D kernels is the same family (Gaussian)
    gaussian_kernel: bool = False  # the kernel is N(0, 2 kappa t I): the reverse process is the diffusion SDE
    # every coordinate's support is [-v g, v g] at kernel time g, v the parameter named here (a front moving at v)
    front_speed_parameter: str | None = None
    # the displacement is sqrt(V_t) eps with V_t a subordinator; the runtime has sample_mixing_variance(t, gen) -> V
    subordinated: bool = False
    # the conditional velocity is (sigma'/sigma) d for every latent (V_t self-similar), so the ancestral sampler's
    # denoiser read off the velocity is exact
    ancestral_denoiser_exact: bool = False
    # the body of the generated test's coordinate_law(process, g) -> (cdf, atoms) | None: the exact law of one
    # coordinate, written independently of the runtime (Python text, 4-space indented; "" = none)
    test_coordinate_law: str = ""
    # model-card paragraph on the linear path (measurements specific to the family), markdown lines
    linear_path_note: tuple[str, ...] = ()
    linear_path_note_brief: str = ""  # its summary in the ve model card (one markdown line, shown in parentheses)
    velocity_note: str = ""  # appended to the velocity formula
    linear_path_schedule: str = "scale_linear"  # default kernel clock g(t) of the linear path
    atoms: str | None = None  # birth/death text of a family whose kernel has atoms (after the text on R)
    weights: Callable[[dict, float, float, str], str | None] = lambda params, t_min, t_max, reaction: None
    checked_against_analysis: bool = True  # False: the analysis' numeric ghat is this family's formula itself
    citations: tuple[tuple[str, str], ...] = ()  # (citation, what it contributes)


@lru_cache(maxsize=256)
def ghat_numeric(info: FamilyInfo, parameters: tuple[tuple[str, float], ...]):
    """ghat as a NumPy function of (s, t), evaluated in complex arithmetic (branches such as the Kac
    sqrt(a^2 - c^2 s) turn imaginary), from the family's one SymPy closed form."""
    params = {name: sp.Float(value, 17) for name, value in parameters}
    return sp.lambdify((S_SYMBOL, T_SYMBOL), info.ghat(params, S_SYMBOL, T_SYMBOL), "numpy")

"""The kernel families pde2gen can derive, sample and transport exactly: the contract between the
derive stage (which recognises a family and its parameters from the analysis) and the runtimes that
implement it. Each family has a folder ``pde2gen/families/<name>/``: its NumPy/SciPy reference
(``reference.py``, for the compiler's own checks, reached through ``pde2gen.derive.reference``) and its torch runtime
(``runtime.py``, read as text and inlined into every generated ``process.py``; the compiler never imports it).

Notation: data point y, time t (the PDE's own variable), displacement d = x - y in R^N, eps ~ N(0, I_N).
Every isotropic family is a subordinated Gaussian  d = sqrt(V_t) * eps  with a scalar V_t >= 0
(physics.md §4.1); ``kac_product`` is the product of N independent 1-D Kac laws (physics.md §4.5).
``ghat`` is the normalised Fourier transform of the kernel, ghat(k, t) = p_hat(k, t) / p_hat(0, t).
``sigma`` is the noise level aligned with diffusion (physics.md §4.7): the time grid is uniform in
sigma**(1/rho) as in EDM and mapped back to t, so one set of hyperparameters serves every family.

Parameters are plain floats; each runtime must accept exactly the names its declaration lists.

The registry: every sub-package of this folder whose name does not start with "_" is a family; its
``__init__.py`` holds ``FAMILY``, a ``FamilyInfo`` (pde2gen.families.declaration). Adding a family is adding a
folder (docs/DESIGN.md, "Adding a kernel family"); nothing else names it.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .declaration import S_SYMBOL, T_SYMBOL, FamilyInfo, Shape, ghat_numeric

# The family folders, and runtime_common.py, the torch helpers every runtime.py inlines with it.
FAMILIES_DIR = Path(__file__).resolve().parent


def _discover() -> dict[str, FamilyInfo]:
    found = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module.ispkg or module.name.startswith("_"):
            continue
        info = getattr(importlib.import_module(f"{__name__}.{module.name}"), "FAMILY", None)
        if not isinstance(info, FamilyInfo) or info.name != module.name:
            raise ImportError(f"pde2gen/families/{module.name}/__init__.py must define FAMILY = FamilyInfo("
                              f"name={module.name!r}, ...)")
        found[module.name] = info
    return found


FAMILIES = MappingProxyType(_discover())


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

    @property
    def info(self) -> FamilyInfo:
        return FAMILIES[self.name]


__all__ = ["FAMILIES", "FAMILIES_DIR", "S_SYMBOL", "T_SYMBOL", "FamilyConfig", "FamilyInfo", "Shape", "ghat_numeric"]

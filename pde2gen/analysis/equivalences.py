"""Equivalences with known models, from ghat via pde2gen/derive/recognise.py, checked numerically."""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..families import FamilyConfig, ghat_numeric
from ..spec.spec import S
from . import positivity
from .dispersion import S_GRID, Dispersion
from .verdicts import DensitySplit


# ---------------------------------------------------------------------------------------------- equivalences
def _equivalences(disp: Dispersion, numeric: Dispersion | None, split: DensitySplit) -> tuple[str, ...]:
    """Known models with the same normalised kernel, from ghat (recognise.py), each checked numerically."""
    from ..derive.recognise import recognise

    found = []
    if disp.spec.free_parameters():
        symbolic = _symbolic_equivalence(disp.semigroup_exponent)
        if symbolic:
            found.append(symbolic)
    elif numeric is not None:
        recognition = recognise(numeric)
        family = recognition.family
        if family is not None:
            error = _family_ghat_error(numeric, family)
            text = family.info.describe(family.params)
            if error is None:
                found.append(f"{text} (recognised from the structure of the symbol)")
            elif error < 1e-8:
                found.append(f"{text} (ghat matches to {error:.1e} on a (k, t) grid)")
    if split.reaction_kind == "uniform":
        found.append(f"the normalised kernel ignores the uniform reaction: {split.detail}")
    return tuple(found)


def _symbolic_equivalence(f: sp.Expr | None) -> str | None:
    """For parameters without values: f = c s^beta names the family with c symbolic (checked by structure)."""
    if f is None:
        return None
    coefficient, power = sp.expand(f).as_coeff_exponent(S)
    if coefficient.has(S) or not coefficient.is_positive or not power.is_Rational:
        return None
    c = sp.sstr(coefficient)
    if power == 1:
        return f"same normalised kernel as diffusion: a rescaled diffusion, kappa = {c} (by structure: f = {c} s)"
    if power == sp.Rational(1, 2):
        return f"PFGM (D = 1) with time rescaled by c = {c} (by structure: f = {c} sqrt(s))"
    if 0 < power < 1:
        return f"fractional diffusion with alpha = {sp.sstr(2 * power)}, kappa = {c} (by structure)"
    return None


def _family_ghat_error(numeric: Dispersion, family: FamilyConfig) -> float | None:
    """max |ghat - family ghat| over a (k, t) grid, or None when there is no independent closed form to compare
    with (e.g. PFGM++'s numeric ghat is the Student-t formula itself). The family's ghat is its one SymPy
    closed form (pde2gen/families/<name>/__init__.py), evaluated in complex arithmetic."""
    if not family.info.checked_against_analysis:
        return None
    s = S_GRID[::40]
    times = np.array([0.1, 1.0, 3.0])
    g = positivity.normalised_transform(numeric, s, times)
    reference = ghat_numeric(family.info, family.parameters)(s.astype(complex), times[:, None]).real
    return float(np.max(np.abs(g - reference)))

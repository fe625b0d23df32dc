"""Repair candidates: damping an undamped hyperbolic PDE, and imaginary-time (Wick) rotations."""
from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..spec.spec import LAM, PDESpec, Term
from .dispersion import EVOLUTION, Dispersion

DAMPING_RATE = 1  # the 'a' of the damping repair  + 2 a u_t


def _is_undamped_hyperbolic(disp: Dispersion) -> bool:
    if disp.problem_type != EVOLUTION or disp.t_order != 2:
        return False
    coefficients = sp.Poly(disp.symbol, LAM).all_coeffs()
    return coefficients[1] == 0


def _with_damping(spec: PDESpec) -> PDESpec:
    lead = sum(t.coefficient for t in spec.terms if t.t_order == 2 and t.space_power == 0 and t.t_power == 0)
    terms = spec.terms + (Term(2 * DAMPING_RATE * lead, 1),)
    return replace(spec, terms=terms, source=f"{spec.source} + 2*a*u_t (a = {DAMPING_RATE})",
                   problem_type=None)


def _has_complex_coefficients(spec: PDESpec) -> bool:
    values = spec.parameter_values()
    return any(t.coefficient.xreplace(values).is_extended_real is False for t in spec.terms)


def _imaginary_time(spec: PDESpec) -> list[tuple[str, str, PDESpec]]:
    """t -> i t or t -> -i t: the lambda^j coefficient is multiplied by (-i)^j or i^j; keep real results."""
    values = spec.parameter_values()
    out, seen = [], set()
    J = spec.t_order
    for label, unit in (("t -> i t", -sp.I), ("t -> -i t", sp.I)):
        terms = [replace(t, coefficient=sp.expand(t.coefficient * unit**t.t_order)) for t in spec.terms]
        # Multiply the equation by the constant phase that makes the top coefficient positive (Schrödinger's i).
        lead = sum(t.coefficient for t in terms if t.t_order == J and t.t_power == 0).xreplace(values)
        phase = sp.Abs(lead) / lead if lead.is_number and lead != 0 else sp.Integer(1)
        terms = tuple(replace(t, coefficient=sp.expand(t.coefficient * sp.nsimplify(phase))) for t in terms)
        if any(t.coefficient.xreplace(values).is_extended_real is not True for t in terms):
            continue
        key = tuple((t.coefficient, t.t_order, t.space_power, t.t_power, t.screening_mass) for t in terms)
        if key in seen:
            continue
        seen.add(key)
        rotated = replace(spec, terms=terms, problem_type=None, source=f"{spec.source} with {label}")
        factor = "" if phase == 1 else f", then multiply the equation by {sp.sstr(sp.nsimplify(phase))}"
        out.append((f"imaginary time ({label})", (f"Wick rotation {label}: multiply the d_t^j coefficient by "
                                                 f"({sp.sstr(unit)})^j{factor}"), rotated))
    return out

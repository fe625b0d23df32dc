"""Parse stage: text, SymPy expressions or catalog terms -> PDESpec, the one entry point.

The text and SymPy front ends, with the reading rules and how user text is read safely, are pde2gen.spec.frontend;
catalog terms ("wave+damping") are composed by pde2gen.spec.catalog on top of that front end. This module only
picks the way in, so that neither of the two imports the other.
"""
from __future__ import annotations

from collections.abc import Mapping

import sympy as sp

from ..errors import ParseError, UsageError, foreign_errors_as
from .catalog import compose, looks_like_catalog_terms
from .frontend import (
    as_expression,
    check_length,
    check_parameter_name,
    extract_terms,
    from_sympy,
    parameter_items,
    parse_text,
    parse_value,
)
from .spec import PDESpec

__all__ = ["from_sympy", "parse", "parse_text", "parse_value"]


@foreign_errors_as(ParseError, "cannot read the PDE")
def parse(source, *, params: Mapping[str, str | float] | None = None, dim: int = 2,
          construction: str | None = None, problem_type: str | None = None) -> PDESpec:
    """Parse a PDE given as text, a SymPy ``Eq``/expression, or catalog terms ("wave+damping").

    ``params`` give parameter values (numbers or numeric text like "1/2"); they override catalog
    defaults.  ``construction`` None means the catalog entry's construction, else "isotropic".
    ``problem_type`` None leaves it to the analysis.
    """
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise UsageError(f"--dim must be an integer, got {dim!r}")
    defaults: dict[str, sp.Expr] = {}
    catalog_names: tuple[str, ...] = ()
    notes: list[str] = []
    if isinstance(source, str):
        text = source.strip()
        check_length(source)
        if looks_like_catalog_terms(text):
            composition = compose(text)
            expr, defaults, catalog_names = composition.expression, dict(composition.defaults), composition.names
            construction = construction or composition.construction
            notes += composition.notes
        else:
            expr = parse_text(text)
    else:
        expr = as_expression(source)
        text = sp.sstr(source)
    user_values = {}
    for name, value in parameter_items(params):
        check_parameter_name(name)
        user_values[name] = parse_value(value, name)
    extraction = extract_terms(expr, {**defaults, **user_values})
    known = {p.name for p in extraction.parameters}
    unknown = sorted(set(user_values) - known)
    if unknown:
        raise ParseError(f"parameter {unknown[0]!r} does not appear in the PDE",
                         hint=f"its parameters are: {', '.join(sorted(known)) or 'none'}")
    spec = PDESpec(
        terms=extraction.terms,
        parameters=extraction.parameters,
        dim=dim,
        construction=construction or "isotropic",
        problem_type=problem_type,
        source=text,
        catalog=catalog_names,
        notes=tuple(notes) + extraction.notes,
    )
    spec.validate()
    return spec

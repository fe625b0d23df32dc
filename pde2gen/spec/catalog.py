"""The catalog: named PDEs ("equation") and operator terms ("term") in ``catalog/*.toml``, and their sums.

Each file holds one entry::

    name = "telegraph"            # = the file name; '_' and '-' are interchangeable when looked up
    title = "Telegraph equation"
    kind = "equation"             # a whole PDE, or "term": an operator to add to one
    pde = "diff(u,t,2) + 2*a*diff(u,t) = c**2*laplacian(u)"   # parse syntax; a term is an expression
    construction = "product"      # optional
    reference = "arXiv:..."
    physics = "..."
    [parameters]
    a = 9                         # default value, or a table { default = 9, description = "..." }

No verdicts are stored: whether a PDE is s-generative is computed by the analysis.

Composition ("wave+damping"): the operators are summed, each equation read as LHS - RHS and first
multiplied by the unit number that makes its leading time-derivative coefficient positive (so that a
"damping" term damps whichever way the equation was written), each term added to it.  At most one equation;
terms alone are accepted when together they contain a time derivative.  Parameter defaults are merged; on a
conflict the equation's default wins (between terms, the first one's); user values override all of them.
"""
from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import sympy as sp

from ..errors import ParseError
from ..resources import resource_dir
from .frontend import extract_terms, leading_phase, parse_text, parse_value
from .spec import CONSTRUCTIONS, T

KINDS = ("equation", "term")
_REQUIRED_KEYS = {"name", "title", "kind", "pde", "reference", "physics"}
_OPTIONAL_KEYS = {"parameters", "construction"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_UNKNOWN_LIKE = re.compile(r"u(_\w*)?\Z")  # u, u_t, u_xx: PDE text, not a catalog name


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    title: str
    kind: str  # "equation" or "term"
    pde: str
    defaults: Mapping[str, str]  # parameter -> default value (numeric text)
    descriptions: Mapping[str, str]  # parameter -> description (may be missing)
    construction: str | None
    reference: str
    physics: str

    def expression(self) -> sp.Expr:
        """The operator (LHS - RHS for an equation, the expression itself for a term), in ``parse.U``."""
        return parse_text(self.pde)

    def default_values(self) -> dict[str, sp.Expr]:
        return {name: parse_value(value, name) for name, value in self.defaults.items()}


@dataclass(frozen=True)
class Composition:
    """A sum of catalog entries: one operator expression (= 0) with merged parameter defaults."""

    names: tuple[str, ...]
    expression: sp.Expr
    defaults: Mapping[str, sp.Expr]
    construction: str | None
    notes: tuple[str, ...]


def canonical_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _entry_from_toml(path) -> CatalogEntry:
    where = f"catalog file {path.name}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"{where}: invalid TOML ({exc})") from None
    missing = _REQUIRED_KEYS - data.keys()
    extra = data.keys() - _REQUIRED_KEYS - _OPTIONAL_KEYS
    if missing or extra:
        problem = f"missing {sorted(missing)}" if missing else f"unknown keys {sorted(extra)}"
        raise ParseError(f"{where}: {problem}")
    if not all(isinstance(data[key], str) for key in _REQUIRED_KEYS):
        raise ParseError(f"{where}: {', '.join(sorted(_REQUIRED_KEYS))} must be strings")
    if data["name"] != path.stem:
        raise ParseError(f"{where}: name {data['name']!r} differs from the file name")
    if data["kind"] not in KINDS:
        raise ParseError(f"{where}: kind must be one of {KINDS}, got {data['kind']!r}")
    if data["kind"] == "term" and "=" in data["pde"]:
        raise ParseError(f"{where}: a term is an expression, without '='")
    construction = data.get("construction")
    if construction is not None and construction not in CONSTRUCTIONS:
        raise ParseError(f"{where}: construction must be one of {CONSTRUCTIONS}, got {construction!r}")
    defaults, descriptions = {}, {}
    for parameter, spec in data.get("parameters", {}).items():
        if isinstance(spec, dict):
            if set(spec) - {"default", "description"} or "default" not in spec:
                raise ParseError(f"{where}: parameter {parameter} takes 'default' and optional 'description'")
            descriptions[parameter] = str(spec.get("description", ""))
            spec = spec["default"]
        if isinstance(spec, bool) or not isinstance(spec, (int, float, str)):
            raise ParseError(f"{where}: the default of {parameter} must be a number or numeric text")
        defaults[parameter] = spec if isinstance(spec, str) else repr(spec)
    return CatalogEntry(
        name=data["name"],
        title=data["title"],
        kind=data["kind"],
        pde=data["pde"],
        defaults=MappingProxyType(defaults),
        descriptions=MappingProxyType(descriptions),
        construction=construction,
        reference=data["reference"],
        physics=" ".join(data["physics"].split()),
    )


@lru_cache(maxsize=1)
def load_catalog() -> Mapping[str, CatalogEntry]:
    """Every catalog entry by name (read once)."""
    entries = {}
    for path in sorted(resource_dir("catalog").glob("*.toml")):
        entry = _entry_from_toml(path)
        entries[entry.name] = entry
    return MappingProxyType(entries)


def lookup(name: str) -> CatalogEntry:
    """The entry called ``name`` ('klein_gordon' and 'klein-gordon' alike); unknown names suggest close ones."""
    catalog = load_catalog()
    entry = catalog.get(canonical_name(name))
    if entry is None:
        close = difflib.get_close_matches(canonical_name(name), catalog, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ParseError(f"unknown catalog entry {name.strip()!r}",
                         hint=(hint + " " if hint else "") + f"catalog: {', '.join(catalog)}")
    return entry


def looks_like_catalog_terms(text: str) -> bool:
    """True when ``text`` is a '+'-separated list of bare names (no '=', no '(', no u-like word)."""
    if "=" in text or "(" in text:
        return False
    pieces = [piece.strip() for piece in text.split("+")]
    return all(
        _NAME.match(piece) and not any(_UNKNOWN_LIKE.match(word) for word in piece.split("-"))
        for piece in pieces
    )


def compose(text: str) -> Composition:
    """Sum the catalog entries named in ``text`` ("wave+damping"): see the module docstring for the rules."""
    entries = [lookup(piece) for piece in text.split("+")]
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ParseError(f"catalog entry {repeated[0]!r} given twice in {text.strip()!r}")
    equations = [entry for entry in entries if entry.kind == "equation"]
    if len(equations) > 1:
        raise ParseError(f"{text.strip()!r} combines several equations ({', '.join(e.name for e in equations)})",
                         hint="combine one equation with terms, e.g. 'wave+damping'")
    ordered = equations + [entry for entry in entries if entry.kind == "term"]
    defaults: dict[str, sp.Expr] = {}
    notes = []
    for entry in ordered:
        for name, value in entry.default_values().items():
            if name in defaults and defaults[name] != value:
                notes.append(f"parameter {name}: kept the default {defaults[name]}, ignored {entry.name}'s {value}")
            defaults.setdefault(name, value)
    expression = sp.S.Zero
    for entry in ordered:
        operator = entry.expression()
        if entry.kind == "equation" and len(ordered) > 1:
            phase = leading_phase(extract_terms(operator, defaults, normalise=False).terms, defaults)
            if phase is not None and phase != 1:
                operator = sp.expand(operator * sp.conjugate(phase))
                notes.append(f"{entry.name} multiplied by {sp.conjugate(phase)} before adding terms")
        expression += operator
    if not equations and not any(T in d.variables for d in expression.atoms(sp.Derivative)):
        raise ParseError(f"the terms {text.strip()!r} contain no time derivative",
                         hint="add an equation, e.g. 'diffusion+mass'")
    return Composition(
        names=tuple(entry.name for entry in ordered),
        expression=expression,
        defaults=MappingProxyType(defaults),
        construction=equations[0].construction if equations else None,
        notes=tuple(notes),
    )

"""The catalog: every entry loads and parses to the operator its physics says; composition sums operators."""
from __future__ import annotations

import random
from types import MappingProxyType

import pytest
import sympy as sp

from pde2gen.errors import ParseError
from pde2gen.spec import catalog as catalog_module
from pde2gen.spec.catalog import (
    CatalogEntry,
    _entry_from_toml,
    compose,
    load_catalog,
    looks_like_catalog_terms,
    lookup,
)
from pde2gen.spec.parse import parse
from pde2gen.spec.spec import LAM, S

REQUIRED = ("diffusion", "wave", "damping", "mass", "poisson", "yukawa", "pfgm", "pfgmpp", "telegraph", "kac",
            "klein-gordon", "helmholtz", "schrodinger", "hyperdiffusion", "fractional", "damped-diffusion",
            "viscous-wave")

a, c, m, kappa, gamma = (sp.Symbol(name) for name in ("a", "c", "m", "kappa", "gamma"))
HALF = sp.Rational(1, 2)
# P(lambda, s) written out by hand from each entry's physics (d_t -> lambda, -Laplacian -> s), leading
# time-derivative coefficient positive; the parser has to reproduce these.
EXPECTED_SYMBOL = {
    "diffusion": LAM + kappa * S,
    "wave": LAM**2 + c**2 * S,
    "poisson": LAM**2 - S,
    "pfgm": LAM**2 - S,
    "pfgmpp": LAM**2 - S,  # plus the radial term (D-1)/t u_t, outside the symbol
    "yukawa": LAM**2 - S - m**2,
    "telegraph": LAM**2 + 2 * a * LAM + c**2 * S,
    "kac": LAM**2 + 2 * a * LAM + c**2 * S,
    "klein-gordon": LAM**2 + S + m**2,
    "helmholtz": LAM**2 - S + m**2,
    "schrodinger": LAM + sp.I * S,
    "hyperdiffusion": LAM + S**2,
    "fractional": LAM + kappa * S ** sp.Rational(3, 4),
    "damped-diffusion": LAM + kappa * S + m**2,
    "viscous-wave": LAM**2 + gamma * S * LAM + c**2 * S,
}


def symbol_at(expr, point, values):
    return complex(sp.N(expr.xreplace(point).xreplace({s: sp.Float(values[s.name]) for s in expr.free_symbols
                                                         if s.name in values})))


def assert_symbols_equal(spec_symbol, expected, values):
    rng = random.Random(3)
    for _ in range(4):
        point = {LAM: sp.Float(rng.uniform(-2, 2)) + sp.I * sp.Float(rng.uniform(-2, 2)),
                 S: sp.Float(rng.uniform(0.1, 4))}
        assert symbol_at(spec_symbol, point, values) == pytest.approx(symbol_at(expected, point, values),
                                                                      rel=1e-12, abs=1e-12)


def test_required_entries_exist_and_are_well_formed():
    catalog = load_catalog()
    assert set(REQUIRED) <= set(catalog)
    for name, entry in catalog.items():
        assert entry.name == name and entry.kind in ("equation", "term")
        assert entry.title and entry.reference and len(entry.physics) > 40
    assert catalog["damping"].kind == catalog["mass"].kind == "term"
    assert catalog["kac"].construction == "product"
    assert "2209.11178" in catalog["pfgm"].reference and "2302.04265" in catalog["pfgmpp"].reference
    assert "2506.20641" in catalog["kac"].reference


@pytest.mark.parametrize("name", sorted(EXPECTED_SYMBOL))
def test_every_equation_parses_to_its_physical_symbol(name):
    spec = parse(name)
    assert spec.catalog == (name,)
    values = {p.name: float(p.value) for p in spec.parameters}
    assert set(values) == set(lookup(name).defaults)  # every parameter has its default
    assert_symbols_equal(spec.symbol(), EXPECTED_SYMBOL[name], values)
    leading = max(spec.terms, key=lambda term: (term.t_order, -term.space_power))
    assert complex(sp.N(leading.coefficient.xreplace(spec.parameter_values()))).real > 0


def test_defaults_from_the_brief():
    defaults = {name: entry.default_values() for name, entry in load_catalog().items()}
    assert defaults["telegraph"] == {"a": 9, "c": 3} == defaults["kac"]
    assert defaults["pfgmpp"] == {"D": 128}
    assert defaults["fractional"]["alpha"] == sp.Rational(3, 2)
    assert defaults["wave"]["c"] == defaults["yukawa"]["m"] == defaults["diffusion"]["kappa"] == 1
    assert parse("pfgmpp").augmented_dims.xreplace(parse("pfgmpp").parameter_values()) == 128


def test_every_term_composes_with_an_equation():
    for name, entry in load_catalog().items():
        if entry.kind == "term":
            spec = parse(f"diffusion+{name}")
            assert spec.catalog == ("diffusion", name)


def test_wave_plus_damping_is_the_telegraph_operator():
    composed = parse("wave+damping", params={"a": 9, "c": 3})
    telegraph = parse("telegraph")
    assert composed.catalog == ("wave", "damping")
    as_dict = {(t.t_order, t.space_power, t.t_power): t.coefficient for t in composed.terms}
    assert as_dict == {(t.t_order, t.space_power, t.t_power): t.coefficient for t in telegraph.terms}
    assert composed.parameter_values() == telegraph.parameter_values()
    # order and spelling do not matter
    assert parse(" damping + wave ").terms == parse("wave+damping").terms
    assert parse("klein_gordon").terms == parse("klein-gordon").terms
    # the mass term is +m^2 u: added to Poisson it gives Helmholtz (not Yukawa)
    assert_symbols_equal(parse("Poisson+mass").symbol(), EXPECTED_SYMBOL["helmholtz"], {"m": 1.0})
    assert_symbols_equal(parse("diffusion+mass").symbol(), EXPECTED_SYMBOL["damped-diffusion"],
                         {"kappa": 1.0, "m": 1.0})


def test_user_params_override_defaults():
    spec = parse("telegraph", params={"a": 25, "c": "2"})
    assert {p.name: p.value for p in spec.parameters} == {"a": 25, "c": 2}
    assert parse("kac", construction="isotropic").construction == "isotropic"
    assert parse("kac").construction == "product" and parse("telegraph").construction == "isotropic"
    with pytest.raises(ParseError, match="does not appear"):
        parse("wave", params={"m": 1})


def test_equations_are_normalised_before_terms_are_added():
    # Schrodinger I u_t + Delta u = 0 becomes u_t - I Delta u = 0 before the mass term is added
    spec = parse("schrodinger+mass")
    assert_symbols_equal(spec.symbol(), LAM + sp.I * S + m**2, {"m": 1.0})


def test_terms_alone_need_a_time_derivative():
    spec = parse("damping+mass")
    assert_symbols_equal(spec.symbol(), 2 * a * LAM + m**2, {"a": 1.0, "m": 1.0})
    with pytest.raises(ParseError, match="no time derivative"):
        parse("mass")


@pytest.mark.parametrize("text, fragment", [
    ("wave+dampng", "did you mean 'damping'"),
    ("telegraf", "did you mean 'telegraph'"),
    ("klien-gordon", "'klein-gordon'"),
])
def test_unknown_entries_suggest_close_names(text, fragment):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert type(info.value) is ParseError and fragment in info.value.hint
    assert "\n" not in info.value.one_line()


def test_refused_compositions():
    with pytest.raises(ParseError, match="several equations"):
        parse("wave+diffusion")
    with pytest.raises(ParseError, match="twice"):
        parse("wave+damping+damping")


def test_conflicting_defaults_the_equation_wins(monkeypatch):
    def entry(name, kind, pde, defaults):
        return CatalogEntry(name, name, kind, pde, MappingProxyType(defaults), MappingProxyType({}), None, "-", "-")

    fake = MappingProxyType({
        "eq": entry("eq", "equation", "diff(u,t) = k2*laplacian(u)", {"k2": "2"}),
        "drag": entry("drag", "term", "k2*u", {"k2": "5"}),
    })
    monkeypatch.setattr(catalog_module, "load_catalog", lambda: fake)
    composition = compose("drag+eq")
    assert composition.names == ("eq", "drag") and composition.defaults == {"k2": 2}
    assert any("ignored drag's 5" in note for note in composition.notes)


@pytest.mark.parametrize("text, expected", [
    ("wave", True), ("wave+damping", True), ("klein-gordon + mass", True), ("damped_diffusion", True),
    ("u_t = lap(u)", False), ("lap(u)", False), ("u_tt-lap", False), ("u+wave", False), ("u_t+wave", False),
])
def test_catalog_detection(text, expected):
    assert looks_like_catalog_terms(text) is expected


VALID_FIELDS = {"name": "broken", "title": "x", "kind": "equation", "pde": "u_t = lap(u)", "reference": "-",
                "physics": "-"}


@pytest.mark.parametrize("changes, fragment", [
    ({"verdict": "s-generative"}, "unknown keys"),  # no verdicts in the catalog
    ({"kind": "operator"}, "kind"),
    ({"name": "other"}, "file name"),
    ({"kind": "term", "pde": "u = 0"}, "'='"),
    ({"construction": "cubic"}, "construction"),
    ({"title": None}, "missing"),
])
def test_malformed_catalog_files_are_refused(tmp_path, changes, fragment):
    fields = {**VALID_FIELDS, **changes}
    path = tmp_path / "broken.toml"
    path.write_text("".join(f'{key} = "{value}"\n' for key, value in fields.items() if value is not None))
    with pytest.raises(ParseError, match=fragment):
        _entry_from_toml(path)
    path.write_text('name = "broken\n')
    with pytest.raises(ParseError, match="invalid TOML"):
        _entry_from_toml(path)


def test_a_valid_file_loads(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("".join(f'{key} = "{value}"\n' for key, value in VALID_FIELDS.items())
                    + '[parameters]\nq = { default = 0.5, description = "d" }\nr = "sqrt(2)"\n')
    entry = _entry_from_toml(path)
    assert entry.default_values() == {"q": sp.Rational(1, 2), "r": sp.sqrt(2)}
    assert entry.descriptions == {"q": "d"}

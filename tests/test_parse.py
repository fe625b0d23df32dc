"""The parse stage: the three ways in agree, the operator is read with the right signs, bad input is refused
with the right error class and one line."""
from __future__ import annotations

import builtins
import random

import pytest
import sympy as sp

from pde2gen import FractionalLaplacian, Laplacian
from pde2gen.errors import NonLinearPDEError, ParseError, UnsupportedPDEError, UsageError
from pde2gen.spec.parse import from_sympy, parse, parse_text, parse_value
from pde2gen.spec.spec import LAM, S

t, x, y = sp.symbols("t x y")
u = sp.Function("u")(t, x)
a, c, m, D = sp.symbols("a c m D")


def operator_table(terms, values: dict[str, float]) -> dict[tuple, complex]:
    """(t_order, space_power, t_power) -> coefficient as a complex number at the given parameter values."""
    table = {}
    for term in terms:
        coefficient = term.coefficient.xreplace({s: sp.Float(values[s.name]) for s in term.coefficient.free_symbols})
        table[(term.t_order, term.space_power, term.t_power)] = complex(sp.N(coefficient))
    return table


def assert_same_operator(terms_a, terms_b, names=("a", "c", "m", "D", "kappa", "gamma")):
    """Equal coefficients (numerically) at two random positive parameter points."""
    rng = random.Random(1)
    for _ in range(2):
        values = {name: rng.uniform(0.3, 3.0) for name in names}
        table_a, table_b = operator_table(terms_a, values), operator_table(terms_b, values)
        assert table_a.keys() == table_b.keys()
        for key in table_a:
            assert table_a[key] == pytest.approx(table_b[key], rel=1e-12, abs=1e-12), key


def assert_symbol(spec, expected, values: dict[str, float] | None = None):
    """spec's P(lambda, s) equals ``expected`` (in LAM, S and parameter symbols) at random points."""
    rng = random.Random(7)
    values = values or {}
    for _ in range(4):
        point = {LAM: sp.Float(rng.uniform(-2, 2)) + sp.I * sp.Float(rng.uniform(-2, 2)),
                 S: sp.Float(rng.uniform(0.1, 4))}
        symbol = spec.symbol()
        substitution = {**point, **{s: sp.Float(values.get(s.name, 1.3)) for s in symbol.free_symbols - {LAM, S}}}
        wanted = {**point, **{s: sp.Float(values.get(s.name, 1.3)) for s in expected.free_symbols - {LAM, S}}}
        assert complex(sp.N(symbol.xreplace(substitution))) == pytest.approx(
            complex(sp.N(expected.xreplace(wanted))), rel=1e-12, abs=1e-12)


A, C, M, KAPPA = (sp.Symbol(name) for name in ("a", "c", "m", "kappa"))


# --------------------------------------------------------------------------------------------------
# the three ways in
# --------------------------------------------------------------------------------------------------
def test_text_sympy_and_catalog_agree_on_the_telegraph_operator():
    from_text = parse("diff(u,t,2) + 2*a*diff(u,t) = c**2*laplacian(u)")
    from_shorthand = parse("u_tt + 2*a*u_t = c**2*lap(u)")
    from_eq = parse(sp.Eq(u.diff(t, 2) + 2 * a * u.diff(t), c**2 * Laplacian(u)))
    from_expr = parse(u.diff(t, 2) + 2 * a * u.diff(t) - c**2 * Laplacian(u))
    from_catalog = parse("telegraph")
    for spec in (from_shorthand, from_eq, from_expr, from_catalog):
        assert_same_operator(from_text.terms, spec.terms)
    # P(lambda, s) = lambda^2 + 2 a lambda + c^2 s  (d_t -> lambda, -Laplacian -> s)
    assert_symbol(from_text, LAM**2 + 2 * A * LAM + C**2 * S, {"a": 0.7, "c": 1.9})
    assert from_catalog.parameter_values()[sp.Symbol("a", positive=True)] == 9


@pytest.mark.parametrize(
    "shorthand, sympy_syntax",
    [
        ("u_t = lap(u)", "diff(u, t) = laplacian(u)"),
        ("u_t = u_xx", "Derivative(u(t,x), t) = diff(u, x, 2)"),
        ("u_tt = c**2*u_xx", "diff(u, t, t) = c**2*diff(u, x, x)"),
        ("u_t = -u_xxxx", "diff(u,t) = -laplacian(laplacian(u))"),
        ("u_t = -lap(lap(u))", "diff(u,t) = -lap(u, 2)"),
        ("u_tt = lap(u_t) + lap(u)", "diff(u,t,2) = diff(laplacian(u), t) + laplacian(u)"),
        ("u_tt = u_txx + u_xx", "diff(u,t,2) = diff(u, t, x, 2) + laplacian(u)"),
        ("u_t = -fraclap(u, 1)", "diff(u,t) = laplacian(u)"),
        ("I*u_t = -lap(u)", "I*diff(u,t) + laplacian(u) = 0"),
        ("u_t + m**2*u = lap(u)", "diff(u,t) = laplacian(u) - m*m*u"),
        ("u_t = 0.5*lap(u)", "diff(u,t) = laplacian(u)/2"),
    ],
)
def test_shorthand_equals_sympy_syntax(shorthand, sympy_syntax):
    assert_same_operator(parse(shorthand).terms, parse(sympy_syntax).terms)


def test_laplacian_signs_and_powers():
    # laplacian(u) is -(-Laplacian): the heat equation is u_t + (-Laplacian) u = 0
    assert_symbol(parse("u_t = lap(u)"), LAM + S)
    assert_symbol(parse("u_t = -lap(lap(u))"), LAM + S**2)
    assert_symbol(parse("u_t = -lap(u, 3)"), LAM - S**3)  # Delta^3 = -(-Delta)^3
    assert_symbol(parse("u_t = -u_xxxx"), LAM + S**2)
    assert_symbol(parse("u_tt = lap(u_t) + c**2*lap(u)"), LAM**2 + S * LAM + C**2 * S)


def test_fractional_laplacian():
    spec = parse("u_t = -fraclap(u, 3/4)")
    assert [(term.t_order, term.space_power) for term in spec.terms] == [(1, 0), (0, sp.Rational(3, 4))]
    assert_symbol(spec, LAM + S ** sp.Rational(3, 4))
    with_parameter = parse("u_t = -kappa*fraclap(u, alpha/2)", params={"alpha": "1.5", "kappa": 2})
    assert with_parameter.terms[1].space_power == sp.Rational(3, 4)
    assert any("fixed to 3/4" in note for note in with_parameter.notes)
    assert_symbol(with_parameter, LAM + KAPPA * S ** sp.Rational(3, 4), {"kappa": 2})
    # SymPy input, power given by a parameter value
    alpha = sp.Symbol("alpha")
    terms, parameters = from_sympy(u.diff(t) + FractionalLaplacian(u, alpha / 2), values={"alpha": 1})
    assert terms[1].space_power == sp.Rational(1, 2)
    assert {p.name: p.value for p in parameters} == {"alpha": 1}


def test_pfgmpp_radial_term():
    spec = parse("diff(u,t,2) + (D-1)/t*diff(u,t) + laplacian(u) = 0", params={"D": 128})
    radial = [term for term in spec.terms if term.t_power == -1]
    assert len(radial) == 1 and radial[0].t_order == 1 and radial[0].space_power == 0
    assert spec.augmented_dims.xreplace(spec.parameter_values()) == 128
    assert_symbol(spec, LAM**2 - S)  # the symbol leaves the radial term out
    # the same term from SymPy, written (D - 1)/t * u_t, and as D/t*u_t - u_t/t
    terms, _ = from_sympy(u.diff(t, 2) + D / t * u.diff(t) - u.diff(t) / t + Laplacian(u))
    assert_same_operator(spec.terms, terms)


def test_normalisation_makes_the_leading_coefficient_positive():
    backward = parse("-u_t + lap(u) = 0")
    assert_same_operator(backward.terms, parse("u_t = lap(u)").terms)
    assert any("multiplied the equation by -1" in note for note in backward.notes)
    schrodinger = parse("I*u_t = -lap(u)")
    coefficients = {(term.t_order, term.space_power): term.coefficient for term in schrodinger.terms}
    assert coefficients == {(1, 0): 1, (0, 1): sp.I}  # u_t - I*Delta u = 0
    assert any("-I" in note for note in schrodinger.notes)
    # the sign is fixed using the parameter values when the symbolic sign is unknown
    assert parse("(a - 2)*u_t = lap(u)", params={"a": 1}).terms[0].coefficient.xreplace(
        {sp.Symbol("a", positive=True): 1}) == 1


def test_terms_merge_and_zeros_drop():
    # u_xx and lap(u) are different SymPy terms but the same operator: they merge (and here cancel)
    merged = parse("u_t + 0*u_tt = u_xx + lap(u)")
    assert [(term.t_order, term.space_power, term.coefficient) for term in merged.terms] == [(1, 0, 1), (0, 1, 2)]
    cancelled = parse("u_t = u_xx - lap(u) + a*u - a*u")
    assert [(term.t_order, term.space_power, term.coefficient) for term in cancelled.terms] == [(1, 0, 1)]


def test_parameters_are_positive_symbols_with_values():
    spec = parse("u_tt + 2*gamma*u_t = c**2*lap(u)", params={"gamma": "1/2", "c": 0.1})
    by_name = {p.name: p for p in spec.parameters}
    assert by_name["gamma"].value == sp.Rational(1, 2) and by_name["c"].value == sp.Rational(1, 10)
    assert all(p.symbol.is_positive for p in spec.parameters)
    assert parse("u_t = D*lap(u)").free_parameters()[0].name == "D"
    # a value <= 0 contradicts positive=True: it is substituted, the term disappears
    massless = parse("yukawa", params={"m": 0})
    assert all(term.space_power != 0 or term.t_order != 0 for term in massless.terms)
    assert any("m = 0" in note for note in massless.notes)


def test_several_space_variables_combine_into_the_laplacian():
    v = sp.Function("v")(t, x, y)
    iso, _ = from_sympy(v.diff(t) - v.diff(x, 2) - v.diff(y, 2))
    assert_same_operator(iso, parse("u_t = lap(u)").terms)
    bilaplacian, _ = from_sympy(v.diff(t) + v.diff(x, 4) + 2 * v.diff(x, 2, y, 2) + v.diff(y, 4))
    assert_same_operator(bilaplacian, parse("u_t = -lap(lap(u))").terms)
    with pytest.raises(UnsupportedPDEError, match="anisotropic"):
        from_sympy(v.diff(t) - v.diff(x, 2))


def test_floats_from_sympy_become_rationals():
    terms, _ = from_sympy(u.diff(t) - 0.25 * Laplacian(u))
    assert terms[1].coefficient == sp.Rational(1, 4)


def test_options_are_passed_and_checked():
    spec = parse("u_t = lap(u)", dim=3, construction="product", problem_type="evolution")
    assert (spec.dim, spec.construction, spec.problem_type) == (3, "product", "evolution")
    assert spec.source == "u_t = lap(u)"
    with pytest.raises(UsageError):
        parse("u_t = lap(u)", dim=0)
    with pytest.raises(UsageError):
        parse("u_t = lap(u)", construction="cubic")


def test_parse_text_returns_lhs_minus_rhs():
    expr = parse_text("u_t = c**2*lap(u)")
    assert isinstance(expr, sp.Expr) and expr.has(Laplacian)


@pytest.mark.parametrize("text, value", [("1/2", sp.Rational(1, 2)), ("sqrt(2)", sp.sqrt(2)), (3, 3),
                                         (0.75, sp.Rational(3, 4)), ("2*pi", 2 * sp.pi), ("-1e-3", sp.Rational(-1, 1000))])
def test_parameter_values(text, value):
    assert parse_value(text) == value


@pytest.mark.parametrize("value", ["u", "a", "1/0", "sqrt(-1)", "I", float("inf"), float("nan"), True, "1 = 2",
                                   "__import__('os')", "", [1]])
def test_bad_parameter_values(value):
    with pytest.raises(ParseError) as info:
        parse("u_t = D*lap(u)", params={"D": value})
    assert "\n" not in info.value.one_line()


def test_unknown_and_reserved_parameter_names():
    with pytest.raises(ParseError, match="'q' does not appear"):
        parse("u_t = D*lap(u)", params={"q": 1})
    for name in ("t", "__class__", "lap", "u_t", "lambda", "a b", 3):
        with pytest.raises(ParseError):
            parse("u_t = D*lap(u)", params={name: 1})


# --------------------------------------------------------------------------------------------------
# bad input: each one its own error class, one line
# --------------------------------------------------------------------------------------------------
BAD_TEXT = [
    # not linear
    ("u**2 + u_t = lap(u)", NonLinearPDEError),
    ("u*u_t = lap(u)", NonLinearPDEError),
    ("u_t = lap(u) + sin(u)", NonLinearPDEError),
    ("u_t = sqrt(u)", NonLinearPDEError),
    ("u_t = lap(u*u)", NonLinearPDEError),
    ("u_t = 1/u", NonLinearPDEError),
    ("u_t = exp(u_t)", NonLinearPDEError),
    # linear but unsupported
    ("u_t = x*lap(u)", UnsupportedPDEError),
    ("u_t = x**2*u", UnsupportedPDEError),
    ("u_t = lap(x*u)", UnsupportedPDEError),
    ("u_t = t*lap(u)", UnsupportedPDEError),
    ("u_tt + t*u_t = lap(u)", UnsupportedPDEError),
    ("u_t + (D-1)/t*u_t = lap(u)", UnsupportedPDEError),  # radial term without u_tt
    ("lap(u) = 0", UnsupportedPDEError),
    ("u_xx + u = 0", UnsupportedPDEError),
    ("u_t + u_x = 0", UnsupportedPDEError),
    ("u_t = diff(u, x, 3)", UnsupportedPDEError),
    ("u_t = lap(u) + 1", UnsupportedPDEError),
    ("u_t = lap(u) + x**2", UnsupportedPDEError),
    ("u_t - u_t = 0", UnsupportedPDEError),
    ("u_t = fraclap(u, beta)", UnsupportedPDEError),
    ("u_t = fraclap(u, -1)", UnsupportedPDEError),
    # unsafe or malformed
    ("__import__('os')", ParseError),
    ("__import__", ParseError),
    ("eval(u)", ParseError),
    ("exec(u)", ParseError),
    ("os.system", ParseError),
    ("u.__class__", ParseError),
    ("lambda: u", ParseError),
    ("u[0] + u_t", ParseError),
    ("'u_t'", ParseError),
    ("f(u) = u_t", ParseError),
    ("u_t = lap(u", ParseError),
    ("u_t = lap(u))", ParseError),
    ("u_t = = lap(u)", ParseError),
    ("u_t = lap(u) = 0", ParseError),
    ("u_t == lap(u)", ParseError),
    ("u_t = 2lap(u)", ParseError),
    ("u_t ^ 2", ParseError),
    ("u_yy = u_t", ParseError),
    ("u(x, t)", ParseError),
    ("diff(u, a) = u", ParseError),
    ("diff(u, t, 100)", ParseError),
    ("u_t = lap", ParseError),
    ("u_t = 2j*lap(u)", ParseError),
    ("u_t = 9**9**9*u", ParseError),
    ("u_t = 1/0*lap(u)", ParseError),
    ("u_t = 1e400*lap(u)", ParseError),
    ("u_t = ((10**64)**64)**64*lap(u)", ParseError),
    ("u_t = sqrt(" + "7" * 400 + ")*lap(u)", ParseError),
    ("u_t = " + "*".join(["(a+c)"] * 300) + "*lap(u)", ParseError),  # (a+c)**300: not expanded
    ("u_t = (a+c+m+D)**64*lap(u)", ParseError),
    ("u_t = exp(1)*lap(u)", ParseError),
    ("u_t = lap(u) # comment", ParseError),
    ("u_t = lap(u) if a else u", ParseError),
    ("u_t = diff(u, t, n=2)", ParseError),
    ("u_t = lap(*u)", ParseError),
    ("u_t \u2212 lap(u)", ParseError),
    ("", ParseError),
    ("  \n ", ParseError),
    ("u+" * 50_000 + "u_t", ParseError),
    ("lap(" * 60 + "u" + ")" * 60 + " = u_t", ParseError),
    ("-" * 300 + "u_t", ParseError),
    ("(" * 500 + "u_t" + ")" * 500, ParseError),
    ("wave+dampng", ParseError),
]


@pytest.mark.parametrize("text, error", BAD_TEXT, ids=[text[:30] for text, _ in BAD_TEXT])
def test_bad_text_is_refused(text, error):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert type(info.value) is error, info.value.one_line()
    line = info.value.one_line()
    assert line.startswith("error[parse]: ") and "\n" not in line and len(line) < 300


def test_messages_name_the_offender_and_give_hints():
    cases = {"u*u_t = lap(u)": "u(t, x)*Derivative", "u_t = x*lap(u)": "x", "f(u) = u_t": "'f'",
             "u.__class__": "'.'", "__import__('os')": "__import__", "u_t + u_x = 0": "odd x-derivative"}
    for text, offender in cases.items():
        with pytest.raises(ParseError) as info:
            parse(text)
        assert offender in info.value.message and info.value.hint


BAD_SYMPY = [
    (u**2 + u.diff(t), NonLinearPDEError),
    (sp.sin(u) + u.diff(t), NonLinearPDEError),
    (sp.sqrt(u) + u.diff(t), NonLinearPDEError),
    (u * u.diff(t) - Laplacian(u), NonLinearPDEError),
    (u.diff(t) - x * Laplacian(u), UnsupportedPDEError),
    (u.diff(t) - sp.exp(t) * Laplacian(u), UnsupportedPDEError),
    (u.diff(t) - sp.Function("v")(t, x), UnsupportedPDEError),
    (u.diff(t) - u.subs(x, 0), UnsupportedPDEError),
    (Laplacian(u), UnsupportedPDEError),
    (sp.Function("w")(x).diff(x, 2), UnsupportedPDEError),
    (a * t, UnsupportedPDEError),
    (u.diff(t) - sp.Symbol("u_t") * Laplacian(u), ParseError),  # reserved name as a parameter
    (u.diff(t) - sp.Symbol("lambda") * Laplacian(u), ParseError),
    (u.diff(t) - sp.Symbol("a") * Laplacian(u) - sp.Symbol("a", positive=True) * u, ParseError),
    (sp.Eq(sp.Integer(1), 1), ParseError),
    (3, ParseError),
    (None, ParseError),
]


@pytest.mark.parametrize("source, error", BAD_SYMPY, ids=[str(s)[:30] for s, _ in BAD_SYMPY])
def test_bad_sympy_is_refused(source, error):
    with pytest.raises(ParseError) as info:
        parse(source)
    assert type(info.value) is error, info.value.one_line()
    assert "\n" not in info.value.one_line()


def test_no_eval_of_user_text(monkeypatch):
    """Parsing never goes through eval/exec or SymPy's string parser."""
    from sympy.parsing import sympy_parser

    def forbidden(*args, **kwargs):
        raise AssertionError("user text reached eval")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(sympy_parser, "eval_expr", forbidden)
    spec = parse("u_tt + 2*a*u_t + m**2*u = c**2*lap(u) + fraclap(u, 1/2)*0 - sqrt(2)*diff(lap(u), t)",
                 params={"a": "1/2", "m": "sqrt(3)", "c": 2})
    assert spec.t_order == 2

"""The text and SymPy front ends of the parse stage (pde2gen.parse): a PDE as text or as a SymPy expression ->
its terms and parameters. pde2gen.spec.catalog composes catalog terms on top of it; pde2gen.parse picks the way in.

Three ways in, one result:

* a string in SymPy syntax, ``"diff(u,t,2) + 2*a*diff(u,t) = c**2*laplacian(u)"``, or in subscript shorthand,
  ``"u_tt + 2*a*u_t = c**2*lap(u)"`` (both may be mixed);
* a SymPy ``Eq`` or an expression equal to zero, written with an undefined function ``u(t, x, ...)`` and
  ``pde2gen.Laplacian`` / ``pde2gen.FractionalLaplacian`` / ``pde2gen.RelativisticLaplacian``;
* catalog terms such as ``"wave+damping"`` (see ``pde2gen.spec.catalog``).

Reading rules
-------------
* The unknown is ``u(t, x)``; ``t`` is time (or the augmented coordinate), ``x`` space.
* Isotropy: a second x-derivative ``diff(u, x, 2)`` (``u_xx``) is the Laplacian in all N dimensions, and
  ``u_xxxx`` its square.  With several space variables (SymPy input ``u(t, x, y)``) the x-derivatives must
  combine into powers of the Laplacian.  Odd x-derivatives (advection) and anisotropic terms are refused.
* ``laplacian(u)`` = ``lap(u)`` is Delta u; ``fraclap(u, beta)`` is (-Delta)**beta u (beta a rational number
  once parameter values are substituted); ``relap(u, m)`` is (sqrt(-Delta + m**2) - m) u, m >= 0 a number once
  parameter values are substituted (m = 0 is fraclap(u, 1/2)), acting on u itself in a PDE of first order in t
  (``u_t = -relap(u, 1)``; other uses are refused); ``I`` is the imaginary unit.  The form the reports print,
  ``(-lap)^(3/4) u_t`` or ``(-lap) u``, is read as ``fraclap(u_t, 3/4)`` (``PDESpec.pretty`` round-trips).
* Bounds on the work (refused at parse time): time order <= 6, powers of (-lap) <= 16 with denominators
  <= 32, at most 16 parameters, numbers of at most 12 digits within 1e-12..1e12 (also after expansion), parameter values 1e-12 <= |v| <= 1e12.
* Every other identifier is a parameter: a SymPy symbol with ``positive=True`` (so that SymPy may simplify
  sqrt(m**2) = m and the like).  Values come from ``params`` (or catalog defaults) and must be finite real
  numbers; a value <= 0 contradicts the assumption, so it is substituted into the PDE instead (noted).
* Coefficients are constants, except the PFGM++ radial augmentation ``(D-1)/t * diff(u, t)``, allowed next to
  ``diff(u, t, 2)``.

Safety: user text is never given to ``eval``, ``sympify`` or ``parse_expr``.  It is tokenized, every token
checked against a whitelist, parsed by ``ast.parse(mode="eval")`` and the tree walked with a whitelist of node
types, building the SymPy objects here.
"""
from __future__ import annotations

import ast
import io
import keyword
import math
import numbers
import re
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import sympy as sp
from sympy.core.function import AppliedUndef

from ..errors import NonLinearPDEError, ParseError, UnsupportedPDEError, foreign_errors_as
from .operators import FractionalLaplacian, Laplacian, RelativisticLaplacian
from .spec import Parameter, T, Term, X

MAX_SOURCE_CHARS = 2000
MAX_NESTING = 40  # parentheses / calls / powers; sums and products are flattened and do not count
MAX_DERIVATIVE_ORDER = 16
MAX_TIME_ORDER = 6  # the analysis solves a polynomial of this degree in lambda: order 8 already takes ~10 s
MAX_LAPLACIAN_POWER = 16  # also the largest (-lap)^beta
MAX_POWER_DENOMINATOR = 32  # of a fractional power beta: the analysis and the kernels work in s**(1/q)
MAX_PARAMETERS = 16  # every parameter multiplies the symbolic work of the analysis
MAX_COEFFICIENT_BITS = 40  # numerators, denominators, float exponents: numbers within ~1e-12..1e12 (12 digits)
MAX_VALUE_MAGNITUDE = 1e12  # parameter values: 1e-12 <= |value| <= 1e12 (or 0); beyond, float64 kernels fail
MAX_EXPRESSION_NODES = 5000  # SymPy input: nodes walked before anything is expanded or evaluated
MAX_EXPONENT = 64  # |numeric exponent|; keeps 9**9**9 from being evaluated
MAX_NUMBER_BITS = 1 << 14  # no exact power beyond ~5000 digits
MAX_ROOT_BITS = 256  # SymPy factors the base of a root: keep it small
MAX_EXPANDED_TERMS = 20_000  # coefficients are expanded; (a+c)**300 must be refused first

U_FUNCTION = sp.Function("u")
U = U_FUNCTION(T, X)

_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*\Z")
_SHORTHAND = re.compile(r"u_([A-Za-z0-9]+)\Z")
# The operator form that reports print, "(-lap)^(3/4) u_t" and "(-lap) u": read as fraclap(u_t, 3/4).
_NEGATIVE_LAPLACIAN = re.compile(r"\(\s*-\s*(?:lap|laplacian)\s*\)\s*(?:\^\s*(\(\s*\d[\d/. ]*\)|\d+(?:\.\d+)?))?"
                                 r"\s*(u(?:_[tx]+)?)\b")
_ALLOWED_OPERATORS = {"+", "-", "*", "/", "**", "(", ")", ",", "="}
_CONSTANTS = {"I": sp.I, "pi": sp.pi, "E": sp.E}
_DIFF_NAMES = ("diff", "Derivative")
_LAPLACIAN_NAMES = ("laplacian", "lap")
_FUNCTION_NAMES = (*_DIFF_NAMES, *_LAPLACIAN_NAMES, "fraclap", "relap", "sqrt")
# Not supported, but recognised so that sin(u) is reported as nonlinear rather than as an unknown name.
_NONLINEAR_FUNCTIONS = ("exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "abs", "Abs")
# Names a parameter may not take: the variables, constants, functions, and the symbols of the analysis (s = k^2).
RESERVED_NAMES = frozenset({"u", "t", "x", "s", "k", *_CONSTANTS, *_FUNCTION_NAMES, *_NONLINEAR_FUNCTIONS})

_RELAP_HINT = "relap(u, m) is sqrt(-lap + m^2) - m, m >= 0 (m = 0 is fraclap(u, 1/2))"
_BAD_INPUT_HINT = ("write e.g. 'u_tt + 2*a*u_t = c**2*lap(u)' or 'diff(u,t) = laplacian(u)' "
                   "(numbers, parameters, + - * / ** ( ) and one '=')")


def _short(expr) -> str:
    text = sp.sstr(expr) if isinstance(expr, sp.Basic) else str(expr)
    return text if len(text) <= 80 else text[:77] + "..."


# ==================================================================================================
# Text -> SymPy
# ==================================================================================================
def check_length(text: str, what: str = "PDE") -> str:
    if not text.strip():
        raise ParseError(f"empty {what}", hint=_BAD_INPUT_HINT)
    if len(text) > MAX_SOURCE_CHARS:
        raise ParseError(f"{what} text too long ({len(text)} characters, at most {MAX_SOURCE_CHARS})")
    for position, char in enumerate(text):
        if not (char.isascii() and (char.isprintable() or char.isspace())):
            hint = "use the ASCII '-' for minus" if char in "\u2212\u2013" else "use plain ASCII text"
            raise ParseError(f"character {char!r} at position {position} is not allowed", hint=hint)
    return " ".join(text.split())  # one line: tokens' columns then index the text directly


def _check_name(name: str) -> None:
    if name.startswith("_"):
        raise ParseError(f"name {name!r} is not allowed", hint=_BAD_INPUT_HINT)
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ParseError(f"Python keyword {name!r} is not allowed in a PDE", hint=_BAD_INPUT_HINT)
    shorthand = _SHORTHAND.match(name)
    if shorthand and set(shorthand.group(1)) - {"t", "x"}:
        raise ParseError(f"unknown shorthand {name!r}: only t and x subscripts (u_t, u_tt, u_xx, u_txx)",
                         hint="the space variable is x; u_xx is the Laplacian in N dimensions")
    if not (shorthand or name in RESERVED_NAMES or _PARAMETER_NAME.match(name)):
        raise ParseError(f"name {name!r} is not a valid parameter name",
                         hint="parameters look like a, c, m, gamma, D, kappa, alpha_1")


def check_parameter_name(name) -> None:
    """A parameter name: an identifier like a, gamma, alpha_1 that is not reserved (u, t, x, I, lap, ...)."""
    if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
        raise ParseError(f"invalid parameter name {name!r}", hint="parameters look like a, c, gamma, alpha_1")
    if name in RESERVED_NAMES or _SHORTHAND.match(name) or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ParseError(f"{name!r} is reserved and cannot be a parameter name",
                         hint=f"reserved: {', '.join(sorted(RESERVED_NAMES))}, u_... and Python keywords")


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ParseError(f"malformed expression ({exc.args[0]})", hint="check the parentheses") from None
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NAME:
            _check_name(tok.string)
        elif tok.type == tokenize.NUMBER:
            if tok.string[-1] in "jJ":
                raise ParseError(f"imaginary literal {tok.string!r} is not allowed", hint="write I*2 for 2i")
            exponent = re.search(r"[eE]([+-]?\d+)", tok.string) if not tok.string.startswith("0x") else None
            if exponent and abs(int(exponent.group(1))) > 300:
                raise ParseError(f"number {tok.string!r} is out of range")
        elif tok.type == tokenize.OP and tok.string in _ALLOWED_OPERATORS:
            continue
        elif tok.type == tokenize.OP:
            hint = "use ** for powers" if tok.string == "^" else _BAD_INPUT_HINT
            if tok.string == ".":
                hint = "attribute access is not allowed; write numbers like 0.5 with digits on both sides"
            raise ParseError(f"operator {tok.string!r} at position {tok.start[1]} is not allowed", hint=hint)
        else:
            kind = "string" if tok.type == tokenize.STRING else "token"
            raise ParseError(f"{kind} {tok.string!r} at position {tok.start[1]} is not allowed",
                             hint=_BAD_INPUT_HINT)
    return tokens


class _Builder:
    """Walks a Python AST of whitelisted node types and builds the SymPy expression."""

    def __init__(self, numbers_only: bool = False):
        self.numbers_only = numbers_only  # for parameter values: no u, t, x, parameters

    def build(self, node: ast.AST, depth: int = 0) -> sp.Expr:
        if depth > MAX_NESTING:
            raise ParseError(f"expression nested too deeply (more than {MAX_NESTING} levels)")
        if isinstance(node, ast.Expression):
            return self.build(node.body, depth)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return sp.Add(*[-self.build(operand, depth + 1) if subtracted else self.build(operand, depth + 1)
                            for subtracted, operand in self._chain(node)])
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            factors = []
            for inverse, operand in self._chain(node):
                value = self.build(operand, depth + 1)
                factors.append(sp.Pow(value, -1) if inverse else value)
            return sp.Mul(*factors)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return self._power(self.build(node.left, depth + 1), self.build(node.right, depth + 1))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.build(node.operand, depth + 1)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            # Floats become exact rationals (0.1 -> 1/10): the analysis is exact.
            return sp.Integer(node.value) if type(node.value) is int else sp.Rational(repr(node.value))
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise ParseError(f"{type(node).__name__} syntax is not allowed in a PDE", hint=_BAD_INPUT_HINT)

    @staticmethod
    def _power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
        """base**exponent, refusing numbers SymPy would take too long to build (9**9**9, sqrt(10**2000))."""
        if exponent.is_number and (not exponent.is_finite or abs(float(sp.re(exponent))) > MAX_EXPONENT):
            raise ParseError(f"exponent {_short(exponent)} is too large (at most {MAX_EXPONENT})")
        if base.is_Rational and exponent.is_number:
            bits = max(abs(base.p).bit_length(), base.q.bit_length())
            if (bits > MAX_ROOT_BITS and not exponent.is_Integer
                    or exponent.is_Integer and abs(int(exponent)) * bits > MAX_NUMBER_BITS):
                raise ParseError(f"number {_short(base)}**{_short(exponent)} is too large")
        return sp.Pow(base, exponent)

    @staticmethod
    def _chain(node: ast.BinOp) -> list[tuple[bool, ast.AST]]:
        """Flatten a left-nested chain a op b op c ... into (inverted, operand) pairs; inverted means
        subtracted (in a sum) or divided by (in a product).  Iterative: long sums must not recurse."""
        group = (ast.Add, ast.Sub) if isinstance(node.op, (ast.Add, ast.Sub)) else (ast.Mult, ast.Div)
        items = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, group):
            items.append((isinstance(node.op, (ast.Sub, ast.Div)), node.right))
            node = node.left
        items.append((False, node))
        items.reverse()
        return items

    def _name(self, name: str) -> sp.Expr:
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name in _FUNCTION_NAMES:
            raise ParseError(f"{name!r} is a function: call it, e.g. {name}(u)", hint=_BAD_INPUT_HINT)
        if self.numbers_only:
            raise ParseError(f"a parameter value must be a number, found the name {name!r}",
                             hint="write e.g. 9, 1/2, 0.75 or sqrt(2)")
        if name == "u":
            return U
        if name == "t":
            return T
        if name == "x":
            return X
        shorthand = _SHORTHAND.match(name)
        if shorthand:
            subscripts = shorthand.group(1)
            _check_orders(subscripts.count("t"), subscripts.count("x"), name)
            orders = [(var, subscripts.count(str(var))) for var in (T, X)]
            return sp.Derivative(U, *[(var, n) for var, n in orders if n])
        return sp.Symbol(name, positive=True)

    def _call(self, node: ast.Call, depth: int) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            raise ParseError("only plain function calls are allowed (no attributes, no calls of calls)",
                             hint=_BAD_INPUT_HINT)
        name = node.func.id
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ParseError(f"{name}(...) takes positional arguments only", hint=_BAD_INPUT_HINT)
        args = node.args
        if name == "u" and not self.numbers_only:
            if [getattr(arg, "id", None) for arg in args] != ["t", "x"]:
                raise ParseError("the unknown is written u or u(t, x)", hint=_BAD_INPUT_HINT)
            return U
        if name == "sqrt":
            self._arity(name, args, 1)
            return self._power(self.build(args[0], depth + 1), sp.S.Half)
        if name in _NONLINEAR_FUNCTIONS and not self.numbers_only and any(
                self.build(arg, depth + 1).has(U_FUNCTION) for arg in args):
            raise NonLinearPDEError(f"{name}(...) of u is not linear in u", hint="pde2gen handles linear PDEs only")
        if self.numbers_only or name not in _FUNCTION_NAMES:
            allowed = "sqrt" if self.numbers_only else ", ".join(_FUNCTION_NAMES)
            raise ParseError(f"unknown function {name!r}", hint=f"allowed functions: {allowed}; "
                             "give other constants as parameter values")
        if name in _DIFF_NAMES:
            return self._derivative(name, args, depth)
        if name in _LAPLACIAN_NAMES:
            self._arity(name, args, 1, 2)
            power = self._count(name, args[1], MAX_LAPLACIAN_POWER) if len(args) == 2 else 1
            return Laplacian(self.build(args[0], depth + 1), power)
        self._arity(name, args, 2)  # fraclap, relap
        operator = FractionalLaplacian if name == "fraclap" else RelativisticLaplacian
        return operator(self.build(args[0], depth + 1), self.build(args[1], depth + 1))

    @staticmethod
    def _arity(name: str, args, *counts: int) -> None:
        if len(args) not in counts:
            expected = " or ".join(map(str, counts))
            raise ParseError(f"{name}(...) takes {expected} argument(s), got {len(args)}", hint=_BAD_INPUT_HINT)

    @staticmethod
    def _count(name: str, node: ast.AST, limit: int) -> int:
        if not (isinstance(node, ast.Constant) and type(node.value) is int and 1 <= node.value <= limit):
            raise ParseError(f"{name}(...): an order must be an integer from 1 to {limit}", hint=_BAD_INPUT_HINT)
        return node.value

    def _derivative(self, name: str, args, depth: int) -> sp.Expr:
        if len(args) < 2:
            raise ParseError(f"{name}(...) needs a variable, e.g. {name}(u, t)", hint=_BAD_INPUT_HINT)
        operand = self.build(args[0], depth + 1)
        orders: list[list] = []
        for arg in args[1:]:
            if isinstance(arg, ast.Name) and arg.id in ("t", "x"):
                orders.append([T if arg.id == "t" else X, 1])
            elif isinstance(arg, ast.Constant) and orders and orders[-1][1] == 1:
                orders[-1][1] = self._count(name, arg, MAX_DERIVATIVE_ORDER)
            else:
                raise ParseError(f"{name}(...): differentiate with respect to t or x, optionally followed by "
                                 f"an order, got {ast.unparse(arg)!r}", hint="e.g. diff(u, t, 2) or diff(u, x, x)")
        if sum(n for _, n in orders) > MAX_DERIVATIVE_ORDER:
            raise ParseError(f"{name}(...): total order above {MAX_DERIVATIVE_ORDER}")
        _check_orders(sum(n for v, n in orders if v == T), sum(n for v, n in orders if v == X), name)
        return sp.Derivative(operand, *[(var, n) for var, n in orders])


def _check_orders(time_order: int, space_order: int, where: str) -> None:
    if time_order > MAX_TIME_ORDER:
        raise ParseError(f"{_short(where)}: time derivative of order {time_order} (at most {MAX_TIME_ORDER})",
                         hint="the analysis solves a polynomial of this degree; write a lower-order PDE")
    if space_order > MAX_DERIVATIVE_ORDER:
        raise ParseError(f"{_short(where)}: x-derivative of order {space_order} (at most {MAX_DERIVATIVE_ORDER})")


def check_space_power(beta: sp.Rational, where: str) -> None:
    """A power of (-lap): a rational 0 <= beta <= MAX_LAPLACIAN_POWER with denominator <= MAX_POWER_DENOMINATOR."""
    if beta > MAX_LAPLACIAN_POWER:
        raise ParseError(f"the power {_short(beta)} of (-lap) in {_short(where)} is too large "
                         f"(at most {MAX_LAPLACIAN_POWER})")
    if beta.q > MAX_POWER_DENOMINATOR:
        raise ParseError(f"the power {_short(beta)} of (-lap) in {_short(where)} has denominator {_short(beta.q)} "
                         f"(at most {MAX_POWER_DENOMINATOR})",
                         hint="round it, e.g. fraclap(u, 3/4); the analysis works in s**(1/denominator)")


def _check_number(number: sp.Expr, where: str = "") -> None:
    """Exact numbers of at most MAX_COEFFICIENT_BITS bits; floats within the same range."""
    if isinstance(number, sp.Float):
        _, _, exponent, bits = number._mpf_  # |number| ~ 2**(exponent + bits)
        if number != 0 and not -MAX_COEFFICIENT_BITS < exponent + bits < MAX_COEFFICIENT_BITS:
            raise ParseError(f"number {_short(number)} is out of range{where}")
    elif (isinstance(number, sp.Rational)
          and max(abs(number.p).bit_length(), number.q.bit_length()) > MAX_COEFFICIENT_BITS):
        raise ParseError(f"number {_short(number)} is too large or has too many digits (at most 12, "
                         f"magnitude 1e-12 to 1e12){where}", hint="rescale the equation, or round the number")


def check_expression_size(expr: sp.Basic) -> None:
    """Bound the work any SymPy input causes before it is expanded: node count, numbers, numeric powers."""
    for count, node in enumerate(sp.preorder_traversal(expr)):
        if count > MAX_EXPRESSION_NODES:
            raise ParseError(f"expression too large (more than {MAX_EXPRESSION_NODES} nodes)")
        if isinstance(node, sp.Number):
            _check_number(node)
        elif isinstance(node, sp.Pow) and node.exp.is_Number:
            _Builder._power(node.base, node.exp)


def _parse_side(text: str, builder: _Builder) -> sp.Expr:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ParseError(f"invalid syntax in {_short(text)!r}: {exc.msg}", hint=_BAD_INPUT_HINT) from None
    except (RecursionError, MemoryError, ValueError):
        raise ParseError("expression nested too deeply or too large") from None
    expr = builder.build(tree)
    check_expression_size(expr)
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise ParseError(f"division by zero or infinite value in {_short(text)!r}")
    return expr


@foreign_errors_as(ParseError, "cannot read the PDE text")
def parse_text(text: str) -> sp.Expr:
    """Parse PDE text (SymPy syntax or shorthand, at most one '=') into LHS - RHS, in the unknown ``U``."""
    if not isinstance(text, str):
        raise ParseError(f"expected PDE text, got {type(text).__name__}")
    line = _NEGATIVE_LAPLACIAN.sub(lambda m: f"fraclap({m.group(2)}, {m.group(1) or 1})", check_length(text))
    equals = [tok.start[1] for tok in _tokens(line) if tok.string == "="]
    if len(equals) > 1:
        raise ParseError(f"more than one '=' in {_short(line)!r}", hint="write a single equation 'LHS = RHS'")
    builder = _Builder()
    if not equals:
        return _parse_side(line, builder)
    left, right = line[: equals[0]].strip(), line[equals[0] + 1:].strip()
    if not left or not right:
        raise ParseError(f"nothing on the {'left' if not left else 'right'} of '='", hint=_BAD_INPUT_HINT)
    return _parse_side(left, builder) - _parse_side(right, builder)


@foreign_errors_as(ParseError, "cannot read the parameter value")
def parse_value(value, name: str = "value") -> sp.Expr:
    """A parameter value: a real number, or text with numbers and simple arithmetic ('1/2', 'sqrt(2)').

    Exact: floats become rationals (0.1 -> 1/10).  Must be a finite real number.
    """
    if isinstance(value, bool):
        raise ParseError(f"parameter {name}: expected a number, got {value!r}")
    if isinstance(value, str):
        line = check_length(value, what=f"value of {name}")
        if any(tok.string == "=" for tok in _tokens(line)):
            raise ParseError(f"parameter {name}: '=' in the value {value!r}")
        result = _parse_side(line, _Builder(numbers_only=True))
    elif isinstance(value, numbers.Integral):
        result = sp.Integer(int(value))
    elif isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            raise ParseError(f"parameter {name} must be finite, got {value!r}")
        result = sp.Rational(repr(float(value)))
    elif isinstance(value, sp.Expr) and value.is_number:
        result = value
    else:
        raise ParseError(f"parameter {name}: expected a number or numeric text, got {type(value).__name__}")
    check_expression_size(result)
    try:
        if result.is_real is not True or result.is_finite is not True or not math.isfinite(float(result)):
            raise ParseError(f"parameter {name} must be a finite real number, got {_short(result)}")
    except (TypeError, OverflowError):
        raise ParseError(f"parameter {name} must be a finite real number, got {_short(result)}") from None
    if result != 0 and not (1 / MAX_VALUE_MAGNITUDE <= abs(float(result)) <= MAX_VALUE_MAGNITUDE):
        raise ParseError(f"parameter {name} = {_short(result)} is out of range "
                         f"({1 / MAX_VALUE_MAGNITUDE:g} <= |value| <= {MAX_VALUE_MAGNITUDE:g}, or 0)",
                         hint="rescale: choose units in which the parameters are of moderate size")
    return result


# ==================================================================================================
# SymPy -> terms (linear-operator extraction)
# ==================================================================================================
_OperatorKey = tuple  # (t_order, space_power, multi-index of x-derivatives)


@dataclass
class _Linear:
    """An expression split as ``constant + sum_key coefficient * op_key u + sum_m coefficient * relap(u, m)``."""

    constant: sp.Expr = sp.S.Zero
    parts: dict = field(default_factory=dict)
    screened: dict = field(default_factory=dict)  # m -> coefficient of relap(u, m), m > 0 a number

    def add_screened(self, mass: sp.Expr, coefficient: sp.Expr) -> None:
        _accumulate(self.screened, mass, coefficient)

    @property
    def has_u(self) -> bool:
        return bool(self.parts or self.screened)

    def add(self, key: _OperatorKey, coefficient: sp.Expr) -> None:
        _accumulate(self.parts, key, coefficient)


def _accumulate(coefficients: dict, key, coefficient: sp.Expr) -> None:
    """coefficients[key] += coefficient, the key dropped where the sum cancels to 0."""
    total = coefficients.get(key, sp.S.Zero) + coefficient
    if total == 0:
        coefficients.pop(key, None)
    else:
        coefficients[key] = total


@dataclass
class _Extraction:
    terms: tuple[Term, ...]
    parameters: tuple[Parameter, ...]
    notes: tuple[str, ...]


class _Extractor:
    """Splits a SymPy expression, linear in one unknown function, into constant-coefficient operator terms."""

    def __init__(self, unknown: sp.Expr, time: sp.Symbol, space: tuple[sp.Symbol, ...], values: dict):
        self.unknown = unknown
        self.time = time
        self.space = space
        self.values = values  # name -> value, for the exponents of fractional Laplacians
        self.zero_index = (0,) * len(space)
        self.notes: list[str] = []

    def linear(self, expr: sp.Expr, depth: int = 0) -> _Linear:
        if depth > 200:
            raise UnsupportedPDEError("expression nested too deeply")
        if not expr.has(self.unknown.func):
            return _Linear(constant=expr)
        if expr == self.unknown:
            return _Linear(parts={(0, sp.S.Zero, self.zero_index): sp.S.One})
        if isinstance(expr, AppliedUndef):
            raise UnsupportedPDEError(f"{_short(expr)}: the unknown must always be {_short(self.unknown)}")
        if expr.is_Add:
            result = _Linear()
            for arg in expr.args:
                part = self.linear(arg, depth + 1)
                result.constant += part.constant
                for key, coefficient in part.parts.items():
                    result.add(key, coefficient)
                for mass, coefficient in part.screened.items():
                    result.add_screened(mass, coefficient)
            return result
        if expr.is_Mul:
            return self._product(expr, depth)
        if isinstance(expr, Laplacian):
            return self._space_operator(expr, self.linear(expr.args[0], depth + 1), expr.power, -1)
        if isinstance(expr, FractionalLaplacian):
            return self._space_operator(expr, self.linear(expr.args[0], depth + 1), self._beta(expr), 1)
        if isinstance(expr, RelativisticLaplacian):
            return self._relativistic(expr, self.linear(expr.args[0], depth + 1))
        if expr.is_Pow or isinstance(expr, sp.Function):  # u**2, sqrt(u), 1/u, sin(u), Abs(u), ...
            raise NonLinearPDEError(f"term {_short(expr)} is not linear in u",
                                    hint="pde2gen handles linear PDEs: u and its derivatives may only be "
                                         "multiplied by constants")
        if isinstance(expr, sp.Derivative):
            result = self.linear(expr.expr, depth + 1)
            if result.screened:
                _refuse_screened_use(f"a derivative of {_short(expr.expr)}")
            if not all(count.is_Integer for _, count in expr.variable_count):
                raise UnsupportedPDEError(f"{_short(expr)}: derivative orders must be integers")
            for variable, count in expr.variable_count:
                result = self._differentiate(result, variable, int(count), expr)
            return result
        raise UnsupportedPDEError(f"cannot read {_short(expr)} as a linear operator on u",
                                  hint="use derivatives, laplacian(u) and fraclap(u, beta)")

    def _product(self, expr: sp.Mul, depth: int) -> _Linear:
        result = _Linear(constant=sp.S.One)
        for factor in expr.args:
            part = self.linear(factor, depth + 1)
            if result.has_u and part.has_u:
                raise NonLinearPDEError(f"term {_short(expr)} is not linear in u (a product of u terms)",
                                        hint="pde2gen handles linear PDEs only")
            combined = _Linear(constant=result.constant * part.constant)
            for key, coefficient in result.parts.items():
                combined.add(key, coefficient * part.constant)
            for key, coefficient in part.parts.items():
                combined.add(key, coefficient * result.constant)
            for mass, coefficient in result.screened.items():
                combined.add_screened(mass, coefficient * part.constant)
            for mass, coefficient in part.screened.items():
                combined.add_screened(mass, coefficient * result.constant)
            result = combined
        return result

    def _differentiate(self, linear: _Linear, variable, count: int, expr) -> _Linear:
        if count > 4 * MAX_DERIVATIVE_ORDER:
            raise UnsupportedPDEError(f"derivative order {count} in {_short(expr)} is too high")

        def shifted(key):
            t_order, beta, index = key
            if variable == self.time:
                return (t_order + 1, beta, index)
            if variable in self.space:
                position = self.space.index(variable)
                return (t_order, beta, index[:position] + (index[position] + 1,) + index[position + 1:])
            return None  # a parameter: the operator part does not depend on it

        for _ in range(count):  # product rule, one order at a time
            result = _Linear(constant=sp.diff(linear.constant, variable))
            for key, coefficient in linear.parts.items():
                result.add(key, sp.diff(coefficient, variable))
                if shifted(key) is not None:
                    result.add(shifted(key), coefficient)
            linear = result
        return linear

    def _beta(self, expr: FractionalLaplacian) -> sp.Rational:
        beta = expr.beta.xreplace({s: self.values[s.name] for s in expr.beta.free_symbols if s.name in self.values})
        if beta.free_symbols:
            names = ", ".join(sorted(s.name for s in beta.free_symbols))
            raise UnsupportedPDEError(f"the power of {_short(expr)} must be a number: give {names} a value",
                                      hint=f"e.g. params={{'{min(s.name for s in beta.free_symbols)}': '3/2'}}")
        rational = sp.nsimplify(beta, rational=True) if beta.is_Float else beta
        if not (rational.is_Rational and rational >= 0):
            raise UnsupportedPDEError(f"the power of {_short(expr)} must be a non-negative rational number, "
                                      f"got {_short(beta)}")
        check_space_power(rational, expr)
        if expr.beta.free_symbols:
            self.notes.append(f"power of {_short(expr)} fixed to {rational} by the parameter values")
        return rational

    def _relativistic(self, expr: RelativisticLaplacian, inner: _Linear) -> _Linear:
        """relap(u, m) = (sqrt(-Laplacian + m^2) - m) u, with m a number >= 0, acting on u itself (times a
        constant): the analysis supports it in first-order evolution PDEs only (its symbol is not a power of s)."""
        where = f"relap({_short(expr.args[0])}, {_short(expr.mass)})"
        mass = expr.mass.xreplace({s: self.values[s.name] for s in expr.mass.free_symbols if s.name in self.values})
        if mass.free_symbols & {self.time, *self.space}:
            raise UnsupportedPDEError(f"the mass m of {where} must be a constant number, got {_short(mass)}",
                                      hint=_RELAP_HINT)
        if mass.free_symbols:
            names = ", ".join(sorted(s.name for s in mass.free_symbols))
            raise UnsupportedPDEError(f"the mass of {where} must be a number: give {names} a value",
                                      hint=f"e.g. params={{'{min(s.name for s in mass.free_symbols)}': '1'}}")
        if mass.is_Float:
            mass = sp.nsimplify(mass, rational=True)
        if not (mass.is_extended_real and mass.is_nonnegative):
            raise UnsupportedPDEError(f"the mass m of {where} must be a real number >= 0, got {_short(mass)}",
                                      hint=_RELAP_HINT)
        if mass != 0 and not 1 / MAX_VALUE_MAGNITUDE <= float(mass) <= MAX_VALUE_MAGNITUDE:
            raise ParseError(f"the mass m of {where} is out of range ({1 / MAX_VALUE_MAGNITUDE:g} <= m <= "
                             f"{MAX_VALUE_MAGNITUDE:g}, or 0)", hint="rescale: choose units in which m is moderate")
        if mass == 0:
            self.notes.append(f"{where} with m = 0 read as fraclap(., 1/2)")
            return self._space_operator(expr, inner, sp.S.Half, 1)
        if inner.constant.free_symbols & set(self.space):
            raise UnsupportedPDEError(f"source term {_short(inner.constant)} inside {where}",
                                      hint="pde2gen handles homogeneous equations (every term contains u)")
        if inner.screened or set(inner.parts) - {(0, sp.S.Zero, self.zero_index)}:
            _refuse_screened_use(f"{where}, which acts on {_short(expr.args[0])}")
        coefficient = inner.parts.get((0, sp.S.Zero, self.zero_index), sp.S.Zero)
        if coefficient.free_symbols & set(self.space):
            raise UnsupportedPDEError(f"coefficient {_short(coefficient)} inside {where} depends on space",
                                      hint="coefficients must be constant")
        if expr.mass.free_symbols:
            self.notes.append(f"mass of {where} fixed to {_short(mass)} by the parameter values")
        return _Linear(screened={mass: coefficient})

    def _space_operator(self, expr, inner: _Linear, power, sign: int) -> _Linear:
        """Apply (sign * (-Laplacian))**power: Laplacian = -(-Laplacian)."""
        if inner.screened:
            _refuse_screened_use(f"{_short(expr)}")
        if inner.constant.free_symbols & set(self.space):
            raise UnsupportedPDEError(f"source term {_short(inner.constant)} inside {_short(expr)}",
                                      hint="pde2gen handles homogeneous equations (every term contains u)")
        result = _Linear(constant=inner.constant if power == 0 else sp.S.Zero)  # it kills constants
        for (t_order, beta, index), coefficient in inner.parts.items():
            if coefficient.free_symbols & set(self.space):
                raise UnsupportedPDEError(f"coefficient {_short(coefficient)} inside {_short(expr)} depends on "
                                          "space", hint="coefficients must be constant")
            result.add((t_order, beta + power, index), coefficient * sp.Integer(sign) ** power)
        return result

    # ----------------------------------------------------------------------------------------------
    def terms(self, expr: sp.Expr) -> tuple[list[Term], list[str]]:
        linear = self.linear(expr)
        notes: list[str] = []
        if linear.constant != 0 and sp.expand(linear.constant) != 0:
            raise UnsupportedPDEError(f"source term {_short(linear.constant)} does not contain u",
                                      hint="pde2gen handles homogeneous equations (every term contains u)")
        # (t_order, t_power, beta) -> symbol polynomial in k of the x-derivatives (d/dx_i -> I k_i)
        wavevector = sp.symbols(f"k_0:{len(self.space)}", real=True)
        polynomials: dict[tuple, sp.Expr] = {}
        for (t_order, beta, index), coefficient in linear.parts.items():
            operator = _describe_operator(t_order, beta, index)
            if coefficient.free_symbols & set(self.space):
                raise UnsupportedPDEError(f"coefficient {_short(coefficient)} of {operator} depends on space",
                                          hint="pde2gen handles constant coefficients only")
            monomial = sp.Mul(*[(sp.I * k) ** n for k, n in zip(wavevector, index)])
            for t_power, part in self._split_time(coefficient, operator):
                key = (t_order, t_power, beta)
                polynomials[key] = polynomials.get(key, sp.S.Zero) + part * monomial
        if any(any(index) for _, _, index in linear.parts):
            notes.append("second x-derivatives read as the Laplacian in N dimensions (isotropy)")
        screened_terms = []
        for mass, coefficient in linear.screened.items():
            if coefficient.free_symbols & set(self.space):
                raise UnsupportedPDEError(f"coefficient {_short(coefficient)} of relap(u, {_short(mass)}) depends "
                                          "on space", hint="pde2gen handles constant coefficients only")
            for t_power, part in self._split_time(coefficient, f"relap(u, {_short(mass)})"):
                part = sp.expand(part)
                for number in part.atoms(sp.Number):
                    _check_number(number, " (a coefficient after expansion)")
                if part != 0:
                    screened_terms.append(Term(part, 0, sp.S.Zero, t_power, screening_mass=mass))
        merged: dict[tuple, sp.Expr] = {}
        for (t_order, t_power, beta), polynomial in polynomials.items():
            for power, coefficient in self._isotropic(polynomial, wavevector, t_order, beta).items():
                key = (t_order, beta + power, t_power)
                merged[key] = merged.get(key, sp.S.Zero) + coefficient
        terms = []
        for (t_order, space_power, t_power), coefficient in merged.items():
            _check_orders(t_order, 0, expr)
            check_space_power(sp.Rational(space_power), expr)
            coefficient = sp.expand(coefficient)
            for number in coefficient.atoms(sp.Number):
                _check_number(number, " (a coefficient after expansion)")
            if coefficient != 0:
                terms.append(Term(coefficient, t_order, sp.Rational(space_power), t_power))
        terms.extend(screened_terms)
        terms.sort(key=lambda term: (-term.t_order, -term.t_power, term.space_power,
                                     term.screening_mass is not None, term.screening_mass or 0))
        return terms, self.notes + notes

    def _split_time(self, coefficient: sp.Expr, operator: str) -> list[tuple[int, sp.Expr]]:
        """coefficient = sum_m c_m t**m with constant c_m (t-dependence is refused except t**-1, below)."""
        if self.time not in coefficient.free_symbols:
            return [(0, coefficient)]
        pieces = []
        for piece in sp.Add.make_args(sp.expand(coefficient)):
            constant, dependent = piece.as_independent(self.time, as_Add=False)
            power = 0 if dependent == 1 else 1 if dependent == self.time else None
            if dependent.is_Pow and dependent.base == self.time and dependent.exp.is_Integer:
                power = int(dependent.exp)
            if power is None or self.time in constant.free_symbols:
                raise UnsupportedPDEError(f"coefficient {_short(coefficient)} of {operator} depends on t",
                                          hint="coefficients must be constant, except the PFGM++ radial "
                                               "term (D-1)/t*diff(u,t)")
            pieces.append((power, constant))
        return pieces

    def _isotropic(self, polynomial: sp.Expr, wavevector, t_order: int, beta) -> dict[int, sp.Expr]:
        """Write the x-derivative symbol Q(k) as sum_n c_n (k^2)**n; refuse odd or anisotropic parts."""
        operator = _describe_operator(t_order, beta, self.zero_index)
        if not wavevector:
            return {0: polynomial}
        radius = sp.Dummy("r", positive=True)
        along_axis = sp.expand(polynomial.xreplace({k: (radius if i == 0 else 0) for i, k in enumerate(wavevector)}))
        coefficients = sp.Poly(along_axis, radius).as_dict()
        odd = [n for (n,), c in coefficients.items() if n % 2 and sp.expand(c) != 0]
        if odd:
            raise UnsupportedPDEError(f"odd x-derivative (order {odd[0]}) acting on {operator}: only even, "
                                      "isotropic space derivatives are supported",
                                      hint="first x-derivatives (advection) make the PDE anisotropic")
        even = {n // 2: c for (n,), c in coefficients.items()}
        if len(wavevector) > 1:
            k_squared = sp.Add(*[k**2 for k in wavevector])
            if sp.expand(polynomial - sp.Add(*[c * k_squared**n for n, c in even.items()])) != 0:
                raise UnsupportedPDEError(f"the x-derivatives acting on {operator} are anisotropic "
                                          f"(symbol {_short(polynomial)})",
                                          hint="space may enter only through the Laplacian")
        return even


def _refuse_screened_use(where: str) -> None:
    raise UnsupportedPDEError(f"relap(u, m) is supported acting on u itself in a first-order evolution PDE; "
                              f"not in {where}", hint="write e.g. u_t = lap(u) - c*relap(u, m) (c >= 0, m >= 0)")


def _describe_operator(t_order: int, beta, index) -> str:
    text = "u" if not t_order else "u_" + "t" * t_order
    if beta != 0:
        text = f"(-lap)^{beta} {text}" if beta != 1 else f"(-lap) {text}"
    if any(index):
        text = "d_x^" + "".join(map(str, index)) + " " + text
    return text


# ==================================================================================================
# Public API
# ==================================================================================================
def _expanded_size(expr: sp.Basic) -> int:
    """An upper bound on the number of terms of expand(expr) (capped), to refuse (a+c)**300 before expanding."""
    cap = MAX_EXPANDED_TERMS + 1
    if expr.is_Add:
        return min(cap, sum(_expanded_size(arg) for arg in expr.args))
    if expr.is_Mul:
        size = 1
        for arg in expr.args:
            size = min(cap, size * _expanded_size(arg))
        return size
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        base = _expanded_size(expr.base)
        return 1 if base == 1 else min(cap, base ** min(int(expr.exp), 64))
    return min(cap, max(1, sum(_expanded_size(arg) for arg in expr.args)))


def as_expression(source) -> sp.Expr:
    if isinstance(source, sp.Equality):
        return source.lhs - source.rhs
    if isinstance(source, sp.logic.boolalg.BooleanAtom):
        raise ParseError(f"the equation evaluated to {source} before pde2gen saw it",
                         hint="build the equation with the unknown function u(t, x)")
    if isinstance(source, sp.Expr):
        return source
    raise ParseError(f"expected PDE text, a SymPy Eq or a SymPy expression, got {type(source).__name__}")


def _unknown_and_variables(expr: sp.Expr) -> tuple[sp.Expr, sp.Symbol, tuple[sp.Symbol, ...]]:
    unknowns = {f for f in expr.atoms(AppliedUndef)}
    functions = {f.func for f in unknowns}
    if not unknowns:
        raise UnsupportedPDEError(f"no unknown function in {_short(expr)}", hint="write the PDE in u(t, x)")
    if len(functions) > 1:
        names = ", ".join(sorted(str(f) for f in functions))
        raise UnsupportedPDEError(f"several unknown functions ({names}): systems are not supported")
    if len(unknowns) > 1:
        raise UnsupportedPDEError(f"the unknown appears with different arguments: "
                                  f"{', '.join(sorted(map(str, unknowns)))}")
    unknown = unknowns.pop()
    if not all(isinstance(arg, sp.Symbol) for arg in unknown.args) or len(set(unknown.args)) != len(unknown.args):
        raise UnsupportedPDEError(f"the unknown {_short(unknown)} must depend on distinct variables")
    times = [arg for arg in unknown.args if arg.name == "t"]
    if not times:
        raise UnsupportedPDEError(f"the unknown {_short(unknown)} does not depend on t",
                                  hint="write it u(t, x) with t the time (or augmented) variable")
    return unknown, times[0], tuple(arg for arg in unknown.args if arg.name != "t")


def leading_term(terms) -> Term:
    """The term whose coefficient fixes the overall sign: highest time order, plain d_t^J, lowest space power."""
    top = max(term.t_order for term in terms)
    candidates = [term for term in terms if term.t_order == top]
    return min(candidates, key=lambda term: (term.t_power != 0, term.space_power))


def leading_phase(terms, values: Mapping[str, sp.Expr]) -> sp.Expr | None:
    """The unit complex number of the leading coefficient (None if its sign cannot be decided)."""
    coefficient = leading_term(terms).coefficient
    numeric = coefficient.xreplace({s: values[s.name] for s in coefficient.free_symbols if s.name in values})
    if numeric.is_number:
        if numeric.is_zero:
            return None
        if numeric.is_extended_real:
            return sp.sign(numeric)
        if numeric.is_imaginary:
            return sp.I * sp.sign(sp.im(numeric))
        return sp.radsimp(numeric / sp.Abs(numeric))
    sign = sp.sign(coefficient)
    return sign if sign.is_number and sign != 0 else None


def _normalise(terms: list[Term], values, notes: list[str]) -> list[Term]:
    lead = leading_term(terms)
    numeric = lead.coefficient.xreplace({s: values[s.name] for s in lead.coefficient.free_symbols if s.name in values})
    if numeric.is_number and numeric.is_zero:
        operator = _describe_operator(lead.t_order, lead.space_power, ())
        raise UnsupportedPDEError(f"the coefficient {_short(lead.coefficient)} of {operator} vanishes for the "
                                  "given parameter values", hint="the highest time derivative must stay in the PDE")
    phase = leading_phase(terms, values)
    if phase is None:
        notes.append(f"the sign of the leading coefficient {_short(lead.coefficient)} depends on free "
                     "parameters; left as given")
        return terms
    if phase == 1:
        return terms
    factor = sp.conjugate(phase)
    notes.append(f"multiplied the equation by {_short(factor)} so that the coefficient of "
                 f"{_describe_operator(lead.t_order, lead.space_power, ())} is positive")
    return [replace(term, coefficient=sp.expand(term.coefficient * factor)) for term in terms]


def extract_terms(source, values: Mapping[str, sp.Expr], *, normalise: bool = True) -> _Extraction:
    expr = as_expression(source)
    check_expression_size(expr)
    unknown, time, space = _unknown_and_variables(expr)
    if _expanded_size(expr) > MAX_EXPANDED_TERMS:
        raise ParseError(f"the coefficients of {_short(expr)} are too large to expand",
                         hint="simplify the coefficients, or name them as parameters")
    notes: list[str] = []
    floats = expr.atoms(sp.Float)
    if floats:
        expr = expr.xreplace({f: sp.nsimplify(f, rational=True) for f in floats})
        notes.append("floating-point numbers converted to exact rationals")
    # Every parameter becomes a positive symbol (the same for all three ways in).
    by_name: dict[str, sp.Symbol] = {}
    free = expr.free_symbols - {time, *space}
    if len(free) > MAX_PARAMETERS:
        raise ParseError(f"{len(free)} parameters (at most {MAX_PARAMETERS})",
                         hint="give numbers instead of names, or combine parameters")
    for symbol in sorted(free, key=lambda s: s.name):
        if symbol.name in by_name:
            raise ParseError(f"two different symbols are named {symbol.name!r}")
        check_parameter_name(symbol.name)
        by_name[symbol.name] = symbol
    positive = {name: sp.Symbol(name, positive=True) for name in by_name}
    expr = expr.xreplace({symbol: positive[name] for name, symbol in by_name.items()})
    # Values <= 0 contradict positive=True: substitute them now.
    fixed = {positive[name]: values[name] for name in positive if name in values and not values[name] > 0}
    if fixed:
        expr = expr.xreplace(fixed)
        notes.append("substituted parameters whose value is not positive: "
                     + ", ".join(f"{s.name} = {v}" for s, v in fixed.items()))
    extractor = _Extractor(unknown, time, space, dict(values))
    terms, extra_notes = extractor.terms(expr)
    notes += extra_notes
    _check_supported(terms, source)
    if normalise:
        terms = _normalise(terms, values, notes)
    parameters = tuple(Parameter(name, positive[name], values.get(name)) for name in sorted(positive))
    return _Extraction(tuple(terms), parameters, tuple(notes))


def _check_supported(terms: list[Term], source) -> None:
    if not terms:
        raise UnsupportedPDEError(f"{_short(source)} has no term in u (everything cancels)")
    if max(term.t_order for term in terms) == 0:
        raise UnsupportedPDEError(f"no time derivative in {_short(source)}",
                                  hint="pde2gen needs an equation in t; for elliptic problems treat one "
                                       "coordinate as t, e.g. diff(u,t,2) + laplacian(u) = 0")
    if any(term.screening_mass is not None for term in terms) and max(term.t_order for term in terms) != 1:
        _refuse_screened_use(f"a PDE of order {max(term.t_order for term in terms)} in t")
    has_second_order = any(t.t_order == 2 and t.t_power == 0 and t.space_power == 0 for t in terms)
    for term in terms:
        if term.t_power == 0:
            continue
        operator = _describe_operator(term.t_order, term.space_power, ())
        if term.screening_mass is not None:
            operator = f"relap({operator}, {_short(term.screening_mass)})"
        coefficient = _short(term.coefficient * T**term.t_power)
        radial = term.t_power == -1 and term.t_order == 1 and term.space_power == 0
        if radial and not has_second_order:
            raise UnsupportedPDEError(f"the radial term {coefficient}*{operator} needs a u_tt term next to it",
                                      hint="the PFGM++ form is diff(u,t,2) + (D-1)/t*diff(u,t) + laplacian(u) = 0")
        if not radial:
            raise UnsupportedPDEError(f"coefficient {coefficient} of {operator} depends on t",
                                      hint="the only t-dependent term allowed is the PFGM++ radial term "
                                           "(D-1)/t*diff(u,t), next to diff(u,t,2)")


def parameter_items(params, what: str = "params") -> list[tuple[object, object]]:
    """The (name, value) pairs of a parameter mapping (None: none); ParseError for anything else."""
    if params is None:
        return []
    if not isinstance(params, Mapping):
        raise ParseError(f"{what} must be a mapping of parameter names to values, got {type(params).__name__}",
                         hint="e.g. params={'a': 9, 'c': '3'}")
    try:
        items = list(params.items())
    except Exception as exc:  # noqa: BLE001 - a user mapping's own error becomes pde2gen's
        raise ParseError(f"{what}: cannot read the mapping ({type(exc).__name__})") from None
    if len(items) > MAX_PARAMETERS:
        raise ParseError(f"{what}: {len(items)} parameters (at most {MAX_PARAMETERS})")
    return items


@foreign_errors_as(ParseError, "cannot read the SymPy PDE")
def from_sympy(expr_or_eq, *, values: Mapping[str, object] | None = None
               ) -> tuple[tuple[Term, ...], tuple[Parameter, ...]]:
    """Terms and parameters of a SymPy ``Eq`` or expression (= 0) in one unknown function ``u(t, x, ...)``.

    ``t`` is the argument named "t"; the others are space variables (second derivatives in each read as
    the Laplacian by isotropy).  Every other symbol is a parameter, returned as a positive symbol with its
    value from ``values`` (if any); floats become exact rationals.  The terms are normalised as in ``parse``:
    the highest time-order term gets a positive coefficient.
    """
    parsed = {}
    for name, value in parameter_items(values, "values"):
        check_parameter_name(name)
        parsed[name] = parse_value(value, name)
    extraction = extract_terms(expr_or_eq, parsed)
    return extraction.terms, extraction.parameters

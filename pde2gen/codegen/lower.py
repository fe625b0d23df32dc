"""Lower a derivation to ``ModuleIR``: the plain data every template of the generated module is rendered from.

``lower(spec, analysis, derivation, options=...)`` turns the symbolic results of the earlier stages into
strings, ints, floats, bools, tuples and dicts, and nothing else (no SymPy objects reach a template).
Three kinds of value come out, each made safe for where it goes:

- numbers that enter code (family parameters, times, noise levels) are finite floats, printed by the
  templates as ``repr(float(v))`` (filter ``pyfloat``);
- identifiers that enter code (parameter names, the runtime class) match ``^[A-Za-z_][A-Za-z0-9_]*$`` and are
  not Python keywords (filter ``ident`` re-checks);
- text for docstrings, comments and markdown (the PDE, formulas, verdict reasons) is ``safe_text``: one
  line, printable, without backslashes, double quotes or backticks, bounded in length; in code it appears
  only as a ``repr()`` string literal (filter ``pyrepr``).

Template context (the fields of ``ModuleIR``; every template of ``templates/`` may use any of them):

  pde2gen_version  str    version of the compiler that generated the module
  spec_hash        str    sha256 (hex) of the canonical PDESpec: identifies the PDE + dim + construction
  source           str    the PDE as the user gave it (safe_text)
  pde              str    the PDE as understood, e.g. "u_t + (-1)*(-lap) u = 0" (safe_text)
  catalog          tuple[str, ...]  catalog entries it was composed from (safe_text each)
  notes            tuple[str, ...]  how the input was normalised (safe_text each)
  pde_parameters   tuple[(name, value_text), ...]  the PDE's own parameters (docs only, safe_text)
  dimension_text   str    "N = 2 (isotropic construction)"-style summary (safe_text)
  dispersion       str    the symbol P(lambda, s) = 0 (safe_text)
  problem_type     str    "evolution" or "augmented"
  verdicts         tuple[(condition, status, reason), ...]  C0/C1/C2 (safe_text each)
  s_generative     bool   the analysis' verdict
  family           str    key of pde2gen.families.FAMILIES (also its folder: pde2gen/families/<family>/)
  family_class     str    the torch runtime class, e.g. "GaussianFamily"
  parameters       tuple[(name, float), ...]  the family parameters, names as in families.py
  construction     str    "isotropic" or "product"
  dim              int    number of coordinates of one sample, prod(shape)
  shape            tuple[int, ...]  shape of one sample (default (dim,))
  t_min, t_max     float  the time window: data at t -> 0, prior at t_max
  sigma_min, sigma_max, rho  float  EDM noise grid (physics.md §4.7)
  formulas         dict[str, str]  ghat, kernel, log_kernel, mass, sampler, velocity, prior, sigma, ...
  birth_death      str    how mass creation/destruction is handled (safe_text)
  checks           tuple[(name, passed, value_text, tolerance_text, detail), ...]  derive's self-checks
  options          dict[str, int | str]  build options (sampling defaults, test seed), see OPTION_DEFAULTS
  explanation      tuple[(title, tuple[str, ...]), ...]  the `pde2gen explain` report (markdown lines, validated
                   by is_markdown_line instead of safe_text: formulas sit in code spans)
  semigroup        bool   the normalised kernel is a convolution semigroup in t (ghat = exp(-t f(s)), isotropic
                   construction): K_t * K_d = K_(t+d), so a step from t to t + d adds an exact draw of K_d
                   (the stochastic sampler's noise increment); False on the linear path (no exact increment)
  bounded_support  bool   the kernel lives in a bounded set (Kac: the light cone), so model.py keeps EDM's
                   preconditioning (no far-tail noise level: TAIL_RADIUS = inf)
  path             str    "ve": x_t = y + K_t (t_min, t_max from the derivation); "linear": x_t = f(t) y + K_g(t),
                   f = 1 - t/T on [0, T], T = t_max (see resolve_path)
  path_schedule    str    linear path's clock g: "identity" g = t, "quadratic" g = T (t/T)^2, "scale_linear"
                   g = t_of_sigma((t/T) sigma_T) (the kernel's scale linear in t); "" on the ve path
  path_sigma_end   float  sigma_T of "scale_linear"; 0.0: the data's sigma_data, read at train time

``render`` adds a few values of its own (not part of the IR): ``ir_hash`` (sha256 of the canonical IR JSON),
``runtime_source`` (the inlined torch runtime) and ``files`` (names of the generated files).
"""
from __future__ import annotations

import ast
import hashlib
import json
import keyword
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import cache
from types import MappingProxyType

import sympy as sp
from sympy.printing.pycode import MpmathPrinter

from .. import __version__
from ..errors import DerivationError, RenderError, UsageError
from ..families import FAMILIES, S_SYMBOL, T_SYMBOL

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_TEXT = 1000  # characters of one safe_text value; longer text is cut with an ellipsis
MAX_SHAPE_ELEMENTS = 1 << 24

# The torch runtime class of each family (pde2gen/families/<family>/runtime.py), from its declaration.
FAMILY_CLASSES = MappingProxyType({name: info.runtime_class for name, info in FAMILIES.items()})

# Build options: defaults the generated files are rendered with (the model card's example and the exact-flow
# test of the generated scripts use the sampling grid and solver; the generated tests use the seed).
OPTION_DEFAULTS: Mapping[str, int | str] = {
    "sample_steps": 40,  # points of Process.sigma_grid for sampling
    "solver": "heun",  # euler | heun | rk4
    "seed": 0,  # base seed of the generated tests
}
SOLVERS = ("euler", "heun", "rk4")

# Probability paths (issue 10). "ve": x_t = y + K_t, t on the derivation's window. "linear": x_t = f(t) y + K_g(t)
# with f = 1 - t/T, t in [0, T]: the prior K_g(T) carries no data. Kac's defaults are the Kac-flow paper's
# (arXiv 2506.20641: T = 1, g(t) = t); every other family's clock makes the kernel's scale linear in t,
# sigma_K(g(t)) = (t/T) sigma_T, which for the Gaussian kernel is the flow-matching (rectified) path.
PATHS = ("ve", "linear")
PATH_SCHEDULES = ("identity", "quadratic", "scale_linear")
DEFAULT_PATH = "ve"  # every family until measured otherwise (bench/paths.py)
PATH_HORIZON = 1.0  # T
PATH_T_MIN_FRACTION = 1e-5  # t_min = this * T: the kernel and its velocity are singular at t = 0
# The paper's sampler on the linear path: Euler, 100 uniform steps in t from T to 0.
LINEAR_OPTION_DEFAULTS: Mapping[str, int | str] = {"sample_steps": 101, "solver": "euler"}


def resolve_path(family: str, path: str | None = None, *, schedule: str | None = None,
                 horizon: float | None = None, sigma_end: float | None = None) -> dict[str, str | float]:
    """The path fields of the IR: {"path", "path_schedule", "path_horizon", "path_sigma_end"}.

    ``path`` None is DEFAULT_PATH. On the linear path, ``schedule`` None is "identity" for kac_product (the
    paper's g(t) = t) and "scale_linear" for the other families; ``horizon`` is T (default 1); ``sigma_end``
    is sigma_T of "scale_linear" (default: the data's sigma_data, set by train.py from the data). UsageError
    on anything else, and on schedule/horizon/sigma_end given for the ve path (they would be ignored).
    """
    path = DEFAULT_PATH if path is None else path
    if path not in PATHS:
        raise UsageError(f"unknown path {safe_text(repr(path), limit=60)}", hint=f"paths: {', '.join(PATHS)}")
    if path == "ve":
        if schedule is not None or horizon is not None or sigma_end is not None:
            raise UsageError("path schedule, horizon and scale apply to --path linear only")
        return {"path": "ve", "path_schedule": "", "path_horizon": 0.0, "path_sigma_end": 0.0}
    if schedule is None:
        schedule = FAMILIES[family].linear_path_schedule
    schedule = str(schedule).replace("-", "_")
    if schedule not in PATH_SCHEDULES:
        raise UsageError(f"unknown path schedule {safe_text(repr(schedule), limit=60)}",
                         hint=f"schedules: {', '.join(s.replace('_', '-') for s in PATH_SCHEDULES)}")
    horizon = PATH_HORIZON if horizon is None else finite_float("path horizon", horizon)
    if horizon <= 0:
        raise UsageError(f"path horizon T must be > 0, got {horizon}")
    if sigma_end is not None:
        sigma_end = finite_float("path scale", sigma_end)
        if sigma_end <= 0:
            raise UsageError(f"path scale sigma_T must be > 0, got {sigma_end}")
        if schedule != "scale_linear":
            raise UsageError("a path scale sigma_T applies to the scale-linear schedule only")
    return {"path": "linear", "path_schedule": schedule, "path_horizon": horizon,
            "path_sigma_end": 0.0 if sigma_end is None else sigma_end}


# ------------------------------------------------------------------------------------------- safe values
def safe_text(value: object, *, limit: int = MAX_TEXT) -> str:
    """``value`` as one printable line that is safe inside a docstring, a comment or markdown.

    Whitespace runs (newlines included) become one space, control/format characters are dropped, and the
    characters that could end or escape a string literal or a code span (backslash, double quote, backtick)
    are replaced by look-alikes. Long text is cut to ``limit`` characters.
    """
    text = str(value)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\t\n\r" else " " for ch in text)
    text = " ".join(text.split())
    text = text.replace("\\", "/").replace('"', "'").replace("`", "'")
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def is_safe_text(text: str) -> bool:
    return text == safe_text(text, limit=max(MAX_TEXT, len(text)))


def check_identifier(name: object) -> str:
    """``name`` if it is a plain Python identifier (ASCII, not a keyword); UsageError otherwise."""
    if not isinstance(name, str) or not IDENTIFIER.match(name) or keyword.iskeyword(name):
        raise UsageError(f"{safe_text(repr(name), limit=60)} is not a valid parameter name")
    return name


def finite_float(name: str, value: object) -> float:
    """``value`` as a finite Python float; UsageError naming ``name`` otherwise (no SymPy objects survive)."""
    try:
        number = float(value)  # SymPy numbers convert; symbols and complex numbers raise
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"`{safe_text(name, limit=60)}` must be a real number, got {safe_text(value, limit=60)}")
    if not math.isfinite(number):
        raise UsageError(f"`{safe_text(name, limit=60)}` must be finite, got {number}")
    return number


def _check_plain(where: str, value: object) -> None:
    """Raise RenderError unless ``value`` is plain data: str/int/float/bool/None, tuples and str-keyed dicts."""
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"ModuleIR.{where} holds a non-finite float")
        return
    if isinstance(value, str):
        if not is_safe_text(value):
            raise RenderError(f"ModuleIR.{where} holds unsafe text {value[:40]!r}")
        return
    if isinstance(value, tuple):
        for index, item in enumerate(value):
            _check_plain(f"{where}[{index}]", item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not IDENTIFIER.match(key):
                raise RenderError(f"ModuleIR.{where} has a non-identifier key {key!r}")
            _check_plain(f"{where}[{key!r}]", item)
        return
    raise RenderError(f"ModuleIR.{where} holds {type(value).__name__}, which is not plain data")


# ------------------------------------------------------------------------------------------- the IR
# ModuleIR fields copied from the family's declaration (FamilyInfo) unless given.
DECLARED_FIELDS = ("isotropic", "gaussian_kernel", "front_speed_parameter", "subordinated",
                   "ancestral_denoiser_exact", "test_coordinate_law", "linear_path_note", "linear_path_note_brief")


@dataclass(frozen=True)
class ModuleIR:
    """Everything the templates need, as plain data (see the module docstring for each field)."""

    pde2gen_version: str
    spec_hash: str
    source: str
    pde: str
    catalog: tuple[str, ...]
    notes: tuple[str, ...]
    pde_parameters: tuple[tuple[str, str], ...]
    dimension_text: str
    dispersion: str
    problem_type: str
    verdicts: tuple[tuple[str, str, str], ...]
    s_generative: bool
    family: str
    family_class: str
    parameters: tuple[tuple[str, float], ...]
    construction: str
    dim: int
    shape: tuple[int, ...]
    t_min: float
    t_max: float
    sigma_min: float
    sigma_max: float
    rho: float
    formulas: dict[str, str]
    birth_death: str
    checks: tuple[tuple[str, bool, str, str, str], ...]
    options: dict[str, int | float | str | bool]
    explanation: tuple[tuple[str, tuple[str, ...]], ...] = ()
    semigroup: bool = False
    bounded_support: bool = False
    path: str = "ve"
    path_schedule: str = ""
    path_sigma_end: float = 0.0
    # From the family's declaration when not given: its SymPy ghat printed (ghat_code), its isotropy, and the
    # properties the templates branch on (FamilyInfo's fields of the same names).
    ghat_code: str | None = None
    isotropic: bool | None = None
    gaussian_kernel: bool | None = None
    front_speed_parameter: str | None = None
    subordinated: bool | None = None
    ancestral_denoiser_exact: bool | None = None
    test_coordinate_law: str | None = None
    linear_path_note: tuple[str, ...] | None = None
    linear_path_note_brief: str | None = None

    def __post_init__(self):
        if self.family in FAMILIES:
            if self.ghat_code is None:
                object.__setattr__(self, "ghat_code", ghat_code(self.family))
            for name in DECLARED_FIELDS:
                if getattr(self, name) is None:
                    object.__setattr__(self, name, getattr(FAMILIES[self.family], name))
            if self.front_speed_parameter is not None and self.front_speed_parameter not in dict(self.parameters):
                raise RenderError(f"ModuleIR.front_speed_parameter {self.front_speed_parameter!r} is not a parameter")
        for field in fields(self):
            if field.name not in ("explanation", "test_coordinate_law", "linear_path_note", "linear_path_note_brief"):
                _check_plain(field.name, getattr(self, field.name))
        if not all(map(is_markdown_line, (*self.linear_path_note, self.linear_path_note_brief or "x"))):
            raise RenderError("ModuleIR.linear_path_note(_brief) holds unsafe markdown")
        if self.test_coordinate_law:  # the declaration's Python text: must be a function body, nothing more
            try:
                tree = ast.parse("def coordinate_law(process, g):\n" + self.test_coordinate_law)
            except SyntaxError as error:
                raise RenderError(f"ModuleIR.test_coordinate_law is not Python: {error.msg}") from None
            if len(tree.body) != 1:
                raise RenderError("ModuleIR.test_coordinate_law is not one function body")
        for title, lines in self.explanation:
            if not is_safe_text(title) or not all(is_markdown_line(line) for line in lines):
                raise RenderError(f"ModuleIR.explanation section {title[:40]!r} holds unsafe markdown")
        if FAMILY_CLASSES.get(self.family) != self.family_class:
            raise RenderError(f"ModuleIR.family {self.family!r} does not match class {self.family_class!r}")
        names = tuple(name for name, _ in self.parameters)
        if names != FAMILIES[self.family].parameters:
            raise RenderError(f"ModuleIR.parameters {names} do not match family {self.family}")
        for name, value in self.parameters:
            check_identifier(name)
            if not isinstance(value, float):
                raise RenderError(f"ModuleIR parameter {name} must be a float")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.shape):
            raise RenderError(f"ModuleIR.shape {self.shape} must be positive ints")
        if math.prod(self.shape) != self.dim or self.dim > MAX_SHAPE_ELEMENTS:
            raise RenderError(f"ModuleIR.dim {self.dim} does not match shape {self.shape}")
        for name in ("t_min", "t_max", "sigma_min", "sigma_max", "rho"):
            value = getattr(self, name)
            if not isinstance(value, float) or value <= 0:
                raise RenderError(f"ModuleIR.{name} must be a positive float, got {value!r}")
        if not (self.t_min < self.t_max and self.sigma_min < self.sigma_max):
            raise RenderError("ModuleIR needs t_min < t_max and sigma_min < sigma_max")
        if self.path not in PATHS or (self.path == "linear") != (self.path_schedule in PATH_SCHEDULES):
            raise RenderError(f"ModuleIR.path {self.path!r} with schedule {self.path_schedule!r} is not a path")

    def to_dict(self) -> dict:
        """JSON-ready (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    def canonical_json(self) -> str:
        record = asdict(self)
        if self.path == "ve":  # ve modules keep the hash (and text) they had before paths existed
            for name in ("path", "path_schedule", "path_sigma_end"):
                del record[name]
        return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)

    def hash(self) -> str:
        """sha256 of the canonical IR JSON: the signature of the generated module."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


# ------------------------------------------------------------------------------------------- lowering
def resolve_options(options: Mapping[str, object] | None, path: str = "ve") -> dict[str, int | str]:
    """OPTION_DEFAULTS (with LINEAR_OPTION_DEFAULTS on the linear path) updated with ``options``; UsageError on
    unknown names or wrongly typed values."""
    resolved = dict(OPTION_DEFAULTS) | (dict(LINEAR_OPTION_DEFAULTS) if path == "linear" else {})
    for name, value in (options or {}).items():
        if name not in OPTION_DEFAULTS:
            known = ", ".join(sorted(OPTION_DEFAULTS))
            raise UsageError(f"unknown build option {safe_text(repr(name), limit=60)}", hint=f"options: {known}")
        default = OPTION_DEFAULTS[name]
        if isinstance(default, str):
            if value not in SOLVERS:
                raise UsageError(f"option `{name}` must be one of {', '.join(SOLVERS)}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "sample_steps" else 0):
            raise UsageError(f"option `{name}` must be an integer >= {2 if name == 'sample_steps' else 0}, "
                             f"got {safe_text(value, limit=60)}")
        resolved[name] = value
    return dict(sorted(resolved.items()))


def spec_hash(spec) -> str:
    """sha256 of a canonical description of the PDESpec (terms, parameter values, dim, construction)."""
    import sympy as sp  # the compiler core may use SymPy; only this function needs it here

    canonical = {
        "terms": [
            [sp.srepr(term.coefficient), term.t_order, str(term.space_power), term.t_power]
            + ([] if term.screening_mass is None else [sp.srepr(term.screening_mass)])  # relap(u, m): its m
            for term in spec.terms
        ],
        "parameters": [[p.name, None if p.value is None else sp.srepr(p.value)] for p in spec.parameters],
        "dim": spec.dim,
        "construction": spec.construction,
        "problem_type": spec.problem_type,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _status_text(status: object) -> str:
    return safe_text(getattr(status, "value", status), limit=40)


def _verdicts(conditions) -> tuple[tuple[str, str, str], ...]:
    """(name, status, reason) of each condition; ``conditions`` is a mapping or a sequence of records."""
    if isinstance(conditions, Mapping):
        items = [(str(name), record) for name, record in conditions.items()]
    else:
        items = [(str(getattr(record, "name", index)), record) for index, record in enumerate(conditions or ())]
    return tuple(
        (safe_text(name, limit=40), _status_text(getattr(record, "status", "")),
         safe_text(getattr(record, "reason", "")))
        for name, record in sorted(items)
    )


def _number_text(value: object) -> str:
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError, OverflowError):
        return safe_text(value, limit=60)


def _shape(dim: int, shape) -> tuple[int, ...]:
    if shape is None:
        return (dim,)
    try:
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise UsageError(f"shape must be a tuple of positive integers, got {safe_text(shape, limit=60)}")
    if not shape or any(n < 1 for n in shape) or math.prod(shape) != dim:
        raise UsageError(f"shape {shape} does not hold dim = {dim} coordinates")
    return shape


def one_line(text: str) -> str:
    """Control characters (newlines included) dropped; whitespace runs become one space (ends kept)."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in str(text))
    return re.sub(r"\s+", " ", text)


_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")


def is_markdown_line(text: str) -> bool:
    """True for one line as ``markdown_line`` makes it: printable, no control characters, and outside its
    closed code spans no unescaped backtick or '<' (no raw HTML). For validating sections reused elsewhere."""
    if not isinstance(text, str) or text != one_line(text).strip():
        return False
    outside = _CODE_SPAN.sub("", text)
    return re.search(r"(?<!\\)[`<]", outside) is None



class _GhatPrinter(MpmathPrinter):
    """mpmath code, with Bessel K through the generated test's ``bessel_k(mpmath, order, x)``: mpmath's besselk
    stops converging at large orders (PFGM++ with D = 1e8: order 5e7), where that helper takes the uniform
    asymptotic expansion (templates/tests/test_generated_process.py.j2)."""

    def _print_besselk(self, expr):
        return f"bessel_k(mpmath, {self._print(expr.args[0])}, {self._print(expr.args[1])})"


@cache
def ghat_code(family: str) -> str:
    """The family's one closed form of ghat (its SymPy ``ghat``, pde2gen/families/<name>/__init__.py) printed as a
    Python expression in s (|k|^2, or k_i^2 of one coordinate), t, the parameter names, ``mpmath`` and the test's
    ``bessel_k``: the generated tests evaluate it in high precision (no overflow of a Bessel K of order 1024,
    complex branches)."""
    info = FAMILIES[family]
    params = {name: sp.Symbol(check_identifier(name), positive=True) for name in info.parameters}
    code = _GhatPrinter({"fully_qualified_modules": True}).doprint(info.ghat(params, S_SYMBOL, T_SYMBOL))
    names = {node.id for node in ast.walk(ast.parse(code, mode="eval")) if isinstance(node, ast.Name)}
    if not names <= {"s", "t", "mpmath", "bessel_k", *info.parameters}:
        raise RenderError(f"the ghat of {family} prints with unknown names {sorted(names - set(params))}")
    return code


def lower(spec, analysis, derivation, *, options: Mapping[str, object] | None = None, shape=None,
          path: Mapping[str, object] | None = None, explanation=()) -> ModuleIR:
    """The ModuleIR of a derived PDE (DerivationError if nothing was derived, UsageError on bad options).

    ``path``: keyword arguments of resolve_path (path, schedule, horizon, sigma_end); default the ve path."""
    import sympy as sp

    if not hasattr(derivation, "family") or not hasattr(spec, "dim"):
        raise UsageError(f"lower() needs the PDESpec and Derivation of pde2gen.parse and pde2gen.derive.derive, got "
                         f"{type(spec).__name__} and {type(derivation).__name__}")
    family = derivation.family
    if family is None:
        raise DerivationError(f"no generative module can be built: {safe_text(derivation.not_derivable)}")
    path_fields = resolve_path(family.name, **dict(path or {}))
    linear = path_fields["path"] == "linear"
    horizon = float(path_fields["path_horizon"])
    parameters = tuple(
        (check_identifier(name), finite_float(name, value)) for name, value in family.parameters
    )
    dispersion = getattr(analysis, "dispersion", None)
    symbol = getattr(dispersion, "symbol", None)
    problem_type = getattr(dispersion, "problem_type", None) or spec.problem_type or "evolution"
    return ModuleIR(
        pde2gen_version=__version__,
        spec_hash=spec_hash(spec),
        source=safe_text(spec.source if isinstance(spec.source, str) else sp.sstr(spec.source)),
        pde=safe_text(spec.pretty()),
        catalog=tuple(safe_text(name, limit=60) for name in spec.catalog),
        notes=tuple(safe_text(note) for note in spec.notes),
        pde_parameters=tuple(
            (safe_text(p.name, limit=60), "free" if p.value is None else safe_text(sp.sstr(p.value), limit=60))
            for p in spec.parameters
        ),
        dimension_text=safe_text(f"N = {spec.dim} ({spec.construction} construction)"),
        dispersion=safe_text(f"{sp.sstr(symbol)} = 0") if symbol is not None else "not available",
        problem_type=safe_text(problem_type, limit=40),
        verdicts=_verdicts(getattr(analysis, "conditions", ())),
        s_generative=bool(getattr(analysis, "s_generative", False)),
        family=family.name,
        family_class=FAMILY_CLASSES[family.name],
        parameters=parameters,
        construction=safe_text(spec.construction, limit=40),
        dim=int(spec.dim),
        shape=_shape(int(spec.dim), shape),
        t_min=PATH_T_MIN_FRACTION * horizon if linear else finite_float("t_min", derivation.t_min),
        t_max=horizon if linear else finite_float("t_max", derivation.t_max),
        sigma_min=finite_float("sigma_min", derivation.sigma_min),
        sigma_max=finite_float("sigma_max", derivation.sigma_max),
        rho=finite_float("rho", derivation.rho),
        formulas={
            name: safe_text(text)
            for name, text in sorted(dict(derivation.formulas).items())
            if IDENTIFIER.match(str(name))
        },
        birth_death=safe_text(derivation.birth_death),
        checks=tuple(
            (safe_text(check.name, limit=80), bool(check.passed), _number_text(check.value),
             _number_text(check.tolerance), safe_text(check.detail))
            for check in derivation.checks
        ),
        options=resolve_options(options, path_fields["path"]),
        explanation=tuple(explanation),
        semigroup=(not linear and spec.construction == "isotropic"
                   and getattr(dispersion, "semigroup_exponent", None) is not None),
        bounded_support=FAMILIES[family.name].bounded_support,
        path=path_fields["path"],
        path_schedule=path_fields["path_schedule"],
        path_sigma_end=float(path_fields["path_sigma_end"]),
    )

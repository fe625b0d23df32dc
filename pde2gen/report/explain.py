"""The derivation as a document (``pde2gen explain``): every step from the PDE to the generative model.

The PDE as parsed, its operator symbol, the branches and their amplitudes, the density split p / J / R,
each condition with its proof or numeric certificate and witness, the prior and known equivalences, the
kernel, sampler, velocity and prior as formulas (from the Derivation), the compiler's self-checks with their
values, and the papers that apply.

One source, two renderings: ``document`` builds the sections as lines of segments, prose (``str``) or
formulas (``Math``: plain text, and LaTeX when a SymPy expression exists); ``explain_sections`` renders them
as plain markdown lines (for ``pde2gen explain --format md`` and the model card of ``build``),
``explain_latex`` as a standalone LaTeX document with SymPy's ``latex()`` for the formulas.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

import sympy as sp

from ..citations import EDM, GENPHYS, KAC, PFGM, PFGM_PP
from ..codegen.lower import is_markdown_line, one_line, safe_text
from ..spec.spec import LAM, PDESpec, T


@dataclass(frozen=True)
class Math:
    """A formula: ``plain`` text (as ``pde2gen check`` prints it) and, when known, its LaTeX."""

    plain: str
    latex: str | None = None


Line = tuple  # of segments: str (prose) or Math
Section = tuple  # (title, tuple[Line, ...])

# The papers, and when each applies (see ``references``).
FORMULA_ORDER = ("ghat", "mass", "kernel", "log_kernel", "sampler", "velocity", "prior", "sigma", "time")
# (Dispersion field, label, left-hand side as text and as LaTeX) of the kernel's Fourier transforms.
KERNEL_TRANSFORMS = (
    ("p_hat", "Fourier transform of the density kernel", "p_hat(s, t)", r"\hat p(s, t)"),
    ("mass", "Mass", "p_hat(0, t)", r"\hat p(0, t)"),
    ("ghat", "Normalised transform", "ghat(s, t) = p_hat(s, t) / p_hat(0, t)", r"\hat g(s, t)"),
    ("semigroup_exponent", "Semigroup exponent (ghat = exp(-t f(s)))", "f(s)", "f(s)"),
)
CONDITION_TITLES = {"C0": "admissibility", "C1": "positive density flow", "C2": "smoothing"}


# ---------------------------------------------------------------------------------------------- the document
def _prose(text: str) -> Line:
    """A line of prose only."""
    return (text,)


def document(spec: PDESpec, analysis, derivation, *,
             derivation_error: str | None = None) -> tuple[Section, ...]:
    """The sections of the derivation report. ``derivation`` may be None (not derived: the PDE is not
    s-generative, or ``derivation_error`` says why the derive stage failed)."""
    data = analysis.to_dict()
    sections = [
        ("The PDE", _pde_lines(spec)),
        ("Operator symbol", _symbol_lines(analysis, data)),
        ("Branches and amplitudes", _branch_lines(analysis, data)),
        ("Density split", _split_lines(data)),
        ("Conditions", _condition_lines(analysis, data)),
        ("Prior, equivalences and repairs", _prior_lines(data)),
        ("Kernel, sampler, velocity and prior", _derivation_lines(analysis, derivation, derivation_error)),
        ("Checks the compiler ran", _check_lines(derivation)),
        ("References", tuple(_prose(f"{title}: {why}") for title, why in references(analysis, derivation))),
    ]
    return tuple((title, tuple(lines)) for title, lines in sections)


def _pde_lines(spec: PDESpec) -> tuple[Line, ...]:
    source = spec.source if isinstance(spec.source, str) else sp.sstr(spec.source)
    lines: list[Line] = [("As given: ", Math(source)),
                         ("As parsed: ", Math(spec.pretty(), pde_latex(spec)))]
    if spec.parameters:
        parts: list = ["Parameters: "]
        for index, p in enumerate(spec.parameters):
            if index:
                parts.append(", ")
            if p.value is None:
                parts += [Math(p.name, sp.latex(p.symbol)), " (no value: kept symbolic)"]
            else:
                parts.append(Math(f"{p.name} = {sp.sstr(p.value)}",
                                  f"{sp.latex(p.symbol)} = {sp.latex(p.value)}"))
        lines.append(tuple(parts))
    if spec.construction == "product":
        construction = "one independent 1-D process per coordinate (product construction)"
    else:
        construction = "isotropic kernel (space enters through the Laplacian)"
    lines.append(_prose(f"Data dimension N = {spec.dim}; {construction}."))
    if spec.catalog:
        lines.append(_prose("Composed from the catalog entries: " + ", ".join(spec.catalog) + "."))
    lines.extend(_prose(f"Note: {note}") for note in spec.notes)
    return tuple(lines)


def _symbol_lines(analysis, data: dict) -> tuple[Line, ...]:
    disp = analysis.dispersion
    lines: list[Line] = [_prose("Plane waves u ~ exp(i k.x - i omega t) with growth rate lambda = -i omega "
                                "and s = k^2: d_t -> lambda and -Laplacian -> s.")]
    if disp is None:
        lines.append(("No dispersion analysis: ", analysis.condition("C0").reason))
        return tuple(lines)
    info = data["dispersion"]
    lines.append(("Symbol: ", Math(f"P(lambda, s) = {info['symbol']} = 0",
                                   rf"P(\lambda, s) = {sp.latex(disp.symbol)} = 0")))
    lines.append(_prose(f"Problem type: {info['problem_type']} ({info['problem_type_reason']})."))
    if disp.augmented_dims is not None:
        lines.append(("Radial augmentation with ", Math(f"D = {info['augmented_dims']}",
                                                        f"D = {sp.latex(disp.augmented_dims)}"),
                      " extra dimensions: t is their radius (PFGM++)."))
    return tuple(lines)


def _branch_lines(analysis, data: dict) -> tuple[Line, ...]:
    disp = analysis.dispersion
    if disp is None:
        return (_prose("Not computed (see Conditions, C0)."),)
    info = data["dispersion"]
    lines: list[Line] = []
    if disp.branches is None:
        lines.append(_prose("SymPy gives no closed-form roots of P(lambda, s); the analysis uses the numeric "
                            "roots."))
    else:
        carrying = info["carrying"] or [True] * len(disp.branches)
        amplitudes = branch_amplitudes(disp)
        for b, (branch, carries) in enumerate(zip(disp.branches, carrying), start=1):
            role = "carries the density" if carries else (
                "discarded: the growing root of the augmented problem" if disp.problem_type == "augmented"
                else "amplitude 0: carries no density")
            parts: list = [f"Branch {b}: ", Math(f"lambda_{b}(s) = {sp.sstr(branch)}",
                                                  rf"\lambda_{{{b}}}(s) = {sp.latex(branch)}")]
            if amplitudes is not None:
                amplitude = amplitudes[b - 1]
                parts += ["; amplitude ",
                          Math(f"a_{b} = q(lambda_{b}) / P'(lambda_{b}) = {sp.sstr(amplitude)}",
                               rf"a_{{{b}}} = \frac{{q(\lambda_{{{b}}})}}"
                               rf"{{\partial_\lambda P(\lambda_{{{b}}})}} = {sp.latex(amplitude)}")]
            lines.append(tuple(parts + [f" ({role})."]))
    if disp.problem_type != "augmented" and disp.branches is not None:
        lines.append(("Causal data d_t^j u(0) = 0 for j < J - 1 and d_t^(J-1) u(0) = delta / c_J give ",
                      Math("p_hat(s, t) = sum_b a_b exp(lambda_b t)",
                           r"\hat p(s, t) = \sum_b a_b e^{\lambda_b t}"),
                      " with q the density factor (p = q(d_t) u)."))
    for key, label, left, latex_left in KERNEL_TRANSFORMS:
        expr = getattr(disp, key)
        if expr is not None:
            lines.append((f"{label}: ", Math(f"{left} = {info[key]}", f"{latex_left} = {sp.latex(expr)}")))
    return tuple(lines)


def branch_amplitudes(disp) -> tuple[sp.Expr, ...] | None:
    """a_b = q(lambda_b) / P'(lambda_b) of each branch (evolution problems with closed-form branches)."""
    if disp.branches is None or disp.problem_type == "augmented":
        return None
    derivative = sp.diff(disp.symbol, LAM)
    return tuple(sp.together(disp.density_factor.subs(LAM, b) / derivative.subs(LAM, b))
                 for b in disp.branches)


def _split_lines(data: dict) -> tuple[Line, ...]:
    split = data["density_split"]
    if split is None:
        return (_prose("Not computed (see Conditions, C0)."),)
    return (
        ("Continuity with a source, d_t p + div J = R (canonical split, docs/physics.md §1):",),
        ("Density ", Math(f"p = {split['p']}")),
        ("Flux ", Math(f"J = {split['J']}"), " (velocity v = J / p)"),
        ("Reaction ", Math(f"R = {split['R']}"), f": {split['reaction_kind']} ({split['detail']})."),
    )


def _condition_lines(analysis, data: dict) -> tuple[Line, ...]:
    lines: list[Line] = []
    for condition in data["conditions"]:
        name = condition["name"]
        method = f" [{condition['method']}]" if condition["method"] else ""
        lines.append(_prose(f"{name} ({CONDITION_TITLES.get(name, name)}): {condition['status']}{method}. "
                            f"{condition['reason']}"))
        if condition["witness"]:
            lines.append(_prose(f"{name} witness: {witness_text(condition['witness'])}."))
    spec = data["spec"]
    verdict = "s-generative" if data["s_generative"] else "NOT s-generative"
    lines.append(_prose(f"Verdict: {verdict} (N = {spec['dim']}, {spec['construction']} construction)."))
    lines.extend(_prose(f"Warning: {warning}") for warning in data["warnings"])
    return tuple(lines)


def witness_text(witness: dict) -> str:
    """key = value pairs; floats with 6 significant digits."""
    def value_text(value) -> str:
        if isinstance(value, float):
            return f"{value:.6g}"
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(value_text(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
        return str(value)

    return ", ".join(f"{key} = {value_text(value)}" for key, value in witness.items())


def _prior_lines(data: dict) -> tuple[Line, ...]:
    prior = data["prior"]
    lines: list[Line] = [(f"Prior (small-k law of the kernel): {prior['description']}.",)]
    gap = prior["large_k_gap"]
    if gap is not None:
        gap_text = "grows without bound" if gap in ("inf", math.inf) else f"tends to {gap:.6g}"
        slow = " (sharp features decay only like exp(-gap t))" if gap_text.startswith("tends") else ""
        lines.append(_prose(f"Gap lambda*(0) - lambda*(k) as k -> oo: {gap_text}{slow}."))
    lines.extend(_prose(f"Same as: {equivalence}.") for equivalence in data["equivalences"])
    for repair in data["repairs"]:
        status = "s-generative" if repair["s_generative"] else "still not s-generative"
        conditions = ", ".join(f"{k} {v}" for k, v in repair["conditions"].items())
        lines.append((f"Repair, {repair['name']}: {repair['description']}: ", Math(repair["pde"]),
                      f" -> {status} ({conditions}; N = {repair['dim']}, {repair['construction']})."))
    return tuple(lines)


def _derivation_lines(analysis, derivation, derivation_error: str | None) -> tuple[Line, ...]:
    if derivation is None:
        return (_prose(f"Not derived: {derivation_error or 'the derive stage was not run'}."),)
    family = derivation.family
    if family is None:
        return (_prose(f"Not derived: {derivation.not_derivable}."),)
    parameters = ", ".join(f"{name} = {value:.6g}" for name, value in family.parameters)
    lines: list[Line] = [("Kernel family ", Math(f"{family.name}({parameters})"), ".")]
    formulas = dict(derivation.formulas)
    formulas.pop("family", None)  # the line above says it
    formulas.pop("birth_death", None)  # the last line says it
    for name in (*[n for n in FORMULA_ORDER if n in formulas], *sorted(set(formulas) - set(FORMULA_ORDER))):
        lines.append((f"{name.replace('_', ' ').capitalize()}: ", Math(str(formulas[name]))))
    t_min, t_max = float(derivation.t_min), float(derivation.t_max)
    sigma_min, sigma_max = float(derivation.sigma_min), float(derivation.sigma_max)
    lines.append(_prose(f"Time window: data at t -> 0, prior at t_max; t_min = {t_min:.6g}, "
                        f"t_max = {t_max:.6g}. Noise grid (EDM): sigma from {sigma_min:.6g} to "
                        f"{sigma_max:.6g}, rho = {float(derivation.rho):.6g}, uniform in sigma^(1/rho) and "
                        "mapped to t."))
    lines.append(_prose(f"Birth/death: {derivation.birth_death}."))
    return tuple(lines)


def _check_lines(derivation) -> tuple[Line, ...]:
    checks = tuple(getattr(derivation, "checks", ()) or ())
    if not checks:
        return (_prose("No self-checks ran (nothing was derived)."),)
    lines = []
    for check in checks:
        status = "PASS" if check.passed else "FAIL"
        detail = f" {check.detail}" if check.detail else ""
        lines.append(_prose(f"{status} {check.name}: value {_number(check.value)} (tolerance "
                            f"{_number(check.tolerance)}).{detail}"))
    return tuple(lines)


def _number(value) -> str:
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError, OverflowError):
        return str(value)


def references(analysis, derivation) -> tuple[tuple[str, str], ...]:
    """The papers that apply to this PDE: (citation, what it contributes here)."""
    family = getattr(derivation, "family", None)
    cited = family.info.citations if family is not None else ()
    disp = analysis.dispersion
    augmented = disp is not None and disp.problem_type == "augmented"
    radial = disp is not None and disp.augmented_dims is not None
    product_repair = any(r.passes and r.spec.construction == "product" for r in analysis.repairs)
    found = [GENPHYS]
    if PFGM in cited or augmented:
        found.append(PFGM)
    if PFGM_PP in cited or radial:
        found.append(PFGM_PP)
    if KAC in cited or analysis.spec.construction == "product" or product_repair:
        found.append(KAC)
    found += [paper for paper in cited if paper not in found]
    if family is not None:
        found.append(EDM)
    return tuple(found)


# ---------------------------------------------------------------------------------------------- PDE in LaTeX
def pde_latex(spec: PDESpec) -> str:
    """The PDE as parsed, in LaTeX: sum of c t^m d_t^j (-Laplacian)^beta u = 0."""
    parts = []
    for term in spec.terms:
        operator = "u"
        if term.screening_mass is not None:
            mass, square = sp.latex(term.screening_mass), sp.latex(term.screening_mass**2)
            operator = rf"\left(\sqrt{{-\Delta + {square}}} - {mass}\right) {operator}"
        elif term.space_power != 0:
            power = "" if term.space_power == 1 else f"^{{{sp.latex(term.space_power)}}}"
            operator = rf"(-\Delta){power} {operator}"
        if term.t_order:
            operator = r"\partial_t" + ("" if term.t_order == 1 else f"^{{{term.t_order}}}") + f" {operator}"
        coefficient = term.coefficient * (T**term.t_power if term.t_power else 1)
        if coefficient == 1:
            parts.append(operator)
        elif coefficient == -1:
            parts.append(f"- {operator}")
        else:
            text = sp.latex(coefficient)
            if isinstance(coefficient, sp.Add):
                text = rf"\left({text}\right)"
            parts.append(f"{text} {operator}")
    body = " + ".join(parts).replace("+ -", "- ")
    return f"{body} = 0"


# ---------------------------------------------------------------------------------------------- markdown
# Characters that would start emphasis, code, links or HTML (a line never starts with user text: no # or >).
# An underscore inside a word (t_max) never emphasises, so only word-boundary underscores are escaped.
_MARKDOWN_SPECIAL = re.compile(r"([\\*\[\]<`]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def markdown_text(text: str) -> str:
    """Prose for markdown: one line, control characters dropped, markdown/HTML specials escaped."""
    text = one_line(text)
    return _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(0), text.replace("&", "&amp;"))


def markdown_code(text: str) -> str:
    """A code span that holds ``text`` whatever backticks it contains."""
    text = one_line(text).strip()
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_line(line: Line) -> str:
    return "".join(markdown_code(s.plain) if isinstance(s, Math) else markdown_text(s) for s in line)


def explain_sections(spec: PDESpec, analysis, derivation, *,
                     derivation_error: str | None = None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """((title, (markdown line, ...)), ...): each line one line of markdown (prose escaped, formulas in code
    spans), without list markers; the model card of ``build`` can print them as list items."""
    return tuple((title, tuple(markdown_line(line) for line in lines))
                 for title, lines in document(spec, analysis, derivation, derivation_error=derivation_error))


def model_card_sections(spec, analysis, derivation) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The derivation report of `pde2gen explain`, without its checks section (the card lists the checks)."""
    if not hasattr(analysis, "to_dict"):  # stand-in analyses in tests carry no report
        return ()
    return tuple((safe_text(title, limit=120), lines) for title, lines in explain_sections(spec, analysis, derivation)
                 if not title.lower().startswith("checks"))


def explain_markdown(spec: PDESpec, analysis, derivation, *, derivation_error: str | None = None) -> str:
    """The report as a markdown document."""
    out = [f"# Derivation report: {markdown_code(spec.pretty())}", "",
           "Generated by pde2gen; physics conventions in docs/physics.md (in the pde2gen repository), design in docs/DESIGN.md.", ""]
    for title, lines in explain_sections(spec, analysis, derivation, derivation_error=derivation_error):
        out += [f"## {markdown_text(title)}", ""] + [f"- {line}" for line in lines] + [""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- LaTeX
# Math-mode glyphs for < > | \\ work in every font encoding (OT1 prints < as an inverted exclamation mark).
_LATEX_SPECIAL = {"\\": r"$\backslash$", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "%": r"\%",
                  "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"$<$", ">": r"$>$", "|": r"$|$"}
_LATEX_UNICODE = {"λ": r"$\lambda$", "ω": r"$\omega$", "∂": r"$\partial$", "Δ": r"$\Delta$", "→": r"$\to$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "−": "-", "×": r"$\times$", "∞": r"$\infty$",
                  "≈": r"$\approx$", "·": r"$\cdot$", "²": r"\textsuperscript{2}"}
# Formulas longer than this (in LaTeX source characters) are scaled to the line width.
LONG_FORMULA = 110


def latex_text(text: str) -> str:
    """User or derived text for LaTeX: specials escaped, a few symbols typeset, other non-ASCII
    transliterated."""
    out = []
    for ch in one_line(text):
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ch in _LATEX_UNICODE:
            out.append(_LATEX_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            ascii_form = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(latex_text(ascii_form) if ascii_form else "?")
    return "".join(out)


def _latex_segment(segment) -> str:
    if not isinstance(segment, Math):
        return latex_text(segment)
    if segment.latex is None:
        return r"\texttt{" + latex_text(segment.plain) + "}"
    if len(segment.latex) > LONG_FORMULA:
        return r"\par\noindent\resizebox{\linewidth}{!}{$\displaystyle " + segment.latex + r"$}\par"
    return f"${segment.latex}$"


def explain_latex(spec: PDESpec, analysis, derivation, *, derivation_error: str | None = None) -> str:
    """The report as a standalone LaTeX document (pdflatex with texlive-latex-base packages only)."""
    out = [r"\documentclass[10pt]{article}", r"\usepackage[utf8]{inputenc}", r"\usepackage{amsmath,amssymb}",
           r"\usepackage{graphicx}",
           r"\usepackage[margin=2cm]{geometry}", r"\sloppy", "",
           r"\title{Derivation report: $" + pde_latex(spec) + "$}", r"\author{pde2gen}", r"\date{}", "",
           r"\begin{document}", r"\maketitle", ""]
    for title, lines in document(spec, analysis, derivation, derivation_error=derivation_error):
        out += [r"\section*{" + latex_text(title) + "}", r"\begin{itemize}"]
        out += [r"\item " + "".join(_latex_segment(s) for s in line) for line in lines]
        out += [r"\end{itemize}", ""]
    out += [r"\end{document}", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- derivation
def derive_for_report(spec: PDESpec, analysis):
    """(Derivation or None, why not): the derive stage's result, or None and the one-line DerivationError
    (a derived kernel that failed its self-checks) so that the report and the plots still come out."""
    from ..derive.derive import derive
    from ..errors import DerivationError

    try:
        return derive(spec, analysis), None
    except DerivationError as error:
        return None, error.one_line()


__all__ = ["Math", "derive_for_report", "document", "explain_latex", "explain_markdown", "explain_sections",
           "is_markdown_line", "latex_text", "markdown_code", "markdown_line", "markdown_text", "pde_latex",
           "references", "witness_text"]

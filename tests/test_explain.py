"""pde2gen explain: the derivation report says what the compiler found, with its numbers, in markdown (also
as sections for the model card) and as a LaTeX document that escapes user text and compiles."""
import re
import shutil
import subprocess

import pytest

from pde2gen.analysis.analyse import analyse
from pde2gen.cli import main
from pde2gen.report.explain import (
    Math,
    document,
    explain_latex,
    explain_markdown,
    explain_sections,
    is_markdown_line,
    latex_text,
    markdown_code,
    markdown_line,
    markdown_text,
    pde_latex,
    references,
)
from pde2gen.spec.parse import parse

TITLES = ["The PDE", "Operator symbol", "Branches and amplitudes", "Density split", "Conditions",
          "Prior, equivalences and repairs", "Kernel, sampler, velocity and prior", "Checks the compiler ran",
          "References"]


def report_args(compiled):
    """(spec, analysis, derivation), the arguments of the explain functions, from a conftest fixture."""
    analysis, derivation = compiled
    return analysis.spec, analysis, derivation


def section(sections, title):
    return dict(sections)[title]


# ---------------------------------------------------------------------------------------------- markdown
def test_failing_pde_report_carries_symbol_statuses_and_witness(hyperdiffusion):
    sections = explain_sections(*report_args(hyperdiffusion))
    assert [title for title, _ in sections] == TITLES
    assert "Symbol: `P(lambda, s) = lambda + s**2 = 0`" in section(sections, "Operator symbol")
    branches = section(sections, "Branches and amplitudes")
    assert branches[0] == ("Branch 1: `lambda_1(s) = -s**2`; amplitude "
                           "`a_1 = q(lambda_1) / P'(lambda_1) = 1` (carries the density).")
    assert "Semigroup exponent (ghat = exp(-t f(s))): `f(s) = s**2`" in branches
    conditions = section(sections, "Conditions")
    statuses = [m.groups() for m in map(re.compile(r"^(C\d) \(([a-z ]+)\): (\w+) ").match, conditions) if m]
    assert statuses == [("C0", "admissibility", "PASS"), ("C1", "positive density flow", "FAIL"),
                        ("C2", "smoothing", "PASS")]
    witness = next(line for line in conditions if line.startswith("C1 witness"))
    assert "x = 4.59182" in witness and "t = 1," in witness and "p = -0.0298065" in witness
    assert "p_at_zero = 0.288517" in witness
    assert conditions[-1] == "Verdict: NOT s-generative (N = 2, isotropic construction)."
    assert section(sections, "Kernel, sampler, velocity and prior")[0].startswith(
        "Not derived: not derivable yet: the PDE is not s-generative (C1 FAIL")
    assert section(sections, "Checks the compiler ran") == ("No self-checks ran (nothing was derived).",)
    assert [line.split(":")[0] for line in section(sections, "References")] == ["GenPhys"]


def test_wave_report_lists_both_branches_and_the_repairs(wave):
    sections = explain_sections(*report_args(wave))
    branches = section(sections, "Branches and amplitudes")
    assert branches[0].startswith("Branch 1: `lambda_1(s) = -I*c*sqrt(s)`; amplitude `a_1 = q(lambda_1) / "
                                  "P'(lambda_1) = 1/2`")
    assert branches[1].startswith("Branch 2: `lambda_2(s) = I*c*sqrt(s)`")
    c2 = next(line for line in section(sections, "Conditions") if line.startswith("C2 ("))
    assert "FAIL" in c2 and "every k" in c2
    prior = section(sections, "Prior, equivalences and repairs")
    repairs = [line for line in prior if line.startswith("Repair")]
    assert any("add damping, product construction" in line and "-> s-generative" in line for line in repairs)
    assert "Kac flows" in [line.split(":")[0] for line in section(sections, "References")]


def test_derivable_report_has_the_formulas_and_the_checks(diffusion):
    spec, analysis, derivation = report_args(diffusion)
    sections = explain_sections(spec, analysis, derivation)
    derived = section(sections, "Kernel, sampler, velocity and prior")
    assert derived[0] == "Kernel family `gaussian(kappa = 1)`."
    for name in ("ghat", "kernel", "sampler", "velocity", "prior", "sigma"):
        assert f"`{' '.join(derivation.formulas[name].split())}`" in " ".join(derived), name
    assert any(line.startswith("Time window:") and "t_max = 3200" in line for line in derived)
    checks = section(sections, "Checks the compiler ran")
    assert len(checks) == len(derivation.checks) >= 5
    for line, check in zip(checks, derivation.checks):
        assert line.startswith(f"{'PASS' if check.passed else 'FAIL'} {check.name}: value ")
    assert [line.split(":")[0] for line in section(sections, "References")] == ["GenPhys", "EDM"]
    text = explain_markdown(spec, analysis, derivation)
    assert text.startswith("# Derivation report: `u_t + (kappa)*(-lap) u = 0`")
    assert text.count("\n## ") == len(TITLES)


def test_sections_are_single_markdown_lines(diffusion, wave):
    for stage in (diffusion, wave):
        for title, lines in explain_sections(*report_args(stage)):
            assert is_markdown_line(title)
            for line in lines:
                assert is_markdown_line(line), line
                assert len(re.findall(r"(?<!\\)`", line)) % 2 == 0, line  # every code span is closed
    assert is_markdown_line(markdown_line(("x <y> ", Math("a`b <c>"), " `z`")))
    for bad in ("two\nlines", "raw <b>html</b>", "open `code", " padded"):
        assert not is_markdown_line(bad), bad


def test_a_failed_derivation_is_reported(hyperdiffusion):
    spec, analysis, _ = report_args(hyperdiffusion)
    text = explain_markdown(spec, analysis, None, derivation_error="error[derive]: self-check x failed")
    assert "- Not derived: error\\[derive\\]: self-check x failed." in text


def test_references_follow_the_physics():
    def cited(expr, **options):
        analysis = analyse(parse(expr, **options), repairs=False)
        return [title.split(":")[0] for title, _ in references(analysis, None)]

    assert cited("poisson") == ["GenPhys", "PFGM"]
    assert cited("pfgmpp") == ["GenPhys", "PFGM", "PFGM++"]
    assert cited("kac", dim=2) == ["GenPhys", "Kac flows"]


# ---------------------------------------------------------------------------------------------- escaping
def test_markdown_escapes_prose_and_fences_code():
    assert markdown_text("a*b [x](y) <script> & _hidden_ t_max") == \
        "a\\*b \\[x\\](y) \\<script> &amp; \\_hidden\\_ t_max"
    assert markdown_text("two\nlines\t here") == "two lines here"
    assert markdown_code("x`y") == "``x`y``"
    assert markdown_line(("see ", Math("a*b"), " now")) == "see `a*b` now"


def test_latex_escapes_user_text():
    hostile = r"50% of $x_1$ & {y} #2 ~ ^ \input{/etc/passwd} <|> Matérn λ"
    escaped = latex_text(hostile)
    assert r"\input" not in escaped and r"$\backslash$input" in escaped
    for special in "%&#_{}":
        assert "\\" + special in escaped
    assert re.search(r"(?<!\\)[%&#_~^]", escaped.replace("$", "")) is None
    assert "Matern" in escaped and r"$\lambda$" in escaped


def test_pde_latex_uses_sympy_for_coefficients():
    assert pde_latex(parse("wave+damping")) == \
        r"\partial_t^{2} u + 2 a \partial_t u + c^{2} (-\Delta) u = 0"
    assert pde_latex(parse("u_t = -lap(lap(u))")) == r"\partial_t u + (-\Delta)^{2} u = 0"
    assert r"\frac{D - 1}{t} \partial_t u" in pde_latex(parse("pfgmpp"))


def _braces_balance(text):
    depth = 0
    for match in re.finditer(r"(?<!\\)[{}]", text):
        depth += 1 if match.group() == "{" else -1
        assert depth >= 0
    return depth == 0


def test_latex_document_is_well_formed(wave, tmp_path):
    spec, analysis, derivation = report_args(wave)
    tex = explain_latex(spec, analysis, derivation)
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert tex.count(r"\begin{document}") == 1 and tex.count(r"\section*{") == len(TITLES)
    assert tex.count(r"\begin{itemize}") == tex.count(r"\end{itemize}") == len(TITLES)
    assert _braces_balance(tex)
    assert len(re.findall(r"(?<!\\)\$", tex)) % 2 == 0  # math shifts come in pairs
    assert r"$P(\lambda, s) = c^{2} s + \lambda^{2} = 0$" in tex  # SymPy's latex() for the symbol
    assert r"\lambda_{1}(s) = - i c \sqrt{s}" in tex
    witness = analysis.condition("C1").witness  # the Schoenberg screen's witness, with its numbers
    assert f"C1 witness: k = {witness['k']:.6g}, t = {witness['t']:.6g}, ghat = {witness['ghat']:.6g}" in tex
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: compilation not checked")
    (tmp_path / "wave.tex").write_text(tex)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "wave.tex"], cwd=tmp_path,
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "wave.pdf").stat().st_size > 10_000


def test_document_keeps_latex_for_sympy_formulas(diffusion):
    formulas = [segment for _, lines in document(*report_args(diffusion)) for line in lines for segment in line
                if isinstance(segment, Math)]
    assert any(m.latex == r"\hat g(s, t) = e^{- \kappa s t}" for m in formulas)
    derived = [m for m in formulas if m.plain.startswith("x = y + d") or "kappa t)^(-N/2)" in m.plain]
    assert derived and all(m.latex is None for m in derived)  # the derivation's formulas are text


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_explain_prints_markdown_and_writes_latex(tmp_path, capsys):
    assert main(["explain", "hyperdiffusion", "--dim", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Derivation report:") and "C1 (positive density flow): FAIL" in out
    target = tmp_path / "report.tex"
    assert main(["explain", "hyperdiffusion", "--format", "tex", "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {target}"
    assert r"\begin{document}" in target.read_text()
    assert main(["explain", "hyperdiffusion", "-o", str(tmp_path / "missing" / "r.md")]) == 2
    assert capsys.readouterr().err.startswith("error[usage]: cannot write")


def test_model_card_states_birth_and_death_once(diffusion):
    from pde2gen.codegen.lower import lower
    from pde2gen.codegen.render import render

    analysis, derivation = diffusion
    from pde2gen.report.explain import model_card_sections

    sections = model_card_sections(analysis.spec, analysis, derivation)
    card = render(lower(analysis.spec, analysis, derivation, explanation=sections))["README.md"]
    assert card.lower().count("birth/death") + card.lower().count("birth death") == 1

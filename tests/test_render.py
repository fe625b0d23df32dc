"""lower + render: plain-data IR, completeness check, deterministic, compiling and ruff-clean output, no
injection from user text, and generated modules that run."""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import sympy as sp

from pde2gen.codegen.lower import MAX_TEXT, ModuleIR, lower, resolve_options, safe_text
from pde2gen.codegen.render import render
from pde2gen.errors import DerivationError, RenderError, UsageError
from pde2gen.families import FAMILIES_DIR, FamilyConfig
from pde2gen.resources import resource_dir
from pde2gen.spec.spec import Parameter, PDESpec, S, Term

TEMPLATES = resource_dir("templates")
HOSTILE = 'x"""\nimport os; os.system("echo pwned") # \\N{BULLET} `rm -rf` <script>\x00'


def make_ir(family: str = "gaussian", **changes) -> ModuleIR:
    """A ModuleIR built directly (as lower would): heat kernel kappa = 1, or Kac a = 9, c = 3."""
    if family == "gaussian":
        fields = {
            "family": "gaussian", "family_class": "GaussianFamily", "parameters": (("kappa", 1.0),),
            "pde": "u_t + (-1)*(-lap) u = 0", "source": "diffusion", "catalog": ("diffusion",),
            "dispersion": "lambda + s = 0", "construction": "isotropic", "dim": 2, "shape": (2,),
            "t_min": 2e-06, "t_max": 3200.0,  # sigma = sqrt(2 t) from 0.002 to 80
            "formulas": {"ghat": "exp(-kappa t k^2)", "velocity": "d / (2 t)"},
        }
    else:
        fields = {
            "family": "kac_product", "family_class": "KacProductFamily", "parameters": (("a", 9.0), ("c", 3.0)),
            "pde": "u_tt + 18*u_t + (-9)*(-lap) u = 0", "source": "telegraph", "catalog": ("telegraph",),
            "dispersion": "lambda**2 + 18*lambda + 9*s = 0", "construction": "product", "dim": 2, "shape": (2,),
            "t_min": 0.0006680026709365379, "t_max": 6400.055555555556,  # sigma^2 = t - (1 - e^{-18 t}) / 18
            "formulas": {"ghat": "prod_i e^{-a t}[cosh(t W_i) + a sinh(t W_i)/W_i]"},
        }
    fields.update(
        pde2gen_version="0.1.0", spec_hash="ab" * 32, notes=(), pde_parameters=(),
        dimension_text=f"N = 2 ({fields['construction']} construction)", problem_type="evolution",
        verdicts=(("C0", "PASS", "admissible"), ("C1", "PASS", "positive kernel"), ("C2", "PASS", "smoothing")),
        s_generative=True, sigma_min=0.002, sigma_max=80.0, rho=7.0, birth_death="none: mass is conserved",
        checks=(("sampler_vs_ghat", True, "0.003", "0.02", "empirical characteristic function"),),
        options=resolve_options(None),
    )
    fields.update(changes)
    return ModuleIR(**fields)


FAMILIES = ["gaussian", "kac_product"]


def write(files: dict[str, str], directory: Path) -> Path:
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


def import_generated(directory: Path, name: str = "process"):
    spec = importlib.util.spec_from_file_location(f"generated_{directory.name}_{name}", directory / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def template_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    return copy


def runtime_copy(tmp_path: Path) -> Path:
    """A copy of pde2gen/families (the runtimes render inlines), for render(..., runtime_dir=)."""
    copy = tmp_path / "families"
    shutil.copytree(FAMILIES_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


# ------------------------------------------------------------------------------------------- the IR
def test_safe_text_is_one_printable_line_that_cannot_end_a_string():
    text = safe_text(HOSTILE)
    assert "\n" not in text and "\x00" not in text and '"' not in text and "\\" not in text and "`" not in text
    assert text.startswith("x''' import os; os.system('echo pwned')")
    assert safe_text("a" * 5000).endswith("...") and len(safe_text("a" * 5000)) == MAX_TEXT


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"formulas": {"ghat": sp.exp(-S)}}, "not plain data"),
        ({"t_max": float("nan")}, "non-finite"),
        ({"rho": float("inf")}, "non-finite"),
        ({"source": "two\nlines"}, "unsafe text"),
        ({"pde": 'ends """ here'}, "unsafe text"),
        ({"parameters": (("__import__('os').system('x')", 1.0),)}, "do not match"),
        ({"family": "gaussian", "family_class": "os.system"}, "does not match"),
        ({"formulas": {"bad key": "x"}}, "non-identifier key"),
        ({"shape": (3,)}, "does not match shape"),
        ({"t_min": 5000.0}, "t_min < t_max"),
        ({"options": {"seed": [1, 2]}}, "not plain data"),
    ],
)
def test_module_ir_rejects_anything_but_safe_plain_data(changes, message):
    with pytest.raises(RenderError, match=message):
        make_ir(**changes)


def test_options_are_validated():
    assert resolve_options({"sample_steps": 12})["sample_steps"] == 12
    for bad in ({"steps": 3}, {"solver": "os.system"}, {"seed": 1.5}, {"sample_steps": 1}, {"seed": True}):
        with pytest.raises(UsageError):
            resolve_options(bad)


def _fake_stages(value=1, source="diff(u, t) = kappa*laplacian(u)", name="kappa"):
    """A real PDESpec of the heat equation with stand-ins for the analysis and derivation records."""
    kappa, value = sp.Symbol(name, positive=True), sp.sympify(value)
    spec = PDESpec(terms=(Term(sp.Integer(1), 1), Term(-kappa, 0, sp.Integer(1))),
                   parameters=(Parameter(name, kappa, value),), dim=2, source=source)
    condition = SimpleNamespace
    analysis = SimpleNamespace(
        spec=spec, s_generative=True,
        dispersion=SimpleNamespace(symbol=sp.Symbol("lambda") + kappa * S, problem_type="evolution"),
        conditions=(condition(name="C2", status="PASS", reason="smoothing"),
                    condition(name="C0", status="PASS", reason="admissible\nsecond line"),
                    condition(name="C1", status="PASS", reason=sp.Symbol("Bernstein"))),
    )
    derivation = SimpleNamespace(
        family=FamilyConfig("gaussian", (("kappa", float(value) if value.is_real else 1.0),)),
        not_derivable=None, formulas={"ghat": sp.exp(-kappa * sp.Symbol("t") * S), "sigma": "sqrt(2 kappa t)"},
        t_min=sp.Float(2e-6), t_max=sp.Integer(3200), sigma_min=0.002, sigma_max=80.0, rho=sp.Integer(7),
        birth_death="none", checks=(SimpleNamespace(name="residual", passed=True, value=sp.Float(1e-12),
                                                    tolerance=1e-8, detail="PDE residual"),),
    )
    return spec, analysis, derivation


def test_lower_turns_sympy_results_into_plain_data():
    spec, analysis, derivation = _fake_stages(value=sp.Rational(3, 2))
    derivation.family = FamilyConfig("gaussian", (("kappa", sp.Rational(3, 2)),))
    ir = lower(spec, analysis, derivation, options={"seed": 7})
    assert ir.parameters == (("kappa", 1.5),) and type(ir.parameters[0][1]) is float
    assert type(ir.t_max) is float and ir.t_max == 3200.0 and ir.rho == 7.0
    assert ir.formulas == {"ghat": "exp(-kappa*s*t)", "sigma": "sqrt(2 kappa t)"}
    assert ir.pde_parameters == (("kappa", "3/2"),)
    assert ir.dispersion == "kappa*s + lambda = 0"
    assert [v[0] for v in ir.verdicts] == ["C0", "C1", "C2"] and ir.verdicts[0][2] == "admissible second line"
    assert ir.checks == (("residual", True, "1e-12", "1e-08", "PDE residual"),)
    assert ir.options["seed"] == 7 and ir.options["solver"] == "heun"
    # The same PDE gives the same hash; another value of kappa another one.
    assert ir.spec_hash == lower(*_fake_stages(value=sp.Rational(3, 2))).spec_hash
    assert ir.spec_hash != lower(*_fake_stages(value=sp.Integer(2))).spec_hash


def test_lower_refuses_what_cannot_become_code():
    spec, analysis, derivation = _fake_stages()
    derivation.family, derivation.not_derivable = None, "no family has this symbol"
    with pytest.raises(DerivationError, match="no family has this symbol"):
        lower(spec, analysis, derivation)
    for bad_time in (sp.oo, sp.nan, sp.Symbol("T"), sp.I, sp.Float("1e400")):
        spec, analysis, derivation = _fake_stages()
        derivation.t_max = bad_time
        with pytest.raises(UsageError, match="t_max"):
            lower(spec, analysis, derivation)
    spec, analysis, derivation = _fake_stages()
    with pytest.raises(UsageError, match="shape"):
        lower(spec, analysis, derivation, shape=(3, 3))


# ------------------------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("family", FAMILIES)
def test_render_is_deterministic_and_names_are_fixed(family):
    first = render(make_ir(family))
    formulas = dict(reversed(list(make_ir(family).formulas.items())))
    assert render(make_ir(family, formulas=formulas)) == first
    assert list(first) == sorted(first)
    assert {"process.py", "README.md", "pde2gen.json", "tests/test_generated_process.py"} <= set(first)
    date_or_time = re.compile(r"\b(19|20)\d\d-\d\d-\d\d|\b\d\d:\d\d:\d\d\b")
    assert not any(date_or_time.search(text) for text in first.values())


@pytest.mark.parametrize("family", FAMILIES)
def test_rendered_python_compiles_and_passes_ruff(family, tmp_path):
    files = render(make_ir(family))
    for name, text in files.items():
        if name.endswith(".py"):
            compile(ast.parse(text), name, "exec")
    process = files["process.py"]
    assert "# runtime-import" not in process and "runtime_common import" not in process
    assert ast.get_docstring(ast.parse(process)).count("time runs forward from data (t -> 0)".capitalize()) == 1
    write(files, tmp_path)
    python_files = ["process.py", "tests"]
    result = subprocess.run(["ruff", "check", "--isolated", "--no-cache", *python_files], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]


def test_generated_heat_process_has_the_heat_kernel(tmp_path):
    torch = pytest.importorskip("torch")
    ir = make_ir("gaussian", parameters=(("kappa", 0.5),), t_min=4e-6, t_max=6400.0)  # sigma^2 = 2 kappa t
    module = import_generated(write(render(ir), tmp_path))
    process = module.Process().double()
    assert process.family_parameters == {"kappa": 0.5} and process.shape == (2,) and process.dim == 2
    generator = torch.Generator().manual_seed(0)
    y = torch.full((40_000, 2), 3.0, dtype=torch.float64)
    x = module.Process().double().sample_xt(y, 2.0, generator=generator)
    variance = float((x - y).var())  # 2 kappa t = 2
    assert abs(variance - 2.0) < 0.05
    torch.testing.assert_close(process.velocity(x, y, 2.0), (x - y) / 4.0)
    ts = process.time_grid(5)
    assert float(ts[0]) == pytest.approx(6400.0) and float(ts[-1]) == pytest.approx(4e-6)
    torch.testing.assert_close(process.sigma(ts[[0, -1]]), torch.tensor([80.0, 0.002], dtype=torch.float64))


def test_completeness_check_finds_undefined_placeholders_and_unused_fields(tmp_path):
    templates = template_copy(tmp_path)
    readme = templates / "README.md.j2"
    original = readme.read_text()
    readme.write_text(original + "{{ no_such_field }}\n")
    with pytest.raises(RenderError, match="README.md.j2 uses undefined name.*no_such_field"):
        render(make_ir(), template_dir=templates)
    # Drop the only use of `notes` (in the model card): the field is then consumed by no template.
    readme.write_text(original.replace("{% for note in notes %}", "{% for note in () %}"))
    with pytest.raises(RenderError, match="not used by any template: notes"):
        render(make_ir(), template_dir=templates)


def test_generated_code_that_does_not_compile_is_reported_with_line_and_snippet(tmp_path):
    templates = template_copy(tmp_path)
    process = templates / "process.py.j2"
    process.write_text(process.read_text() + "\ndef broken(:\n    pass\n")
    with pytest.raises(RenderError, match=r"process.py does not compile: line \d+: .*def broken\(:"):
        render(make_ir(), template_dir=templates)


def test_missing_runtime_is_a_render_error(tmp_path):
    runtimes = runtime_copy(tmp_path)
    (runtimes / "gaussian" / "runtime.py").unlink()
    with pytest.raises(RenderError, match="families/gaussian/runtime.py is missing"):
        render(make_ir(), runtime_dir=runtimes)


def test_marked_imports_spanning_lines_are_dropped_whole(tmp_path):
    runtimes = runtime_copy(tmp_path)
    family = runtimes / "gaussian" / "runtime.py"
    lines = family.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("from pde2gen.families.runtime_common import"))
    end = next(i for i in range(start, len(lines)) if ")" in lines[i] or "(" not in lines[start])
    names = " ".join(line.split("#")[0] for line in lines[start:end + 1]).split(" import ")[1].strip(" ()")
    # only the first line carries the marker
    lines[start:end + 1] = ["from pde2gen.families.runtime_common import (  # runtime-import",
                            *(f"    {name.strip()}," for name in names.split(",") if name.strip()), ")"]
    family.write_text("\n".join(lines) + "\n")
    process = render(make_ir(), runtime_dir=runtimes)["process.py"]
    assert "runtime_common" not in process and "import (" not in process


def test_a_runtime_name_that_clashes_with_the_template_is_refused(tmp_path):
    runtimes = runtime_copy(tmp_path)
    family = runtimes / "gaussian" / "runtime.py"
    family.write_text(family.read_text() + "\n\ndef sample_heun():\n    pass\n")
    with pytest.raises(RenderError, match="defines sample_heun twice"):
        render(make_ir(), runtime_dir=runtimes)


def _code_shape(source: str) -> str:
    """The AST with every string constant blanked: what the code does, whatever the text says."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


def test_hostile_text_never_reaches_code():
    text = safe_text(HOSTILE)
    hostile = make_ir(
        source=text, pde=text, notes=(text,), catalog=(text,), pde_parameters=((text, text),),
        dispersion=text, verdicts=((text, text, text),), formulas={"ghat": text}, birth_death=text,
        checks=((text, False, text, text, text),),
    )
    benign = make_ir(formulas={"ghat": "x"})
    hostile_files, benign_files = render(hostile), render(benign)
    for name in hostile_files:
        if name.endswith(".py"):
            assert _code_shape(hostile_files[name]) == _code_shape(benign_files[name]), name
    assert "os.system('echo pwned')" in hostile_files["process.py"]  # present, but only as text
    for line in hostile_files["README.md"].splitlines():
        prose = line.split("`")[::2]  # outside code spans, where markdown would interpret HTML
        assert not any("<script>" in part for part in prose), line
    assert "\\<script\\>" in hostile_files["README.md"]


def test_config_json_records_the_build():
    import json

    ir = make_ir(options=resolve_options({"seed": 3}))
    record = json.loads(render(ir)["pde2gen.json"])
    assert record["ir_sha256"] == ir.hash() and len(ir.hash()) == 64
    assert record["family"] == "gaussian" and record["parameters"] == {"kappa": 1.0}
    assert record["options"]["seed"] == 3 and record["source"] == "diffusion"
    assert "process.py" in record["files"] and record["pde2gen_version"] == "0.1.0"
    assert make_ir(options=resolve_options({"seed": 4})).hash() != ir.hash()


@pytest.mark.slow
def test_generated_tests_pass(tmp_path):
    """The generated module's own tests (sampler vs kernel, velocity vs sampler, exact flow) in a subprocess,
    on an IR built by hand (tests/test_build.py runs them on real builds)."""
    pytest.importorskip("torch")
    write(render(make_ir("gaussian")), tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "tests/test_generated_process.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_ir_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_ir().family = "cauchy"

"""The shape of the code (issue 13): no import cycle inside pde2gen, a compiler core without torch, family
knowledge in the family folders (pde2gen/families/<name>/), one set of stage names."""
import argparse
import ast
import importlib
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pde2gen.families import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pde2gen"
FAMILY_DIR = PACKAGE / "families"
# The torch side of pde2gen: read as text by the renderer, imported by tests only.
TORCH_FILES = {FAMILY_DIR / "runtime_common.py", *FAMILY_DIR.glob("*/runtime.py")}
TEMPLATES = ROOT / "templates"
# Family names as string literals outside pde2gen/families/, in pde2gen/ and in templates/: at most this many
# (today the four law names of analyse's small-k Prior, which name the prior's law, not a family). Each new one
# is knowledge that belongs in a family folder: a declared property (FamilyInfo) branches instead.
MAX_FAMILY_LITERALS = 4


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(name: str) -> set[str]:
    """pde2gen modules that ``name`` imports anywhere in its file (module level or inside functions)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    return {module for module in found if module in MODULES and module != name}


def test_no_import_cycle_inside_pde2gen():
    graph = {name: imported_modules(name) for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycle = path[path.index(other):] + [other]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, path + [other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # the check sees imports: the catalog builds on the text front end, the parse stage on both
    assert "pde2gen.spec.frontend" in graph["pde2gen.spec.catalog"] and "pde2gen.spec.catalog" in graph["pde2gen.spec.parse"]


def test_no_stage_imports_a_report_writer():
    """pde2gen/report/ (check report, explain, plots, demo, metrics) reads stage results; the driver
    (pipeline), the CLI and build call it, no stage does."""
    callers = {"pde2gen.pipeline", "pde2gen.cli", "pde2gen.build", "pde2gen.__main__"}
    for name in MODULES:
        if name in callers or name.startswith("pde2gen.report"):
            continue
        assert not {m for m in imported_modules(name) if m.startswith("pde2gen.report")}, name


def test_no_stage_package_imports_a_report_writer():
    """The stage packages never import pde2gen.report, not even inside a function."""
    stages = {"spec", "analysis", "derive", "codegen"}
    packages = {name.split(".")[1] for name in MODULES if name.count(".") >= 2}
    assert stages <= packages, stages - packages
    for name in MODULES:
        if name.count(".") >= 2 and name.split(".")[1] in stages:
            assert not {m for m in imported_modules(name) if m.startswith("pde2gen.report")}, name


def test_the_compiler_core_imports_no_torch():
    for name, path in MODULES.items():
        if path in TORCH_FILES:
            continue
        imports = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        modules = {node.module.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        assert "torch" not in imports | modules, name
    # and at run time: a whole compile (every stage) leaves torch unloaded
    code = ("import sys; from pde2gen.pipeline import compile_pde; compile_pde('diffusion', until='render'); "
            "import pde2gen.cli, pde2gen.build; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


def family_literals() -> list[str]:
    names = set(FAMILIES)
    found = []
    for name, path in MODULES.items():
        if FAMILY_DIR in path.parents or path == FAMILY_DIR / "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        # np.argsort(..., kind="stable") names a sort, not a family
        sort_kinds = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == "kind"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in sort_kinds:
                found.append(f"{name}:{node.lineno} {node.value}")
    # the templates: a quoted family name in Jinja code or in the Python/markdown it writes
    quoted = re.compile(r"[\"']({})[\"']".format("|".join(map(re.escape, sorted(names)))))
    for path in sorted(TEMPLATES.rglob("*.j2")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found += [f"{path.relative_to(ROOT)}:{number} {match}" for match in quoted.findall(line)]
    return found


def test_family_names_outside_the_family_folders_are_a_handful():
    found = family_literals()
    assert len(found) <= MAX_FAMILY_LITERALS, found


@pytest.mark.parametrize("path", ["ve", "linear"])
def test_every_family_renders_a_process_module_with_class_process_before_its_runtime(path):
    """For every family of the registry, the rendered process.py defines class Process before any definition
    inlined from the family's runtime (the reader meets the process first, the kernel's machinery after)."""
    from test_generated_scripts import module_ir

    from pde2gen.codegen.render import render, runtime_source

    for family, info in FAMILIES.items():
        ir = replace(module_ir("gaussian"), family=family, family_class=info.runtime_class,
                     parameters=tuple((name, 1.0) for name in info.parameters), path=path,
                     path_schedule="scale_linear" if path == "linear" else "")
        tree = ast.parse(render(ir)["process.py"])
        order = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        runtime = {node.name for node in ast.parse(runtime_source(family)).body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        inlined = [index for index, name in enumerate(order) if name in runtime]
        assert info.runtime_class in order and inlined, (family, path)
        assert order.index("Process") < min(inlined), (family, path, order[: min(inlined) + 1])


def test_every_family_folder_is_complete_and_registered():
    torch = pytest.importorskip("torch")
    folders = {path.name for path in FAMILY_DIR.iterdir() if (path / "__init__.py").is_file()
               and not path.name.startswith("_")}
    assert folders == set(FAMILIES)
    for name, info in FAMILIES.items():
        # the declared runtime class is a torch module (directly, or through a shared base of runtime_common)
        runtime = importlib.import_module(f"pde2gen.families.{name}.runtime")
        assert issubclass(getattr(runtime, info.runtime_class), torch.nn.Module), name
        assert (FAMILY_DIR / name / "reference.py").is_file()


def test_stage_names_are_the_same_in_the_cli_the_driver_and_the_docs():
    from pde2gen.cli import build_parser
    from pde2gen.pipeline import STAGES

    commands = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    stage = next(action for action in commands.choices["show"]._actions if action.dest == "stage")
    assert tuple(stage.choices) == STAGES
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    assert all(re.search(rf"^{stage}\s+:", design, re.MULTILINE) for stage in STAGES)

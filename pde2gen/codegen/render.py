"""Render a ModuleIR into the files of a generated module: ``render(ir) -> {file name: text}``.

Templates live in ``resource_dir("templates")``:

- ``process.py.j2``: the process module; the torch runtime, ``pde2gen/families/runtime_common.py`` and
  ``pde2gen/families/<family>/runtime.py`` (read as text, never imported), is inlined into it (lines ending
  in ``# runtime-import`` dropped, module docstrings dropped, definitions nothing reaches pruned) and every
  top-level import of the result is hoisted, deduplicated, to just below the module docstring;
- ``model.py.j2``, ``images.py.j2``, ``train.py.j2``, ``sample.py.j2``: rendered when present (their own owner);
- ``README.md.j2``: the model card; ``tests/*.j2``: the generated tests (``tests/<name>``).

``pde2gen.json`` (spec, parameters, family, version, IR hash, options) is written from Python, not a template.
Before rendering, a completeness check (FFCx's idea) makes sure that every IR field is used by some template
and that no template uses an undefined name. Every ``.py`` output is checked with ``ast.parse`` + ``compile``.
The result is deterministic: no timestamps, sorted keys, fixed file names that never come from user text.
"""
from __future__ import annotations

import ast
import json
import math
import re
import sys
import textwrap
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from ..errors import RenderError, UsageError
from ..families import FAMILIES_DIR
from .lower import ModuleIR, check_identifier, is_safe_text

PROCESS_TEMPLATE = "process.py.j2"
README_TEMPLATE = "README.md.j2"
SCRIPT_TEMPLATES = ("model.py.j2", "images.py.j2", "train.py.j2", "sample.py.j2")  # optional: rendered when present
TESTS_DIR = "tests"
RUNTIME_COMMON = "runtime_common.py"  # in the runtime directory, beside one folder per family
RUNTIME_FILE = "runtime.py"  # <runtime directory>/<family>/runtime.py
RUNTIME_MARKER = "# runtime-import"
CONFIG_FILE = "pde2gen.json"
TEMPLATE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.(py|md)\.j2$")
DOC_WIDTH = 104
# Names the renderer provides besides the IR fields.
RENDER_CONTEXT = ("ir_hash", "runtime_source", "files")


# ------------------------------------------------------------------------------------------- filters
def _pyfloat(value: object) -> str:
    """A float literal: repr(float(v)) of a finite number (inf/nan would be names, not literals)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RenderError(f"template asked for a float literal of {value!r}")
    return repr(float(value))


def _pyrepr(value: object) -> str:
    """A Python literal of plain data (strings become quoted, escaped literals)."""
    if not isinstance(value, (str, int, float, bool, tuple, type(None))):
        raise RenderError(f"template asked for a literal of {type(value).__name__}")
    if isinstance(value, float):
        return _pyfloat(value)
    return repr(value)


def _ident(value: object) -> str:
    try:
        return check_identifier(value)
    except UsageError:
        raise RenderError(f"template asked to use {value!r} as an identifier") from None


def _wrap(text: object, width: int = DOC_WIDTH, indent: str = "") -> str:
    """Safe one-line text wrapped for a docstring or comment block; continuation lines get ``indent``."""
    text = str(text)
    if not is_safe_text(text):
        raise RenderError(f"template asked to wrap unsafe text {text[:40]!r}")
    return textwrap.fill(text, width=width, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)


# HTML, links and emphasis; intraword underscores (d_t, c_j0) are literal in CommonMark and stay readable.
_MARKDOWN_SPECIAL = re.compile(r"([*\[\]<>])")


def _md(text: object) -> str:
    """Safe one-line text with markdown/HTML specials escaped (for prose outside code spans)."""
    text = str(text)
    if not is_safe_text(text):
        raise RenderError(f"template asked for markdown of unsafe text {text[:40]!r}")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;"))


@lru_cache(maxsize=8)
def _environment(template_dir: Path) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(pyfloat=_pyfloat, pyrepr=_pyrepr, ident=_ident, wrap=_wrap, md=_md)
    return env


# ------------------------------------------------------------------------------------------- inputs
def _template_dir(template_dir: Path | None) -> Path:
    from ..resources import resource_dir

    directory = Path(template_dir) if template_dir is not None else resource_dir("templates")
    if not (directory / PROCESS_TEMPLATE).is_file():
        raise RenderError(f"no {PROCESS_TEMPLATE} in {directory}")
    return directory


def output_templates(template_dir: Path) -> dict[str, str]:
    """{output file name: template name} for the templates present in ``template_dir``."""
    outputs = {"process.py": PROCESS_TEMPLATE, "README.md": README_TEMPLATE}
    for template in SCRIPT_TEMPLATES:
        if (template_dir / template).is_file():
            outputs[template.removesuffix(".j2")] = template
    tests = template_dir / TESTS_DIR
    for path in sorted(tests.glob("*.j2")) if tests.is_dir() else ():
        if not TEMPLATE_NAME.match(path.name):
            raise RenderError(f"template file name {path.name!r} is not of the form name.py.j2 / name.md.j2")
        outputs[f"{TESTS_DIR}/{path.name.removesuffix('.j2')}"] = f"{TESTS_DIR}/{path.name}"
    return dict(sorted(outputs.items()))


def check_completeness(env: jinja2.Environment, templates: list[str], context_keys: set[str]) -> None:
    """Every context key is used by some template and every name a template uses is defined."""
    used: set[str] = set()
    pending, seen = list(templates), set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            source = env.loader.get_source(env, name)[0]
            tree = env.parse(source)
        except jinja2.TemplateNotFound:
            raise RenderError(f"template {name} is missing") from None
        except jinja2.TemplateSyntaxError as error:
            raise RenderError(f"template {name}, line {error.lineno}: {error.message}") from None
        names = jinja2.meta.find_undeclared_variables(tree) - set(env.globals)
        undefined = sorted(names - context_keys)
        if undefined:
            raise RenderError(f"template {name} uses undefined name(s): {', '.join(undefined)}")
        used |= names
        pending.extend(ref for ref in jinja2.meta.find_referenced_templates(tree) if ref)
    unused = sorted(context_keys - used)
    if unused:
        raise RenderError(f"IR field(s) not used by any template: {', '.join(unused)}")


def _drop_module_docstring(source: str, path: Path) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise RenderError(f"runtime file {path.name} does not parse: line {error.lineno}: {error.msg}") from None
    if _has_docstring(tree):
        first = tree.body[0]
        lines = source.splitlines()
        source = "\n".join(lines[: first.lineno - 1] + lines[first.end_lineno :])
    return source


def _has_docstring(tree: ast.Module) -> bool:
    first = tree.body[0] if tree.body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def _drop_marked_lines(path: Path) -> str:
    """The file without its ``# runtime-import`` lines; a marked import spanning lines goes as a whole."""
    source = path.read_text()
    lines = source.splitlines()
    marked = {index for index, line in enumerate(lines) if line.rstrip().endswith(RUNTIME_MARKER)}
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise RenderError(f"runtime file {path.name} does not parse: line {error.lineno}: {error.msg}") from None
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            span = set(range(node.lineno - 1, node.end_lineno))
            if span & marked:
                marked |= span
    return "\n".join(line for index, line in enumerate(lines) if index not in marked)


def runtime_source(family: str, runtime_dir: Path = FAMILIES_DIR) -> str:
    """runtime_common.py + <family>/runtime.py of ``runtime_dir`` (default pde2gen/families), ready to inline
    (marker lines and docstrings dropped). The section headers keep the names runtime/common.py and
    runtime/<family>.py that generated modules have always carried."""
    check_identifier(family)
    parts = []
    for name, path in (("common", runtime_dir / RUNTIME_COMMON), (family, runtime_dir / family / RUNTIME_FILE)):
        if not path.is_file():
            raise RenderError(f"the torch runtime {path.relative_to(runtime_dir.parent)} is missing")
        body = _drop_module_docstring(_drop_marked_lines(path), path).strip("\n")
        parts.append(f"# ---- runtime/{name}.py " + "-" * (DOC_WIDTH - 22 - len(name)) + "\n" + body)
    return "\n\n\n".join(parts)


# ------------------------------------------------------------------------------------------- outputs
def _syntax_error(name: str, source: str, error: SyntaxError) -> RenderError:
    lines = source.splitlines()
    line = error.lineno or 0
    snippet = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    return RenderError(f"generated {name} does not compile: line {line}: {error.msg}: {snippet[:120]!r}")


def hoist_imports(name: str, source: str) -> str:
    """Move every top-level import below the module docstring, deduplicated and sorted (__future__ first)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise _syntax_error(name, source, error) from None
    lines = source.splitlines()
    imports, drop = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise RenderError(f"generated {name} keeps a relative import: {ast.unparse(node)!r}")
            imports.add(ast.unparse(node))
            drop.update(range(node.lineno - 1, node.end_lineno))
    head = tree.body[0].end_lineno if _has_docstring(tree) else 0

    def order(statement: str) -> tuple[int, bool, str]:
        """isort's order: __future__, standard library, third party; plain imports before from-imports."""
        module = statement.split()[1].split(".")[0]
        section = 0 if module == "__future__" else 1 if module in sys.stdlib_module_names else 2
        return (section, statement.startswith("from "), statement.split()[1].lower())

    groups: dict[int, list[str]] = {}
    for statement in sorted(imports, key=order):
        groups.setdefault(order(statement)[0], []).append(statement)
    block = "\n\n".join("\n".join(group) for _, group in sorted(groups.items()))
    body = "\n".join(line for index, line in enumerate(lines) if index not in drop and index >= head)
    # A section header whose imports moved away keeps no blank lines below it.
    body = re.sub(r"^(# ---- [^\n]*\n)\n+", r"\1", body, flags=re.MULTILINE)
    body = re.sub(r"\n{4,}", "\n\n\n", body.strip("\n"))
    text = "\n".join(lines[:head]) + "\n" + block + "\n" * _blank_lines_after_imports(body) + "\n" + body
    return text.strip("\n") + "\n"


def _defined_names(node: ast.stmt) -> list[str]:
    """Names a top-level statement defines (a def, a class, or an assignment to plain names)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [target.id for target in targets if isinstance(target, ast.Name)]
    return []


def prune_runtime(name: str, source: str, runtime: str) -> str:
    """``source`` without the top-level definitions of the inlined ``runtime`` that nothing reaches.

    Roots are every name the rest of the file uses (the template's own code: Process, the solvers, ...);
    a runtime definition is kept when a root or a kept definition names it. Comment lines directly above a
    dropped definition go with it (section headers ``# ----`` stay). Import statements are not touched."""
    runtime_names = {n for node in ast.parse(runtime).body for n in _defined_names(node)}
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise _syntax_error(name, source, error) from None
    owners: dict[str, list[ast.stmt]] = {}
    roots: set[str] = set()
    for node in tree.body:
        defined = [n for n in _defined_names(node) if n in runtime_names]
        used = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}
        if defined:
            for identifier in defined:
                owners.setdefault(identifier, []).append(node)
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            roots |= used
    reached, pending = set(), [n for n in roots if n in owners]
    while pending:
        identifier = pending.pop()
        if identifier in reached:
            continue
        reached.add(identifier)
        for node in owners[identifier]:
            pending.extend(sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id in owners)
    lines = source.splitlines()
    drop: set[int] = set()
    for node in tree.body:
        defined = [n for n in _defined_names(node) if n in runtime_names]
        if defined and not any(n in reached for n in defined):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
            while first > 0 and lines[first - 1].startswith("#") and not lines[first - 1].startswith("# ----"):
                first -= 1
            drop.update(range(first, node.end_lineno))
    if not drop:
        return source
    text = "\n".join(line for index, line in enumerate(lines) if index not in drop)
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    # A runtime section left empty keeps no header.
    text = re.sub(r"^# ---- runtime/[^\n]*\n+(?=# ----|class |def |[A-Z_]+ = |\Z)", "", text, flags=re.MULTILINE)
    check_python(name, text)
    return text.strip("\n") + "\n"


def _blank_lines_after_imports(body: str) -> int:
    """isort's rule: two blank lines when the next statement (with its attached comments) is a def or class."""
    for line in body.splitlines():
        if not line.startswith("#"):
            return 2 if line.startswith(("def ", "class ", "async def ", "@")) else 1
    return 1


def check_unique_definitions(name: str, source: str) -> None:
    """No top-level name is defined twice (the inlined runtime and the template share one namespace)."""
    seen: dict[str, int] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined = [target.id for target in targets if isinstance(target, ast.Name)]
        else:
            continue
        for identifier in defined:
            if identifier in seen:
                raise RenderError(f"generated {name} defines {identifier} twice (lines {seen[identifier]} and "
                                  f"{node.lineno}): the runtime and the template clash")
            seen[identifier] = node.lineno


def check_python(name: str, source: str) -> None:
    """ast.parse + compile; RenderError with the line and a snippet otherwise."""
    try:
        compile(ast.parse(source, filename=name), name, "exec")
    except SyntaxError as error:
        raise _syntax_error(name, source, error) from None


def config_json(ir: ModuleIR, files: list[str]) -> str:
    """pde2gen.json: how this module was generated (deterministic, sorted keys)."""
    record = {
        "pde2gen_version": ir.pde2gen_version,
        "source": ir.source,
        "pde": ir.pde,
        "catalog": list(ir.catalog),
        "pde_parameters": dict(ir.pde_parameters),
        "family": ir.family,
        "parameters": dict(ir.parameters),
        "dim": ir.dim,
        "shape": list(ir.shape),
        "construction": ir.construction,
        "s_generative": ir.s_generative,
        "time": {"t_min": ir.t_min, "t_max": ir.t_max, "sigma_min": ir.sigma_min, "sigma_max": ir.sigma_max,
                 "rho": ir.rho},
        "options": ir.options,
        "spec_sha256": ir.spec_hash,
        "ir_sha256": ir.hash(),
        "files": files,
    }
    if ir.path != "ve":  # ve records stay as they were before paths existed
        record["path"] = {"path": ir.path, "schedule": ir.path_schedule, "horizon": ir.t_max,
                          "sigma_end": ir.path_sigma_end or "sigma_data"}
    return json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n"


def render(ir: ModuleIR, *, template_dir: Path | None = None, runtime_dir: Path = FAMILIES_DIR) -> dict[str, str]:
    """{file name: text} of the generated module (file names fixed, sorted); RenderError on any failure.

    ``template_dir``/``runtime_dir``: other templates or family runtimes (tests); default the packaged ones."""
    if not isinstance(ir, ModuleIR):
        raise RenderError(f"render() needs a ModuleIR, got {type(ir).__name__}")
    directory = _template_dir(template_dir)
    env = _environment(directory.resolve())
    outputs = output_templates(directory)
    files = sorted([*outputs, CONFIG_FILE])
    context = {field.name: getattr(ir, field.name) for field in fields(ir)}
    runtime = runtime_source(ir.family, runtime_dir)
    context.update(ir_hash=ir.hash(), runtime_source=runtime, files=tuple(files))
    check_completeness(env, list(outputs.values()), set(context))

    rendered = {}
    for name, template in outputs.items():
        try:
            text = env.get_template(template).render(context)
        except jinja2.TemplateError as error:
            raise RenderError(f"template {template}: {error}") from None
        if name.endswith(".py"):
            if template == PROCESS_TEMPLATE:
                text = hoist_imports(name, prune_runtime(name, text, runtime))
            check_python(name, text)
            if template == PROCESS_TEMPLATE:
                check_unique_definitions(name, text)
        rendered[name] = text
    rendered[CONFIG_FILE] = config_json(ir, files)
    return dict(sorted(rendered.items()))

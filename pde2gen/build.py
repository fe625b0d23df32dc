"""``pde2gen build``: parse -> analyse -> derive -> lower -> render, then write OUTDIR atomically.

Writing never leaves a half-written module: the files are rendered in memory, written into a fresh
temporary sibling of OUTDIR and renamed into place. An existing non-empty OUTDIR is replaced only with
``force=True``, and only if it is a previous pde2gen build (it holds ``pde2gen.json``): the old directory is
renamed away, the new one renamed in, then the old one deleted; if the swap fails the old one is put back.
Any failure removes the temporary directory, so OUTDIR is either absent, unchanged, or the complete new build.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import Pde2genError, RenderError, UsageError
from .lower import ModuleIR, lower, safe_text
from .render import CONFIG_FILE, render

# Generated file names are fixed by the templates; this only guards the writer against anything else.
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")


class BuildRefused(Pde2genError):
    """The PDE is not s-generative: nothing is built unless ``force_unsafe``. Carries the analysis report."""

    stage = "build"
    exit_code = 1

    def __init__(self, message: str, report_text: str, hint: str | None = None):
        super().__init__(message, hint)
        self.report_text = report_text


@dataclass(frozen=True)
class BuildResult:
    """What was built: where, which files, and every stage's result."""

    outdir: Path
    files: tuple[str, ...]
    ir: ModuleIR
    spec: object
    analysis: object
    derivation: object

    def summary(self) -> str:
        verdict = "s-generative" if self.ir.s_generative else "NOT s-generative, built with --force-unsafe"
        return (
            f"built {self.ir.family} module for {self.ir.pde} ({verdict}) in {self.outdir}: "
            f"{', '.join(self.files)} (IR sha256 {self.ir.hash()[:16]})"
        )


# ------------------------------------------------------------------------------------------- paths
def check_outdir(outdir, *, force: bool = False) -> Path:
    """OUTDIR as an absolute path, or UsageError for paths that must not be written.

    Refused: empty names, control characters, '..' components, a file or a symbolic link in the way, a
    parent that is not a directory, the filesystem root, the home or current directory or one of their
    ancestors, and an existing non-empty directory unless ``force`` and it is a previous build.
    """
    if not isinstance(outdir, (str, os.PathLike)):
        raise UsageError(f"output directory must be a path, got {type(outdir).__name__}")
    text = os.fspath(outdir)
    if not isinstance(text, str) or not text.strip():
        raise UsageError("output directory must be a non-empty path")
    shown = safe_text(repr(text), limit=120)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise UsageError(f"output directory {shown} contains control characters")
    if ".." in Path(text).parts:
        raise UsageError(f"output directory {shown} must not contain '..'", hint="give the path without '..'")
    path = Path(os.path.abspath(text))
    protected = {Path(path.anchor), Path.home().resolve(), Path.cwd().resolve()}
    if path.resolve() in protected or any(path.resolve() in p.parents for p in protected):
        raise UsageError(f"refusing to build into {shown}: it is the root, home or current directory "
                         "or one of their ancestors")
    if path.is_symlink():
        raise UsageError(f"output directory {shown} is a symbolic link", hint="give the real directory")
    if path.exists() and not path.is_dir():
        raise UsageError(f"output path {shown} exists and is not a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"cannot create {shown}: {safe_text(parent, limit=120)} is not a directory")
            break
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise UsageError(f"output directory {shown} exists and is not empty",
                             hint="pass --force to replace a previous build")
        if not (path / CONFIG_FILE).is_file():
            raise UsageError(f"output directory {shown} is not a previous pde2gen build (no {CONFIG_FILE}); "
                             "refusing to replace it", hint="remove it yourself or choose another directory")
    return path


def write_atomically(files: dict[str, str], outdir, *, force: bool = False) -> Path:
    """Write ``{relative name: text}`` as the directory OUTDIR, all or nothing (see the module docstring)."""
    target = check_outdir(outdir, force=force)
    for name in files:
        if not _FILE_NAME.match(name) or ".." in name.split("/"):
            raise RenderError(f"refusing to write a generated file named {safe_text(repr(name), limit=80)}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    except OSError as error:
        raise RenderError(f"cannot create a directory beside {target}: {error.strerror or error}") from None
    try:
        for name, text in sorted(files.items()):
            _write_file(staging / name, text)
        _swap_into_place(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise RenderError(f"cannot write {target}: {error.strerror or error}") from None
        raise
    return target


def _write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing ``target`` is renamed away first and deleted after."""
    if not target.exists():
        os.rename(staging, target)
        return
    if not any(target.iterdir()):
        target.rmdir()
        os.rename(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    retired.rmdir()  # only the unique name is wanted: rename needs it free
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


# ------------------------------------------------------------------------------------------- the pipeline
def refusal_report(analysis) -> str:
    """The ``pde2gen check`` report of a PDE that is not s-generative (one formatter for both commands)."""
    from .report import format_check

    return format_check(analysis)


def build(source, outdir, *, dim: int = 2, params=None, construction: str | None = None,
          problem_type: str | None = None, shape=None, force: bool = False, force_unsafe: bool = False,
          **options) -> BuildResult:
    """Compile the PDE ``source`` into a standalone PyTorch module in ``outdir``.

    ``options`` are build options (see ``pde2gen.lower.OPTION_DEFAULTS``); ``shape`` is the shape of one
    sample (default ``(dim,)``). Raises BuildRefused for a PDE that is not s-generative (unless
    ``force_unsafe``), UsageError for bad paths/options, and each stage's error class otherwise.
    """
    check_outdir(outdir, force=force)  # fail fast, before the expensive stages
    from .analyse import analyse
    from .derive import derive
    from .parse import parse

    spec = parse(source, params=params, dim=dim, construction=construction, problem_type=problem_type)
    analysis = analyse(spec)
    if not analysis.s_generative and not force_unsafe:
        raise BuildRefused(
            f"{safe_text(spec.pretty(), limit=120)} is not s-generative; nothing was built",
            report_text=refusal_report(analysis),
            hint="pass --force-unsafe (force_unsafe=True) to build it anyway",
        )
    derivation = derive(spec, analysis)
    ir = lower(spec, analysis, derivation, options=options, shape=shape)
    files = render(ir)
    target = write_atomically(files, outdir, force=force)
    return BuildResult(target, tuple(files), ir, spec, analysis, derivation)

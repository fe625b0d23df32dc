"""``pde2gen build``: parse -> analyse -> derive -> lower -> render, then write OUTDIR atomically.

Writing never leaves a half-written module and never deletes what is not the build's own:

* the files are rendered in memory and written into a fresh hidden sibling ``.NAME.new-<hex>`` (mode from the
  umask, like any ``mkdir``), which is then renamed onto OUTDIR with a *no-replace* rename (``renameat2``
  ``RENAME_NOREPLACE`` where the system has it): whatever appeared at OUTDIR meanwhile is never replaced;
* the final step runs under an exclusive lock on OUTDIR's parent, so concurrent builds into one place are
  serialised: the first wins, the others are refused;
* ``force=True`` replaces a previous build only: OUTDIR's ``pde2gen.json`` must be a regular file (no link)
  recording pde2gen's version, hash and file list. Only the files it lists (and Python caches) are replaced;
  everything else in OUTDIR (a training run ``run/``, user files) is moved into the new build; a user file in
  the way of a generated one is refused. If the swap fails, the previous build is put back;
* staging folders left by a killed build (``kill -9``) are removed by the next build of the same OUTDIR, but
  only those that are provably ours and stale: a directory owned by this user holding pde2gen's marker file,
  written by a process of this host that no longer runs.

File-system failures (a missing or read-only parent, /proc, names too long) are OutputPathError (exit 2).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from .codegen.lower import ModuleIR, safe_text
from .codegen.render import CONFIG_FILE
from .errors import (
    OutputPathError,
    Pde2genError,
    RenderError,
    UsageError,
)
from .pipeline import compile_pde

# Generated file names are fixed by the templates; this only guards the writer against anything else.
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
# Caches that running a build's own code creates; replaced with the build, never user data.
_CACHE_NAMES = frozenset({"__pycache__", ".pytest_cache"})
_MARKER = ".pde2gen-staging"  # in staging/retired folders: {"host": ..., "pid": ...}; its contents are disposable
_SUFFIX_HEX = 16
_NAME_MAX = 255
MAX_OUTDIR_NAME = _NAME_MAX - len(f"..new-{'0' * _SUFFIX_HEX}")  # the staging sibling's name must fit too
MAX_CONFIG_BYTES = 1 << 20


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
def _os_error(what: str, path, error: OSError) -> OutputPathError:
    return OutputPathError(f"{what} {safe_text(os.fspath(path), limit=120)}: {error.strerror or error}",
                           hint="choose an output directory you can write to")


def check_outdir(outdir, *, force: bool = False) -> Path:
    """OUTDIR as an absolute path, or UsageError for paths that must not be written.

    Refused: empty names, control characters, '..' components, names too long for the staging sibling, a
    symbolic link anywhere on the path, a file in the way, a parent that is not a directory, the filesystem
    root, the home or current directory or one of their ancestors, and an existing non-empty directory unless
    ``force`` and it is a previous build (a valid ``pde2gen.json``, see ``previous_build_files``).
    """
    if not isinstance(outdir, (str, os.PathLike)):
        raise UsageError(f"output directory must be a path, got {type(outdir).__name__}")
    try:
        text = os.fspath(outdir)
    except Exception as exc:  # noqa: BLE001 - a user object's own __fspath__ error becomes pde2gen's
        raise UsageError(f"output directory: cannot read the path ({type(exc).__name__})") from None
    if not isinstance(text, str) or not text.strip():
        raise UsageError("output directory must be a non-empty path")
    shown = safe_text(repr(text), limit=120)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise UsageError(f"output directory {shown} contains control characters")
    if ".." in Path(text).parts:
        raise UsageError(f"output directory {shown} must not contain '..'", hint="give the path without '..'")
    path = Path(os.path.abspath(text))
    too_long = [part for part in path.parts if len(os.fsencode(part)) > _NAME_MAX]
    if too_long or len(os.fsencode(path.name)) > MAX_OUTDIR_NAME:
        raise OutputPathError(f"output directory {shown}: a name is too long (at most {MAX_OUTDIR_NAME} bytes "
                              "for the directory itself)", hint="choose a shorter name")
    try:
        return _check_existing(path, shown, force)
    except OSError as error:
        raise _os_error("cannot inspect the output directory", text, error) from None


def _check_existing(path: Path, shown: str, force: bool) -> Path:
    protected = {Path(path.anchor), Path.home().resolve(), Path.cwd().resolve()}
    if path.resolve() in protected or any(path.resolve() in p.parents for p in protected):
        raise UsageError(f"refusing to build into {shown}: it is the root, home or current directory "
                         "or one of their ancestors")
    if path.is_symlink():
        raise UsageError(f"output directory {shown} is a symbolic link", hint="give the real directory")
    for ancestor in path.parents:
        if ancestor.is_symlink():  # a link could send the build (and --force) somewhere else
            raise UsageError(f"output directory {shown} goes through the symbolic link "
                             f"{safe_text(str(ancestor), limit=120)}",
                             hint=f"give the real path: {safe_text(str(path.resolve()), limit=160)}")
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
        previous_build_files(path)
    return path


def previous_build_files(directory: Path) -> frozenset[str]:
    """The files a previous build wrote in ``directory``, as its ``pde2gen.json`` records them.

    UsageError unless ``pde2gen.json`` is a regular file (not a link), at most 1 MiB, a JSON object with
    ``pde2gen_version``, a 64-hex ``ir_sha256`` and ``files``: a list of generated file names that includes
    ``pde2gen.json``. Nothing else is trusted to mark a directory as a build that ``--force`` may replace.
    """
    shown = safe_text(repr(str(directory)), limit=120)
    refuse = (f"output directory {shown} is not a previous pde2gen build",
              "remove it yourself or choose another directory")
    config = directory / CONFIG_FILE
    try:
        info = os.lstat(config)
    except FileNotFoundError:
        raise UsageError(f"{refuse[0]} (no {CONFIG_FILE}); refusing to replace it", hint=refuse[1]) from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CONFIG_BYTES:
        raise UsageError(f"{refuse[0]} ({CONFIG_FILE} is not a regular file of pde2gen's); refusing to replace it",
                         hint=refuse[1])
    try:
        with open(config, "rb", opener=lambda p, flags: os.open(p, flags | getattr(os, "O_NOFOLLOW", 0))) as handle:
            record = json.loads(handle.read(MAX_CONFIG_BYTES + 1).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        record = None
    files = record.get("files") if isinstance(record, dict) else None
    valid = (isinstance(record, dict) and isinstance(record.get("pde2gen_version"), str)
             and isinstance(record.get("ir_sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", record["ir_sha256"])
             and isinstance(files, list) and CONFIG_FILE in files
             and all(isinstance(name, str) and _FILE_NAME.match(name) for name in files))
    if not valid:
        raise UsageError(f"{refuse[0]} ({CONFIG_FILE} does not hold a pde2gen build record); refusing to replace it",
                         hint=refuse[1])
    return frozenset(files)


def _entries_to_keep(directory: Path, previous: frozenset[str], new: frozenset[str]) -> list[str]:
    """Top-level names in a previous build that are not the build's own: they move into the new build.

    UsageError when something not the build's own would be lost: a user file inside a generated folder
    (e.g. ``tests/mine.py``), a link or a folder where the build had a file, or a user entry named like a
    new generated file.
    """
    shown = safe_text(str(directory), limit=120)
    own_top = {name.split("/")[0] for name in previous}
    new_top = {name.split("/")[0] for name in new}
    keep = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.name in own_top:
            if entry.is_file(follow_symlinks=False) and entry.name in previous:
                continue
            if entry.is_dir(follow_symlinks=False) and entry.name not in previous:
                for inner in os.scandir(entry.path):
                    relative = f"{entry.name}/{inner.name}"
                    if inner.name in _CACHE_NAMES or (relative in previous and inner.is_file(follow_symlinks=False)):
                        continue
                    raise UsageError(f"{shown}/{relative} is not part of the previous build; refusing to delete it",
                                     hint="move it out of the build directory, then rebuild")
                continue
            raise UsageError(f"{shown}/{entry.name} is not the file the previous build wrote there; refusing to "
                             "delete it", hint="move it out of the build directory, then rebuild")
        if entry.name in _CACHE_NAMES:
            continue
        if entry.name in new_top or entry.name.startswith(_MARKER):
            raise UsageError(f"{shown}/{entry.name} is not part of the previous build, and the new build writes "
                             "that name; refusing to replace it", hint="rename or move it, then rebuild")
        keep.append(entry.name)
    return keep


# ------------------------------------------------------------------------------------------- writing
def write_atomically(files: dict[str, str], outdir, *, force: bool = False) -> Path:
    """Write ``{relative name: text}`` as the directory OUTDIR, all or nothing (see the module docstring)."""
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise RenderError("the files to write must be a dict of file names to text")
    target = check_outdir(outdir, force=force)
    for name in files:
        if not _FILE_NAME.match(name) or ".." in name.split("/"):
            raise RenderError(f"refusing to write a generated file named {safe_text(repr(name), limit=80)}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.parent):
            remove_stale_staging(target)
        staging = _new_sibling(target, "new")
    except OSError as error:
        raise _os_error("cannot create a directory beside", target, error) from None
    try:
        (staging / _MARKER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
        for name, text in sorted(files.items()):
            _write_file(staging / name, text)
        (staging / _MARKER).unlink()
        with _locked(target.parent):
            _swap_into_place(staging, target, force=force, new=frozenset(files))
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise _os_error("cannot write", target, error) from None
        raise
    return target


def _write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _new_sibling(target: Path, kind: str) -> Path:
    """A fresh hidden sibling ``.NAME.<kind>-<hex>`` of target (created for "new", only named for "old")."""
    while True:
        path = target.parent / f".{target.name}.{kind}-{secrets.token_hex(_SUFFIX_HEX // 2)}"
        if kind != "new":
            if not os.path.lexists(path):
                return path
            continue
        try:
            os.mkdir(path, 0o777)  # permissions from the umask, like the user's own mkdir
            return path
        except FileExistsError:
            continue


@contextlib.contextmanager
def _locked(directory: Path):
    """An exclusive advisory lock on ``directory`` (flock; released when the process dies, even by kill -9)."""
    try:
        import fcntl
    except ImportError:  # no flock here: the no-replace rename alone guards the target
        yield
        return
    descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        with contextlib.suppress(OSError):  # a file system without flock: the no-replace rename still guards
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _renameat2():
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = [None, False]  # [function, looked up]
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


def rename_noreplace(source: Path, destination: Path) -> None:
    """Rename ``source`` to ``destination``; FileExistsError if ``destination`` exists, never replacing it.

    Atomic with Linux's renameat2(RENAME_NOREPLACE). Elsewhere (or on file systems without it) a check then
    rename: the callers hold the parent's lock, and renaming a directory never replaces a non-empty one.
    """
    if not _RENAMEAT2[1]:
        _RENAMEAT2[:] = [_renameat2(), True]
    function = _RENAMEAT2[0]
    if function is not None:
        import ctypes

        if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), os.fspath(destination))
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(destination))
    os.rename(source, destination)


def _swap_into_place(staging: Path, target: Path, *, force: bool, new: frozenset[str]) -> None:
    """Rename ``staging`` to ``target`` without ever replacing what is not the previous build's own."""
    shown = safe_text(repr(str(target)), limit=120)
    try:
        rename_noreplace(staging, target)
        return
    except FileExistsError:
        pass
    if target.is_symlink() or not target.is_dir():
        raise UsageError(f"output path {shown} appeared while building and is not a directory; left unchanged")
    with contextlib.suppress(OSError):
        target.rmdir()  # an empty directory is nobody's data; a non-empty one refuses
        rename_noreplace(staging, target)
        return
    if not force:
        raise UsageError(f"output directory {shown} exists and is not empty (written while building?); "
                         "left unchanged", hint="pass --force to replace a previous build")
    retired = _new_sibling(target, "old")
    rename_noreplace(target, retired)  # out of reach first, then checked: nothing can change it in between
    moved: list[str] = []
    try:
        keep = _entries_to_keep(retired, previous_build_files(retired), new)
        for name in keep:
            rename_noreplace(retired / name, staging / name)
            moved.append(name)
        rename_noreplace(staging, target)
    except BaseException:
        try:
            for name in reversed(moved):
                rename_noreplace(staging / name, retired / name)
        except OSError:  # the user's entries are in staging: keep it (no marker, so never cleaned up)
            kept = _new_sibling(target, "old")
            os.rename(staging, kept)
            raise UsageError(f"the build into {shown} failed and could not be undone: the previous build is in "
                             f"{safe_text(str(retired), limit=120)}, your files in {safe_text(str(kept), limit=120)}"
                             ) from None
        try:
            rename_noreplace(retired, target)
        except OSError:
            raise UsageError(f"output directory {shown} was taken while building; the previous build is kept in "
                             f"{safe_text(str(retired), limit=120)}") from None
        raise
    (retired / _MARKER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    shutil.rmtree(retired, ignore_errors=True)


def remove_stale_staging(target: Path) -> list[Path]:
    """Delete the ``.NAME.new-*`` / ``.NAME.old-*`` siblings of ``target`` that killed builds left behind.

    Only directories (not links) owned by this user whose marker file names this host and a process that
    no longer runs: anything else is left alone. Returns what was removed.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(new|old)-[0-9a-f]{{{_SUFFIX_HEX}}}\Z")
    removed = []
    for entry in os.scandir(target.parent):
        if not pattern.match(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        if hasattr(os, "getuid") and entry.stat(follow_symlinks=False).st_uid != os.getuid():
            continue
        if _marker_owner_is_gone(Path(entry.path) / _MARKER):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def _marker_owner_is_gone(marker: Path) -> bool:
    try:
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return False
        record = json.loads(marker.read_text(encoding="utf-8")[:1000])
        pid = record["pid"]
        if record["host"] != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
            return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's: not ours to judge
        return False
    return False


# ------------------------------------------------------------------------------------------- the pipeline
def refusal_report(analysis) -> str:
    """The ``pde2gen check`` report of a PDE that is not s-generative (one formatter for both commands)."""
    from .report.check import format_check

    return format_check(analysis)


def build(source, outdir, *, dim: int = 2, params=None, construction: str | None = None,
          problem_type: str | None = None, shape=None, force: bool = False, force_unsafe: bool = False,
          path: str | None = None, path_schedule: str | None = None, path_horizon: float | None = None,
          path_scale: float | None = None, **options) -> BuildResult:
    """Compile the PDE ``source`` into a standalone PyTorch module in ``outdir``.

    ``options`` are build options (see ``pde2gen.codegen.lower.OPTION_DEFAULTS``); ``shape`` is the shape of one
    sample (default ``(dim,)``). ``path`` is "ve" (x_t = y + K_t) or "linear" (x_t = (1 - t/T) y + K_g(t));
    ``path_schedule`` (identity | quadratic | scale-linear), ``path_horizon`` (T) and ``path_scale`` (sigma_T
    of scale-linear) refine the linear path (pde2gen.codegen.lower.resolve_path). Raises BuildRefused for a PDE
    that is not s-generative (unless ``force_unsafe``), UsageError for bad paths/options, and each stage's error class otherwise.
    """
    check_outdir(outdir, force=force)  # fail fast, before the expensive stages

    def refuse_unless_generative(analysis):
        if not analysis.s_generative and not force_unsafe:
            raise BuildRefused(
                f"{safe_text(analysis.spec.pretty(), limit=120)} is not s-generative; nothing was built",
                report_text=refusal_report(analysis),
                hint="pass --force-unsafe (force_unsafe=True) to build it anyway",
            )

    path_choice = {"path": path, "schedule": path_schedule, "horizon": path_horizon, "sigma_end": path_scale}
    result = compile_pde(source, until="render", dim=dim, params=params, construction=construction,
                         problem_type=problem_type, options=options, path=path_choice, shape=shape,
                         after_analyse=refuse_unless_generative)
    target = write_atomically(result.files, outdir, force=force)
    return BuildResult(target, tuple(result.files), result.ir, result.spec, result.analysis, result.derivation)

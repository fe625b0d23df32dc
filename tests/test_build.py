"""build: atomic, all-or-nothing writing of OUTDIR, force semantics, refused paths, and end-to-end builds."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pde2gen import build as build_module
from pde2gen.build import BuildRefused, build, check_outdir, write_atomically
from pde2gen.errors import DerivationError, OutputPathError, Pde2genError, RenderError, UsageError


def build_record(files, version="0.1.0") -> str:
    """A pde2gen.json as render writes it (the fields --force checks)."""
    return json.dumps({"pde2gen_version": version, "ir_sha256": "ab" * 32, "files": sorted(files)}) + "\n"


FILES = {"process.py": "X = 1\n", "tests/test_generated_process.py": "Y = 2\n"}
FILES["pde2gen.json"] = build_record([*FILES, "pde2gen.json"])
NEW_FILES = {"process.py": "X = 2\n", "README.md": "# new\n"}
NEW_FILES["pde2gen.json"] = build_record([*NEW_FILES, "pde2gen.json"], version="0.2.0")


def tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    """Temporary siblings a build might leave behind (.NAME.new-*, .NAME.old-*)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------- writing
def test_writes_a_fresh_directory_and_creates_parents(tmp_path):
    target = write_atomically(FILES, tmp_path / "a" / "b" / "out")
    assert target == tmp_path / "a" / "b" / "out"
    assert tree(target) == FILES
    assert leftovers(target.parent) == []


def test_fills_an_existing_empty_directory(tmp_path):
    (tmp_path / "out").mkdir()
    write_atomically(FILES, tmp_path / "out")
    assert tree(tmp_path / "out") == FILES


def test_non_empty_directory_needs_force_and_is_left_unchanged(tmp_path):
    write_atomically(FILES, tmp_path / "out")
    with pytest.raises(UsageError, match="exists and is not empty"):
        write_atomically(NEW_FILES, tmp_path / "out")
    assert tree(tmp_path / "out") == FILES


def test_force_replaces_the_previous_build_and_keeps_everything_else(tmp_path):
    write_atomically(FILES, tmp_path / "out")
    (tmp_path / "out" / "run").mkdir()
    (tmp_path / "out" / "run" / "checkpoint.pt").write_text("weights")  # the README trains into out/kac/run
    (tmp_path / "out" / "notes.txt").write_text("mine")
    (tmp_path / "out" / "tests" / "__pycache__").mkdir()  # a cache of the build's own code
    write_atomically(NEW_FILES, tmp_path / "out", force=True)
    assert tree(tmp_path / "out") == {**NEW_FILES, "run/checkpoint.pt": "weights", "notes.txt": "mine"}
    assert leftovers(tmp_path) == []


def test_force_does_not_delete_a_directory_that_is_not_a_build(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_text("meow")
    with pytest.raises(UsageError, match="not a previous pde2gen build"):
        write_atomically(NEW_FILES, tmp_path / "photos", force=True)
    assert tree(tmp_path / "photos") == {"cat.jpg": "meow"}


def _failing_after(count: int, real):
    calls = []

    def write_file(path, text):
        calls.append(path)
        if len(calls) > count:
            raise OSError(28, "No space left on device")
        real(path, text)

    return write_file


def test_failure_mid_write_leaves_no_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "_write_file", _failing_after(1, build_module._write_file))
    with pytest.raises(OutputPathError, match="No space left on device"):
        write_atomically(FILES, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_failure_mid_write_leaves_the_previous_build_unchanged(tmp_path, monkeypatch):
    write_atomically(FILES, tmp_path / "out")
    monkeypatch.setattr(build_module, "_write_file", _failing_after(2, build_module._write_file))
    with pytest.raises(OutputPathError):
        write_atomically(NEW_FILES, tmp_path / "out", force=True)
    assert tree(tmp_path / "out") == FILES
    assert leftovers(tmp_path) == []


def test_failed_swap_puts_the_previous_build_back(tmp_path, monkeypatch):
    write_atomically(FILES, tmp_path / "out")
    (tmp_path / "out" / "run").mkdir()
    (tmp_path / "out" / "run" / "checkpoint.pt").write_text("weights")
    real_rename = build_module.rename_noreplace

    def rename(source, destination):
        if Path(source).name.startswith(".out.new-"):  # the new build moving in
            raise OSError(13, "Permission denied")
        real_rename(source, destination)

    monkeypatch.setattr(build_module, "rename_noreplace", rename)
    with pytest.raises(OutputPathError, match="Permission denied"):
        write_atomically(NEW_FILES, tmp_path / "out", force=True)
    assert tree(tmp_path / "out") == {**FILES, "run/checkpoint.pt": "weights"}
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["../escape.py", "/etc/passwd", "a/../../b", "", ".hidden", "a b.py"])
def test_generated_file_names_are_checked(tmp_path, name):
    with pytest.raises(RenderError, match="refusing to write"):
        write_atomically({name: "x"}, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.py").exists()


# ------------------------------------------------------------------------------------------- paths
def test_odd_output_paths_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    cases = {
        "": "non-empty",
        "out/../../elsewhere": "'..'",
        "file.txt": "not a directory",
        "file.txt/out": "is not a directory",
        "link": "symbolic link",
        "bad\nname": "control characters",
        ".": "current directory",
        str(tmp_path.parent): "current directory",
        "/": "root",
    }
    for path, message in cases.items():
        with pytest.raises(UsageError, match=message):
            check_outdir(path, force=True)
    with pytest.raises(UsageError, match="must be a path"):
        check_outdir(42)
    assert check_outdir("fresh") == tmp_path / "fresh"


def test_build_checks_the_output_path_before_compiling(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        build("this is not even parsed", tmp_path / "file.txt")


# ------------------------------------------------------------------------------------------- end to end
needs_pipeline = pytest.mark.skipif(
    any(importlib.util.find_spec(f"pde2gen.{stage}") is None for stage in ("analysis.analyse", "derive.derive")),
    reason="pde2gen.analysis.analyse / pde2gen.derive.derive not written yet",
)


@needs_pipeline
def test_build_refuses_a_pde_that_is_not_s_generative(tmp_path):
    with pytest.raises(BuildRefused) as refusal:
        build("wave", tmp_path / "out")
    assert refusal.value.exit_code == 1 and "not s-generative" in refusal.value.one_line()
    assert "C" in refusal.value.report_text
    assert not (tmp_path / "out").exists()


@needs_pipeline
def test_force_unsafe_goes_on_to_derive_and_still_writes_nothing_it_cannot_derive(tmp_path):
    with pytest.raises(DerivationError, match="no generative module"):
        build("wave", tmp_path / "out", force_unsafe=True)
    assert list(tmp_path.iterdir()) == []


@needs_pipeline
@pytest.mark.parametrize(
    "source, params",
    [
        ("diffusion", {"__import__('os').system('x')": 1}),
        ("diffusion", {"kappa": "1e400"}),
        ("diffusion", {"kappa": "nan"}),
        ('__import__("os").system("echo pwned")', None),
        ('u_t = laplacian(u)"""\nimport os', None),
    ],
)
def test_hostile_input_is_refused_in_one_line_before_anything_is_written(tmp_path, source, params):
    with pytest.raises(Pde2genError) as error:
        build(source, tmp_path / "out", params=params)
    assert "\n" not in error.value.one_line()
    assert list(tmp_path.iterdir()) == []


@needs_pipeline
@pytest.mark.slow
@pytest.mark.parametrize("source, family, params", [("diffusion", "gaussian", None),
                                                     ("kac", "kac_product", {"a": 9, "c": 3})])
def test_end_to_end_build_imports_and_passes_its_generated_tests(tmp_path, source, family, params):
    pytest.importorskip("torch")
    result = build(source, tmp_path / "out", params=params, seed=1)
    assert result.ir.family == family and result.outdir == tmp_path / "out"
    record = json.loads((tmp_path / "out" / "pde2gen.json").read_text())
    assert record["ir_sha256"] == result.ir.hash() and record["options"]["seed"] == 1
    build(source, tmp_path / "again", params=params, seed=1)
    assert tree(tmp_path / "again") == tree(tmp_path / "out")  # deterministic
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-m", "not slow",
         "tests/test_generated_process.py"],
        cwd=tmp_path / "out", capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]

"""A non-editable install works: templates/ and catalog/ ship inside the wheel and are found there."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_templates_and_catalog_and_runs_from_them(tmp_path):
    # Build from a clean copy: a stale build/ directory in the checkout would leak old files into the wheel.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "dist", "runs", "*.egg-info",
                                                                  "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("pde2gen-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "pde2gen/catalog_files/kac.toml" in names
    assert "pde2gen/template_files/process.py.j2" in names
    # every family folder with its declaration, NumPy reference and torch runtime (read by render as text)
    assert {"pde2gen/families/runtime_common.py", "pde2gen/families/kac_product/__init__.py",
            "pde2gen/families/kac_product/runtime.py", "pde2gen/families/stable/runtime.py"} <= set(names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # Run from the unpacked wheel alone (not the checkout): the catalog must load and compose from package data.
    code = ("import pde2gen.resources as r, pde2gen.spec.catalog as c; "
            "assert str(r.resource_dir('catalog')).startswith(r'%s'); "
            "assert str(r.resource_dir('templates')).startswith(r'%s'); "
            "from pde2gen.families import FAMILIES; assert 'kac_product' in FAMILIES, sorted(FAMILIES); "
            "import pde2gen.report.check, pde2gen.cli; "
            "print(sorted(c.load_catalog())[:3], c.compose('wave+damping') is not None)") % (site, site)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "True" in result.stdout

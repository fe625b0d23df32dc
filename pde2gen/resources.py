"""Locate the data directories (templates/, catalog/) both from a source checkout and from an installed wheel."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent
# Installed, the repository's templates/ and catalog/ are the data packages below (see pyproject.toml); their
# names differ from the modules pde2gen/spec/catalog.py and pde2gen/codegen/render.py so that a wheel can hold both.
_PACKAGES = {"templates": "pde2gen.template_files", "catalog": "pde2gen.catalog_files"}


@lru_cache(maxsize=None)
def resource_dir(name: str) -> Path:
    """Directory of the packaged data ``name`` ("templates" or "catalog"): installed package or checkout."""
    if name not in _PACKAGES:
        raise ValueError(f"unknown resource {name!r}")
    try:
        packaged = Path(str(resources.files(_PACKAGES[name])))
        if packaged.is_dir():
            return packaged
    except ModuleNotFoundError:
        pass
    return _REPO_ROOT / name

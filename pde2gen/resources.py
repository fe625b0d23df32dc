"""Locate the data directories (templates/, catalog/) both from a source checkout and from an installed wheel."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=None)
def resource_dir(name: str) -> Path:
    """Directory of the packaged data ``name`` ("templates" or "catalog").

    Installed: the package ``pde2gen.<name>``; from a checkout: the repository's top-level ``<name>/``.
    """
    if name not in ("templates", "catalog"):
        raise ValueError(f"unknown resource {name!r}")
    try:
        packaged = Path(str(resources.files(f"pde2gen.{name}")))
        if packaged.is_dir():
            return packaged
    except (ModuleNotFoundError, TypeError):  # TypeError: pde2gen.catalog is also a module (catalog.py)
        pass
    return _REPO_ROOT / name

"""Fixtures shared by the report tests (test_explain.py, test_plots.py): compiled PDEs, analysed once per session."""
import pytest

from pde2gen.analysis.analyse import analyse
from pde2gen.report.explain import derive_for_report
from pde2gen.spec.parse import parse


def compile_for_report(expr, dim=2, **options):
    """(analysis with repairs, derivation) of ``expr``, as `pde2gen explain` and `pde2gen plot` compute them."""
    analysis = analyse(parse(expr, dim=dim, **options))
    derivation, error = derive_for_report(analysis.spec, analysis)
    assert error is None
    return analysis, derivation


@pytest.fixture(scope="session")
def compiled():
    """compile_for_report, for tests that need another PDE or dimension."""
    return compile_for_report


@pytest.fixture(scope="session")
def diffusion():
    return compile_for_report("diffusion")


@pytest.fixture(scope="session")
def hyperdiffusion():
    return compile_for_report("hyperdiffusion")


@pytest.fixture(scope="session")
def wave():
    return compile_for_report("wave")

"""Fixtures shared by several test files: compiled PDEs analysed once per session (the report tests,
test_explain.py and test_plots.py), and one torch thread for the runtime comparisons."""
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


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the duration of the test, restored after."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

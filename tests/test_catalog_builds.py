"""Every catalog entry the analysis finds s-generative builds into a module that works (issue 4, "What must be shown").

The set of entries is computed by the analysis at collection time, never listed by hand. For each one:
the generated module's own tests pass; one training step and one sampling run in float32 and float64; and
the exact flow (``marginal_velocity``, no network) carries the prior onto three 2-D point masses in the
proportions of their weights.
"""
import importlib.util
import subprocess
import sys
from functools import cache

import pytest

torch = pytest.importorskip("torch")

from pde2gen.analysis.analyse import analyse
from pde2gen.build import build
from pde2gen.codegen.lower import OPTION_DEFAULTS
from pde2gen.spec.catalog import load_catalog
from pde2gen.spec.parse import parse


def s_generative_entries() -> list[str]:
    names = []
    for name, entry in sorted(load_catalog().items()):
        if entry.kind == "equation" and analyse(parse(name, dim=2), repairs=False).s_generative:
            names.append(name)
    return names


ENTRIES = s_generative_entries()
SAMPLE_STEPS = OPTION_DEFAULTS["sample_steps"]  # the sigma grid of the generated sample.py


def test_the_computed_catalog_covers_every_family():
    """Guard on the collection itself: the analysis must find the published models s-generative."""
    assert {"diffusion", "pfgm", "pfgmpp", "yukawa", "fractional", "kac"} <= set(ENTRIES)
    assert not {"wave", "schrodinger", "klein-gordon", "helmholtz", "hyperdiffusion"} & set(ENTRIES)


def import_built(out: str, prefix: str):
    """(out, process module, model module) of a built module folder, imported under names starting with prefix."""
    modules = {}
    sys.path.insert(0, out)
    try:
        for module in ("process", "model"):
            spec = importlib.util.spec_from_file_location(f"{prefix}_{module}", f"{out}/{module}.py")
            modules[module] = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = modules[module]
            spec.loader.exec_module(modules[module])
    finally:
        sys.path.remove(out)
    return out, modules["process"], modules["model"]


@cache
def built(name: str, root: str):
    out = f"{root}/{name}"
    build(name, out, dim=2)
    return import_built(out, name.replace("-", "_"))


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("catalog_builds"))


@pytest.mark.parametrize("name", ENTRIES)
def test_generated_tests_pass(name, build_root):
    out, _, _ = built(name, build_root)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-m", "not slow",
         "tests/test_generated_process.py"],
        cwd=out, capture_output=True, text=True, timeout=900, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-1500:]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ENTRIES)
def test_one_training_step_and_one_sampling_run(name, dtype, build_root):
    _, process_module, model_module = built(name, build_root)
    torch.manual_seed(0)
    process = process_module.Process().to(dtype)
    backbone = model_module.build_backbone(model_module.default_backbone_config(process.shape))
    network = model_module.VelocityModel(process, backbone, sigma_data=1.0).to(dtype)
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-3)
    data = torch.randn(64, *process.shape, dtype=dtype)
    generator = torch.Generator().manual_seed(1)
    before = [p.detach().clone() for p in network.parameters()]
    loss = model_module.flow_matching_loss(network, process, data, generator=generator)
    assert torch.isfinite(loss)
    loss.backward()
    optimiser.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, network.parameters()))
    x = process.sample_prior(16, generator=generator).to(dtype)
    with torch.no_grad():
        samples = process_module.sample_heun(process.sigma_velocity(network.velocity), x, process.sigma_grid(6))
    assert samples.shape == (16, *process.shape) and samples.dtype == dtype
    assert torch.isfinite(samples).all()


@pytest.mark.parametrize("name", ENTRIES)
def test_exact_flow_lands_on_point_masses_in_proportion(name, build_root):
    _, process_module, _ = built(name, build_root)
    process = process_module.Process().to(torch.float64)
    points = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.5, -2.5]], dtype=torch.float64)
    data = points[torch.tensor([0, 0, 1, 2])]  # weights 1/2, 1/4, 1/4
    n = 48  # the stable family's log-kernel is a quadrature: keep the flow small
    generator = torch.Generator().manual_seed(3)
    x = process.sample_prior(n, generator=generator).to(torch.float64)
    with torch.no_grad():
        exact = process.sigma_velocity(lambda x, t: process.marginal_velocity(x, t, data))
        landed = process_module.sample_heun(exact, x, process.sigma_grid(SAMPLE_STEPS))
    distance = torch.cdist(landed, points)
    nearest = distance.argmin(dim=1)
    # Within 0.1 of a data point (their spacing is > 3), in the right proportions (binomial 3.5-sigma bands).
    assert float((distance.min(dim=1).values < 0.1).double().mean()) > 0.97
    fractions = torch.bincount(nearest, minlength=3).double() / n
    for fraction, weight in zip(fractions.tolist(), (0.5, 0.25, 0.25)):
        assert abs(fraction - weight) < 3.5 * (weight * (1 - weight) / n) ** 0.5, fractions.tolist()

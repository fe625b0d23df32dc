"""Probability paths (issue 10): ``pde2gen build EXPR --path ve|linear``.

The linear path x_t = (1 - t/T) y + K_g(t) is built once per session for Kac (the paper's g(t) = t and the
quadratic clock), the heat kernel (flow matching) and PFGM++ (Student-t); each build's own generated tests
check, by number, the law of x_t - (1 - t/T) y (KS with the DKW bound, atoms included), the prior (in
[-c, c]^N for Kac), the exact marginal flow landing on point masses in their proportions, and the velocity
bound. Here: the defaults, a training step and a sampling run of the linear network, the ve path unchanged,
and bad path options refused in one line.
"""
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_catalog_builds import import_built

from pde2gen.build import build
from pde2gen.cli import main
from pde2gen.codegen.lower import LINEAR_OPTION_DEFAULTS, resolve_path
from pde2gen.errors import UsageError
from pde2gen.pipeline import compile_pde

LINEAR_BUILDS = {  # name -> (catalog entry, build keyword arguments)
    "kac": ("kac", {}),
    "kac_quadratic": ("kac", {"path_schedule": "quadratic"}),
    "diffusion": ("diffusion", {}),
    "pfgmpp": ("pfgmpp", {}),
}


@pytest.fixture(scope="session")
def linear_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("linear_paths"))


@cache
def linear_build(name: str, root: str):
    """(out dir, process module, model module) of a linear-path build, built once per session."""
    entry, options = LINEAR_BUILDS[name]
    out = f"{root}/{name}"
    build(entry, out, dim=2, path="linear", **options)
    return import_built(out, f"linear_{name}")


@pytest.mark.parametrize("name, selection", [
    ("kac", "linear_path or configuration or finite or bad_arguments"),
    ("kac_quadratic", "law_of or bound or grids"),
    ("diffusion", "linear_path"),
    ("pfgmpp", "linear_path"),
])
def test_generated_linear_path_tests_pass(name, selection, linear_root):
    out, _, _ = linear_build(name, linear_root)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-k", selection,
         "tests/test_generated_process.py"],
        cwd=out, capture_output=True, text=True, timeout=900, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-1500:]  # 5: none selected


def test_kac_linear_defaults_are_the_papers(linear_root):
    out, process_module, _ = linear_build("kac", linear_root)
    record = json.loads(Path(out, "pde2gen.json").read_text())
    assert record["path"] == {"path": "linear", "schedule": "identity", "horizon": 1.0, "sigma_end": "sigma_data"}
    assert record["time"]["t_max"] == 1.0 and record["options"]["solver"] == "euler"
    process = process_module.Process().double()
    assert process.t_max == 1.0 and process.schedule == "identity"
    assert process.family_parameters == {"a": 9.0, "c": 3.0}
    t = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(process.kernel_time(t), t)
    prior = process.sample_prior(4000, generator=torch.Generator().manual_seed(0))
    assert float(prior.abs().max()) <= 3.0
    assert float(prior.abs().max()) > 2.9  # the atoms at +-c g(T) = +-3 carry mass e^-9 / 2 each: the a.c. part
    torch.testing.assert_close(process.time_grid(101), torch.linspace(1.0, 0.0, 101, dtype=torch.float64))
    assert dict(LINEAR_OPTION_DEFAULTS) == {"sample_steps": 101, "solver": "euler"}


def test_quadratic_clock_and_scale_linear_clock(linear_root):
    _, quadratic, _ = linear_build("kac_quadratic", linear_root)
    _, heat, _ = linear_build("diffusion", linear_root)
    t = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    torch.testing.assert_close(quadratic.Process().kernel_time(t), t.square())
    process = heat.Process(sigma_end=2.5)
    # the kernel's scale is linear in t: sigma_K(g(t)) = (t/T) sigma_T
    torch.testing.assert_close(process.family.sigma(process.kernel_time(t)), 2.5 * t)
    assert heat.SIGMA_END_FROM_DATA


@pytest.mark.parametrize("name", ["kac", "diffusion"])
def test_linear_network_trains_one_step_and_samples(name, linear_root):
    _, process_module, model_module = linear_build(name, linear_root)
    torch.manual_seed(0)
    data = torch.randn(256, 2) * torch.tensor([2.0, 1.0])
    process = process_module.Process(**({} if name == "kac" else {"sigma_end": 1.6}))
    backbone = model_module.build_backbone(model_module.default_backbone_config((2,)))
    model = model_module.LinearPathVelocityModel(process, backbone, sigma_data=1.6)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = model_module.linear_path_loss(model, process, data, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    loss.backward()
    optimizer.step()
    x = process.sample_prior(64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        samples = process_module.sample_euler(model.velocity, x, process.time_grid(11))
    assert samples.shape == (64, 2) and torch.isfinite(samples).all()


def test_ve_path_is_the_default_and_unchanged():
    default = compile_pde("diffusion", until="render")
    explicit = compile_pde("diffusion", until="render", path={"path": "ve"})
    assert default.ir.hash() == explicit.ir.hash()
    assert default.files == explicit.files
    assert default.ir.t_max == default.derivation.t_max  # the derivation's window, not the linear path's T
    linear = compile_pde("diffusion", until="lower", path={"path": "linear"})
    assert linear.ir.t_max == 1.0 and linear.ir.hash() != default.ir.hash()


@pytest.mark.parametrize("arguments", [
    {"path": "vp"},
    {"path": "ve", "schedule": "quadratic"},
    {"path": "linear", "schedule": "cubic"},
    {"path": "linear", "horizon": -1.0},
    {"path": "linear", "sigma_end": float("nan")},
    {"path": "linear", "schedule": "identity", "sigma_end": 1.0},
])
def test_bad_path_options_are_usage_errors(arguments):
    with pytest.raises(UsageError):
        resolve_path("gaussian", **arguments)


def test_cli_refuses_bad_path_options_in_one_line(tmp_path, capsys):
    code = main(["build", "diffusion", "-o", str(tmp_path / "m"), "--path", "ve", "--path-scale", "2"])
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) <= 2
    assert main(["build", "kac", "-o", str(tmp_path / "k"), "--path", "linear", "--path-schedule", "quadratic"]) == 0

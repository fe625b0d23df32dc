"""The generated model.py / train.py / sample.py (templates/*.py.j2), on a module rendered by pde2gen.codegen.render.

The module is the heat kernel (family gaussian, kappa = 1) for 2-D samples, rendered into a temporary
directory together with its process.py. The scripts run as a user runs them (subprocesses, a fresh
interpreter, the module directory as working code); fast checks import them in-process.
"""
import ast
import contextlib
import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pde2gen.codegen.lower import FAMILY_CLASSES, ModuleIR
from pde2gen.codegen.render import render

torch = pytest.importorskip("torch")

GENERATED_NAMES = ("process", "model", "images", "train", "sample")
# One thread per script: on a busy 2-core runner, OpenMP pools spinning against each other made a toy
# training run ~30 times slower (measured: ~1.2 against ~34 steps per second).
SCRIPT_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# Family parameters for the per-family check (names from pde2gen.families).
FAMILY_PARAMETERS = {
    "gaussian": {"kappa": 1.0},
    "cauchy": {"c": 1.0},
    "student_t": {"c": 1.0, "D": 4.0},
    "nig": {"c": 1.0, "m": 1.0},
    "stable": {"kappa": 1.0, "alpha": 1.5},
    "kac_product": {"a": 9.0, "c": 3.0},
}


def module_ir(family="gaussian", shape=(2,)) -> ModuleIR:
    """A ModuleIR as lower() makes it; the defaults are the heat equation (t = sigma^2 / 2)."""
    dim = math.prod(shape)
    return ModuleIR(
        pde2gen_version="test", spec_hash="0" * 64, source="diff(u, t) = laplacian(u)", pde="u_t - lap u = 0",
        catalog=("diffusion",), notes=(), pde_parameters=(), dimension_text=f"N = {dim} (isotropic construction)",
        dispersion="lambda + s = 0", problem_type="evolution", verdicts=(), s_generative=True,
        family=family, family_class=FAMILY_CLASSES[family], parameters=tuple(FAMILY_PARAMETERS[family].items()),
        construction="isotropic", dim=dim, shape=tuple(shape), t_min=0.002**2 / 2, t_max=80.0**2 / 2,
        sigma_min=0.002, sigma_max=80.0, rho=7.0, formulas={"sigma": "sqrt(2 kappa t)"}, birth_death="none",
        checks=(), options={"sample_steps": 12, "solver": "heun", "seed": 0},
    )


def write_module(ir: ModuleIR, directory: Path) -> Path:
    for name, text in render(ir).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


@contextlib.contextmanager
def generated_modules(directory: Path):
    """The generated modules of ``directory`` imported in-process; sys.modules and sys.path restored after."""
    saved = {name: sys.modules.pop(name) for name in GENERATED_NAMES if name in sys.modules}
    sys.path.insert(0, str(directory))
    importlib.invalidate_caches()
    try:
        yield SimpleNamespace(**{name: importlib.import_module(name) for name in GENERATED_NAMES})
    finally:
        sys.path.remove(str(directory))
        for name in GENERATED_NAMES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """In-process work here is small: one thread, for the reason of SCRIPT_ENV."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory) -> Path:
    return write_module(module_ir(), tmp_path_factory.mktemp("heat_module"))


@pytest.fixture
def generated(module_dir):
    with generated_modules(module_dir) as modules:
        yield modules


def run_script(module_dir, script, *arguments, cwd, expect=0, launcher=()):
    """Run a generated script; ``expect`` is its exit code, or None for any failure (torchrun says 1)."""
    completed = subprocess.run(
        [sys.executable, *launcher, str(module_dir / script), *map(str, arguments)],
        cwd=cwd, env=SCRIPT_ENV, capture_output=True, text=True, timeout=300, check=False,
    )
    failed_as_expected = expect is None and completed.returncode != 0
    assert failed_as_expected or completed.returncode == expect, completed.stderr[-3000:]
    return completed


def train(module_dir, run_dir, *extra, cwd, expect=0, launcher=()):
    base = ("--out", run_dir, "--batch", 32, "--device", "cpu", "--warmup", 0, "--lr", 1e-2)
    return run_script(module_dir, "train.py", *base, *extra, cwd=cwd, expect=expect, launcher=launcher)


def load_checkpoint(run_dir):
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)


# Fields of a loss-log record that measure the machine (throughput, memory), not the optimisation.
MEASURED_FIELDS = ("samples_per_second", "gpu_peak_mib")


def loss_log(run_dir):
    """The loss-log records without their MEASURED_FIELDS (which differ between identical runs)."""
    records = [json.loads(line) for line in (run_dir / "loss.jsonl").read_text().splitlines()]
    return [{k: v for k, v in record.items() if k not in MEASURED_FIELDS} for record in records]


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# ------------------------------------------------------------------------------ the network (in-process)


def test_network_sees_normalised_input_and_returns_velocity_per_noise_level(generated):
    torch.manual_seed(0)
    process = generated.process.Process(shape=(2,))
    process.data_mean = torch.tensor([0.5, -1.0])
    config = generated.model.default_backbone_config((2,))
    model = generated.model.VelocityModel(process, generated.model.build_backbone(config), sigma_data=1.5)
    torch.nn.init.normal_(model.backbone.out.weight)  # the zero-initialised output layer would hide errors
    x = torch.randn(5, 2)
    t = torch.tensor([1e-4, 0.01, 1.0, 30.0, 3000.0])
    sigma = torch.sqrt(2 * t)
    scale = torch.sqrt(sigma**2 + 1.5**2)[:, None]
    x_in = (x - process.data_mean) / scale
    expected_f = (sigma[:, None] * x_in - 1.5 * model.backbone(x_in, sigma.log())) / scale
    assert torch.allclose(model(x, t), expected_f, atol=1e-6)
    assert torch.allclose(model.velocity(x, t), expected_f / sigma[:, None])  # dsigma/dt = 1 / sigma
    # With the backbone silent, F is the exact dx/dsigma of Gaussian data N(data_mean, 1.5^2 I).
    torch.nn.init.zeros_(model.backbone.out.weight)
    torch.nn.init.zeros_(model.backbone.out.bias)
    denoised = process.data_mean + 1.5**2 / scale**2 * (x - process.data_mean)
    assert torch.allclose(model(x, t), (x - denoised) / sigma[:, None], atol=1e-5)
    # A scalar time is the same time for every sample (what the solvers may pass).
    assert torch.allclose(model.velocity(x, torch.tensor(1.0)), model.velocity(x, torch.ones(5)))


def test_loss_regresses_the_noise_for_the_heat_kernel(generated):
    """For the heat kernel u / dsigma_dt = (x - y) / sigma = eps, so the loss is mean ||F - eps||^2."""
    process = generated.process.Process(shape=(3,))
    y = torch.randn(64, 3)
    seed = 7
    outputs = {}

    def recording_network(x, t, target, loss_weight):  # a network predicting F = 0, with unit weight
        outputs["x"], outputs["t"], outputs["target"] = x, t, target
        return target.square()

    loss = generated.model.flow_matching_loss(recording_network, process, y, torch.Generator().manual_seed(seed))
    eps = (outputs["x"] - y) / torch.sqrt(2 * outputs["t"])[:, None]
    assert torch.allclose(outputs["target"], eps, rtol=1e-5, atol=1e-6)
    assert torch.allclose(loss, eps.square().mean())
    # The same draws as the process's own sampling with the same generator state.
    generator = torch.Generator().manual_seed(seed)
    t = process.sample_train_time(64, generator=generator)
    x, _ = process.sample_location_and_conditional_flow(y, t, generator=generator)
    assert torch.equal(outputs["t"], t) and torch.equal(outputs["x"], x)
    assert 0.6 < loss.item() < 1.5  # E eps^2 = 1


@pytest.mark.parametrize("family", sorted(FAMILY_PARAMETERS))
def test_every_family_trains_and_samples_with_the_same_network(family, tmp_path):
    with generated_modules(write_module(module_ir(family), tmp_path)) as modules:
        t_of_sigma = modules.process.Process().t_of_sigma
        t_min, t_max = (float(t_of_sigma(torch.tensor(s, dtype=torch.float64))) for s in (0.002, 80.0))
        process = modules.process.Process(shape=(16,), t_min=t_min, t_max=t_max)

        # The premise of the parameterisation: u / dsigma_dt has unit scale at every noise level.
        generator = torch.Generator().manual_seed(0)
        scales = []
        for sigma in (0.01, 0.3, 3.0, 60.0):
            t = t_of_sigma(torch.full((2000,), sigma, dtype=torch.float64)).float()
            _, u = process.sample_location_and_conditional_flow(torch.zeros(2000, 16), t, generator=generator)
            target = u / process.dsigma_dt(t)[:, None]
            scales.append(target.square().mean(dim=1).sqrt().median().item())
        assert 0.4 < min(scales) and max(scales) < 2.5 and max(scales) / min(scales) < 2, scales

        samples = np.random.default_rng(0).normal(size=(512, 16)) + np.repeat([[-2.0], [2.0]], 256, axis=0)
        stats = modules.train.data_statistics(samples)
        data = torch.from_numpy(samples).float()
        process.data_mean = stats["mean"].float()
        torch.manual_seed(0)
        backbone = modules.model.build_backbone(modules.model.default_backbone_config((16,)))
        model = modules.model.VelocityModel(process, backbone, stats["sigma_data"])
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for step in range(10):
            loss = modules.model.flow_matching_loss(model, process, data[step::10], generator=generator)
            optimizer.zero_grad()
            loss.backward()
            assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
            optimizer.step()
        x = process.sample_prior(64, generator=generator)
        drawn = process.sample_heun(model.velocity, x, process.time_grid(6).float())
        assert drawn.shape == (64, 16) and torch.isfinite(drawn).all()


@pytest.mark.parametrize(
    ("shape", "kind"), [((2,), "mlp"), ((3, 4), "mlp"), ((1, 8, 8), "unet"), ((3, 12, 10), "unet"), ((1, 7, 7), "unet")]
)
def test_backbone_per_shape_keeps_the_sample_shape(generated, shape, kind):
    config = generated.model.default_backbone_config(shape)
    assert config["kind"] == kind
    config = json.loads(json.dumps(config))  # as it comes back from a checkpoint
    config["channels" if kind == "unet" else "width"] = 16  # the same layout in less time
    network = generated.model.build_backbone(config)
    for layer in network.modules():  # non-zero output so that a wrong reshape would show
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.normal_(layer.weight, std=0.1)
    x = torch.randn(3, *shape)
    out = network(x, torch.tensor([-3.0, 0.0, 2.0]))
    assert out.shape == x.shape and torch.isfinite(out).all()
    # Samples do not mix: changing one sample changes only its own output.
    x2 = x.clone()
    x2[0] += 1.0
    out2 = network(x2, torch.tensor([-3.0, 0.0, 2.0]))
    assert not torch.allclose(out2[0], out[0]) and torch.allclose(out2[1:], out[1:], atol=1e-6)


# ------------------------------------------------------------------------------------- data (in-process)


@pytest.mark.parametrize("name", ["moons", "8gaussians", "checkerboard", "swissroll"])
def test_toy_data_are_seeded_two_dimensional_and_within_scale(generated, name):
    first = generated.train.load_data(name, seed=3, n_toy=4000)
    assert first.shape == (4000, 2) and first.dtype == np.float64
    assert np.array_equal(first, generated.train.load_data(name, seed=3, n_toy=4000))
    assert not np.array_equal(first, generated.train.load_data(name, seed=4, n_toy=4000))
    assert np.abs(first).max() < 4.6 and 1.0 < first.std() < 3.0


def test_digits_are_images_in_minus_one_to_one(generated, monkeypatch):
    pytest.importorskip("sklearn")
    digits = generated.train.load_data("digits", seed=0)
    assert digits.shape == (1797, 1, 8, 8)
    assert digits.min() == -1.0 and digits.max() == 1.0
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # as if scikit-learn were not installed
    with pytest.raises(generated.train.UsageError, match="needs scikit-learn"):
        generated.train.load_data("digits", seed=0)


def imported_roots(nodes) -> set[str]:
    roots = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add(node.module.split(".")[0])
    return roots


def test_scripts_import_only_torch_numpy_and_the_standard_library_at_top_level(module_dir):
    """The module runs without pde2gen; matplotlib, scikit-learn, tqdm and Pillow are imported only where used."""
    allowed = sys.stdlib_module_names | {"numpy", "torch", *GENERATED_NAMES}
    for script in ("model.py", "images.py", "train.py", "sample.py"):
        tree = ast.parse((module_dir / script).read_text())
        top_level = imported_roots(tree.body)
        assert top_level <= allowed, (script, top_level - allowed)
        assert imported_roots(ast.walk(tree)) - allowed <= {"matplotlib", "sklearn", "tqdm", "PIL"}, script


def test_data_files_and_their_errors(generated, tmp_path):
    load, usage_error = generated.train.load_data, generated.train.UsageError
    samples = np.random.default_rng(0).normal(size=(10, 3))
    np.save(tmp_path / "a.npy", samples)
    torch.save(torch.from_numpy(samples).float(), tmp_path / "a.pt")
    np.save(tmp_path / "line.npy", np.arange(5.0))
    assert np.array_equal(load(str(tmp_path / "a.npy"), 0), samples)
    assert np.allclose(load(str(tmp_path / "a.pt"), 0), samples, atol=1e-6)
    assert load(str(tmp_path / "line.npy"), 0).shape == (5, 1)  # a 1-D array is N scalar samples

    np.save(tmp_path / "nan.npy", np.array([[0.0], [np.nan]]))
    np.save(tmp_path / "one.npy", np.zeros((1, 2)))
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    torch.save({"x": torch.zeros(3)}, tmp_path / "dict.pt")
    with open(tmp_path / "huge.npy", "wb") as handle:  # a header claiming 1e11 rows over 160 bytes of data
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 2)})
        handle.write(np.zeros((10, 2)).tobytes())
    np.save(tmp_path / "empty.npy", np.zeros((500, 0)))
    torch.save(torch.eye(3).to_sparse(), tmp_path / "sparse.pt")
    torch.save(torch.empty(5, 2, device="meta"), tmp_path / "meta.pt")
    torch.save(torch.ones(4, 2, dtype=torch.complex64), tmp_path / "complex.pt")
    bad = {
        "missing.npy": "not found",
        "nan.npy": "NaN",
        "one.npy": "at least 2 samples",
        "text.npy": "numeric",
        "junk.npy": "cannot read",
        "dict.pt": "single tensor",
        "data.csv": "expected one of",
        "huge.npy": r"claims shape \(100000000000, 2\) .* holds 160 bytes",
        "empty.npy": r"each sample is empty \(shape \(500, 0\)\)",
        "sparse.pt": "sparse_coo tensor",
        "meta.pt": "meta tensor",
        "complex.pt": "complex samples",  # refused, not cast with the imaginary part dropped
    }
    for name, message in bad.items():
        with pytest.raises(usage_error, match=message):
            load(str(tmp_path / name), 0)
    with pytest.raises(usage_error, match="zero variance"):
        generated.train.data_statistics(np.ones((4, 2)))


def test_projection_puts_samples_on_the_typical_radius(generated):
    process = generated.process.Process(shape=(50,)).double()
    sigmas = process.sigma_grid(6)
    x = process.sample_prior(8, generator=torch.Generator().manual_seed(0)).double()
    radius = math.sqrt(50 * (sigmas[-1].item() ** 2 + 0.25))
    for variable in ("sigma", "t"):
        projected = generated.sample.integrate(process, lambda x, t: torch.zeros_like(x), x, sigmas, variable,
                                               "euler", sigma_data=0.5, project=True)
        assert torch.allclose(projected.norm(dim=1), torch.full((8,), radius, dtype=torch.float64))
        untouched = generated.sample.integrate(process, lambda x, t: torch.zeros_like(x), x, sigmas, variable,
                                               "euler", sigma_data=0.5, project=False)
        assert torch.equal(untouched, x)


# ------------------------------------------------------------------------------- scripts (subprocesses)


def test_train_then_sample_from_the_ema_weights(module_dir, tmp_path, generated):
    run_dir = tmp_path / "run"
    done = train(module_dir, run_dir, "--data", "moons", "--steps", 6, "--ckpt-every", 3, "--log-every", 2,
                 cwd=tmp_path)
    assert "step 4/6  loss" in done.stderr  # not a terminal: plain progress lines, not a tqdm bar
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint["step"] == 6 and checkpoint["world_size"] == 1
    assert checkpoint["process_config"]["family"] == "gaussian" and checkpoint["process_config"]["shape"] == [2]
    assert checkpoint["args"]["data"] == "moons" and checkpoint["backbone_config"]["kind"] == "mlp"
    assert [record["step"] for record in loss_log(run_dir)] == [2, 4, 6]
    assert all(math.isfinite(record["loss"]) for record in loss_log(run_dir))
    assert not list(run_dir.glob("*.tmp"))
    if importlib.util.find_spec("matplotlib") is not None:
        assert f"wrote {run_dir / 'loss.png'}" in done.stderr and (run_dir / "loss.png").stat().st_size > 0

    out = tmp_path / "samples" / "net.npy"
    run_script(module_dir, "sample.py", "--ckpt", run_dir, "--n", 50, "--steps", 8, "--solver", "euler",
               "--seed", 3, "--device", "cpu", "--out", out, cwd=tmp_path)
    in_time = tmp_path / "samples" / "net_t.npy"
    run_script(module_dir, "sample.py", "--ckpt", run_dir, "--n", 50, "--steps", 8, "--solver", "euler",
               "--seed", 3, "--device", "cpu", "--variable", "t", "--out", in_time, cwd=tmp_path)
    samples = np.load(out)
    assert samples.shape == (50, 2) and samples.dtype == np.float32 and np.isfinite(samples).all()
    if importlib.util.find_spec("matplotlib") is not None:
        assert out.with_suffix(".png").stat().st_size > 0

    # The same draws in-process, with the EMA weights and then with the raw weights.
    stats = checkpoint["data_stats"]

    def draw(weights, variable="sigma"):
        process = generated.process.Process.from_config(checkpoint["process_config"])
        backbone = generated.model.build_backbone(checkpoint["backbone_config"])
        model = generated.model.VelocityModel(process, backbone, stats["sigma_data"])
        model.load_state_dict(checkpoint[weights])
        x = process.sample_prior(50, generator=torch.Generator().manual_seed(3))
        if variable == "t":
            return process.sample_euler(model.velocity, x, process.time_grid(8)).numpy()
        return process.sample_euler(process.sigma_velocity(model.velocity), x, process.sigma_grid(8)).numpy()

    assert np.allclose(samples, draw("ema"), atol=1e-4)
    assert not np.allclose(samples, draw("model"), atol=1e-2)
    # --variable t: the same ODE in the PDE time, a different discretisation of it
    assert np.allclose(np.load(in_time), draw("ema", "t"), atol=1e-4)
    assert not np.allclose(np.load(in_time), samples, atol=1e-3)


def test_without_matplotlib_training_says_there_is_no_loss_plot(generated, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    argv = ["--out", str(tmp_path / "run"), "--data", "moons", "--n-toy", "64", "--steps", "2", "--batch", "8",
            "--device", "cpu", "--threads", "1"]
    assert generated.train.main(argv) == 0
    assert "no loss plot: matplotlib is not installed" in capsys.readouterr().err
    assert (tmp_path / "run" / "loss.jsonl").is_file() and not (tmp_path / "run" / "loss.png").exists()


def test_exact_sampler_lands_on_point_masses_in_proportion(generated, tmp_path, capsys):
    points = np.array([[-2.0, 0.0], [-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # weights 1/2, 1/4, 1/4
    np.save(tmp_path / "points.npy", points)
    out = tmp_path / "exact.npy"
    argv = ["--exact", str(tmp_path / "points.npy"), "--n", "400", "--batch", "200", "--steps", "40",
            "--device", "cpu", "--out", str(out)]
    assert generated.sample.main(argv) == 0  # in-process: the scripts' subprocess runs are tested above
    # progress after each batch: heun makes 2 x 39 network evaluations per batch
    assert "sample: 50% after" in capsys.readouterr().err.split("(batch 1/2)")[0]
    samples = np.load(out)
    distance = np.linalg.norm(samples[:, None] - points[None, [0, 2, 3]], axis=2)
    assert samples.dtype == np.float64 and distance.min(axis=1).max() < 0.05
    shares = np.bincount(distance.argmin(axis=1), minlength=3) / len(samples)
    assert np.allclose(shares, [0.5, 0.25, 0.25], atol=0.1)  # 4 binomial standard deviations


def tensors(tree, prefix=""):
    """{path: tensor} of every tensor in a nested dict / list (a checkpoint)."""
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list | tuple) else ()
    return {path: t for key, value in items for path, t in tensors(value, f"{prefix}/{key}").items()}


@pytest.mark.slow
def test_resumed_run_equals_the_uninterrupted_one(module_dir, tmp_path, generated, capsys):
    """In float64, where rounding through float32 on resume would show: every tensor of the checkpoint
    (weights, EMA, optimizer state, data_mean, data statistics, random states) equals the uninterrupted run's."""
    arguments = ("--data", "8gaussians", "--steps", 8, "--ckpt-every", 3, "--log-every", 1, "--seed", 5,
                 "--dtype", "float64")
    train(module_dir, tmp_path / "whole", *arguments, cwd=tmp_path)

    interrupted = tmp_path / "interrupted"
    train(module_dir, interrupted, *arguments, "--stop-after", 5, cwd=tmp_path)  # dies after step 5
    assert load_checkpoint(interrupted)["step"] == 3 and len(loss_log(interrupted)) == 5
    with open(interrupted / "loss.jsonl", "a") as log:  # killed while writing the line of step 6
        log.write('{"step": 6, "lo')
    # Without --resume the checkpoint is not overwritten; a resumed run keeps its settings.
    argv = ["--out", str(interrupted), "--batch", "32", "--device", "cpu", "--warmup", "0", "--lr", "1e-2",
            *map(str, arguments)]
    assert generated.train.main(argv) == 2
    assert "--resume" in one_error_line(capsys.readouterr().err)
    assert generated.train.main([*argv, "--resume", "--seed", "6"]) == 2
    assert "--seed" in one_error_line(capsys.readouterr().err)
    assert load_checkpoint(interrupted)["step"] == 3
    resumed_run = train(module_dir, interrupted, *arguments, "--resume", cwd=tmp_path)
    assert "dropped 1 unreadable line" in resumed_run.stderr

    whole, resumed = load_checkpoint(tmp_path / "whole"), load_checkpoint(interrupted)
    assert resumed["step"] == whole["step"] == 8
    assert loss_log(interrupted) == loss_log(tmp_path / "whole")  # steps 4, 5 redone, not duplicated
    whole_tensors, resumed_tensors = tensors(whole), tensors(resumed)
    assert whole_tensors.keys() == resumed_tensors.keys() and "/model/process.data_mean" in whole_tensors
    assert whole["model"]["process.data_mean"].dtype == torch.float64
    for name, tensor in whole_tensors.items():
        assert torch.equal(tensor, resumed_tensors[name]), name


def test_resume_after_a_kill_during_the_first_checkpoint_says_so(generated, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt.tmp").write_bytes(b"PK\x03\x04 cut short")  # no checkpoint.pt yet
    argv = ["--out", str(run_dir), "--data", "moons", "--resume", "--device", "cpu"]
    assert generated.train.main(argv) == 2
    assert "holds only checkpoint.pt.tmp" in one_error_line(capsys.readouterr().err)


def test_float64_training_and_sampling(module_dir, tmp_path, generated):
    run_dir = tmp_path / "run64"
    train(module_dir, run_dir, "--data", "swissroll", "--steps", 3, "--dtype", "float64", cwd=tmp_path)
    checkpoint = load_checkpoint(run_dir)
    assert all(t.dtype == torch.float64 for t in checkpoint["ema"].values() if t.is_floating_point())
    out = tmp_path / "s64.npy"
    argv = ["--ckpt", str(run_dir / "checkpoint.pt"), "--n", "20", "--steps", "4", "--solver", "rk4",
            "--device", "cpu", "--out", str(out)]
    assert generated.sample.main(argv) == 0
    samples = np.load(out)
    assert samples.dtype == np.float64 and samples.shape == (20, 2) and np.isfinite(samples).all()


@pytest.mark.slow
def test_torchrun_two_processes_share_the_global_batch(module_dir, tmp_path, generated):
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    run_dir = tmp_path / "ddp"
    train(module_dir, run_dir, "--data", "checkerboard", "--steps", 4, "--ckpt-every", 2, "--log-every", 2,
          "--n-toy", 1000, cwd=tmp_path, launcher=launcher)
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint["step"] == 4 and checkpoint["world_size"] == 2 and len(checkpoint["rng"]) == 2
    assert not torch.equal(checkpoint["rng"][0]["process"], checkpoint["rng"][1]["process"])  # own streams
    # Each rank drew 4 batches of 32 / 2 = 16 data indices: replay its index stream and compare states.
    for rank in (0, 1):
        replay = torch.Generator().manual_seed(generated.train.rank_seeds(0, rank)[0])
        for _ in range(4):
            torch.randint(1000, (16,), generator=replay)
        assert torch.equal(replay.get_state(), checkpoint["rng"][rank]["data"])
    assert [record["step"] for record in loss_log(run_dir)] == [2, 4]  # written once, by rank 0
    odd = train(module_dir, tmp_path / "odd", "--data", "checkerboard", "--steps", 2, "--batch", 33,
                cwd=tmp_path, expect=None, launcher=launcher)
    assert "error: --batch 33 is not divisible by the 2 processes" in odd.stderr
    assert 'train.py", line' not in odd.stderr  # torchrun reports the failed worker; the worker: one line


def test_bad_input_is_one_line_and_a_nonzero_exit(module_dir, tmp_path, generated, capsys):
    missing = train(module_dir, tmp_path / "run", "--data", tmp_path / "nope.npy", "--steps", 2, cwd=tmp_path,
                    expect=2)
    assert "nope.npy" in one_error_line(missing.stderr) and not (tmp_path / "run").exists()

    def error_of(main, argv):
        assert main(argv) == 2
        return one_error_line(capsys.readouterr().err)

    train_main, sample_main = generated.train.main, generated.sample.main
    assert "--data is required" in error_of(train_main, ["--out", str(tmp_path / "r")])
    assert "expected one of" in error_of(train_main, ["--out", str(tmp_path / "r"), "--data", "mnist"])
    assert "--steps must be positive" in error_of(train_main, ["--out", "r", "--data", "moons", "--steps", "0"])
    assert "not found" in error_of(sample_main, ["--ckpt", str(tmp_path / "none")])
    assert ".npy" in error_of(sample_main, ["--exact", "moons", "--out", str(tmp_path / "s.png")])
    assert "at least 2" in error_of(sample_main, ["--exact", "moons", "--steps", "1"])
    (tmp_path / "broken.pt").write_bytes(b"\x00" * 10)
    assert "cannot read checkpoint" in error_of(sample_main, ["--ckpt", str(tmp_path / "broken.pt")])
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    assert "not a checkpoint" in error_of(sample_main, ["--ckpt", str(tmp_path / "tensor.pt")])
    torch.save({"step": 3, "ema": {}}, tmp_path / "foreign.pt")
    assert "does not fit this module" in error_of(sample_main, ["--ckpt", str(tmp_path / "foreign.pt")])

    # Outputs that cannot be written and devices without values are refused before any work.
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    for out in (a_file, a_file / "run"):
        assert "a_file is not a directory" in error_of(train_main, ["--out", str(out), "--data", "moons"])
    assert "expected cpu, cuda" in error_of(train_main, ["--out", "r", "--data", "moons", "--device", "meta"])
    checkpoint = ["--ckpt", str(tmp_path / "foreign.pt")]
    (tmp_path / "dir.npy").mkdir()
    assert "is a directory" in error_of(sample_main, [*checkpoint, "--out", str(tmp_path / "dir.npy")])
    assert "a_file is not a directory" in error_of(sample_main, [*checkpoint, "--out", str(a_file / "s.npy")])
    assert "expected cpu, cuda" in error_of(sample_main, [*checkpoint, "--device", "meta"])
    assert "--threads must be positive" in error_of(sample_main, [*checkpoint, "--threads", "0"])


def test_scripts_help_shows_defaults_and_examples(generated, capsys):
    for script, example, default in ((generated.train, "python train.py --data moons", "(default: 512)"),
                                     (generated.sample, "python sample.py --ckpt runs/moons", "(default: 1000)")):
        with pytest.raises(SystemExit):
            script.parse_args(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "examples: " + example in text and default in text and "(default: None)" not in text


def test_threads_default_to_omp_num_threads_and_are_set(generated, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert generated.train.parse_args(["--out", "r"]).threads == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert generated.sample.parse_args(["--exact", "moons"]).threads == min(4, os.cpu_count())
    # set before the work (the data file is missing: the run stops right after)
    assert generated.train.main(["--out", str(tmp_path / "r"), "--data", "no.npy", "--threads", "2"]) == 2
    assert torch.get_num_threads() == 2 and "no.npy" in one_error_line(capsys.readouterr().err)

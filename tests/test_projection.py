"""The predict(-project) sampler of arXiv 2302.04411 in the generated modules (model.py: the equations;
train.py --projection, sample.py --sampler predict / predict-project): the reverse-SDE drift from the learned
velocity, plain Euler-Maruyama with the exact velocity, the projection network's training, sampling from a
checkpoint (vectors and images, one process and torchrun), and the refusals."""
import dataclasses
import json

import numpy as np
import pytest
from test_generated_scripts import generated_modules, module_ir, one_error_line, run_script, write_module

torch = pytest.importorskip("torch")

FAST = ["--device", "cpu", "--batch", "32", "--warmup", "0", "--n-toy", "2000", "--log-every", "5"]


@pytest.fixture(scope="module")
def heat_dir(tmp_path_factory):
    return write_module(module_ir(), tmp_path_factory.mktemp("heat"))


def test_the_predict_drift_is_the_reverse_sde_drift_from_the_score(tmp_path):
    """x_pred - x = 2 beta s dtau with beta = kappa and s = grad log p_t by autograd (kappa = 2, so a missing
    factor kappa shows), against model.predict_step with the exact marginal velocity."""
    ir = dataclasses.replace(module_ir(), parameters=(("kappa", 2.0),))
    points = torch.tensor([[-2.0, 0.0], [1.0, 1.0], [0.5, -3.0]], dtype=torch.float64)
    with generated_modules(write_module(ir, tmp_path)) as generated:
        process = generated.process.Process().double()
        x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
        t, t_next = 0.9, 0.6
        times = torch.full((6,), t, dtype=torch.float64)
        log_density = torch.logsumexp(torch.stack([process.log_kernel(x, y.expand(6, 2), times) for y in points]), 0)
        score = torch.autograd.grad(log_density.sum(), x)[0]
        velocity = lambda z, s: process.marginal_velocity(z, s, points)
        predicted = generated.model.predict_step(velocity, x.detach(), times, torch.full((6,), t_next,
                                                                                      dtype=torch.float64))
        assert generated.model.diffusion_beta(process) == 2.0
    expected = x.detach() + 2 * 2.0 * score * (t - t_next)
    assert torch.allclose(predicted, expected, rtol=1e-10, atol=1e-12)


def test_predict_with_the_exact_velocity_lands_on_point_masses_in_proportion(heat_dir, tmp_path):
    points = np.array([[-2.0, 0.0], [-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # weights 1/2, 1/4, 1/4
    np.save(tmp_path / "points.npy", points)
    out = tmp_path / "predict.npy"
    with generated_modules(heat_dir) as generated:
        assert generated.sample.main(["--exact", str(tmp_path / "points.npy"), "--n", "400", "--steps", "101",
                                      "--sampler", "predict", "--device", "cpu", "--out", str(out)]) == 0
    samples = np.load(out)
    distance = np.linalg.norm(samples[:, None] - points[None, [0, 2, 3]], axis=2)
    assert (distance.min(axis=1) < 0.05).all()
    shares = np.bincount(distance.argmin(axis=1), minlength=3) / len(samples)
    # 4 binomial standard deviations (0.1 at n = 400): false-alarm rate below 2e-4 for the three shares; the
    # time discretisation's own bias at 100 steps is about 0.02 (measured with 2000 samples)
    assert np.allclose(shares, [0.5, 0.25, 0.25], atol=0.1)


def fixed_batch_loss(generated, checkpoint, weights):
    """The projection loss of ``weights`` (a state dict, or None: the network as initialised) on one fixed
    batch and fixed draws."""
    train = generated.train
    velocity = train.model_from_checkpoint(checkpoint, "ema").eval()
    stats = checkpoint["data_stats"]
    torch.manual_seed(checkpoint["args"]["seed"] + 1)  # train.py's initialisation of the projection network
    projection = generated.model.ProjectionModel(generated.model.build_backbone(checkpoint["backbone_config"]),
                                                 stats["sigma_data"], stats["mean"],
                                                 checkpoint["projection_config"]["weight"]).to(torch.float32)
    if weights is not None:
        projection.load_state_dict(weights)
    y = torch.from_numpy(train.load_data("moons", 123, 4096)).float()
    with torch.no_grad():
        return float(generated.model.projection_loss(projection, velocity.velocity, velocity.process, y,
                                                     generator=torch.Generator().manual_seed(7)))


def test_projection_trains_and_predict_project_samples_from_the_checkpoint(heat_dir, tmp_path, capsys):
    run = tmp_path / "run"
    with generated_modules(heat_dir) as generated:
        train, sample = generated.train.main, generated.sample.main
        assert train(["--data", "moons", "--steps", "40", "--out", str(run), *FAST]) == 0
        capsys.readouterr()
        without = tmp_path / "none.npy"
        assert sample(["--ckpt", str(run), "--sampler", "predict-project", "--out", str(without)]) == 3
        assert "no projection network" in one_error_line(capsys.readouterr().err)
        assert train(["--projection", "--steps", "30", "--out", str(run), *FAST]) == 0
        checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        assert checkpoint["step"] == 40 and checkpoint["projection_step"] == 30
        trained = fixed_batch_loss(generated, checkpoint, checkpoint["projection"])
        initial = fixed_batch_loss(generated, checkpoint, None)
        # a second call continues the projection network (its own step count), the velocity network untouched
        assert train(["--projection", "--steps", "35", "--out", str(run), *FAST]) == 0
        resumed = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        assert resumed["projection_step"] == 35
        assert all(torch.equal(resumed["ema"][k], checkpoint["ema"][k]) for k in checkpoint["ema"])
        for sampler in ("predict", "predict-project"):
            out = tmp_path / f"{sampler}.npy"
            assert sample(["--ckpt", str(run), "--sampler", sampler, "--steps", "11", "--n", "64",
                           "--device", "cpu", "--out", str(out)]) == 0
            assert np.load(out).shape == (64, 2) and np.isfinite(np.load(out)).all()
    records = [json.loads(line) for line in (run / "projection_loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30, 35]
    assert trained < initial, (trained, initial)


def test_an_interrupted_projection_run_continues_bit_for_bit(heat_dir, tmp_path):
    with generated_modules(heat_dir) as generated:
        train = generated.train.main
        velocity = ["--data", "moons", "--steps", "3", *FAST, "--dtype", "float64"]
        projection = ["--projection", "--steps", "4", "--ckpt-every", "2", *FAST]
        for run in ("whole", "cut"):
            assert train([*velocity, "--out", str(tmp_path / run)]) == 0
        assert train([*projection, "--out", str(tmp_path / "whole")]) == 0
        assert train([*projection, "--out", str(tmp_path / "cut"), "--stop-after", "3"]) == 0  # killed at 3
        assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["projection_step"] == 2
        assert train([*projection, "--out", str(tmp_path / "cut")]) == 0
    whole, cut = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("whole", "cut"))
    assert cut["projection_step"] == whole["projection_step"] == 4
    for key in ("projection", "projection_ema"):
        assert all(torch.equal(whole[key][name], cut[key][name]) for name in whole[key])


def test_every_stochastic_sampler_runs_on_images(tmp_path, capsys):
    """A U-Net heat module on 1x8x8 images: the projection network trains from the velocity checkpoint, and
    predict-project, predict, sde and ancestral each write samples of the data's shape, finite."""
    # the heat kernel is a convolution semigroup in t, which sde needs (module_ir leaves the flag at its default)
    ir = dataclasses.replace(module_ir(shape=(1, 8, 8)), semigroup=True)
    directory = write_module(ir, tmp_path / "images_module")
    images = np.random.default_rng(0).uniform(-1, 1, (64, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    run = tmp_path / "run"
    with generated_modules(directory) as generated:
        train = generated.train.main
        assert train(["--data", str(tmp_path / "images.npy"), "--steps", "2", "--out", str(run), *FAST]) == 0
        assert train(["--projection", "--steps", "2", "--out", str(run), *FAST]) == 0
        for sampler in ("predict-project", "predict", "sde", "ancestral"):
            out = tmp_path / f"images.{sampler}.npy"
            assert generated.sample.main(["--ckpt", str(run), "--sampler", sampler, "--steps", "4",
                                          "--n", "8", "--device", "cpu", "--out", str(out)]) == 0, sampler
            samples = np.load(out)
            assert samples.shape == (8, 1, 8, 8) and np.isfinite(samples).all(), sampler


@pytest.mark.parametrize("family", ["cauchy", "stable"])
def test_other_kernels_refuse_predict_with_one_line_and_exit_3(family, tmp_path, capsys):
    directory = write_module(dataclasses.replace(module_ir(family), semigroup=True), tmp_path / family)
    run = tmp_path / "run"
    with generated_modules(directory) as generated:
        for sampler in ("predict", "predict-project"):
            assert generated.sample.main(["--exact", "moons", "--n-ref", "10", "--n", "4", "--sampler", sampler,
                                          "--out", str(tmp_path / "x.npy")]) == (3 if sampler == "predict" else 2)
            assert "predict" in one_error_line(capsys.readouterr().err)
        assert generated.train.main(["--data", "moons", "--steps", "1", "--out", str(run), *FAST]) == 0
        capsys.readouterr()
        assert generated.sample.main(["--ckpt", str(run), "--sampler", "predict", "--out",
                                      str(tmp_path / "x.npy")]) == 3
        assert "not Gaussian" in one_error_line(capsys.readouterr().err)
        assert generated.train.main(["--projection", "--steps", "1", "--out", str(run), *FAST]) == 3
        assert "not Gaussian" in one_error_line(capsys.readouterr().err)
        assert generated.train.main(["--projection", "--steps", "1", "--out", str(tmp_path / "empty")]) == 2
        assert "train the velocity network first" in one_error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_torchrun_two_processes_train_the_projection(heat_dir, tmp_path):
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    run = tmp_path / "ddp"
    base = ("--out", run, "--device", "cpu", "--batch", 32, "--warmup", 0, "--n-toy", 1000, "--log-every", 2)
    run_script(heat_dir, "train.py", *base, "--data", "moons", "--steps", 2, cwd=tmp_path)
    run_script(heat_dir, "train.py", *base, "--projection", "--steps", 4, "--ckpt-every", 2, cwd=tmp_path,
               launcher=launcher)
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert checkpoint["projection_step"] == 4 and len(checkpoint["projection_rng"]) == 2
    assert not torch.equal(checkpoint["projection_rng"][0]["process"], checkpoint["projection_rng"][1]["process"])
    records = [json.loads(line) for line in (run / "projection_loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]  # written once, by rank 0

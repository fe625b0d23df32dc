"""Smoke tests of the benchmark helpers in bench/ (seconds; the benchmarks themselves are not run here)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import methods as M


class TinyBackbone(nn.Module):
    """Stands in for the generated MLPBackbone: (x, log sigma) -> same shape as x."""

    def __init__(self, config):
        super().__init__()
        dim = int(np.prod(config["shape"]))
        self.shape = tuple(config["shape"])
        self.net = nn.Sequential(nn.Linear(dim + 1, 16), nn.SiLU(), nn.Linear(16, dim))

    def forward(self, x, log_sigma):
        h = torch.cat([x.flatten(1), log_sigma[:, None]], dim=1)
        return self.net(h).view(x.shape)


@pytest.mark.parametrize("method_class", [M.FlowMatching, M.EDM])
def test_baselines_train_and_sample_with_exact_nfe(method_class):
    method = method_class(TinyBackbone)
    data = np.random.default_rng(0).standard_normal((256, 2)) * 0.5 + 1.0
    model, info = M.train(method, data, {"shape": [2]}, M.TrainConfig(steps=20, batch=32), seed=0)
    assert np.isfinite(info["final_loss"]) and info["params"] > 0
    for solver, nfe in (("euler", 5), ("heun", 5), ("heun", 4), ("euler", 1)):
        assert M.count_nfe(method, model, solver, nfe) == nfe
        samples = M.sample(method, model, 10, solver, nfe, seed=1)
        assert samples.shape == (10, 2) and np.isfinite(samples).all()
    noisy = M.sample(method, model, 10, "heun", 4, seed=1, noise_alpha=0.1)
    assert not np.allclose(noisy, M.sample(method, model, 10, "heun", 4, seed=1))


def test_euler_and_heun_integrate_a_linear_ode():
    # dx/dt = x from t = 0 to 1: Heun is second order, Euler first order.
    ts = torch.linspace(0, 1, 11, dtype=torch.float64)
    x0 = torch.ones(1, 1, dtype=torch.float64)
    err_euler = abs(float(M.euler(lambda x, t: x, x0, ts)) - np.e)
    err_heun = abs(float(M.heun(lambda x, t: x, x0, ts)) - np.e)
    assert err_heun < err_euler / 10 < 0.02


def test_quantize_rounds_to_levels():
    layer = nn.Linear(8, 8)
    M.quantize_(layer, 3)
    assert len(torch.unique(layer.weight)) <= 7  # 2 * (2**2 - 1) + 1 symmetric levels


def test_edm_grid_matches_the_generated_noise_levels():
    grid = M.EDM(TinyBackbone).grid(None, 5)
    assert grid[0] == pytest.approx(80.0) and grid[-1] == pytest.approx(0.002) and (grid.diff() < 0).all()


def test_repair_display_is_converted_to_parser_syntax():
    import verdicts

    assert verdicts.as_input("u_tt + (c**2)*(-lap) u + (2)*u_t = 0") == "u_tt + (c**2)*(-lap(u)) + (2)*u_t = 0"
    assert verdicts.as_input("u_t + (kappa)*(-lap)^(3/4) u = 0") == "u_t + (kappa)*fraclap(u, 3/4) = 0"


@pytest.mark.slow
def test_digits_metrics_floor_is_small_and_noise_is_far():
    pytest.importorskip("sklearn")
    from digits_classifier import digit_metrics, digits_split

    train, _, test, _ = digits_split()
    floor = digit_metrics(train[:400], test)
    noise = digit_metrics(np.random.default_rng(0).uniform(-1, 1, (400, 1, 8, 8)), test)
    assert floor["fd"] < noise["fd"] / 20
    assert floor["label_entropy"] > 2.2  # ln 10 = 2.303 for balanced classes


def test_gpu_check_refuses_without_a_gpu_and_fails_on_any_failed_part(monkeypatch):
    import gpu_check

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert gpu_check.main([]) == 2  # no CUDA device: a one-line refusal, not a silent pass
    images = gpu_check.synthetic_images(3, 32, seed=0)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8 and images.std() > 10
    good = {"ok": True, "non_finite_loss": False}
    result = {"build": {"ok": True}, "train_1gpu": good, "train_torchrun": good,
              "sample": {"ok": True, "finite_in_range": True}}
    assert gpu_check.passed(result)
    assert not gpu_check.passed({**result, "train_torchrun": {"ok": True, "non_finite_loss": True}})
    assert not gpu_check.passed({**result, "sample": {"ok": False}})
    assert not gpu_check.passed({"build": {"ok": False}})

"""The models the benchmarks train and sample, behind one small interface.

* ``Generated``: a module rendered by ``pde2gen build`` (its process.py, model.py and train.py, imported with
  bench/_common.load_module): network ``model.VelocityModel``, loss ``model.flow_matching_loss``, prior
  ``Process.sample_prior`` and the module's own ODE solvers, integrated as sample.py does by default: in the noise
  level sigma on ``Process.sigma_grid`` (``GeneratedInTime``: the same network in the PDE time t, on
  ``Process.time_grid``).
* ``FlowMatching``: the straight interpolant of rectified flow / conditional flow matching (sigma = 0):
  x_t = (1 - t) y + t z with z ~ N(mean, sigma_data^2 I), t ~ U(0, 1), target z - y, integrated from t = 1
  to 0 on a uniform grid. The network sees (x - mean) / sigma_data and logit(t); its output is scaled by
  sigma_data (the usual data standardisation).
* ``EDM``: EDM's VE diffusion (Karras et al. 2022): D(x; sigma) = mean + c_skip (x - mean) + c_out B(c_in (x -
  mean), log sigma), loss weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2, ln sigma ~ N(-1.2, 1.2^2),
  ODE dx/dsigma = (x - D) / sigma on EDM's grid (sigma_max 80, sigma_min 0.002, rho 7). Like the generated
  modules (and unlike EDM, which appends sigma = 0) the grid ends at sigma_min.

All three use the same backbone class and size (the generated model.py's MLPBackbone or UNetBackbone, built
from one config), AdamW, learning-rate warm-up, gradient clipping and EMA exactly as the generated train.py
(``train`` below mirrors its loop), the same batch and steps.

NFE accounting (``sample``): Euler with NFE n takes n steps; Heun with NFE n takes ceil(n/2) steps, all Heun
when n is even, the last one an Euler step when n is odd (EDM's convention), so every method gets exactly n
network evaluations.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _common import CACHE, log
from torch import nn


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch: int
    lr: float = 1e-3  # train.py defaults
    warmup: int = 200
    ema: float = 0.999
    grad_clip: float = 1.0


def data_statistics(samples: np.ndarray) -> dict:
    """The same statistics as the generated train.data_statistics (mean per coordinate, overall std)."""
    mean = samples.mean(axis=0)
    return {"mean": torch.from_numpy(mean), "sigma_data": float(np.sqrt(np.mean((samples - mean) ** 2))),
            "shape": list(samples.shape[1:])}


def _view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.dim() - 1)))


# ------------------------------------------------------------------------------------------ solvers
@torch.no_grad()
def euler(velocity_fn, x, ts, noise=None):
    """Euler steps through ts (a copy of the generated sample_euler); ``noise(x, i)`` is added after step i."""
    for i in range(len(ts) - 1):
        t, t_next = float(ts[i]), float(ts[i + 1])
        x = x + (t_next - t) * velocity_fn(x, torch.full((x.shape[0],), t, dtype=x.dtype))
        if noise is not None:
            x = noise(x, i + 1)
    return x


@torch.no_grad()
def heun(velocity_fn, x, ts, noise=None):
    """Heun steps through ts (a copy of the generated sample_heun)."""
    for i in range(len(ts) - 1):
        t, t_next = float(ts[i]), float(ts[i + 1])
        velocity = velocity_fn(x, torch.full((x.shape[0],), t, dtype=x.dtype))
        predicted = x + (t_next - t) * velocity
        velocity_next = velocity_fn(predicted, torch.full((x.shape[0],), t_next, dtype=x.dtype))
        x = x + (t_next - t) * 0.5 * (velocity + velocity_next)
        if noise is not None:
            x = noise(x, i + 1)
    return x


def grid_points(solver: str, nfe: int) -> int:
    if solver == "euler":
        return nfe + 1
    if solver == "heun":
        return math.ceil(nfe / 2) + 1
    raise ValueError(f"unknown solver {solver!r}")


# ------------------------------------------------------------------------------------------- methods
class Method:
    name: str = ""
    label: str = ""

    def make_model(self, stats: dict, backbone_config: dict) -> nn.Module:
        raise NotImplementedError

    def loss(self, model, y, generator) -> torch.Tensor:
        raise NotImplementedError

    def prior(self, model, n, generator) -> torch.Tensor:
        raise NotImplementedError

    def grid(self, model, points: int) -> torch.Tensor:
        raise NotImplementedError

    def velocity(self, model):
        raise NotImplementedError

    def noise_level(self, model, t: float) -> float:
        """sigma at grid time t (for noise injection)."""
        raise NotImplementedError

    def solvers(self):
        return {"euler": euler, "heun": heun}


class Generated(Method):
    """A generated module sampled as its sample.py does by default: Heun / Euler in the noise level sigma,
    dx/dsigma = Process.sigma_velocity(VelocityModel.velocity), on Process.sigma_grid."""

    model_class = "VelocityModel"  # the model.py class this path trains

    def __init__(self, name: str, label: str, module):
        self.name, self.label, self.module = name, label, module

    def make_model(self, stats, backbone_config):
        train, model = self.module.train, self.module.model
        process = train.make_process(train.data_statistics(stats["samples"]), torch.float32)
        network_class = getattr(model, self.model_class)
        return network_class(process, model.build_backbone(backbone_config), stats["sigma_data"])

    def loss(self, model, y, generator):
        return self.module.model.flow_matching_loss(model, model.process, y, generator=generator)

    def prior(self, model, n, generator):
        return model.process.sample_prior(n, generator=generator).float()

    def grid(self, model, points):
        return model.process.sigma_grid(points)

    def velocity(self, model):
        return model.process.sigma_velocity(model.velocity)

    def noise_level(self, model, s):
        return s

    def solvers(self):
        """The module's own sample_euler / sample_heun (the copies above only when noise is injected)."""
        process = self.module.process

        def run_euler(v, x, ts, noise=None):
            return euler(v, x, ts, noise) if noise is not None else process.sample_euler(v, x, ts)

        def run_heun(v, x, ts, noise=None):
            return heun(v, x, ts, noise) if noise is not None else process.sample_heun(v, x, ts)

        return {"euler": run_euler, "heun": run_heun}


class GeneratedInTime(Generated):
    """The same trained generated model integrated in the PDE time t (sample.py --variable t):
    dx/dt = VelocityModel.velocity on Process.time_grid, the same grid points mapped to t. Isolates the choice
    of integration variable from the choice of kernel."""

    def __init__(self, generated: Generated):
        super().__init__(generated.name + "@t", generated.label + " [in t]", generated.module)

    def grid(self, model, points):
        return model.process.time_grid(points)

    def velocity(self, model):
        return model.velocity

    def noise_level(self, model, t):
        return float(model.process.sigma(torch.tensor([t], dtype=torch.float64))[0])


class FlowMatchingNet(nn.Module):
    def __init__(self, backbone, mean, sigma_data):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("sigma_data", torch.tensor(float(sigma_data)))

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0]).clamp(1e-4, 1 - 1e-4)
        x_in = (x - self.mean) / self.sigma_data
        return self.sigma_data * self.backbone(x_in, torch.log(t) - torch.log1p(-t))


class FlowMatching(Method):
    name, label = "fm", "flow matching (baseline)"

    def make_model(self, stats, backbone_config):
        return FlowMatchingNet(self.build_backbone(backbone_config), stats["mean"], stats["sigma_data"])

    def __init__(self, build_backbone):
        self.build_backbone = build_backbone

    def loss(self, model, y, generator):
        t = torch.rand(y.shape[0], generator=generator)
        z = model.mean + model.sigma_data * torch.randn(y.shape, generator=generator)
        x = (1 - _view(t, y)) * y + _view(t, y) * z
        return ((model(x, t) - (z - y)) / model.sigma_data).square().mean()

    def prior(self, model, n, generator):
        return model.mean + model.sigma_data * torch.randn((n, *model.mean.shape), generator=generator)

    def grid(self, model, points):
        return torch.linspace(1.0, 0.0, points, dtype=torch.float64)

    def velocity(self, model):
        return model

    def noise_level(self, model, t):
        return float(model.sigma_data) * t / max(1 - t, 1e-4)


class EDMNet(nn.Module):
    def __init__(self, backbone, mean, sigma_data):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("sigma_data", torch.tensor(float(sigma_data)))

    def denoise(self, x, sigma):
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / torch.sqrt(sigma**2 + sd2)
        c_in = torch.rsqrt(sigma**2 + sd2)
        centred = x - self.mean
        out = self.backbone(_view(c_in, x) * centred, torch.log(sigma))
        return self.mean + _view(c_skip, x) * centred + _view(c_out, x) * out

    def forward(self, x, sigma):  # dx/dsigma of the probability-flow ODE
        sigma = torch.as_tensor(sigma, dtype=x.dtype).expand(x.shape[0])
        return (x - self.denoise(x, sigma)) / _view(sigma, x)


class EDM(Method):
    name, label = "edm", "EDM diffusion (baseline)"
    sigma_min, sigma_max, rho = 0.002, 80.0, 7.0

    def __init__(self, build_backbone):
        self.build_backbone = build_backbone

    def make_model(self, stats, backbone_config):
        return EDMNet(self.build_backbone(backbone_config), stats["mean"], stats["sigma_data"])

    def loss(self, model, y, generator):
        sigma = torch.exp(-1.2 + 1.2 * torch.randn(y.shape[0], generator=generator))
        noisy = y + _view(sigma, y) * torch.randn(y.shape, generator=generator)
        weight = (sigma**2 + model.sigma_data**2) / (sigma * model.sigma_data) ** 2
        return (_view(weight, y) * (model.denoise(noisy, sigma) - y).square()).mean()

    def prior(self, model, n, generator):
        return model.mean + self.sigma_max * torch.randn((n, *model.mean.shape), generator=generator)

    def grid(self, model, points):
        index = torch.arange(points, dtype=torch.float64)
        low, high = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return (high + index / (points - 1) * (low - high)) ** self.rho

    def velocity(self, model):
        return model

    def noise_level(self, model, t):
        return t


# ------------------------------------------------------------------------------------------ training
@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for ema_param, param in zip(ema.parameters(), model.parameters(), strict=True):
        ema_param.lerp_(param, 1.0 - decay)


def train(method: Method, samples: np.ndarray, backbone_config: dict, config: TrainConfig, seed: int,
          label: str = "", log_every: int = 0):
    """Train ``method`` on ``samples`` like the generated train.py (AdamW, warm-up, clip, EMA warm-up formula).

    Returns (EMA model in eval mode, info) with info = {"train_s", "final_loss", "params"}.
    """
    stats = data_statistics(samples)
    stats["samples"] = samples
    torch.manual_seed(seed)
    model = method.make_model(stats, backbone_config).float()
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    data = torch.from_numpy(samples).float()
    data_generator = torch.Generator().manual_seed(10_007 * seed + 1)
    process_generator = torch.Generator().manual_seed(10_007 * seed + 2)
    losses, start = [], time.perf_counter()
    warmup = min(config.warmup, max(1, config.steps // 5))
    for step in range(config.steps):
        lr = config.lr * min(1.0, (step + 1) / warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(len(data), (config.batch,), generator=data_generator)
        loss = method.loss(model, data[index], process_generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        update_ema(ema, model, min(config.ema, (1 + step) / (10 + step)))
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"{label}: loss {losses[-1]} at step {step}")
        if log_every and (step + 1) % log_every == 0:
            log(f"  {label} step {step + 1}/{config.steps} loss {np.mean(losses[-log_every:]):.4f} "
                f"({(step + 1) / (time.perf_counter() - start):.1f} it/s)")
    tail = losses[-max(1, len(losses) // 10):]
    info = {"train_s": time.perf_counter() - start, "final_loss": float(np.mean(tail)),
            "params": sum(p.numel() for p in model.parameters())}
    return ema.eval(), info


def _cache_key(method: Method, samples: np.ndarray, backbone_config: dict, config: TrainConfig, seed: int) -> str:
    import hashlib
    import json

    digest = hashlib.sha256()
    if isinstance(method, Generated):  # the module's build folder is named by the compiler-source hash
        code = (Path(method.module.dir) / "process.py").read_bytes() + (Path(method.module.dir) / "model.py").read_bytes()
    else:
        code = Path(__file__).read_bytes()
    digest.update(code)
    digest.update(json.dumps([method.name, backbone_config, config.__dict__, seed], sort_keys=True).encode())
    digest.update(np.ascontiguousarray(samples, dtype=np.float64).tobytes())
    return digest.hexdigest()[:24]


def train_cached(method: Method, samples: np.ndarray, backbone_config: dict, config: TrainConfig, seed: int,
                 label: str = "", log_every: int = 0):
    """``train`` with the EMA weights cached on disk (bench/_common.CACHE/models), keyed by the generated code,
    the method, network, optimisation settings, seed and the training data: benchmarks that need the same
    model (quality, robustness, kac) train it once. Returns (model, info); info["cached"] says which."""
    folder = CACHE / "models"
    path = folder / f"{_cache_key(method, samples, backbone_config, config, seed)}.pt"
    if path.exists():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        stats = data_statistics(samples)
        stats["samples"] = samples
        model = method.make_model(stats, backbone_config).float()
        model.load_state_dict(stored["state_dict"])
        return model.eval().requires_grad_(False), {**stored["info"], "cached": True}
    model, info = train(method, samples, backbone_config, config, seed, label=label, log_every=log_every)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": model.state_dict(), "info": info}, tmp)
    tmp.replace(path)
    return model, {**info, "cached": False}


def sample(method: Method, model, n: int, solver: str, nfe: int, seed: int, noise_alpha: float = 0.0,
           batch: int = 4096) -> np.ndarray:
    """n samples with exactly ``nfe`` network evaluations each (see the module docstring), float32."""
    generator = torch.Generator().manual_seed(seed)
    points = grid_points(solver, nfe)
    ts = method.grid(model, points)
    velocity_fn = method.velocity(model)
    solve = method.solvers()
    noise = None
    if noise_alpha > 0:
        levels = [method.noise_level(model, float(t)) for t in ts]
        noise_generator = torch.Generator().manual_seed(seed + 99_991)

        def noise(x, i):
            return x + noise_alpha * levels[i] * torch.randn(x.shape, generator=noise_generator)

    chunks = []
    with torch.no_grad():
        for start in range(0, n, batch):
            x = method.prior(model, min(batch, n - start), generator).float()
            if solver == "euler" or nfe % 2 == 0:
                x = solve[solver](velocity_fn, x, ts, noise)
            else:  # ceil(nfe/2) - 1 Heun steps, then one Euler step
                k = len(ts) - 1
                x = solve["heun"](velocity_fn, x, ts[:k], noise)
                tail_noise = None if noise is None else (lambda x, i, k=k: noise(x, k - 1 + i))
                x = solve["euler"](velocity_fn, x, ts[k - 1:], tail_noise)
            chunks.append(x.numpy())
    return np.concatenate(chunks)


class _Counting:
    """A method whose velocity counts its calls."""

    def __init__(self, method, counter):
        self._method, self._counter = method, counter

    def __getattr__(self, name):
        return getattr(self._method, name)

    def velocity(self, model):
        base = self._method.velocity(model)

        def counted(x, t):
            self._counter[0] += 1
            return base(x, t)

        return counted


def count_nfe(method: Method, model, solver: str, nfe: int) -> int:
    """Network evaluations ``sample`` makes for one batch (checked by the smoke test)."""
    counter = [0]
    sample(_Counting(method, counter), model, 2, solver, nfe, seed=0)
    return counter[0]


def quantize_(model: nn.Module, bits: int) -> nn.Module:
    """Round every parameter tensor in place to ``bits``-bit symmetric uniform levels (per tensor)."""
    levels = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for param in model.parameters():
            scale = param.abs().max() / levels
            if scale > 0:
                param.copy_(torch.round(param / scale) * scale)
    return model


def backbone_configs(kind: str, shape) -> dict:
    """Network sizes used by the benchmarks (the same for every method of a run): the generated model.py's
    MLPBackbone / UNetBackbone with sizes chosen per budget (the defaults are too slow for a shared 2-core CPU)."""
    shape = [int(s) for s in shape]
    table = {
        "mlp-s": {"kind": "mlp", "shape": shape, "width": 128, "depth": 3, "emb_width": 64},
        "mlp-m": {"kind": "mlp", "shape": shape, "width": 256, "depth": 3, "emb_width": 128},
        "mlp-default": {"kind": "mlp", "shape": shape, "width": 256, "depth": 4, "emb_width": 128},
        "unet-s": {"kind": "unet", "shape": shape, "channels": 16, "channel_mult": [1, 2, 2]},
        "unet-default": {"kind": "unet", "shape": shape, "channels": 64, "channel_mult": [1, 2, 2]},
    }
    return table[kind]

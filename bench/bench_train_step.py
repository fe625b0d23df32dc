"""One training step of a generated module against a hand-written flow-matching step over the same network.

generated    : the rendered heat-kernel module's own step: t = Process.sample_train_time, (x, u) from
               Process.sample_location_and_conditional_flow, F = VelocityModel(x, t) (preconditioned input,
               log-sigma embedding), loss mean ||F - u / dsigma_dt||^2  (model.flow_matching_loss);
hand-written : the straight interpolant of rectified flow / torchcfm with sigma = 0: t ~ U(0, 1),
               x = (1 - t) y + t eps, u = eps - y, loss mean ||backbone(x, log t) - u||^2.

Both use the same backbone class and size, AdamW, the same batch, and a backward pass plus optimizer step.
The two steps alternate in one process (so drifting machine load hits both alike); the figure is the median
step time, and ratio = hand-written / generated (1.0: no overhead; the goal is >= 0.95).

    python bench/bench_train_step.py [--device cuda] [--steps 200]

Prints a table and writes bench/results/train_step.json.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from pde2gen.lower import ModuleIR
from pde2gen.render import render

RESULTS = Path(__file__).resolve().parent / "results" / "train_step.json"
CASES = (("2-D points, MLP", (2,), 512), ("8x8 images, U-Net", (1, 8, 8), 128))


def heat_module(directory: Path):
    """Render the heat-kernel module (family gaussian) into ``directory``; import its process and model."""
    ir = ModuleIR(
        pde2gen_version="bench", spec_hash="0" * 64, source="heat", pde="u_t - lap u = 0", catalog=("heat",),
        notes=(), pde_parameters=(), dimension_text="N = 2 (isotropic construction)", dispersion="lambda + s = 0",
        problem_type="evolution", verdicts=(), s_generative=True, family="gaussian", family_class="GaussianFamily",
        parameters=(("kappa", 1.0),), construction="isotropic", dim=2, shape=(2,), t_min=0.002**2 / 2,
        t_max=80.0**2 / 2, sigma_min=0.002, sigma_max=80.0, rho=7.0, formulas={}, birth_death="none", checks=(),
        options={"sample_steps": 40, "solver": "heun", "seed": 0},
    )
    for name, text in render(ir).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    sys.path.insert(0, str(directory))
    return importlib.import_module("process"), importlib.import_module("model")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_case(process_module, model_module, shape, batch, steps, device):
    torch.manual_seed(0)
    config = model_module.default_backbone_config(shape)
    process = process_module.Process(shape=shape)
    generated = model_module.VelocityModel(process, model_module.build_backbone(config), sigma_data=0.5).to(device)
    handwritten = model_module.build_backbone(config).to(device)
    handwritten.load_state_dict(generated.backbone.state_dict())
    y = torch.randn(batch, *shape, device=device)
    generator = torch.Generator(device=device).manual_seed(0)

    generated_optimizer = torch.optim.AdamW(generated.parameters(), lr=1e-4)
    handwritten_optimizer = torch.optim.AdamW(handwritten.parameters(), lr=1e-4)

    def generated_step():
        loss = model_module.flow_matching_loss(generated, process, y, generator=generator)
        generated_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        generated_optimizer.step()

    def handwritten_step():
        t = torch.rand(batch, device=device, generator=generator).clamp_min(1e-5)
        eps = torch.randn(y.shape, device=device, generator=generator)
        t_view = t.reshape(-1, *([1] * len(shape)))
        x, u = (1 - t_view) * y + t_view * eps, eps - y
        loss = (handwritten(x, t.log()) - u).square().mean()
        handwritten_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        handwritten_optimizer.step()

    times = {"generated": [], "handwritten": []}
    for index in range(steps + 10):  # the first 10 of each are warm-up
        for name, step in (("generated", generated_step), ("handwritten", handwritten_step)):
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            if index >= 10:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "batch": batch,
        "shape": list(shape),
        "parameters": sum(p.numel() for p in handwritten.parameters()),
        "generated_ms": 1e3 * medians["generated"],
        "handwritten_ms": 1e3 * medians["handwritten"],
        "ratio": medians["handwritten"] / medians["generated"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=200, help="timed steps of each kind per case")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as directory:
        process_module, model_module = heat_module(Path(directory))
        cases = {name: bench_case(process_module, model_module, shape, batch, args.steps, device)
                 for name, shape, batch in CASES}
    print(f"train step, median of {args.steps} ({device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)")
    print(f"{'case':<20} {'batch':>6} {'generated ms':>13} {'hand-written ms':>16} {'ratio':>6}")
    for name, case in cases.items():
        print(f"{name:<20} {case['batch']:>6} {case['generated_ms']:>13.3f} {case['handwritten_ms']:>16.3f} "
              f"{case['ratio']:>6.3f}")
    record = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "steps": args.steps,
        "cases": cases,
        "min_ratio": min(case["ratio"] for case in cases.values()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_name(RESULTS.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

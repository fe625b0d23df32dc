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

With ``--families`` (CPU, one thread) it instead compares every family's generated module with the heat
module's, over the same network, batch and optimizer, alternating in one process (ratios of medians, > 1 =
slower than heat; goals of issue 11): training step, 2-D batch 256 and 8x8 images batch 64 (<= 1.2x, Kac
<= 1.3x); sampling as sample.py does it, network + Heun, 50 steps in sigma, 1000 points (<= 1.5x); and the exact
marginal velocity per (sample, data point) pair at N = 2 and N = 3072 (<= 5x the Gaussian's). The ratios are
measured within one run, so load from other jobs on a shared machine shifts both sides alike.

    python bench/bench_train_step.py --families [--steps 40]

Prints a table and writes bench/results/train_step.json (or train_step_families.json).
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

from pde2gen.codegen.lower import ModuleIR
from pde2gen.codegen.render import render

RESULTS = Path(__file__).resolve().parent / "results" / "train_step.json"
CASES = (("2-D points, MLP", (2,), 512), ("8x8 images, U-Net", (1, 8, 8), 128))


def heat_ir(shape=(2,)) -> ModuleIR:
    """The heat-kernel module's IR (family gaussian) for samples of ``shape``."""
    dim = 1
    for n in shape:
        dim *= n
    return ModuleIR(
        pde2gen_version="bench", spec_hash="0" * 64, source="heat", pde="u_t - lap u = 0", catalog=("heat",),
        notes=(), pde_parameters=(), dimension_text="N = 2 (isotropic construction)", dispersion="lambda + s = 0",
        problem_type="evolution", verdicts=(), s_generative=True, family="gaussian", family_class="GaussianFamily",
        parameters=(("kappa", 1.0),), construction="isotropic", dim=dim, shape=tuple(shape), t_min=0.002**2 / 2,
        t_max=80.0**2 / 2, sigma_min=0.002, sigma_max=80.0, rho=7.0, formulas={}, birth_death="none", checks=(),
        options={"sample_steps": 40, "solver": "heun", "seed": 0},
    )


def heat_module(directory: Path):
    """Render the heat-kernel module (family gaussian) into ``directory``; import its process and model."""
    ir = heat_ir()
    for name, text in render(ir).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    sys.path.insert(0, str(directory))
    return importlib.import_module("process"), importlib.import_module("model")


# Every family against the heat module (issue 11): the same network, batch and optimizer; the parameters are the
# catalog's (Kac: the Kac-flow setting a = 9, c = 3).
FAMILY_PARAMETERS = {
    "gaussian": {"kappa": 1.0}, "cauchy": {"c": 1.0}, "student_t": {"c": 1.0, "D": 128.0},
    "nig": {"c": 1.0, "m": 1.0}, "stable": {"kappa": 1.0, "alpha": 1.5}, "kac_product": {"a": 9.0, "c": 3.0},
}
FAMILY_GOALS = {"train": (1.2, {"kac_product": 1.3}), "sample": (1.5, {}), "marginal": (5.0, {})}


def family_modules(directory: Path, shape):
    """Process and model modules of every family for ``shape``, rendered from the heat IR with the family swapped
    and imported under distinct names."""
    import dataclasses
    import importlib.util

    from pde2gen.codegen.lower import FAMILY_CLASSES

    base = heat_ir(shape)
    out = {}
    for family, parameters in FAMILY_PARAMETERS.items():
        ir = dataclasses.replace(base, family=family, family_class=FAMILY_CLASSES[family],
                                 parameters=tuple(parameters.items()))
        folder = directory / f"{family}_{'x'.join(map(str, shape))}"
        for name, text in render(ir).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        loaded = []
        for name in ("process", "model"):
            spec = importlib.util.spec_from_file_location(f"{name}_{folder.name}", folder / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded.append(module)
        out[family] = tuple(loaded)
    return out


def median_pair(a, b, repeat):
    """Median times of a and b called alternately ``repeat`` times after one warm-up each."""
    a(), b()
    ta, tb = [], []
    for _ in range(repeat):
        for call, into in ((a, ta), (b, tb)):
            start = time.perf_counter()
            call()
            into.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def family_costs(directory: Path, steps: int) -> list[dict]:
    """Per family, against the heat (gaussian) module, alternating in this process: a training step (2-D, batch
    256, and 8x8 digits-sized images, batch 64), sample.py's sampling (network, Heun, 50 steps in sigma, 1000
    points, 2-D) and the exact marginal velocity per (sample, data point) pair at N = 2 and N = 3072."""
    rows = []
    two_d, images, wide = (family_modules(directory, shape) for shape in ((2,), (1, 8, 8), (3072,)))
    for family in FAMILY_PARAMETERS:
        row = {"family": family}
        for label, modules, batch in (("2-D", two_d, 256), ("8x8", images, 64)):
            shape = (2,) if label == "2-D" else (1, 8, 8)
            runs = []
            for name in ("gaussian", family):
                process_module, model_module = modules[name]
                torch.manual_seed(0)
                bounds = process_module.Process().t_of_sigma(torch.tensor([0.002, 80.0], dtype=torch.float64))
                process = process_module.Process(shape=shape, t_min=float(bounds[0]), t_max=float(bounds[1]))
                model = model_module.VelocityModel(process, model_module.build_backbone(
                    model_module.default_backbone_config(shape)), sigma_data=0.5)
                runs.append((process_module, process, model, torch.optim.AdamW(model.parameters(), lr=1e-4)))
            runs[1][2].backbone.load_state_dict(runs[0][2].backbone.state_dict())
            y = torch.randn(batch, *shape)
            generator = torch.Generator().manual_seed(0)

            def step(run, model_module=modules[family][1]):
                def call():
                    loss = model_module.flow_matching_loss(run[2], run[1], y, generator=generator)
                    run[3].zero_grad(set_to_none=True)
                    loss.backward()
                    run[3].step()
                return call

            heat_ms, family_ms = median_pair(step(runs[0]), step(runs[1]), steps)
            row[f"train_{label}"] = {"heat_ms": 1e3 * heat_ms, "family_ms": 1e3 * family_ms,
                                     "ratio": family_ms / heat_ms}
            if label == "2-D":
                def sample(run):
                    process_module, process, model, _ = run

                    @torch.no_grad()
                    def call():
                        x = process.sample_prior(1000, generator=generator)
                        process_module.sample_heun(process.sigma_velocity(model.velocity), x, process.sigma_grid(51))
                    return call

                heat_ms, family_ms = median_pair(sample(runs[0]), sample(runs[1]), max(3, steps // 20))
                row["sample_2-D"] = {"heat_ms": 1e3 * heat_ms, "family_ms": 1e3 * family_ms,
                                     "ratio": family_ms / heat_ms}
        for label, modules, batch, references in (("N=2", two_d, 64, 2000), ("N=3072", wide, 8, 200)):
            processes = [modules[name][0].Process() for name in ("gaussian", family)]
            shape = processes[0].shape
            data = torch.randn(references, *shape)
            x = data[:batch] + 0.3 * torch.randn(batch, *shape)

            def marginal(process):
                t = float(process.t_of_sigma(torch.tensor(0.5, dtype=torch.float64)))
                return lambda: process.marginal_velocity(x, t, data)

            heat_s, family_s = median_pair(marginal(processes[0]), marginal(processes[1]), 3)
            pairs = batch * references
            row[f"marginal_{label}"] = {"heat_us_per_pair": 1e6 * heat_s / pairs,
                                        "family_us_per_pair": 1e6 * family_s / pairs, "ratio": family_s / heat_s}
        rows.append(row)
        cells = [f"{row[k]['ratio']:.2f}" for k in ("train_2-D", "train_8x8", "sample_2-D", "marginal_N=2",
                                                    "marginal_N=3072")]
        print(f"{family:<12} " + " ".join(f"{c:>14}" for c in cells), flush=True)
    return rows


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
    parser.add_argument("--families", action="store_true", help="every family against the heat module (CPU)")
    args = parser.parse_args(argv)
    if args.families:
        return main_families(args.steps)
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


def main_families(steps: int) -> int:
    torch.set_num_threads(1)
    print(f"every family / heat module, median of {steps} alternated steps (CPU, 1 thread, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}: a shared machine; ratios are taken within this run)")
    print(f"{'family':<12} {'train 2-D':>14} {'train 8x8':>14} {'sample 2-D':>14} {'marginal N=2':>14} "
          f"{'marginal N=3072':>14}")
    print(f"{'goal':<12} {'1.2 (Kac 1.3)':>14} {'1.2 (Kac 1.3)':>14} {'1.5':>14} {'5':>14} {'5':>14}")
    with tempfile.TemporaryDirectory() as directory:
        rows = family_costs(Path(directory), steps)
    record = {"torch": torch.__version__, "threads": 1, "steps": steps, "load_average": os.getloadavg(),
              "goals": FAMILY_GOALS, "rows": rows}
    out = RESULTS.with_name("train_step_families.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Probability paths (issue 10): Kac on the linear path against the ve path, diffusion and flow matching.

    python bench/paths.py --budget tiny     # ~4 min: moons, 1 seed, 300 steps (a smoke run)
    python bench/paths.py --budget small    # ~8 min: checkerboard, 8gaussians, moons, 3 seeds, 1000 steps
    python bench/paths.py --budget digits   # sklearn digits (8x8), 1 seed, 1000 steps, MLP-m, FD of a classifier

Models (same MLP, batch, steps, optimiser and EMA as bench/quality.py, via bench/methods.train_cached):
  kac-linear   `pde2gen build kac --path linear`: x_t = (1 - t) y + K_t, a = 9, c = 3 (the Kac-flow paper),
               model.LinearPathVelocityModel, t ~ U(0, 1], sampled in t on the uniform grid 1 -> 0;
  kac-linear-quadratic  the same with --path-schedule quadratic: x_t = (1 - t) y + K_(t^2);
  kac-ve       `pde2gen build kac` (x_t = y + K_t on EDM's sigma grid, the default path), as sample.py samples;
  heat-linear  `pde2gen build diffusion --path linear`: the scale-linear clock, i.e. flow matching with
               sigma_T = sigma_data (generated);
  heat-ve      `pde2gen build diffusion`;
  fm, edm      the flow-matching and EDM baselines of bench/methods.py.
Quality: sliced Wasserstein-1 to held-out data at NFE 5, 10, 20, 50 (Euler and Heun, bench/methods.sample).
Velocity bound (Kac, linear path): max |u_i| of the learned velocity along its own Euler trajectories (NFE 50) and at
forward draws x_t, against max|y|/T + c (exact fields: the generated tests check the bound).
Cost: training seconds per step and sampling seconds (Euler NFE 50, n samples) of kac-linear and heat-ve.

Writes bench/results/paths_<budget>.json and .md.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C
import methods as M
import quality as Q

BUDGETS = {
    "tiny": {"datasets": ("moons",), "seeds": (0,), "steps": 300, "batch": 256, "net": "mlp-s",
             "n_samples": 500, "nfes": (5, 10, 20, 50)},
    "small": {"datasets": ("checkerboard", "8gaussians", "moons"), "seeds": (0, 1, 2), "steps": 1000,
              "batch": 256, "net": "mlp-s", "n_samples": 1000, "nfes": (5, 10, 20, 50)},
    "digits": {"datasets": ("digits",), "seeds": (0,), "steps": 1000, "batch": 64, "net": "mlp-m",
               "n_samples": 500, "nfes": (5, 10, 20, 50)},
}
METRIC = {"digits": "fd"}  # the quality number per data set (bench/quality.metrics): sliced W1 on the toys
BUILDS = {  # name -> (catalog entry, path, build options)
    "kac-linear": ("kac", "linear"),
    "kac-linear-quadratic": ("kac", "linear", "quadratic"),
    "kac-ve": ("kac", "ve"),
    "heat-linear": ("diffusion", "linear"),
    "heat-ve": ("diffusion", "ve"),
}
LABELS = {"kac-linear": "Kac, linear path (paper)", "kac-linear-quadratic": "Kac, linear path, g = t^2", "kac-ve": "Kac, ve path", "heat-linear": "heat, linear path",
          "heat-ve": "heat, ve path", "fm": "flow matching (baseline)", "edm": "EDM (baseline)"}


class GeneratedLinear(M.Generated):
    """A module built with --path linear, trained and sampled as its train.py / sample.py do by default:
    LinearPathVelocityModel, linear_path_loss, dx/dt on Process.time_grid (uniform in t, T -> 0)."""

    model_class = "LinearPathVelocityModel"

    def loss(self, model, y, generator):
        return self.module.model.linear_path_loss(model, model.process, y, generator=generator)

    def grid(self, model, points):
        return model.process.time_grid(points)

    def velocity(self, model):
        return model.velocity


def build_modules() -> dict:
    """Each of BUILDS built from this working tree (in-process), cached by the compiler's source hash."""
    from pde2gen.build import build

    folder = C.CACHE / "paths" / C.worktree_hash()[:16]
    modules = {}
    for name, (entry, path, *schedule) in BUILDS.items():
        out = folder / name
        if not (out / "pde2gen.json").exists():
            build(entry, out, dim=2, path=path, path_schedule=schedule[0] if schedule else None)
        modules[name] = C.load_module(out)
    return modules


def velocity_bound(method, model, train_set, nfe, seed) -> dict:
    """max |u_i| of the learned velocity on its Euler trajectories and at forward draws, and the exact field's
    bound max|y|/T + c max g' (the Kac-flow paper's max|y|/T + c for g = t)."""
    process = model.process
    c = process.family_parameters["c"]
    rate = float(process.kernel_time_rate(process.time_grid(1001)).max())  # max g' (1 for g = t, 2 for t^2)
    bound = float(np.abs(train_set).max()) / process.t_max + c * rate
    seen = []

    def recording(x, t):
        v = model.velocity(x, t)
        seen.append(v.abs().max().item())
        return v

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = process.sample_prior(1000, generator=generator).float()
        process.sample_euler(recording, x, process.time_grid(nfe + 1))
        y = torch.from_numpy(train_set[:4000]).float()
        t = process.sample_train_time(len(y), generator=generator)
        forward = model.velocity(process.sample_xt(y, t, generator=generator), t).abs()
    return {"bound": bound, "ode_max": max(seen), "forward_max": float(forward.max()),
            "forward_frac_above": float((forward > bound).float().mean())}


def run(args) -> dict:
    budget = BUDGETS[args.budget]
    C.set_threads(args.threads)
    info = C.machine(args.threads)
    C.log(f"paths, budget {args.budget}: {C.machine_line(info)}")
    modules = build_modules()
    some = modules["heat-ve"]
    methods = [GeneratedLinear(n, LABELS[n], modules[n]) if BUILDS[n][1] == "linear"
               else M.Generated(n, LABELS[n], modules[n]) for n in BUILDS]
    methods += [M.FlowMatching(some.model.build_backbone), M.EDM(some.model.build_backbone)]
    config = M.TrainConfig(steps=budget["steps"], batch=budget["batch"])
    classifier = None
    if "digits" in budget["datasets"]:
        from digits_classifier import load_classifier

        classifier = load_classifier()
    rows = []
    for dataset in budget["datasets"]:
        for seed in budget["seeds"]:
            train_set, held_out, _ = Q.load_sets(some.train.load_data, dataset, seed, budget["n_samples"])
            backbone = M.backbone_configs(budget["net"], train_set.shape[1:])
            for method in methods:
                model, fit = M.train_cached(method, train_set, backbone, config, seed, label=method.name)
                row = {"method": method.name, "dataset": dataset, "seed": seed,
                       "train_s_per_step": fit["train_s"] / config.steps, "cached": fit["cached"], "quality": []}
                for solver in ("euler", "heun"):
                    for nfe in budget["nfes"]:
                        start = time.perf_counter()
                        samples = M.sample(method, model, budget["n_samples"], solver, nfe, seed=70_000 + seed)
                        elapsed = time.perf_counter() - start
                        row["quality"].append({"solver": solver, "nfe": nfe, "sample_s": elapsed,
                                               **Q.metrics(dataset, samples, held_out, classifier)})
                if method.name.startswith("kac-linear"):
                    row["velocity"] = velocity_bound(method, model, train_set, 50, seed)
                rows.append(row)
                metric = METRIC.get(dataset, "sw")
                euler20 = next(q[metric] for q in row["quality"] if q["solver"] == "euler" and q["nfe"] == 20)
                C.log(f"  {dataset} seed {seed} {method.name}: {metric} euler@20 {euler20:.4f}")
            C.write_json(C.RESULTS / f"paths_{args.budget}.json", payload(args, info, budget, rows, True))
    data = payload(args, info, budget, rows, False)
    C.write_json(C.RESULTS / f"paths_{args.budget}.json", data)
    return data


def payload(args, info, budget, rows, partial):
    return {"benchmark": "paths", "command": f"python bench/paths.py --budget {args.budget}",
            "budget": args.budget, "partial": partial, "machine": info,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in budget.items()}, "rows": rows}


def summary(values) -> str:
    """mean ± std over seeds (the mean alone for one value)."""
    mean, std = C.mean_std(values)
    return C.fmt(mean, std if len(values) > 1 else None)


def tables(data) -> str:
    s, rows = data["settings"], data["rows"]
    out = [f"Command: `{data['command']}`", "",
           C.describe_run(data["machine"], data["budget"], s["seeds"], {"steps": s["steps"],
                          "samples": s["n_samples"]}), ""]
    names = [n for n in LABELS if any(r["method"] == n for r in rows)]
    for dataset in s["datasets"]:
        metric = METRIC.get(dataset, "sw")
        what = {"sw": "sliced Wasserstein-1 to held-out data", "fd": "Frechet distance in a classifier's features"}
        out += [f"### {dataset}: {what[metric]} (lower is better)", ""]
        header = ["model", *[f"{solver} NFE {nfe}" for solver in ("euler", "heun") for nfe in s["nfes"]]]
        body = []
        for name in names:
            cells = []
            for solver in ("euler", "heun"):
                for nfe in s["nfes"]:
                    values = [q[metric] for r in rows if r["method"] == name and r["dataset"] == dataset
                              for q in r["quality"] if q["solver"] == solver and q["nfe"] == nfe]
                    cells.append(summary(values))
            body.append([LABELS[name], *cells])
        out += [C.markdown_table(header, body), ""]
    out += ["### Velocity bound of the learned Kac field (linear path): |u_i| <= max|y|/T + c max g'", ""]
    body = [[LABELS[r["method"]], r["dataset"], r["seed"], C.fmt(r["velocity"]["bound"]), C.fmt(r["velocity"]["ode_max"]),
             C.fmt(r["velocity"]["forward_max"]), C.fmt(r["velocity"]["forward_frac_above"])]
            for r in rows if "velocity" in r]
    out += [C.markdown_table(["model", "data", "seed", "bound", "max on Euler-50 ODE", "max at forward x_t",
                              "fraction of x_t coordinates above"], body), ""]
    out += [("### Cost: training seconds per step (timed when each model was first trained; models are cached), "
             "sampling seconds (Euler NFE 50, this run)"), ""]
    body = []
    for name in names:
        mine = [r for r in rows if r["method"] == name]
        train = [r["train_s_per_step"] for r in mine]  # cached models: timed when first trained
        sample = [q.get("sample_s") for r in mine for q in r["quality"] if q["solver"] == "euler" and q["nfe"] == 50]
        body.append([LABELS[name], summary(train), summary(sample)])
    out += [C.markdown_table(["model", "train s/step", "sample s"], body)]
    return "\n".join(out)


def main(argv=None) -> int:
    return C.benchmark_main("paths", __doc__, BUDGETS, run, tables, builds=True, argv=argv)


if __name__ == "__main__":
    sys.exit(main())

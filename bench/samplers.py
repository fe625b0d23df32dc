"""Samplers at equal cost from one trained network: the ODE (Euler, Heun) against the stochastic sampler with
the PDE's own noise (sample.py --sampler sde), for every catalog entry whose kernel is a convolution
semigroup.

    python bench/samplers.py --budget tiny      # ~5 min: diffusion and PFGM on moons and digits, 1 seed
    python bench/samplers.py --budget small     # the README table: 4 semigroup entries, 4 data sets, 2 seeds

Each entry's network is trained exactly as bench/quality.py trains it for the same budget (bench/methods.py:
same network, steps, batch, optimiser; models are cached and shared with the quality benchmark when the
compiler commit and settings agree). From that one network it draws samples with
  - Euler and Heun in the noise level sigma (sample.py's ODE default), NFE network evaluations;
  - process.sample_sde with churn S = 2 and S = 8 (EDM's Algorithm 2, gamma = min(S / steps, sqrt(2) - 1);
    the noise is an exact draw of the kernel's own increment K_(t_hat - t): Gaussian for diffusion, Cauchy
    for PFGM, alpha-stable for fractional diffusion, NIG for Yukawa), two evaluations per step,
at NFE 10, 20, 40 and 100. Metrics as in bench/quality.py (toys: sliced Wasserstein-1 and MMD^2 to held-out
data; digits: Frechet distance in the features of bench/digits_classifier.pt), with the data's own floor.
Entries whose kernel is not a semigroup (PFGM++ with finite D, Kac) have no such sampler and are left out.

The predict-project sampler of arXiv 2302.04411 is not measured here: pde2gen does not implement it yet.
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

NFES = (10, 20, 40, 100)
# gamma = min(churn / steps, sqrt(2) - 1) saturates at few steps: churn 2 and 8 stay apart from NFE 10 up
CHURNS = (2.0, 8.0)
BUDGETS = {
    "tiny": {"entries": ("diffusion", "pfgm"), "datasets": ("moons", "digits"), "seeds": (0,),
             "steps": {"toy": 300, "digits": 300}, "nfes": (10, 40)},
    "small": {"entries": ("diffusion", "pfgm", "fractional", "yukawa-light"), "datasets": Q.ALL_DATA,
              "seeds": (0, 1), "steps": {"toy": 1000, "digits": 1000}, "nfes": NFES},
}
SMALL_NET = Q.BUDGETS["small"]  # network, batch and sample counts of the quality benchmark's small budget


def draw(module, model, variant: str, nfe: int, n: int, seed: int) -> np.ndarray:
    """n samples with exactly nfe network evaluations: 'euler' / 'heun' (ODE in sigma) or 'sde-S' (churn S)."""
    process = model.process
    generator = torch.Generator().manual_seed(seed)
    if variant in ("euler", "heun"):
        return M.sample(M.Generated("", "", module), model, n, variant, nfe, seed=seed)
    churn = float(variant.split("-")[1])
    sigmas = process.sigma_grid(nfe // 2 + 1)
    with torch.no_grad():
        x = process.sample_prior(n, generator=generator).float()
        x = module.process.sample_sde(process, model.velocity, x, sigmas, churn=churn, generator=generator)
    return x.numpy()


def run(args) -> dict:
    budget = BUDGETS[args.budget]
    info, builds, modules = C.start_run("samplers", args, budget["entries"])
    semigroup = {name: mod for name, mod in modules.items() if getattr(mod.process, "SEMIGROUP", False)}
    skipped = sorted(set(modules) - set(semigroup))
    loader = next(iter(modules.values())).train.load_data
    classifier = None
    if "digits" in budget["datasets"]:
        from digits_classifier import load_classifier

        classifier = load_classifier()
    variants = ("euler", "heun", *(f"sde-{churn:g}" for churn in CHURNS))
    rows, floors = [], {}
    for dataset in budget["datasets"]:
        k = Q.kind(dataset)
        net_config = M.backbone_configs(SMALL_NET["net"][k], [1, 8, 8] if k == "digits" else [2])
        config = M.TrainConfig(steps=budget["steps"][k], batch=SMALL_NET["batch"][k])
        n_samples = SMALL_NET["n_samples"][k]
        for seed in budget["seeds"]:
            train_set, held_out, fresh = Q.load_sets(loader, dataset, seed, n_samples)
            floors.setdefault(dataset, []).append(Q.metrics(dataset, fresh, held_out, classifier))
            for name, module in semigroup.items():
                C.log(f"{name} on {dataset}, seed {seed}: train ({config.steps} steps), then sample")
                method = M.Generated(name, C.LABELS.get(name, name), module)
                model, train_info = M.train_cached(method, train_set, net_config, config, seed, label=name,
                                                   log_every=max(50, config.steps // 4))
                start = time.perf_counter()
                for variant in variants:
                    for nfe in budget["nfes"]:
                        samples = draw(module, model, variant, nfe, n_samples, seed=70_000 + seed)
                        rows.append({"entry": name, "dataset": dataset, "seed": seed, "sampler": variant,
                                     "nfe": nfe, **Q.metrics(dataset, samples, held_out, classifier)})
                C.log(f"  sampled in {time.perf_counter() - start:.0f} s (trained: {train_info.get('cached')})")
    data = {"benchmark": "samplers", "command": f"python bench/samplers.py --budget {args.budget}",
            "budget": args.budget, "machine": info, "settings": {**budget, "churns": CHURNS},
            "builds": builds, "not_semigroup": skipped, "rows": rows, "floors": floors}
    C.write_json(C.RESULTS / f"samplers_{args.budget}.json", data)
    return data


def tables(data) -> str:
    s = data["settings"]
    out = [f"Command: `{data['command']}`", "",
           C.describe_run(data["machine"], data["budget"], s["seeds"], {"steps": s["steps"]}), "",
           *C.build_failures(data["builds"])]
    if data["not_semigroup"]:
        out.append(f"Not semigroup kernels (no stochastic sampler, left out): {', '.join(data['not_semigroup'])}")
    variants = sorted({r["sampler"] for r in data["rows"]}, key=lambda v: (v.startswith("sde"), v))
    for dataset in s["datasets"]:
        metric = "fd" if dataset == "digits" else "sw"
        floor = C.mean_std([f.get(metric) for f in data["floors"].get(dataset, [])])[0]
        out += ["", f"**{dataset}**: {metric} (lower is better; mean over seeds), data floor {C.fmt(floor)}", ""]
        body = []
        for entry in dict.fromkeys(r["entry"] for r in data["rows"]):
            for variant in variants:
                cells = []
                for nfe in s["nfes"]:
                    values = [r.get(metric) for r in data["rows"] if (r["entry"], r["dataset"], r["sampler"],
                                                                       r["nfe"]) == (entry, dataset, variant, nfe)]
                    cells.append(C.fmt(*C.mean_std(values)))
                body.append([C.LABELS.get(entry, entry), variant, *cells])
        out.append(C.markdown_table(["entry", "sampler", *(f"NFE {n}" for n in s["nfes"])], body))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(C.benchmark_main("samplers", __doc__, BUDGETS, run, tables))

"""Samplers at equal cost from one trained network: the ODE (Euler, Heun) against the stochastic sampler with
the PDE's own noise (sample.py --sampler sde), for every catalog entry whose kernel is a convolution
semigroup, and, for the heat kernel, the predict and predict-project samplers of arXiv 2302.04411
(sample.py --sampler predict / predict-project).

    python bench/samplers.py --budget tiny      # ~5 min: diffusion and PFGM on moons and digits, 1 seed
    python bench/samplers.py --budget small     # the README table: 4 semigroup entries, 4 data sets, 2 seeds
                                                # (~20 min on 2 busy cores, 12 of them the exact-velocity check)

Each entry's network is trained exactly as bench/quality.py trains it for the same budget (bench/methods.py:
same network, steps, batch, optimiser; models are cached and shared with the quality benchmark when the
compiler commit and settings agree). From that one network it draws samples with
  - Euler and Heun in the noise level sigma (sample.py's ODE default), NFE network evaluations;
  - process.sample_sde with churn S = 2 and S = 8 (EDM's Algorithm 2, gamma = min(S / steps, sqrt(2) - 1);
    the noise is an exact draw of the kernel's own increment K_(t_hat - t): Gaussian for diffusion, Cauchy
    for PFGM, alpha-stable for fractional diffusion, NIG for Yukawa), two evaluations per step,
  - process.sample_ancestral ('ancestral': DLPM's sampler, arXiv 2407.18609, on the PDE's own process: the
    kernel's variance path drawn first, then Gaussian bridge steps towards the denoiser read off the velocity),
    NFE steps of one evaluation, for the kernels that are a Gaussian with a subordinator variance (all four here;
    exact denoiser for diffusion, PFGM and fractional, an approximation for Yukawa),
  - for the heat kernel (diffusion): predict, Euler-Maruyama on the reverse SDE (model.sample_predict without
    projection), NFE steps; predict-project with the projection network T_theta trained on that velocity
    network (model.projection_loss, as train.py --projection: same optimiser, batch and number of steps as the
    velocity network, cached beside it), at NFE / 2 steps (a velocity and a projection evaluation per step:
    equal cost) and at NFE steps ("predict-project 2x": equal steps, twice the evaluations; the paper compares
    steps),
at NFE 10, 20, 40 and 100; on moons (first seed) also Heun and the ancestral sampler with the exact marginal
velocity of the training set instead of the network (EXACT_CHECK: whether an error is the network's or the
sampler's). Metrics as in bench/quality.py (toys: sliced Wasserstein-1 and MMD^2 to held-out
data; digits: Frechet distance in the features of bench/digits_classifier.pt), with the data's own floor.
Entries whose kernel is not a semigroup (PFGM++ with finite D, Kac) have no such sampler and are left out.
"""
from __future__ import annotations

import copy
import math
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


PREDICT_VARIANTS = ("predict", "predict-project", "predict-project 2x")
# The ancestral sampler and Heun with the exact marginal velocity (no network) on moons, first seed: whether the
# ancestral rows' errors are the networks' or the method's.
EXACT_CHECK = {"dataset": "moons", "reference": 2000, "n": 1000, "nfes": (20, 100)}


def draw(module, model, variant: str, nfe: int, n: int, seed: int, projection=None) -> np.ndarray:
    """n samples with exactly nfe network evaluations: 'euler' / 'heun' (ODE in sigma), 'sde-S' (churn S),
    'ancestral' (nfe steps),
    'predict' / 'predict-project' (PREDICT_VARIANTS; 'predict-project 2x': nfe steps, 2 nfe evaluations)."""
    process = model.process
    generator = torch.Generator().manual_seed(seed)
    if variant in ("euler", "heun"):
        return M.sample(M.Generated("", "", module), model, n, variant, nfe, seed=seed)
    if variant in PREDICT_VARIANTS:
        steps = nfe // 2 if variant == "predict-project" else nfe
        with torch.no_grad():
            x = process.sample_prior(n, generator=generator).float()
            x = module.model.sample_predict(process, model.velocity, x, process.sigma_grid(steps + 1),
                                            projection if variant != "predict" else None, generator=generator)
        return x.numpy()
    if variant == "ancestral":
        with torch.no_grad():
            x = module.process.sample_ancestral(process, model.velocity, n, process.sigma_grid(nfe + 1),
                                                generator=generator)
        return x.numpy()
    churn = float(variant.split("-")[1])
    sigmas = process.sigma_grid(nfe // 2 + 1)
    with torch.no_grad():
        x = process.sample_prior(n, generator=generator).float()
        x = module.process.sample_sde(process, model.velocity, x, sigmas, churn=churn, generator=generator)
    return x.numpy()


def exact_velocity_rows(module, model, name: str, train_set: np.ndarray, held_out: np.ndarray, seed: int):
    """Heun (NFE / 2 steps) and the ancestral sampler (NFE steps) with process.marginal_velocity over the first
    EXACT_CHECK["reference"] training points instead of the network, float64, EXACT_CHECK["n"] samples."""
    process = copy.deepcopy(model.process).double()
    reference = torch.from_numpy(train_set[: EXACT_CHECK["reference"]]).double()

    def velocity(x, t):
        return process.marginal_velocity(x, t, reference)

    rows, n = [], EXACT_CHECK["n"]
    for nfe in EXACT_CHECK["nfes"]:
        generator = torch.Generator().manual_seed(80_000 + seed)
        with torch.no_grad():
            prior = process.sample_prior(n, generator=generator).double()
            heun = process.sample_heun(process.sigma_velocity(velocity), prior, process.sigma_grid(nfe // 2 + 1))
            ancestral = module.process.sample_ancestral(process, velocity, n, process.sigma_grid(nfe + 1),
                                                        dtype=torch.float64, generator=generator)
        for sampler, samples in (("heun", heun), ("ancestral", ancestral)):
            rows.append({"entry": name, "dataset": EXACT_CHECK["dataset"], "seed": seed, "sampler": sampler,
                         "nfe": nfe, **Q.metrics(EXACT_CHECK["dataset"], samples.numpy(), held_out)})
    return rows


def train_projection(module, model, samples: np.ndarray, net_config: dict, config: M.TrainConfig, seed: int,
                     velocity_key: str):
    """The projection network of predict-project on the (EMA) velocity network ``model``, trained as
    train.py --projection trains it (the velocity network's backbone config, AdamW, warm-up, clipping, EMA; the
    velocity run's settings and steps), cached on disk beside the velocity networks (keyed by the velocity
    network's cache key). Returns (EMA projection network, info)."""
    path = C.CACHE / "models" / f"{velocity_key}-projection.pt"
    sigma_data = M.data_statistics(samples)["sigma_data"]

    def make():
        weight = math.sqrt(module.model.diffusion_beta(model.process)) / 2
        return module.model.ProjectionModel(module.model.build_backbone(net_config), sigma_data,
                                            model.process.data_mean, weight).float()

    if path.exists():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        projection = make()
        projection.load_state_dict(stored["state_dict"])
        return projection.eval().requires_grad_(False), {**stored["info"], "cached": True}
    torch.manual_seed(seed + 1)
    projection = make()
    ema = copy.deepcopy(projection).requires_grad_(False)
    optimizer = torch.optim.AdamW(projection.parameters(), lr=config.lr, weight_decay=0.0)
    data = torch.from_numpy(samples).float()
    data_generator = torch.Generator().manual_seed(10_007 * seed + 3)
    process_generator = torch.Generator().manual_seed(10_007 * seed + 4)
    warmup = min(config.warmup, max(1, config.steps // 5))
    losses, start = [], time.perf_counter()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * min(1.0, (step + 1) / warmup)
        y = data[torch.randint(len(data), (config.batch,), generator=data_generator)]
        loss = module.model.projection_loss(projection, model.velocity, model.process, y, generator=process_generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(projection.parameters(), config.grad_clip)
        optimizer.step()
        M.update_ema(ema, projection, min(config.ema, (1 + step) / (10 + step)))
        losses.append(loss.item())
    info = {"train_s": time.perf_counter() - start, "first_loss": float(np.mean(losses[:50])),
            "final_loss": float(np.mean(losses[-max(1, len(losses) // 10):]))}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": ema.state_dict(), "info": info}, tmp)
    tmp.replace(path)
    return ema.eval(), {**info, "cached": False}


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
    rows, floors, projections, exact_rows = [], {}, [], []
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
                projection, entry_variants = None, variants
                if getattr(module.process, "SUBORDINATED", False):
                    entry_variants = (*entry_variants, "ancestral")
                if module.model.predict_refusal(model.process) is None:
                    key = M._cache_key(method, train_set, net_config, config, seed)
                    projection, projection_info = train_projection(module, model, train_set, net_config, config,
                                                                    seed, key)
                    projections.append({"entry": name, "dataset": dataset, "seed": seed, **projection_info})
                    C.log(f"  projection network: loss {projection_info['first_loss']:.4f} -> "
                          f"{projection_info['final_loss']:.4f} (cached: {projection_info['cached']})")
                    entry_variants = (*entry_variants, *PREDICT_VARIANTS)
                start = time.perf_counter()
                for variant in entry_variants:
                    for nfe in budget["nfes"]:
                        samples = draw(module, model, variant, nfe, n_samples, seed=70_000 + seed,
                                       projection=projection)
                        rows.append({"entry": name, "dataset": dataset, "seed": seed, "sampler": variant,
                                     "nfe": nfe, **Q.metrics(dataset, samples, held_out, classifier)})
                C.log(f"  sampled in {time.perf_counter() - start:.0f} s (trained: {train_info.get('cached')})")
                if ("ancestral" in entry_variants and dataset == EXACT_CHECK["dataset"]
                        and seed == budget["seeds"][0]):
                    start = time.perf_counter()
                    exact_rows += exact_velocity_rows(module, model, name, train_set, held_out, seed)
                    C.log(f"  exact-velocity check in {time.perf_counter() - start:.0f} s")
    data = {"benchmark": "samplers", "command": f"python bench/samplers.py --budget {args.budget}",
            "budget": args.budget, "machine": info, "settings": {**budget, "churns": CHURNS},
            "builds": builds, "not_semigroup": skipped, "rows": rows, "floors": floors,
            "projection_training": projections, "exact_velocity": exact_rows, "exact_check": EXACT_CHECK}
    C.write_json(C.RESULTS / f"samplers_{args.budget}.json", data)
    return data


def tables(data) -> str:
    s = data["settings"]
    out = [f"Command: `{data['command']}`", "",
           C.describe_run(data["machine"], data["budget"], s["seeds"], {"steps": s["steps"]}), "",
           *C.build_failures(data["builds"])]
    if data["not_semigroup"]:
        out.append(f"Not semigroup kernels (no stochastic sampler, left out): {', '.join(data['not_semigroup'])}")
    if any(r["sampler"] == "ancestral" for r in data["rows"]):
        out += ["", ("ancestral: DLPM's sampler (arXiv 2407.18609) on the PDE's own process (process.sample_ancestral): "
                     "the kernel's variance path drawn first, then NFE Gaussian bridge steps of one evaluation "
                     "towards the denoiser read off the velocity (exact for diffusion, PFGM, fractional; an "
                     "approximation for Yukawa).")]
    trained = data.get("projection_training", [])
    if trained:
        losses = ", ".join(f"{t['dataset']} {t['first_loss']:.3g} → {t['final_loss']:.3g}" for t in trained
                           if t["seed"] == data["settings"]["seeds"][0])
        out += ["", ("predict: Euler–Maruyama on the reverse SDE, NFE steps. predict-project (arXiv 2302.04411, "
                     "pde2gen's step sizes: model.py): NFE / 2 steps of a velocity and a projection evaluation "
                     "(equal cost); predict-project 2x: NFE steps, 2 NFE evaluations (equal steps, the paper's "
                     "comparison). Projection networks' training loss, first 50 steps → last 10% (seed "
                     f"{data['settings']['seeds'][0]}): {losses}.")]
    order = ("euler", "heun", "sde", "ancestral", "predict")  # the ODE, the churn, DLPM's, arXiv 2302.04411's
    variants = sorted({r["sampler"] for r in data["rows"]},
                      key=lambda v: (next(i for i, p in enumerate(order) if v.startswith(p)), v))
    for dataset in s["datasets"]:
        metric = "fd" if dataset == "digits" else "sw"
        floor = C.mean_std([f.get(metric) for f in data["floors"].get(dataset, [])])[0]
        out += ["", f"**{dataset}**: {metric} (lower is better; mean over seeds), data floor {C.fmt(floor)}", ""]
        body = []
        for entry in dict.fromkeys(r["entry"] for r in data["rows"]):
            for variant in variants:
                if not any((r["entry"], r["sampler"]) == (entry, variant) for r in data["rows"]):
                    continue
                cells = []
                for nfe in s["nfes"]:
                    values = [r.get(metric) for r in data["rows"] if (r["entry"], r["dataset"], r["sampler"],
                                                                       r["nfe"]) == (entry, dataset, variant, nfe)]
                    cells.append(C.fmt(*C.mean_std(values)))
                body.append([C.LABELS.get(entry, entry), variant, *cells])
        out.append(C.markdown_table(["entry", "sampler", *(f"NFE {n}" for n in s["nfes"])], body))
    exact = data.get("exact_velocity", [])
    if exact:
        check = data["exact_check"]
        out += ["", (f"**Exact velocity, no network** ({check['dataset']}, seed {exact[0]['seed']}: "
                     f"process.marginal_velocity over {check['reference']} training points, {check['n']} samples, "
                     "float64): sw")]
        body = [[C.LABELS.get(entry, entry), sampler,
                 *(C.fmt(next(r["sw"] for r in exact if (r["entry"], r["sampler"], r["nfe"]) == (entry, sampler, nfe)))
                   for nfe in check["nfes"])]
                for entry in dict.fromkeys(r["entry"] for r in exact) for sampler in ("heun", "ancestral")]
        out += ["", C.markdown_table(["entry", "sampler", *(f"NFE {n}" for n in check["nfes"])], body)]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(C.benchmark_main("samplers", __doc__, BUDGETS, run, tables))

"""The Kac-flow claims: velocities bounded by the speed c (|v_i| <= c per coordinate), and quality at few steps.

    python bench/kac.py --budget tiny     # ~3 min: moons, 2 seeds, 100 steps (a smoke run)
    python bench/kac.py --budget small    # the README numbers: checkerboard and moons, 3 seeds

Models: the catalog entries kac (a = 9, c = 3, the published setting) and kac-a25-c2 (a = 25, c = 2), the
diffusion entry, and the EDM and flow-matching baselines of bench/methods.py, all trained as in
bench/quality.py (same network, steps, batch; shared through the model cache).

Velocity bound, per coordinate, for each Kac entry:
  exact conditional : the training target u of Process.sample_location_and_conditional_flow at training times
                      (20000 draws), and the posterior-mean conditional velocity Process.velocity;
  exact marginal    : Process.marginal_velocity over 500 training points at forward samples x_t on the 20 times
                      of Process.time_grid(20);
  learned           : the trained network's velocity dx/dt at the same forward samples, and along its own ODE
                      trajectories (Euler and Heun, NFE 20, in sigma as sample.py integrates by default).
Reported: max |v_i| and the fraction of coordinates with |v_i| > c (exact: 0 expected; learned: nothing enforces
it). The same statistics of the diffusion entry's learned velocity show what an unbounded field looks like.

Few steps: sliced Wasserstein-1 to held-out data at NFE 2, 3, 5, 10, 20 (Euler, Heun), the generated models
both in sigma (as sample.py by default) and in the PDE time t (sample.py --variable t).

Writes bench/results/kac_<budget>.json, .md and kac_<budget>.png.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C
import methods as M
import quality as Q

KAC = ("kac", "kac-a25-c2")
OTHERS = ("diffusion",)
BUDGETS = {
    # steps, batch, network and samples are bench/quality.py's for the same budget (the models are shared)
    "tiny": {"datasets": ("moons",), "seeds": (0, 1), "nfes": (2, 5, 10), "n_target": 4000},
    "small": {"datasets": ("checkerboard", "moons"), "seeds": (0, 1, 2), "nfes": (2, 3, 5, 10, 20),
              "n_target": 20000},
}


class Recording:
    """A generated method whose every evaluation also records |dx/dt| (per coordinate) at that point: along
    trajectories in sigma (the default sampler) that is dx/dsigma times dsigma/dt at t(sigma)."""

    def __init__(self, method, store):
        self._method, self._store = method, store

    def __getattr__(self, name):
        return getattr(self._method, name)

    def velocity(self, model):
        base = self._method.velocity(model)
        in_time = isinstance(self._method, M.GeneratedInTime)

        def recorded(x, s):
            v = base(x, s)
            if in_time:
                velocity_in_t = v
            else:  # undo sigma_velocity's division: dx/dt = dx/dsigma * dsigma/dt, no second network call
                rate = model.process.dsigma_dt(model.process.t_of_sigma(s.double()))
                velocity_in_t = v * rate.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
            self._store.append(velocity_in_t.detach().abs().reshape(-1).float())
            return v

        return recorded


def bound_stats(values: torch.Tensor, c: float) -> dict:
    values = values.reshape(-1).float()
    finite = torch.isfinite(values)
    v = values[finite]
    return {"max": float(v.max()) if len(v) else float("nan"),
            "p999": float(torch.quantile(v[:1_000_000], 0.999)) if len(v) else float("nan"),
            "frac_above_c": float((v > c * (1 + 1e-5)).float().mean()) if c else None,
            "nonfinite": int((~finite).sum()), "count": int(values.numel())}


@torch.no_grad()
def velocity_checks(module, model, train_set, c, n_target, seed) -> dict:
    process = model.process
    g = torch.Generator().manual_seed(seed + 123)
    data = torch.from_numpy(train_set).float()
    y = data[torch.randint(len(data), (n_target,), generator=g)]
    t = process.sample_train_time(n_target, generator=g)
    x, u = process.sample_location_and_conditional_flow(y, t, generator=g)
    out = {"exact_conditional": bound_stats(u, c), "exact_posterior_conditional": bound_stats(
        process.velocity(x, y, t), c)}
    reference = data[torch.randint(len(data), (500,), generator=g)]
    marginal, learned = [], []
    for time in process.time_grid(20):
        y = data[torch.randint(len(data), (500,), generator=g)]
        x = process.sample_xt(y, float(time), generator=g)
        marginal.append(process.marginal_velocity(x, float(time), reference).abs().reshape(-1))
        learned.append(model.velocity(x, torch.full((len(x),), float(time))).abs().reshape(-1))
    out["exact_marginal"] = bound_stats(torch.cat(marginal), c)
    out["learned_forward"] = bound_stats(torch.cat(learned), c)
    return out


def run(args):
    qb = Q.BUDGETS[args.budget]
    budget = {**BUDGETS[args.budget], "steps": qb["steps"]["toy"], "n_samples": qb["n_samples"]["toy"]}
    info, builds, modules = C.start_run("kac", args, KAC + OTHERS)
    if not any(name in modules for name in KAC):
        raise SystemExit("no Kac entry could be built; see the build errors above")
    some = next(iter(modules.values()))
    methods = [M.Generated(n, C.LABELS[n], modules[n]) for n in KAC + OTHERS if n in modules]
    methods += [M.EDM(some.model.build_backbone), M.FlowMatching(some.model.build_backbone)]
    rows = []
    for dataset in budget["datasets"]:
        net_config = M.backbone_configs(qb["net"]["toy"], [2])
        config = M.TrainConfig(steps=budget["steps"], batch=qb["batch"]["toy"])
        for seed in budget["seeds"]:
            train_set, held_out, _ = Q.load_sets(some.train.load_data, dataset, seed, budget["n_samples"])
            for method in methods:
                C.log(f"{dataset} seed {seed}: {method.name}")
                model, train_info = M.train_cached(method, train_set, net_config, config, seed, label=method.name,
                                                   log_every=max(50, config.steps // 4))
                row = {"method": method.name, "dataset": dataset, "seed": seed, "cached_model": train_info["cached"],
                       "quality": []}
                generated = isinstance(method, M.Generated)
                c = float(method.module.config["parameters"].get("c", 0)) if method.name in KAC else 0.0
                if generated:
                    row["c"] = c
                    row["velocity"] = velocity_checks(method.module, model, train_set, c, budget["n_target"], seed)
                    trajectories = {}
                    for solver in ("euler", "heun"):
                        store = []
                        M.sample(Recording(method, store), model, 500, solver, 20, seed=90_000 + seed)
                        trajectories[solver] = bound_stats(torch.cat(store), c)
                    row["velocity"]["learned_ode"] = trajectories
                variants = [(method, "")] + ([(M.GeneratedInTime(method), "-t")] if generated else [])
                for sampler, suffix in variants:
                    for solver in ("euler", "heun"):
                        for nfe in budget["nfes"]:
                            samples = M.sample(sampler, model, budget["n_samples"], solver, nfe, seed=80_000 + seed)
                            row["quality"].append({"solver": solver + suffix, "nfe": nfe,
                                                   **Q.metrics(dataset, samples, held_out)})
                rows.append(row)
                if generated:
                    v = row["velocity"]
                    C.log(f"  c = {c}: max |u_i| exact {v['exact_conditional']['max']:.4g}, marginal "
                          f"{v['exact_marginal']['max']:.4g}, learned {v['learned_forward']['max']:.4g} "
                          f"(ODE heun {v['learned_ode']['heun']['max']:.4g})")
                C.write_json(C.RESULTS / f"kac_{args.budget}.json", payload(args, info, budget, builds, rows, True))
    data = payload(args, info, budget, builds, rows, False)
    C.write_json(C.RESULTS / f"kac_{args.budget}.json", data)
    return data


def payload(args, info, budget, builds, rows, partial):
    return {"benchmark": "kac", "command": f"python bench/kac.py --budget {args.budget}", "budget": args.budget,
            "partial": partial, "machine": info,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in budget.items()},
            "builds": builds, "rows": rows}


def label(name):
    return {"fm": "flow matching (baseline)", "edm": "EDM (baseline)"}.get(name, C.LABELS.get(name, name))


def tables(data) -> str:
    s = data["settings"]
    rows = data["rows"]
    out = [f"Command: `{data['command']}`", "",
           C.describe_run(data["machine"], data["budget"], s["seeds"], {"steps": s["steps"],
                          "samples": s["n_samples"]}), ""]
    out += C.build_failures(data["builds"])
    out.append("")
    header = ["model", "c", "exact target max", "exact posterior max", "exact marginal max",
              "learned (forward x_t) max", "learned p99.9", "learned frac > c", "learned on Euler ODE max",
              "learned on Heun ODE max", "Heun ODE frac > c"]
    body = []
    for name in (*KAC, *OTHERS):
        rs = [r for r in rows if r["method"] == name and "velocity" in r]
        if not rs:
            continue

        def agg(path, key, rs=rs):
            values = []
            for r in rs:
                node = r["velocity"]
                for p in path:
                    node = node[p]
                values.append(node[key])
            return C.fmt(*C.mean_std(values))

        c = rs[0]["c"]
        body.append([label(name), c if c else "-", agg(["exact_conditional"], "max"),
                     agg(["exact_posterior_conditional"], "max"), agg(["exact_marginal"], "max"),
                     agg(["learned_forward"], "max"), agg(["learned_forward"], "p999"),
                     agg(["learned_forward"], "frac_above_c") if c else "-",
                     agg(["learned_ode", "euler"], "max"), agg(["learned_ode", "heun"], "max"),
                     agg(["learned_ode", "heun"], "frac_above_c") if c else "-"])
    out += [("**Velocity bound** |v_i| <= c (per coordinate, max over all points), mean ± std over data sets and "
            "seeds; the diffusion row has no bound"), "", C.markdown_table(header, body), ""]
    order = [n for n in (*KAC, *OTHERS, "edm", "fm") if any(r["method"] == n for r in rows)]
    for dataset in s["datasets"]:
        solvers = ("euler", "heun")
        header = ["model"] + [f"{sv} {n}" for sv in solvers for n in s["nfes"]]
        body = []
        for suffix in ("", "-t"):
            for name in order:
                if suffix and name in ("edm", "fm"):
                    continue
                cells = [label(name) + (" [in t]" if suffix else "")]
                for solver in solvers:
                    for nfe in s["nfes"]:
                        values = [q["sw"] for r in rows if r["method"] == name and r["dataset"] == dataset
                                  for q in r["quality"] if q["solver"] == solver + suffix and q["nfe"] == nfe]
                        cells.append(C.fmt(*C.mean_std(values)))
                body.append(cells)
        out += [f"**{dataset}**, few steps: sliced Wasserstein-1 to held-out data, mean ± std over seeds", "",
                C.markdown_table(header, body), ""]
    return "\n".join(out)


def figure(data, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    s = data["settings"]
    figure, axes = pyplot.subplots(1, len(s["datasets"]), figsize=(5 * len(s["datasets"]), 3.8), squeeze=False)
    order = [n for n in (*KAC, *OTHERS, "edm", "fm") if any(r["method"] == n for r in data["rows"])]
    for axis, dataset in zip(axes[0], s["datasets"]):
        for i, name in enumerate(order):
            for suffix, ls in (("", "-"), ("-t", ":")):
                if suffix and name in ("edm", "fm"):
                    continue
                means = [C.mean_std([q["sw"] for r in data["rows"] if r["method"] == name and r["dataset"] == dataset
                                     for q in r["quality"] if q["solver"] == "heun" + suffix and q["nfe"] == n])[0]
                         for n in s["nfes"]]
                axis.plot(s["nfes"], means, ls=ls, marker="o", ms=3, color=f"C{i}",
                          label=label(name) + (" [in t]" if suffix else ""))
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(s["nfes"], [str(n) for n in s["nfes"]])
        axis.set_xlabel("NFE (Heun)")
        axis.set_ylabel("sliced W1")
        axis.set_title(dataset)
    axes[0][-1].legend(fontsize=7)
    C.save_figure(figure, path)
    pyplot.close(figure)


def main(argv=None) -> int:
    return C.benchmark_main("kac", __doc__, BUDGETS, run, tables, figure, argv=argv)


if __name__ == "__main__":
    sys.exit(main())

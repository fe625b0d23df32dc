"""Robustness of PFGM++ to a perturbed sampler (the PFGM++ claim: smaller D degrades more slowly), D = 1, 4, 128, inf.

    python bench/robustness.py --budget tiny     # ~3-4 min: moons, 2 seeds, 100 steps (a smoke run)
    python bench/robustness.py --budget small    # the README numbers: checkerboard, 8gaussians, digits, 3 seeds

Models: the catalog entries pfgm (D = 1), pfgmpp-d4, pfgmpp (D = 128) and pfgmpp-dinf (the D -> infinity limit,
the heat equation), built with ``pde2gen build`` and trained exactly as in bench/quality.py (same network, steps,
batch; trained models are shared through the cache of bench/methods.train_cached). As in PFGM++ every D is
sampled with the same ODE in sigma (r = sigma sqrt(D)): dx/dsigma on EDM's sigma grid, the default of each
module's sample.py (bench/methods.Generated).

Perturbations, one at a time, from the reference sampler Heun with NFE 20 (10 steps):
  steps   : Euler with NFE 2, 3, 5, 10, 20, 50 (reference: Euler NFE 50);
  noise   : after each Heun step x += alpha sigma_next eps, alpha = 0.05, 0.1, 0.2, 0.4 (Gaussian noise injected
            into the ODE, relative to the current noise level);
  weights : every parameter tensor of the EMA network rounded to b-bit symmetric uniform levels, b = 8, 6, 5, 4, 3.
Metric: sliced Wasserstein-1 to held-out data (2-D) or the classifier Frechet distance (digits); degradation =
metric(perturbed) / metric(reference), mean and spread over seeds (a per-seed ratio).

Writes bench/results/robustness_<budget>.json, .md and robustness_<budget>.png.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C
import methods as M
import quality as Q

ENTRIES = (("pfgm", "1"), ("pfgmpp-d4", "4"), ("pfgmpp", "128"), ("pfgmpp-dinf", "inf"))
BUDGETS = {
    # steps, batch, network and samples are bench/quality.py's for the same budget (the models are shared)
    "tiny": {"datasets": ("moons",), "seeds": (0, 1), "euler_nfes": (2, 5, 20), "alphas": (0.1, 0.4),
             "bits": (8, 4)},
    "small": {"datasets": ("checkerboard", "8gaussians", "digits"), "seeds": (0, 1, 2),
              "euler_nfes": (2, 3, 5, 10, 20, 50), "alphas": (0.05, 0.1, 0.2, 0.4), "bits": (8, 6, 5, 4, 3)},
}
REFERENCE = ("heun", 20)


def run(args):
    quality_budget = Q.BUDGETS[args.budget]
    budget = {**BUDGETS[args.budget], "steps": quality_budget["steps"], "n_samples": quality_budget["n_samples"]}
    info, builds, modules = C.start_run("robustness", args, [e for e, _ in ENTRIES])
    if not modules:
        raise SystemExit("none of the PFGM++ entries could be built; see the build errors above")
    loader = next(iter(modules.values())).train.load_data
    classifier = None
    if "digits" in budget["datasets"]:
        from digits_classifier import load_classifier

        classifier = load_classifier()
    rows = []
    for dataset in budget["datasets"]:
        k = Q.kind(dataset)
        net_config = M.backbone_configs(quality_budget["net"][k], [1, 8, 8] if k == "digits" else [2])
        config = M.TrainConfig(steps=budget["steps"][k], batch=quality_budget["batch"][k])
        n = budget["n_samples"][k]
        metric = "fd" if k == "digits" else "sw"
        for seed in budget["seeds"]:
            train_set, held_out, _ = Q.load_sets(loader, dataset, seed, n)
            for name, D in ENTRIES:
                if name not in modules:
                    continue
                method = M.Generated(name, f"D={D}", modules[name])
                C.log(f"{dataset} seed {seed}: D = {D} ({name})")
                model, train_info = M.train_cached(method, train_set, net_config, config, seed, label=name,
                                                   log_every=max(50, config.steps // 4))
                sampler = method
                context = (sampler, n, seed, dataset, held_out, classifier, metric)

                def measure(solver, nfe, alpha=0.0, net=model, context=context):
                    return _measure(*context, net, solver, nfe, alpha)

                row = {"entry": name, "D": D, "dataset": dataset, "seed": seed, "metric": metric,
                       "cached_model": train_info["cached"]}
                row["reference"] = measure(*REFERENCE)
                row["steps"] = {str(nfe): measure("euler", nfe) for nfe in budget["euler_nfes"]}
                row["noise"] = {str(a): measure(*REFERENCE, alpha=a) for a in budget["alphas"]}
                row["bits"] = {}
                for bits in budget["bits"]:
                    quantised = M.quantize_(__import__("copy").deepcopy(model), bits)
                    row["bits"][str(bits)] = measure(*REFERENCE, net=quantised)
                rows.append(row)
                C.log(f"  reference {metric} {row['reference']:.4g}; euler {max(budget['euler_nfes'])}: "
                      f"{row['steps'][str(max(budget['euler_nfes']))]:.4g}; noise {max(budget['alphas'])}: "
                      f"{row['noise'][str(max(budget['alphas']))]:.4g}; {min(budget['bits'])} bits: "
                      f"{row['bits'][str(min(budget['bits']))]:.4g}")
                C.write_json(C.RESULTS / f"robustness_{args.budget}.json", payload(args, info, budget, builds,
                                                                                 rows, partial=True))
    data = payload(args, info, budget, builds, rows, partial=False)
    C.write_json(C.RESULTS / f"robustness_{args.budget}.json", data)
    return data


def _measure(sampler, n, seed, dataset, held_out, classifier, metric, net, solver, nfe, alpha):
    samples = M.sample(sampler, net, n, solver, nfe, seed=70_000 + seed, noise_alpha=alpha)
    return Q.metrics(dataset, samples, held_out, classifier).get(metric)


def payload(args, info, budget, builds, rows, partial):
    return {"benchmark": "robustness", "command": f"python bench/robustness.py --budget {args.budget}",
            "budget": args.budget, "partial": partial, "machine": info,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in budget.items()},
            "reference_sampler": list(REFERENCE), "builds": builds, "rows": rows}


def ratios(rows, entry, dataset, group, level, baseline="reference"):
    values = []
    for r in rows:
        if r["entry"] == entry and r["dataset"] == dataset and r.get(baseline) and group in r:
            reference = r[baseline] if baseline == "reference" else None
            value = r[group].get(level)
            if value is not None and reference and math.isfinite(value):
                values.append(value / reference)
    return C.mean_std(values)


def tables(data) -> str:
    s = data["settings"]
    rows = data["rows"]
    out = [f"Command: `{data['command']}`", "",
           C.describe_run(data["machine"], data["budget"], s["seeds"], {"steps": s["steps"],
                          "samples": s["n_samples"], "reference sampler": "Heun NFE 20 in sigma"}), ""]
    out += C.build_failures(data["builds"])
    out.append("")
    entries = [(e, D) for e, D in ENTRIES if any(r["entry"] == e for r in rows)]
    for dataset in s["datasets"]:
        metric = "FD" if dataset == "digits" else "SW"
        header = ["D", f"reference {metric}"]
        header += [f"Euler {n}" for n in s["euler_nfes"]]
        header += [f"noise {a}" for a in s["alphas"]]
        header += [f"{b} bits" for b in s["bits"]]
        body = []
        for entry, D in entries:
            ref = C.mean_std([r["reference"] for r in rows if r["entry"] == entry and r["dataset"] == dataset])
            cells = [D, C.fmt(*ref)]
            for group, levels in (("steps", s["euler_nfes"]), ("noise", s["alphas"]), ("bits", s["bits"])):
                cells += [C.fmt(*ratios(rows, entry, dataset, group, str(level)), digits=3) for level in levels]
            body.append(cells)
        out += [(f"**{dataset}**: reference {metric} (Heun NFE 20), then {metric}(perturbed) / {metric}(reference), "
                "mean ± std over seeds (1 = no degradation)"), "", C.markdown_table(header, body), ""]
    out += verdict_lines(data)
    return "\n".join(out)


def verdict_lines(data) -> list[str]:
    """At the strongest level of each perturbation, the order of D by mean degradation (most robust first)."""
    s = data["settings"]
    lines = [("**Does smaller D degrade more slowly?** (order of D by degradation at the strongest level, most "
             "robust first; per data set)"), ""]
    for group, level in (("steps", str(min(s["euler_nfes"]))), ("noise", str(max(s["alphas"]))),
                         ("bits", str(min(s["bits"])))):
        parts = []
        for dataset in s["datasets"]:
            scored = []
            for entry, D in ENTRIES:
                mean = ratios(data["rows"], entry, dataset, group, level)[0]
                if math.isfinite(mean):
                    scored.append((mean, D))
            scored.sort()
            parts.append(f"{dataset}: " + " < ".join(f"D={D} ({m:.2f})" for m, D in scored))
        lines.append(f"- {group} = {level}: " + "; ".join(parts))
    return lines + [""]


def figure(data, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    s = data["settings"]
    groups = (("steps", s["euler_nfes"], "Euler NFE"), ("noise", s["alphas"], "injected noise alpha"),
              ("bits", s["bits"], "weight bits"))
    figure, axes = pyplot.subplots(len(s["datasets"]), 3, figsize=(12, 3.2 * len(s["datasets"])), squeeze=False)
    for r, dataset in enumerate(s["datasets"]):
        for c, (group, levels, xlabel) in enumerate(groups):
            axis = axes[r][c]
            for i, (entry, D) in enumerate(ENTRIES):
                stats = [ratios(data["rows"], entry, dataset, group, str(level)) for level in levels]
                means = np.array([m for m, _ in stats])
                if not np.isfinite(means).any():
                    continue
                stds = np.array([sd for _, sd in stats])
                axis.errorbar(levels, means, yerr=stds, marker="o", ms=3, capsize=2, label=f"D={D}")
            axis.set_yscale("log")
            if group == "steps":
                axis.set_xscale("log")
            if group == "bits":
                axis.invert_xaxis()
            # Plain tick labels at the measured levels: log axes' minor labels overlap at this size.
            axis.set_xticks(levels, [str(level) for level in levels])
            axis.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            axis.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
            axis.tick_params(axis="y", which="minor", labelsize=7)
            axis.xaxis.set_minor_formatter(ticker.NullFormatter())
            axis.axhline(1, color="0.6", lw=0.8)
            axis.set_xlabel(xlabel)
            axis.set_ylabel("metric / reference")
            axis.set_title(f"{dataset}: {xlabel}", fontsize=9)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    C.save_figure(figure, path)
    pyplot.close(figure)


def main(argv=None) -> int:
    return C.benchmark_main("robustness", __doc__, BUDGETS, run, tables, figure, argv=argv)


if __name__ == "__main__":
    sys.exit(main())

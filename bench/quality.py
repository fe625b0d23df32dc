"""Quality at equal cost: every s-generative catalog entry against flow matching and EDM, same network and budget.

    python bench/quality.py --budget tiny      # ~3-4 min: 3 entries + 2 baselines, moons + digits, 2 seeds,
                                               #   100 steps, NFE 5 and 20 only (a smoke run, not results)
    python bench/quality.py --budget small     # the README numbers (all entries, 4 data sets, 3 seeds)
    python bench/quality.py --budget full      # default networks, 10k steps, 5 seeds (hours on CPU)

Each catalog entry is built with ``python -m pde2gen build NAME`` (cached per compiler-source hash; a failed
build is recorded and reported, not worked around) and trained through the generated module's Python API
(model.VelocityModel, model.flow_matching_loss, Process) with the loop of its train.py; the two baselines
(bench/methods.py: flow matching with the straight interpolant, EDM) use the same backbone class and size,
optimiser, warm-up, clipping, EMA, steps and batch, in the same run. Every model is sampled with Euler and
Heun at NFE 5, 10, 20, 50 (exactly that many network evaluations); the generated ones as their sample.py does
by default (in the noise level sigma), and also in the PDE time t (sample.py --variable t) for comparison.

Metrics: 2-D toys (checkerboard, 8gaussians, moons): sliced Wasserstein-1 and MMD^2 (pde2gen.report.metrics) between
the samples and held-out data; digits: Frechet distance in the 64-d feature space of bench/digits_classifier.pt
to the 360 held-out images, and that classifier's label entropy. Each table also has a "data" row: fresh data
of the same size against the same held-out set (the floor a perfect model would reach).

Writes bench/results/quality_<budget>.json (every row), quality_<budget>.md (tables) and figures
quality_<budget>_nfe.png, quality_<budget>_samples.png, quality_<budget>_digits.png. ``--resume`` keeps the
rows of an earlier run of the same budget and settings and trains only what is missing.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C
import methods as M

TOYS = ("checkerboard", "8gaussians", "moons")
ALL_DATA = (*TOYS, "digits")
SOLVERS = ("heun", "euler")
TIME_SUFFIX = "-t"  # the generated networks integrated in the PDE time t instead of sigma (methods.GeneratedInTime)
NFES = (5, 10, 20, 50)

BUDGETS = {
    "tiny": {
        "entries": ("diffusion", "pfgm", "kac"), "datasets": ("moons", "digits"), "seeds": (0, 1),
        "steps": {"toy": 100, "digits": 100}, "batch": {"toy": 256, "digits": 64},
        "net": {"toy": "mlp-s", "digits": "mlp-m"}, "n_samples": {"toy": 500, "digits": 300},
        "nfes": (5, 20),
    },
    "small": {
        "entries": tuple(name for name, _ in C.ENTRIES), "datasets": ALL_DATA, "seeds": (0, 1, 2),
        "steps": {"toy": 1000, "digits": 1000}, "batch": {"toy": 256, "digits": 64},
        "net": {"toy": "mlp-s", "digits": "mlp-m"}, "n_samples": {"toy": 1000, "digits": 500},
        "nfes": NFES,
    },
    "full": {
        "entries": tuple(name for name, _ in C.ENTRIES), "datasets": ALL_DATA, "seeds": (0, 1, 2, 3, 4),
        "steps": {"toy": 10000, "digits": 20000}, "batch": {"toy": 512, "digits": 128},
        "net": {"toy": "mlp-default", "digits": "unet-default"}, "n_samples": {"toy": 4000, "digits": 2000},
        "nfes": NFES,
    },
}
N_HELD_OUT_TOY = 2000
N_TRAIN_TOY = 20000
HELD_OUT_SEED = 987654
PLOT_SOLVER, PLOT_NFE = "heun", 20


def kind(dataset: str) -> str:
    return "digits" if dataset == "digits" else "toy"


def load_sets(loader, dataset: str, seed: int, n_samples: int):
    """(training samples, held-out samples, fresh data of n_samples for the floor)."""
    if dataset == "digits":
        from digits_classifier import digits_split

        train, _, test, _ = digits_split()
        pick = np.random.default_rng(555).choice(len(train), min(n_samples, len(train)), replace=False)
        return train, test, train[pick]
    train = loader(dataset, seed=1000 + seed, n_toy=N_TRAIN_TOY)
    held_out = loader(dataset, seed=HELD_OUT_SEED, n_toy=N_HELD_OUT_TOY)
    fresh = loader(dataset, seed=555, n_toy=n_samples)
    return train, held_out, fresh


def metrics(dataset: str, samples: np.ndarray, held_out: np.ndarray, classifier=None) -> dict:
    from pde2gen.report.metrics import mmd_rbf, sliced_wasserstein

    flat = samples.reshape(len(samples), -1)
    finite = np.isfinite(flat).all(axis=1)
    out = {"nonfinite": int((~finite).sum())}
    if dataset == "digits":
        from digits_classifier import digit_metrics

        return {**out, **digit_metrics(samples, held_out, classifier)}
    good = samples[finite]
    if len(good) < 10:
        return {**out, "sw": float("nan"), "mmd": float("nan")}
    return {**out, "sw": sliced_wasserstein(good, held_out, projections=128),
            "mmd": mmd_rbf(good, held_out)}


def make_methods(entries, builds, modules):
    some = next(iter(modules.values()))
    methods = [M.Generated(name, C.LABELS.get(name, name), modules[name]) for name in entries if name in modules]
    methods += [M.FlowMatching(some.model.build_backbone), M.EDM(some.model.build_backbone)]
    return methods


def run(args) -> dict:
    budget = dict(BUDGETS[args.budget])
    if args.entries:
        budget["entries"] = tuple(args.entries.split(","))
    if args.datasets:
        budget["datasets"] = tuple(args.datasets.split(","))
    if args.seeds:
        budget["seeds"] = tuple(int(s) for s in args.seeds.split(","))
    if args.steps:
        budget["steps"] = {"toy": args.steps, "digits": args.steps}
    out_json = C.RESULTS / f"quality_{args.budget}.json"
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in budget.items()}
    previous = {}
    if args.resume and out_json.exists():
        import json

        old = json.loads(out_json.read_text())
        if old.get("settings") == settings:
            previous = {(r["method"], r["dataset"], r["seed"]): r for r in old["rows"]}
            C.log(f"resuming: {len(previous)} trained models kept from {out_json.name}")
    info, builds, modules = C.start_run("quality", args, budget["entries"])
    if not modules:
        raise SystemExit("no catalog entry could be built; see the build errors above")
    loader = next(iter(modules.values())).train.load_data
    methods = make_methods(budget["entries"], builds, modules)
    classifier = None
    if "digits" in budget["datasets"]:
        from digits_classifier import load_classifier

        classifier = load_classifier()

    rows, floors = list(previous.values()), {}
    plot_path = C.RESULTS / f"quality_{args.budget}_plot_samples.npz"
    plots = {}
    if previous and plot_path.exists():
        with np.load(plot_path) as stored:
            plots = {tuple(key.split("|")): stored[key].astype(np.float32) for key in stored.files}
    total = len(methods) * len(budget["datasets"]) * len(budget["seeds"])
    done = 0
    started = time.perf_counter()
    for dataset in budget["datasets"]:
        k = kind(dataset)
        net_config = M.backbone_configs(budget["net"][k], [1, 8, 8] if k == "digits" else [2])
        config = M.TrainConfig(steps=budget["steps"][k], batch=budget["batch"][k])
        n_samples = budget["n_samples"][k]
        for seed in budget["seeds"]:
            train_set, held_out, fresh = load_sets(loader, dataset, seed, n_samples)
            floors.setdefault(dataset, []).append(metrics(dataset, fresh, held_out, classifier))
            for method in methods:
                done += 1
                key = (method.name, dataset, seed)
                if key in previous:
                    continue
                C.log(f"[{done}/{total}] train {method.name} on {dataset}, seed {seed} "
                      f"({config.steps} steps, batch {config.batch}, {budget['net'][k]})")
                row = {"method": method.name, "label": method.label, "dataset": dataset, "seed": seed}
                try:
                    model, train_info = M.train_cached(method, train_set, net_config, config, seed,
                                                label=method.name, log_every=max(50, config.steps // 4))
                except (FloatingPointError, RuntimeError, ValueError) as error:
                    C.log(f"  training failed: {type(error).__name__}: {error}")
                    rows.append({**row, "error": f"{type(error).__name__}: {error}", "results": []})
                    continue
                row.update(train_info)
                results = []
                sample_start = time.perf_counter()
                variants = [(method, "")]
                if isinstance(method, M.Generated):
                    variants.append((M.GeneratedInTime(method), TIME_SUFFIX))
                for sampler, suffix in variants:
                    for solver in SOLVERS:
                        for nfe in budget["nfes"]:
                            try:
                                samples = M.sample(sampler, model, n_samples, solver, nfe, seed=50_000 + seed)
                            except (RuntimeError, ValueError) as error:
                                results.append({"solver": solver + suffix, "nfe": nfe, "error": str(error)[:200]})
                                continue
                            results.append({"solver": solver + suffix, "nfe": nfe,
                                            **metrics(dataset, samples, held_out, classifier)})
                            if (seed == budget["seeds"][0] and solver == PLOT_SOLVER and nfe == PLOT_NFE
                                    and not suffix):
                                plots[(method.name, dataset)] = samples[: (64 if k == "digits" else 1000)]
                row["sample_s"] = time.perf_counter() - sample_start
                row["results"] = results
                rows.append(row)
                main_metric = "fd" if k == "digits" else "sw"
                best = [r for r in results if r["solver"] == "heun" and r["nfe"] == max(budget["nfes"])]
                C.log(f"  done in {row['train_s']:.0f} s + {row['sample_s']:.0f} s sampling; heun NFE "
                      f"{max(budget['nfes'])}: {main_metric} {best[0].get(main_metric, float('nan')):.4g}"
                      f" | {(time.perf_counter() - started) / 60:.1f} min so far")
                write(out_json, info, args, settings, builds, rows, floors, partial=True)
                save_plot_samples(plot_path, plots)
    write(out_json, info, args, settings, builds, rows, floors, partial=False)
    return {"info": info, "settings": settings, "builds": builds, "rows": rows, "floors": floors, "plots": plots,
            "methods": methods}


def save_plot_samples(path, plots):
    """The samples drawn in the figures (seed 0, Heun NFE 20), float16, so that --resume can redraw them."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **{"|".join(key): value.astype(np.float16) for key, value in plots.items()})
    tmp.replace(path)


def write(path, info, args, settings, builds, rows, floors, partial):
    C.write_json(path, {
        "benchmark": "quality", "command": f"python bench/quality.py --budget {args.budget}",
        "budget": args.budget, "partial": partial, "machine": info, "settings": settings,
        "builds": builds, "floors": floors, "rows": rows,
    })


# ------------------------------------------------------------------------------------------ reports
def summarise(rows, metric, dataset, method, solver, nfe):
    values = [r2.get(metric) for r in rows if r["method"] == method and r["dataset"] == dataset
              for r2 in r.get("results", []) if r2["solver"] == solver and r2["nfe"] == nfe]
    values = [v for v in values if v is not None]
    return C.mean_std(values) + (len(values),)


def method_order(data):
    names = [name for name, _ in C.ENTRIES] + ["fm", "edm"]
    present = {r["method"] for r in data["rows"]}
    return [n for n in names if n in present]


def label_of(name):
    return {"fm": "flow matching (baseline)", "edm": "EDM (baseline)"}.get(name, C.LABELS.get(name, name))


def run_header(data) -> list[str]:
    """The machine, budget and settings of a quality run, then the entries that did not build."""
    s = data["settings"]
    failures = C.build_failures(data["builds"])
    return [C.describe_run(data["machine"], data["budget"], s["seeds"],
                           {"steps": s["steps"], "batch": s["batch"], "network": s["net"],
                            "samples": s["n_samples"]}), "", *failures, *([""] if failures else [])]


def tables(data) -> str:
    s = data["settings"]
    out = [f"Command: `{data['command']}`", "", *run_header(data)]
    order = method_order(data)
    for dataset in s["datasets"]:
        metric = "fd" if dataset == "digits" else "sw"
        title = ("Frechet distance in classifier features (lower is better)" if dataset == "digits"
                 else "sliced Wasserstein-1 to held-out data (lower is better)")
        out += [f"**{dataset}** — {title}; mean ± std over seeds", ""]
        out += [metric_table(data, dataset, metric, order, SOLVERS, floor_row=True), ""]
        generated = [n for n in order if n not in ("fm", "edm")]
        if generated:
            out += [(f"*{dataset}, the same generated networks integrated in the PDE time t* (dx/dt on the same "
                    "grid points mapped to t, `sample.py --variable t`, instead of dx/dsigma)"), "",
                    metric_table(data, dataset, metric, generated,
                                 tuple(sv + TIME_SUFFIX for sv in SOLVERS), floor_row=False), ""]
        if dataset == "digits":
            top = max(s["nfes"])
            header = ["model", f"FD heun {top}", f"label entropy heun {top} (max 2.303)",
                      f"conditional entropy heun {top}"]
            body = []
            for name in order:
                cells = [label_of(name)]
                for m in ("fd", "label_entropy", "conditional_entropy"):
                    mean, std, count = summarise(data["rows"], m, dataset, name, "heun", max(s["nfes"]))
                    cells.append(C.fmt(mean, std) if count else "n/a")
                body.append(cells)
            fl = data["floors"].get(dataset, [])
            body.append(["data (floor)"] + [C.fmt(*C.mean_std([f[m] for f in fl]))
                                            for m in ("fd", "label_entropy", "conditional_entropy")])
            out += [C.markdown_table(header, body), ""]
    toys = [d for d in s["datasets"] if d != "digits"]
    if toys:
        out += ["**MMD² (RBF, lower is better), Heun NFE 20 and 50**, mean ± std over seeds", ""]
        header = ["model"] + [f"{d} {n}" for d in toys for n in (20, 50) if n in s["nfes"]]
        body = []
        for name in order:
            cells = [label_of(name)]
            for d in toys:
                for n in (20, 50):
                    if n in s["nfes"]:
                        mean, std, count = summarise(data["rows"], "mmd", d, name, "heun", n)
                        cells.append(C.fmt(mean, std) if count else "n/a")
            body.append(cells)
        out += [C.markdown_table(header, body), ""]
    out += relative_table(data)
    header = ["model", "train s / run (mean; a cached model keeps the time of the run that trained it)",
              "sampling s / run (all settings)", "final loss"]
    body = []
    for name in order:
        rs = [r for r in data["rows"] if r["method"] == name and "train_s" in r]
        body.append([label_of(name), C.fmt(*C.mean_std([r["train_s"] for r in rs])),
                     C.fmt(*C.mean_std([r["sample_s"] for r in rs])),
                     "; ".join(f"{d}: {C.fmt(*C.mean_std([r['final_loss'] for r in rs if r['dataset'] == d]))}"
                               for d in s["datasets"])])
    out += [("Training and sampling wall time per run on this machine (all datasets), and the final training "
            "loss (each method has its own loss scale)"), "", C.markdown_table(header, body), ""]
    return "\n".join(out)


def metric_table(data, dataset, metric, names, solvers, floor_row) -> str:
    s = data["settings"]
    header = ["model"] + [f"{sv} {n}" for sv in solvers for n in s["nfes"]]
    body = []
    for name in names:
        cells = [label_of(name)]
        for solver in solvers:
            for nfe in s["nfes"]:
                mean, std, count = summarise(data["rows"], metric, dataset, name, solver, nfe)
                cells.append(C.fmt(mean, std) if count else "n/a")
        body.append(cells)
    if floor_row:
        floor = C.mean_std([f.get(metric) for f in data["floors"].get(dataset, [])])
        body.append(["data (floor)"] + [C.fmt(*floor)] * (len(header) - 1))
    return C.markdown_table(header, body)


def relative_table(data) -> list[str]:
    """Geometric mean over data sets and seeds of metric(entry) / metric(EDM baseline), per solver and NFE."""
    s = data["settings"]
    order = method_order(data)
    if "edm" not in order:
        return []
    header = ["model"] + [f"{sv} {n}" for sv in SOLVERS for n in s["nfes"]]
    body = []
    variants = [(name, "") for name in order]
    variants += [(name, TIME_SUFFIX) for name in order if name not in ("fm", "edm")]
    for name, suffix in variants:
        cells = [label_of(name) + (" [in t]" if suffix else "")]
        for base_solver in SOLVERS:
            solver = base_solver + suffix
            nfe_list = s["nfes"]
            for nfe in nfe_list:
                logs = []
                for dataset in s["datasets"]:
                    metric = "fd" if dataset == "digits" else "sw"
                    mine = summarise(data["rows"], metric, dataset, name, solver, nfe)[0]
                    ref = summarise(data["rows"], metric, dataset, "edm", base_solver, nfe)[0]
                    if math.isfinite(mine) and math.isfinite(ref) and mine > 0 and ref > 0:
                        logs.append(math.log(mine / ref))
                cells.append(f"{math.exp(np.mean(logs)):.2f}" if len(logs) == len(s["datasets"]) else "n/a")
        body.append(cells)
    return [("**Relative to EDM** (geometric mean over the data sets of the seed-mean SW / FD ratio; < 1: better "
            "than EDM)"), "", C.markdown_table(header, body), ""]


def figures(result, budget: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    data = {"rows": result["rows"], "settings": result["settings"], "floors": result["floors"]}
    s = data["settings"]
    order = method_order(data)
    colours = pyplot.get_cmap("tab20")
    style = {name: {"color": colours(i % 20), "lw": 1.4} for i, name in enumerate(order)}
    style.update({"fm": {"color": "black", "lw": 2.2, "ls": "--"}, "edm": {"color": "0.45", "lw": 2.2, "ls": ":"}})
    paths = []
    datasets = s["datasets"]
    figure, axes = pyplot.subplots(2, len(datasets), figsize=(4.2 * len(datasets), 7.5), squeeze=False)
    for row, solver in enumerate(SOLVERS):
        for col, dataset in enumerate(datasets):
            axis = axes[row][col]
            metric = "fd" if dataset == "digits" else "sw"
            for name in order:
                stats = [summarise(data["rows"], metric, dataset, name, solver, n) for n in s["nfes"]]
                means = np.array([m for m, _, _ in stats])
                stds = np.array([sd for _, sd, _ in stats])
                axis.plot(s["nfes"], means, marker="o", ms=3, label=label_of(name), **style[name])
                axis.fill_between(s["nfes"], means - stds, means + stds, color=style[name]["color"], alpha=0.08)
            floor = C.mean_std([f.get(metric) for f in data["floors"].get(dataset, [])])[0]
            axis.axhline(floor, color="green", lw=0.8, ls="-.", label="data floor")
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xticks(s["nfes"], [str(n) for n in s["nfes"]])
            axis.xaxis.set_minor_formatter(ticker.NullFormatter())  # log-axis minor labels overlap the NFEs
            axis.set_title(f"{dataset}, {solver}")
            axis.set_xlabel("NFE")
            axis.set_ylabel("FD (features)" if metric == "fd" else "sliced W1")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    paths.append(C.RESULTS / f"quality_{budget}_nfe.png")
    C.save_figure(figure, paths[-1])
    pyplot.close(figure)

    plots = result["plots"]
    toys = [d for d in datasets if d != "digits"]
    if toys and plots:
        names = [n for n in order if any((n, d) in plots for d in toys)]
        figure, axes = pyplot.subplots(len(toys), len(names), figsize=(1.7 * len(names), 1.8 * len(toys)),
                                       squeeze=False)
        for r, dataset in enumerate(toys):
            for c, name in enumerate(names):
                axis = axes[r][c]
                axis.set_xticks([])
                axis.set_yticks([])
                points = plots.get((name, dataset))
                if points is not None:
                    axis.scatter(points[:, 0], points[:, 1], s=0.3, alpha=0.5, color="C0")
                axis.set_xlim(-4.5, 4.5)
                axis.set_ylim(-4.5, 4.5)
                if r == 0:
                    axis.set_title(label_of(name).replace(" (baseline)", "*"), fontsize=7)
                if c == 0:
                    axis.set_ylabel(dataset, fontsize=8)
        figure.suptitle(f"samples, {PLOT_SOLVER} NFE {PLOT_NFE}, seed {s['seeds'][0]} (* = baseline)", fontsize=9)
        paths.append(C.RESULTS / f"quality_{budget}_samples.png")
        C.save_figure(figure, paths[-1])
        pyplot.close(figure)
    if "digits" in datasets and plots:
        names = [n for n in order if (n, "digits") in plots]
        columns = min(5, len(names))
        rows_n = math.ceil(len(names) / columns)
        figure, axes = pyplot.subplots(rows_n, columns, figsize=(2.6 * columns, 1.6 * rows_n), squeeze=False)
        for axis in axes.flat:
            axis.axis("off")
        for axis, name in zip(axes.flat, names):
            images = np.clip(plots[(name, "digits")][:32].reshape(-1, 8, 8), -1, 1)
            images = np.pad(images, ((0, 32 - len(images)), (1, 1), (1, 1)), constant_values=-1)
            mosaic = images.reshape(4, 8, 10, 10).transpose(0, 2, 1, 3).reshape(40, 80)
            axis.imshow(mosaic, cmap="gray", vmin=-1, vmax=1)
            axis.set_title(label_of(name).replace(" (baseline)", "*"), fontsize=7)
        figure.suptitle(f"digits samples, {PLOT_SOLVER} NFE {PLOT_NFE}, seed {s['seeds'][0]}", fontsize=9)
        paths.append(C.RESULTS / f"quality_{budget}_digits.png")
        C.save_figure(figure, paths[-1])
        pyplot.close(figure)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", choices=tuple(BUDGETS), default="tiny")
    parser.add_argument("--entries", help="comma-separated catalog entries (default: the budget's)")
    parser.add_argument("--datasets", help=f"comma-separated, from {', '.join(ALL_DATA)}")
    parser.add_argument("--seeds", help="comma-separated seeds")
    parser.add_argument("--steps", type=int, help="override the training steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--build-timeout", type=float, default=180.0, help="seconds per pde2gen build")
    parser.add_argument("--resume", action="store_true", help="keep finished rows of an earlier identical run")
    args = parser.parse_args(argv)
    result = run(args)
    import json

    data = json.loads((C.RESULTS / f"quality_{args.budget}.json").read_text())
    text = tables(data)
    C.write_text(C.RESULTS / f"quality_{args.budget}.md", text + "\n")
    paths = figures(result, args.budget)
    print(text)
    print("wrote " + ", ".join(str(p.relative_to(C.ROOT)) for p in
                               [C.RESULTS / f"quality_{args.budget}.json", C.RESULTS / f"quality_{args.budget}.md",
                                *paths]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

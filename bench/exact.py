"""Exact flows: integration error alone (no network). The exact marginal velocity of a small data set
(Process.marginal_velocity, what ``sample.py --exact`` integrates) carries the prior onto that set; how close
do the samples come as the number of steps grows?

    python bench/exact.py --budget tiny     # ~2-3 min: diffusion, pfgm, kac; 64 points; 5-20 steps
    python bench/exact.py --budget small    # the README numbers: every entry, 200 points, 5-100 steps

Data: M points of 8gaussians (the generated train.py's generator, seed 0), saved as a .npy reference set.
For each entry, n samples start from Process.sample_prior (seed 0) and follow dx/dsigma = v / (dsigma/dt)
through Process.sigma_grid(steps + 1) with the module's own Euler and Heun (steps = intervals; Heun makes 2
evaluations per step) in float64, as sample.py --exact does by default; and, for comparison, the same exact
field integrated in the PDE time t (dx/dt = v, sample.py --variable t) on the same grid points mapped to t.
In the limit the samples land on the reference points,
so we report the sliced Wasserstein-1 distance to the reference set, MMD^2, and the median distance from a
sample to its nearest reference point. Floor: SW of n bootstrap draws of the reference set (what a perfect
integrator would reach, given the multinomial proportions).

End-to-end: one run per entry of the module's own ``python sample.py --exact REF.npy --steps S+1 --solver heun``
(subprocess); its samples are compared with the in-process samples of the same setting (max difference).

Writes bench/results/exact_<budget>.json, .md and exact_<budget>.png.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

# The stable family's log-kernel is a quadrature: its exact marginal velocity costs ~1 ms per (sample, data point)
# pair on one core (23 s per evaluation of 200 x 100 pairs), hours for this benchmark. Its exact flow is still
# tested (tests/test_catalog_builds.py, 48 samples onto 3 points).
TOO_COSTLY = ("fractional",)

BUDGETS = {
    "tiny": {"entries": ("diffusion", "pfgm", "kac"), "m": 64, "n": 200, "steps": (5, 10, 20),
             "solvers": ("euler", "heun"), "e2e_steps": 10},
    "small": {"entries": tuple(n for n, _ in C.ENTRIES if n not in TOO_COSTLY), "m": 100, "n": 200,
              "steps": (5, 10, 20, 50), "solvers": ("euler", "heun"), "e2e_steps": 20},
}
DATASET = "8gaussians"


def nearest_distance(samples: np.ndarray, reference: np.ndarray) -> float:
    d = np.sqrt(((samples[:, None, :] - reference[None]) ** 2).sum(-1)).min(1)
    return float(np.median(d))


def score(samples: np.ndarray, reference: np.ndarray) -> dict:
    from pde2gen.report.metrics import mmd_rbf, sliced_wasserstein

    finite = np.isfinite(samples).all(1)
    good = samples[finite]
    return {"nonfinite": int((~finite).sum()),
            "sw": sliced_wasserstein(good, reference, projections=128) if len(good) else float("nan"),
            "mmd": mmd_rbf(good, reference) if len(good) > 1 else float("nan"),
            "nn_median": nearest_distance(good, reference) if len(good) else float("nan")}


@torch.no_grad()
def integrate(module, reference: np.ndarray, n: int, steps: int, solver: str, in_sigma: bool, seed: int = 0):
    train = module.train
    stats = train.data_statistics(reference)
    process = train.make_process(stats, torch.float64)
    ref = torch.from_numpy(reference)
    generator = torch.Generator().manual_seed(seed)
    x = process.sample_prior(n, generator=generator).to(torch.float64)
    sigmas = process.sigma_grid(steps + 1)

    def velocity(x, t):
        return process.marginal_velocity(x, t, ref)

    solve = getattr(process, f"sample_{solver}")
    if in_sigma:  # what sample.py --exact does by default
        return solve(process.sigma_velocity(velocity), x, sigmas).numpy()
    return solve(velocity, x, process.t_of_sigma(sigmas)).numpy()


def end_to_end(module, reference_path: Path, n: int, steps: int) -> tuple[np.ndarray, float, int]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "exact.npy"
        command = [sys.executable, "sample.py", "--exact", str(reference_path), "--n", str(n), "--steps",
                   str(steps + 1), "--solver", "heun", "--seed", "0", "--device", "cpu", "--out", str(out)]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=module.dir, capture_output=True, text=True, timeout=1800, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"sample.py --exact failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        return np.load(out), wall, done.returncode


def run(args):
    budget = BUDGETS[args.budget]
    info, builds, modules = C.start_run("exact", args, budget["entries"])
    if not modules:
        raise SystemExit("no entry could be built")
    reference = next(iter(modules.values())).train.load_data(DATASET, seed=0, n_toy=budget["m"])
    rng = np.random.default_rng(0)
    floors = [score(reference[rng.integers(0, len(reference), budget["n"])], reference) for _ in range(5)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        reference_path = Path(folder) / "reference.npy"
        np.save(reference_path, reference)
        for entry in budget["entries"]:
            if entry not in modules:
                continue
            module = modules[entry]
            for in_sigma in (True, False):
                for solver in budget["solvers"]:
                    for steps in budget["steps"]:
                        start = time.perf_counter()
                        samples = integrate(module, reference, budget["n"], steps, solver, in_sigma)
                        row = {"entry": entry, "variable": "sigma" if in_sigma else "t", "solver": solver,
                               "steps": steps, "nfe": steps * (2 if solver == "heun" else 1),
                               "wall_s": time.perf_counter() - start, **score(samples, reference)}
                        rows.append(row)
                        C.log(f"{entry} [{row['variable']}] {solver} {steps} steps: SW {row['sw']:.4g}, nearest "
                              f"{row['nn_median']:.3g} ({row['wall_s']:.1f} s)")
                        if in_sigma and solver == "heun" and steps == budget["e2e_steps"]:
                            mine = samples
                C.write_json(C.RESULTS / f"exact_{args.budget}.json",
                             payload(args, info, budget, builds, rows, floors, {}, True))
            try:
                theirs, wall, _ = end_to_end(module, reference_path, budget["n"], budget["e2e_steps"])
                e2e = {"entry": entry, "command": f"python sample.py --exact REF.npy --n {budget['n']} --steps "
                                                  f"{budget['e2e_steps'] + 1} --solver heun --seed 0",
                       "wall_s": wall, "max_abs_diff_vs_in_process": float(np.nanmax(np.abs(theirs - mine))),
                       **score(theirs, reference)}
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                e2e = {"entry": entry, "error": str(error)}
            rows.append({"end_to_end": e2e})
            C.log(f"{entry}: sample.py --exact end to end: {e2e}")
    data = payload(args, info, budget, builds, rows, floors, None, False)
    C.write_json(C.RESULTS / f"exact_{args.budget}.json", data)
    return data


def payload(args, info, budget, builds, rows, floors, extra, partial):
    return {"benchmark": "exact", "command": f"python bench/exact.py --budget {args.budget}",
            "budget": args.budget, "partial": partial, "machine": info, "dataset": DATASET,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in budget.items()},
            "builds": builds, "floor": floors, "rows": rows}


def tables(data) -> str:
    s = data["settings"]
    rows = [r for r in data["rows"] if "end_to_end" not in r]
    e2e = [r["end_to_end"] for r in data["rows"] if "end_to_end" in r]
    out = [f"Command: `{data['command']}`", "",
           C.describe_run(data["machine"], data["budget"], [0], {"data": f"{DATASET}, M = {s['m']} points",
                          "samples": s["n"], "dtype": "float64"}), ""]
    out += C.build_failures(data["builds"])
    skipped = [name for name in TOO_COSTLY if name not in s["entries"]]
    if skipped:
        out.append(f"- not measured: {', '.join(C.LABELS.get(n, n) for n in skipped)}: the stable family's exact "
                   "velocity needs a quadrature per (sample, data point) pair, ~1 ms each on one core")
    out.append("")
    floor = C.mean_std([f["sw"] for f in data["floor"]])
    for variable in ("sigma", "t"):
        header = ["entry"] + [f"{sv} {n}" for sv in s["solvers"] for n in s["steps"]]
        body = []
        for entry in s["entries"]:
            cells = [C.LABELS.get(entry, entry)]
            for solver in s["solvers"]:
                for steps in s["steps"]:
                    match = [r for r in rows if r["entry"] == entry and r["variable"] == variable
                             and r["solver"] == solver and r["steps"] == steps]
                    cells.append(C.fmt(match[0]["sw"]) if match else "n/a")
            if any(c != "n/a" for c in cells[1:]):
                body.append(cells)
        what = ("in sigma (as sample.py --exact)" if variable == "sigma"
                else "the same field integrated in the PDE time t (sample.py --variable t)")
        out += [(f"**Exact flow {what}**: sliced W1 to the {s['m']} reference points by number of steps "
                f"(floor: bootstrap SW {C.fmt(*floor)})"), "", C.markdown_table(header, body), ""]
    header = ["entry", "nearest-point distance, heun " + ", ".join(str(n) for n in s["steps"]) + " (sigma)",
              "same in t"]
    body = []
    for entry in s["entries"]:
        parts = []
        for variable in ("sigma", "t"):
            values = [r["nn_median"] for steps in s["steps"] for r in rows if r["entry"] == entry and
                      r["variable"] == variable and r["solver"] == "heun" and r["steps"] == steps]
            parts.append(" / ".join(C.fmt(v, digits=2) for v in values))
        if parts[0]:
            body.append([C.LABELS.get(entry, entry), *parts])
    out += ["Median distance from a sample to its nearest reference point (Heun; 0 in the exact limit)", "",
            C.markdown_table(header, body), ""]
    header = ["entry", "command (in the module)", "wall s", "SW", "max |diff| vs in-process"]
    body = [[C.LABELS.get(e["entry"], e["entry"]), f"`{e.get('command', '')}`", C.fmt(e.get("wall_s")),
             C.fmt(e.get("sw")), e.get("error") or f"{e['max_abs_diff_vs_in_process']:.2e}"] for e in e2e]
    out += ["End to end with the generated sample.py", "", C.markdown_table(header, body), ""]
    return "\n".join(out)


def figure(data, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    s = data["settings"]
    rows = [r for r in data["rows"] if "end_to_end" not in r]
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4), squeeze=False)
    for axis, variable in zip(axes[0], ("sigma", "t")):
        for i, entry in enumerate(s["entries"]):
            for solver, ls in (("heun", "-"), ("euler", ":")):
                pts = sorted((r["nfe"], r["sw"]) for r in rows if r["entry"] == entry and r["variable"] == variable
                             and r["solver"] == solver)
                if pts:
                    axis.plot(*zip(*pts), ls=ls, marker="o", ms=2.5, color=f"C{i % 10}",
                              label=f"{C.LABELS.get(entry, entry)}" if solver == "heun" else None)
        floor = np.mean([f["sw"] for f in data["floor"]])
        axis.axhline(floor, color="green", lw=0.8, ls="-.", label="bootstrap floor")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("NFE (solid Heun, dotted Euler)")
        axis.set_ylabel("sliced W1 to the reference set")
        axis.set_title(f"exact flow integrated in {variable}")
    axes[0][0].legend(fontsize=7)
    C.save_figure(figure, path)
    pyplot.close(figure)


def main(argv=None) -> int:
    return C.benchmark_main("exact", __doc__, BUDGETS, run, tables, figure, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
